// mailoauth console: the provider and mailbox forms (loaded from a file: the CSP allows no
// inline script). Everything here only helps; the server ignores fields that do not apply.
//
// - [data-show-when="field=a|b other=c"]: shown while every rule holds (the named
//   control's value is one of the listed ones), hidden otherwise.
// - form[data-microsoft]: inputs [data-preset=KEY] show Microsoft's endpoints for the
//   typed tenant and the chosen cloud (the JSON maps cloud -> KEY -> URL with {tenant}).
// - form[data-ports]: choosing a transport or security mode fills in its default port,
//   unless the port box holds a port of the admin's own (the JSON maps transport ->
//   security -> port).
"use strict";

(function () {
  function valueOf(form, name) {
    const control = form.elements.namedItem(name);
    if (!control) {
      return "";
    }
    if (control.type === "checkbox") {
      return control.checked ? control.value : "";
    }
    return control.value;
  }

  function toggle(form) {
    form.querySelectorAll("[data-show-when]").forEach(function (element) {
      const rules = element.getAttribute("data-show-when").split(" ");
      element.hidden = !rules.every(function (rule) {
        const [name, choices] = rule.split("=");
        return choices.split("|").includes(valueOf(form, name));
      });
    });
  }

  function presets(form) {
    const data = form.dataset.microsoft ? JSON.parse(form.dataset.microsoft) : null;
    if (!data) {
      return;
    }
    const urls = data[valueOf(form, "cloud")] || data.global;
    const tenant = valueOf(form, "tenant").trim() || "{tenant}";
    form.querySelectorAll("[data-preset]").forEach(function (input) {
      const url = urls[input.getAttribute("data-preset")];
      input.value = url ? url.replace("{tenant}", tenant) : "\u2013";
    });
  }

  function fillPort(form, changed) {
    const table = form.dataset.ports ? JSON.parse(form.dataset.ports) : null;
    const side = (changed || "").split(".")[0];
    if (!table || !/^(outgoing|incoming)\.(transport|security)$/.test(changed || "")) {
      return;
    }
    const port = form.elements.namedItem(side + ".port");
    const modes = table[valueOf(form, side + ".transport")];
    if (!port) {
      return;
    }
    const known = Object.values(table).flatMap(function (byMode) {
      return Object.values(byMode).map(String);
    });
    if (port.value !== "" && !known.includes(port.value)) {
      return; // the admin's own port: keep it
    }
    const wanted = modes ? modes[valueOf(form, side + ".security")] : undefined;
    port.value = wanted === undefined ? "" : String(wanted);
  }

  document.querySelectorAll("form[data-microsoft], form[data-ports]").forEach(function (form) {
    form.addEventListener("change", function (event) {
      fillPort(form, event.target.name);
      toggle(form);
      presets(form);
    });
    form.addEventListener("input", function (event) {
      if (event.target.name === "tenant") {
        presets(form);
      }
    });
    toggle(form);
    presets(form);
  });
})();
