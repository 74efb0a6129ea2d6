// mailoauth console: a mailbox's page — the Authorize button and the state box.
//
// Authorization code: the click opens a popup at once (a popup opened later, after the
// request, would be blocked), asks the service for the provider's consent URL
// (mailoauth.post: the CSRF header) and sends the popup there. /oauth/callback tells this
// window how it went (postMessage, same origin); the state box is then fetched again —
// the page itself is not reloaded. Other grants: the service gets a token at once and the
// answer is shown.
"use strict";

(function () {
  const button = document.getElementById("authorize");
  const box = document.getElementById("mailbox-state");
  const said = document.getElementById("authorize-result");
  if (!button || !box || !said) {
    return;
  }

  function say(text, ok) {
    said.textContent = text;
    said.className = ok ? "notice" : "error";
    said.hidden = false;
  }

  function refresh() {
    return fetch(box.dataset.url, { credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("the state could not be read (" + response.status + ")");
        }
        return response.text();
      })
      .then(function (html) {
        box.innerHTML = html; // rendered and escaped by the server, from this origin
      })
      .catch(function (error) {
        say(error.message + "; reload the page", false);
      });
  }

  function answer(response) {
    return response.json().then(
      function (body) { return { ok: response.ok, body: body }; },
      function () {
        return { ok: false, body: { error: "the service answered " + response.status + "; reload the page and try again" } };
      }
    );
  }

  function offerLink(url) {
    said.textContent = "The popup was blocked: ";
    const link = document.createElement("a");
    link.href = url;
    link.target = "_blank";
    link.rel = "opener"; // /oauth/callback tells this window how it went
    link.textContent = "open the provider's consent page";
    said.appendChild(link);
    said.className = "warning";
    said.hidden = false;
  }

  button.addEventListener("click", function () {
    const popup = button.dataset.popup === "true"
      ? window.open("", "mailoauth-authorize", "popup,width=600,height=720")
      : null;
    button.disabled = true;
    say(popup ? "Opening the consent page…" : "Asking for a token…", true);
    mailoauth.post(button.dataset.url)
      .then(answer)
      .then(function (result) {
        const body = result.body;
        if (!result.ok || body.error) {
          if (popup) { popup.close(); }
          say("Not connected: " + (body.error || "the request failed"), false);
          return refresh();
        }
        if (body.url) {
          if (popup && !popup.closed) {
            popup.location.href = body.url;
            say("Waiting for the consent in the popup window…", true);
          } else {
            offerLink(body.url);
          }
          return undefined;
        }
        say("Connected: " + body.message, true);
        return refresh();
      })
      .catch(function (error) {
        if (popup) { popup.close(); }
        say("The service could not be reached: " + error.message, false);
      })
      .finally(function () {
        button.disabled = false;
      });
  });

  window.addEventListener("message", function (event) {
    const data = event.data;
    if (event.origin !== window.location.origin || !data || data.type !== "mailoauth-authorization") {
      return;
    }
    if (data.mailbox && data.mailbox !== button.dataset.mailbox) {
      return;
    }
    say((data.ok ? "Connected: " : "Not connected: ") + data.message, data.ok);
    refresh();
  });
})();
