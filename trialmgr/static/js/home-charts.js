// The consortium lead's home: enrolment against target per site and per cohort, as bar
// charts drawn from <script type="application/json" id="enrolment-data"> (the table below
// the charts gives the same numbers). No inline script: the CSP allows files from 'self'.
(function () {
  var source = document.getElementById("enrolment-data");
  if (!source || typeof Chart === "undefined") {
    return;
  }
  var data = JSON.parse(source.textContent);

  function draw(id, rows, valueLabel, targetLabel) {
    var canvas = document.getElementById(id);
    if (!canvas || !rows.length) {
      return;
    }
    new Chart(canvas, {
      type: "bar",
      data: {
        labels: rows.map(function (r) { return r.label; }),
        datasets: [
          { label: valueLabel, data: rows.map(function (r) { return r.value; }), backgroundColor: "#0d6efd" },
          { label: targetLabel, data: rows.map(function (r) { return r.target; }), backgroundColor: "#adb5bd" },
        ],
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
        plugins: { legend: { position: "bottom" } },
      },
    });
  }

  draw("enrolment-sites-chart", data.sites, "Enrolled", "Target");
  draw("enrolment-cohorts-chart", data.cohorts, "Filled", "Capacity");
})();
