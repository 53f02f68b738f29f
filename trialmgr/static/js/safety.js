// Safety forms. Grading and look-ups stay on the server: these only ask it and show the
// answer. Every form works without this file.
(function () {
  "use strict";

  function debounce(fn, ms) {
    var timer = null;
    return function () {
      clearTimeout(timer);
      timer = setTimeout(fn, ms);
    };
  }

  function getJson(url) {
    return fetch(url, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    }).then(function (response) {
      var type = response.headers.get("Content-Type") || "";
      if (type.indexOf("application/json") === -1) {
        throw new Error("not signed in");
      }
      return response.json().then(function (body) {
        return { ok: response.ok, body: body };
      });
    });
  }

  function firstMessage(errors) {
    var keys = Object.keys(errors || {});
    for (var i = 0; i < keys.length; i++) {
      var value = errors[keys[i]];
      var text = Array.isArray(value) ? value.join(" ") : String(value);
      if (text) {
        return text;
      }
    }
    return "";
  }

  // Lab entry: the grade as soon as the value is typed, from GET /labs/grade.
  function labForm(form) {
    var output = document.getElementById("lab-grade");
    var analyte = form.querySelector("[name=analyte]");
    var units = document.getElementById("lab-units");
    var fields = ["analyte", "value", "unit", "uln", "lln"];
    var asked = 0;

    function show(text, kind) {
      output.textContent = text;
      output.className = "fw-semibold" + (kind ? " " + kind : "");
    }

    function fillUnits() {
      var option = analyte.options[analyte.selectedIndex];
      var list = option && option.getAttribute("data-units");
      if (!list || !units) {
        return;
      }
      units.textContent = "";
      list.split("|").forEach(function (unit) {
        var item = document.createElement("option");
        item.value = unit;
        units.appendChild(item);
      });
    }

    var ask = debounce(function () {
      var params = new URLSearchParams();
      fields.forEach(function (name) {
        var input = form.querySelector("[name=" + name + "]");
        if (input && input.value.trim() !== "") {
          params.set(name, input.value.trim());
        }
      });
      if (!params.get("analyte") || !params.get("value") || !params.get("unit")) {
        show("Choose the analyte, type the value and its unit.", "text-muted");
        return;
      }
      var mine = ++asked;
      getJson(form.getAttribute("data-grade-url") + "?" + params.toString())
        .then(function (answer) {
          if (mine !== asked) {
            return;
          }
          if (!answer.ok) {
            show("Not graded: " + (firstMessage(answer.body.errors) || answer.body.detail), "text-danger");
            return;
          }
          var result = answer.body;
          var text = result.grade ? result.label : "Grade 0: within the reference limits";
          if (result.uln_multiple !== null) {
            text += " · " + result.uln_multiple.toFixed(2) + " × ULN";
          }
          text += " · " + result.value_canonical + " " + result.canonical_unit;
          show(text, result.grade >= 3 ? "text-danger" : "");
        })
        .catch(function () {
          show("The grade is shown after saving.", "text-muted");
        });
    }, 200);

    fields.forEach(function (name) {
      var input = form.querySelector("[name=" + name + "]");
      if (input) {
        input.addEventListener("input", ask);
        input.addEventListener("change", ask);
      }
    });
    analyte.addEventListener("change", fillUnits);
    fillUnits();
    ask();
  }

  // Adverse-event form: MedDRA terms as the search is typed, from GET /meddra/search.
  function meddra(fieldset) {
    var input = document.getElementById("ae-meddra_q");
    var results = document.getElementById("meddra-results");
    var asked = 0;

    function radio(value, id, label, detail, checked) {
      var wrap = document.createElement("div");
      wrap.className = "form-check";
      var box = document.createElement("input");
      box.className = "form-check-input";
      box.type = "radio";
      box.name = "pt_code";
      box.id = id;
      box.value = value;
      box.checked = checked;
      var text = document.createElement("label");
      text.className = "form-check-label small";
      text.htmlFor = id;
      text.textContent = label;
      if (detail) {
        var muted = document.createElement("span");
        muted.className = "text-muted";
        muted.textContent = " · " + detail;
        text.appendChild(muted);
      }
      wrap.appendChild(box);
      wrap.appendChild(text);
      return wrap;
    }

    var search = debounce(function () {
      var text = input.value.trim();
      if (text.length < 2) {
        return;
      }
      var mine = ++asked;
      getJson(fieldset.getAttribute("data-search-url") + "?q=" + encodeURIComponent(text))
        .then(function (answer) {
          if (mine !== asked || !answer.ok) {
            return;
          }
          var checked = results.querySelector("input[name=pt_code]:checked");
          var keep = checked ? checked.value : "";
          results.textContent = "";
          results.appendChild(radio("", "ae-pt-none", "No MedDRA term", "", keep === ""));
          var found = false;
          answer.body.forEach(function (term, i) {
            found = found || term.pt_code === keep;
            results.appendChild(
              radio(term.pt_code, "ae-pt-" + (i + 1), term.pt_term, term.pt_code + " · " + term.soc, term.pt_code === keep)
            );
          });
          if (keep && !found) {
            results.insertBefore(radio(keep, "ae-pt-chosen", "Code " + keep + " (chosen)", "", true), results.children[1]);
          }
          if (!answer.body.length) {
            var none = document.createElement("p");
            none.className = "small text-muted mb-0";
            none.textContent = "No term matches “" + text + "”.";
            results.appendChild(none);
          }
        })
        .catch(function () {});
    }, 250);

    input.addEventListener("input", search);
    input.addEventListener("keydown", function (event) {
      if (event.key === "Enter") {
        event.preventDefault();
        search();
      }
    });
  }

  var lab = document.getElementById("lab-form");
  if (lab && window.fetch) {
    labForm(lab);
  }
  var terms = document.getElementById("meddra");
  if (terms && window.fetch) {
    meddra(terms);
  }
})();
