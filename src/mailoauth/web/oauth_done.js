// The OAuth result page (popup): tell the console window that opened it how it went.
"use strict";
(function () {
  var result = document.getElementById("result");
  if (!result || !window.opener) {
    return;
  }
  window.opener.postMessage(
    {
      type: "mailoauth-authorization",
      ok: result.dataset.ok === "true",
      mailbox: result.dataset.mailbox,
      message: result.dataset.message,
    },
    window.location.origin
  );
  var close = document.getElementById("close");
  if (close) {
    close.hidden = false;
    close.addEventListener("click", function () {
      window.close();
    });
  }
})();
