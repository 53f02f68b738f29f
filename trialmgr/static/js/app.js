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
