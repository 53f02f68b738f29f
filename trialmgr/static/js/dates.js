// Every date and date-time field (macros/forms.html `date_help`): the browser's picker shows
// the date in the browser's own language (Chromium here: mm/dd/yyyy), whatever format the
// user chose, so the date typed is read back under the field in words and in the user's
// format ("Wednesday 4 December 2026 · 04/12/2026"). A date-time typed on a site's clock is
// read back with the zone's label for that date ("09:00 Rome, CET" in winter, "CEST" in
// summer). Only a reading aid: the server validates what is sent.
(function () {
  var DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
  var MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
    "September", "October", "November", "December"];
  var VALUE = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2}))?/;

  function pad(n) {
    return (n < 10 ? "0" : "") + n;
  }

  // The user's format from /account (YYYY-MM-DD, DD-MMM-YYYY, DD/MM/YYYY, MM/DD/YYYY).
  function inFormat(format, y, m, d) {
    var parts = { YYYY: String(y), MMM: MONTHS[m - 1].slice(0, 3), MM: pad(m), DD: pad(d) };
    return format.replace(/YYYY|MMM|MM|DD/g, function (token) { return parts[token]; });
  }

  // How far `zone`'s wall clock is ahead of UTC at the instant `t` (milliseconds).
  function offset(zone, t) {
    var fields = {};
    new Intl.DateTimeFormat("en-US", {
      timeZone: zone, hourCycle: "h23", year: "numeric", month: "numeric", day: "numeric",
      hour: "numeric", minute: "numeric", second: "numeric"
    }).formatToParts(new Date(t)).forEach(function (p) { fields[p.type] = Number(p.value); });
    return Date.UTC(fields.year, fields.month - 1, fields.day, fields.hour, fields.minute,
      fields.second) - t;
  }

  // "Rome, CET": the zone's city and its abbreviation at that wall-clock time. The names
  // come from the server (`names`: offset in minutes → abbreviation, as the pages print them);
  // the browser's own short name is the fallback.
  function zoneLabel(zone, names, y, m, d, hh, mi) {
    if (zone === "UTC") {
      return "UTC";
    }
    var wall = Date.UTC(y, m - 1, d, hh, mi);
    var instant = wall - offset(zone, wall);
    instant = wall - offset(zone, instant);
    var name = names[String(Math.round(offset(zone, instant) / 60000))];
    if (!name) {
      new Intl.DateTimeFormat("en-GB", { timeZone: zone, timeZoneName: "short" })
        .formatToParts(new Date(instant))
        .forEach(function (p) { if (p.type === "timeZoneName") { name = p.value; } });
    }
    return zone.split("/").pop().replace(/_/g, " ") + ", " + name;
  }

  function echo(input) {
    var out = document.getElementById(input.getAttribute("data-date-echo"));
    if (!out) {
      return;
    }
    var found = VALUE.exec(input.value);
    if (!found) {
      out.textContent = input.validity && input.validity.badInput ? "Not a complete date yet." : "";
      return;
    }
    var y = Number(found[1]), m = Number(found[2]), d = Number(found[3]);
    var text = DAYS[new Date(Date.UTC(y, m - 1, d)).getUTCDay()] + " " + d + " " +
      MONTHS[m - 1] + " " + y;
    var format = out.getAttribute("data-format");
    if (format) {
      text += " · " + inFormat(format, y, m, d);
    }
    if (found[4]) {
      text += ", " + found[4] + ":" + found[5];
      var zone = out.getAttribute("data-zone");
      if (zone) {
        var names = JSON.parse(out.getAttribute("data-zone-names") || "{}");
        text += " " + zoneLabel(zone, names, y, m, d, Number(found[4]), Number(found[5]));
      }
    }
    out.textContent = text;
  }

  document.querySelectorAll("input[data-date-echo]").forEach(function (input) {
    echo(input);
    input.addEventListener("input", function () { echo(input); });
    input.addEventListener("change", function () { echo(input); });
  });
})();
