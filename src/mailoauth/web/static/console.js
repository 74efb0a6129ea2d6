// mailoauth console: small helpers, loaded from a file (the CSP allows no inline script).
//
// - mailoauth.csrfToken(): the page's CSRF token (from <meta name="csrf-token">).
// - mailoauth.post(url, data): a same-origin POST carrying the X-CSRF-Token header;
//   data is an object (sent as a urlencoded form) or a FormData.
// - <form data-confirm="Really remove X?">: asks before submitting.
// - <button data-copy="#element-id">: copies that element's text to the clipboard.
// - <form data-busy="Testing…">: once submitted, its button says so and cannot be clicked
//   twice while the answer is on its way.
"use strict";

window.mailoauth = (function () {
  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  function post(url, data) {
    const body = data instanceof FormData ? new URLSearchParams(data) : new URLSearchParams(data || {});
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrfToken() },
      body: body,
    });
  }

  document.addEventListener("submit", function (event) {
    const form = event.target;
    const question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
      return;
    }
    const busy = form.getAttribute && form.getAttribute("data-busy");
    const button = busy ? form.querySelector("button[type=submit]") : null;
    if (button) {
      setTimeout(function () { button.disabled = true; button.textContent = busy; });
    }
  });

  document.addEventListener("click", function (event) {
    const button = event.target.closest ? event.target.closest("[data-copy]") : null;
    if (!button) {
      return;
    }
    const source = document.querySelector(button.getAttribute("data-copy"));
    if (source && navigator.clipboard) {
      navigator.clipboard.writeText(source.textContent.trim()).then(function () {
        const label = button.textContent;
        button.textContent = "Copied";
        setTimeout(function () { button.textContent = label; }, 1500);
      });
    }
  });

  return { csrfToken: csrfToken, post: post };
})();
