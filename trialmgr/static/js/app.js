// Confirmation before irreversible steps: <form data-confirm="...">.
document.addEventListener("submit", function (event) {
  var message = event.target.getAttribute("data-confirm");
  if (message && !window.confirm(message)) {
    event.preventDefault();
  }
});

// Site form: suggest the time zone of the country typed, unless the user chose another one.
(function () {
  var list = document.querySelector("datalist[data-country-zones]");
  var zone = document.getElementById("f-timezone");
  var country = document.getElementById("f-country");
  if (!list || !zone || !country) {
    return;
  }
  var zones = JSON.parse(list.getAttribute("data-country-zones"));
  var suggested = zones[country.value.trim().toUpperCase()] || "";
  country.addEventListener("input", function () {
    var next = zones[country.value.trim().toUpperCase()] || "";
    if (next && (zone.value === "" || zone.value === suggested)) {
      zone.value = next;
    }
    suggested = next || suggested;
  });
})();

// The error summary of a refused form (macros/forms.html `error_summary`, or a page's own
// refusal alert): each field error links to its field, named by the field's label; focus
// moves to the summary so a keyboard or screen-reader user starts from the list of errors.
(function () {
  var main = document.getElementById("main");
  if (!main) {
    return;
  }
  var summary = document.getElementById("error-summary") || document.getElementById("form-problem");
  var invalid = main.querySelectorAll(".is-invalid");
  if (!summary && invalid.length) {
    summary = main.querySelector(".alert-danger[role=alert]");
  }
  if (!summary && invalid.length) {
    // Errors shown only at their fields: the summary goes at the top of their form.
    var form = invalid[0].form || invalid[0].closest("form") || main;
    summary = document.createElement("div");
    summary.className = "alert alert-danger";
    summary.setAttribute("role", "alert");
    var title = document.createElement("h2");
    title.className = "h6 fw-bold mb-1";
    title.textContent = "Not saved: please correct the highlighted fields.";
    summary.appendChild(title);
    form.insertBefore(summary, form.firstChild);
  }
  if (!summary) {
    return;
  }
  function labelOf(field) {
    var set = field.closest("fieldset");
    if (field.type === "radio" || field.type === "checkbox") {
      if (set && set.querySelector("legend")) {
        return set.querySelector("legend").textContent;
      }
    }
    var label = field.id && document.querySelector('label[for="' + field.id + '"]');
    return label ? label.textContent : field.name;
  }
  function clean(text) {
    return text.replace(/\s*\*\s*$/, "").replace(/\s+/g, " ").trim();
  }
  function fieldFor(link, name) {
    var id = decodeURIComponent(link.getAttribute("href").slice(1));
    var field = document.getElementById(id);
    if (field && field.tagName === "FIELDSET") {
      field = field.querySelector("input, select, textarea");
    }
    return field || main.querySelector('[name="' + name + '"]:not([type=hidden])');
  }
  var list = summary.querySelector("ul.error-list");
  if (!list && invalid.length) {
    // A page's own alert: list the invalid fields in it.
    list = document.createElement("ul");
    list.className = "mb-0 mt-1 error-list";
    var seen = {};
    Array.prototype.forEach.call(invalid, function (field) {
      if (!field.name || seen[field.name] || !field.id) {
        return;
      }
      seen[field.name] = true;
      var group = field.closest(".mb-2, .mb-3, fieldset, td") || field.parentNode;
      var feedback = group.querySelector(".invalid-feedback");
      var item = document.createElement("li");
      item.setAttribute("data-field", field.name);
      var link = document.createElement("a");
      link.className = "alert-link";
      link.href = "#" + field.id;
      var label = document.createElement("span");
      label.className = "error-label";
      link.appendChild(label);
      link.appendChild(document.createTextNode(feedback ? ": " + clean(feedback.textContent) : ""));
      item.appendChild(link);
      list.appendChild(item);
    });
    summary.appendChild(list);
  }
  if (list) {
    Array.prototype.forEach.call(list.querySelectorAll("li[data-field]"), function (item) {
      var link = item.querySelector("a");
      var field = fieldFor(link, item.getAttribute("data-field"));
      if (!field) {
        // No such field on the page: the message stays, as text.
        var text = document.createElement("span");
        text.innerHTML = link.innerHTML;
        item.replaceChild(text, link);
        return;
      }
      if (!field.id) {
        field.id = "field-" + item.getAttribute("data-field");
      }
      link.setAttribute("href", "#" + field.id);
      link.querySelector(".error-label").textContent = clean(labelOf(field));
      link.addEventListener("click", function (event) {
        event.preventDefault();
        var label = document.querySelector('label[for="' + field.id + '"]');
        (field.closest("fieldset") || label || field).scrollIntoView({block: "center"});
        field.focus();
      });
    });
  }
  summary.id = summary.id || "error-summary";
  summary.setAttribute("tabindex", "-1");
  summary.focus();
})();

// Submit buttons: once a form is sent, its buttons show that it is busy and a second press
// (or Enter) sends nothing, until the next page. Not `disabled`: a disabled button would
// drop its own name and value from the form being sent.
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (event.defaultPrevented || (form.method || "").toLowerCase() !== "post") {
    return;
  }
  if (form.getAttribute("data-busy") === "true") {
    event.preventDefault();
    return;
  }
  form.setAttribute("data-busy", "true");
  var buttons = form.querySelectorAll("button[type=submit], button:not([type]), input[type=submit]");
  Array.prototype.forEach.call(buttons, function (button) {
    button.setAttribute("aria-disabled", "true");
    button.classList.add("disabled");
    if (button === event.submitter && button.tagName === "BUTTON") {
      button.setAttribute("aria-busy", "true");
      var spinner = document.createElement("span");
      spinner.className = "spinner-border spinner-border-sm ms-2";
      spinner.setAttribute("aria-hidden", "true");
      button.appendChild(spinner);
      var said = document.createElement("span");
      said.className = "visually-hidden";
      said.textContent = " (working…)";
      button.appendChild(said);
    }
  });
  // A response that is a download leaves this page in place: free the form again then.
  window.setTimeout(function () { release(form); }, 20000);
});

function release(form) {
  form.removeAttribute("data-busy");
  Array.prototype.forEach.call(form.querySelectorAll("[aria-disabled=true]"), function (button) {
    button.removeAttribute("aria-disabled");
    button.removeAttribute("aria-busy");
    button.classList.remove("disabled");
    Array.prototype.forEach.call(button.querySelectorAll(".spinner-border, .visually-hidden"), function (el) {
      el.remove();
    });
  });
}

// Back to a page from the browser's cache: its forms are not busy any more.
window.addEventListener("pageshow", function (event) {
  if (event.persisted) {
    Array.prototype.forEach.call(document.querySelectorAll("form[data-busy]"), release);
  }
});

// A table wider than its box scrolls sideways: the box takes keyboard focus (and is named
// by the table's caption or the nearest heading above it, numbered when two regions would
// share a name), so it can be scrolled without a mouse.
(function () {
  function headingBefore(el) {
    for (var node = el; node && node !== document.body; node = node.parentElement) {
      for (var sib = node.previousElementSibling; sib; sib = sib.previousElementSibling) {
        if (/^H[1-4]$/.test(sib.tagName)) { return sib; }
        var inner = sib.querySelectorAll("h1, h2, h3, h4");
        if (inner.length) { return inner[inner.length - 1]; }
      }
    }
    return null;
  }
  function uniqueName(box, name) {
    var taken = {};
    Array.prototype.forEach.call(document.querySelectorAll("[role=region][aria-label]"), function (other) {
      if (other !== box) { taken[other.getAttribute("aria-label")] = true; }
    });
    var label = name + " (scrolls sideways)";
    for (var n = 2; taken[label]; n += 1) { label = name + " " + n + " (scrolls sideways)"; }
    return label;
  }
  function mark() {
    Array.prototype.forEach.call(document.querySelectorAll(".table-responsive"), function (box) {
      var scrolls = box.scrollWidth > box.clientWidth + 1;
      if (scrolls && !box.hasAttribute("tabindex")) {
        box.setAttribute("tabindex", "0");
        box.setAttribute("role", "region");
        var caption = box.querySelector("caption");
        var heading = caption ? null : headingBefore(box);
        var name = ((caption || heading || {}).textContent || "Table").replace(/\s+/g, " ").trim();
        box.setAttribute("aria-label", uniqueName(box, name));
      } else if (!scrolls && box.getAttribute("role") === "region") {
        box.removeAttribute("tabindex");
        box.removeAttribute("role");
        box.removeAttribute("aria-label");
      }
    });
  }
  mark();
  window.addEventListener("resize", mark);
})();

// Arriving at a record's part from a worklist (`/subjects/X#visit-12`, `#reconsent-card`):
// the form there is opened and its first field takes focus, so a worklist row is one click
// from the form. A collapsed form is opened through the toggle inside the target. After the
// load: the browser's own move to the fragment would take the focus away again.
window.addEventListener("load", function () {
  window.setTimeout(function () {
    var id = decodeURIComponent(window.location.hash.slice(1));
    var target = id && document.getElementById(id);
    if (!target || document.getElementById("error-summary")) {
      return;
    }
    var toggle = target.querySelector("[data-bs-toggle=collapse][aria-controls]");
    var form = target.tagName === "FORM" ? target : target.querySelector("form");
    if (toggle && window.bootstrap) {
      var panel = document.getElementById(toggle.getAttribute("aria-controls"));
      if (panel) {
        window.bootstrap.Collapse.getOrCreateInstance(panel, {toggle: false}).show();
        toggle.setAttribute("aria-expanded", "true");
        form = panel.querySelector("form") || form;
      }
    }
    var field = form && form.querySelector("input:not([type=hidden]):not([disabled]), select, textarea");
    if (field) {
      field.focus({preventScroll: true});
      target.scrollIntoView({block: "start"});
    }
  }, 0);
});
