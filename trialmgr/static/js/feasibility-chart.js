// Feasibility trend: two line charts drawn from the JSON the page carries in
// <script type="application/json" id="trend-data"> (the table below the charts gives the
// same values as text). No inline script: the strict CSP allows only files from 'self'.
(function () {
  var source = document.getElementById("trend-data");
  if (!source || typeof Chart === "undefined") {
    return;
  }
  var data = JSON.parse(source.textContent);
  var colours = {
    recruitment_rate: "#0d6efd",
    screen_to_enrol_ratio: "#6f42c1",
    eligibility_rate: "#198754",
    consent_rate: "#20c997",
    retention: "#fd7e14",
    visit_adherence: "#dc3545",
    data_completeness: "#6c757d",
    sae_timeliness: "#b8860b",
  };

  function dataset(metric, scale) {
    return {
      label: data.names[metric],
      data: data.series[metric].map(function (v) {
        return v === null ? null : v * scale;
      }),
      borderColor: colours[metric],
      backgroundColor: colours[metric],
      spanGaps: true,
      tension: 0.1,
    };
  }

  function draw(id, metrics, scale, axisTitle, max) {
    var canvas = document.getElementById(id);
    if (!canvas) {
      return;
    }
    new Chart(canvas, {
      type: "line",
      data: {
        labels: data.labels,
        datasets: metrics.map(function (m) {
          return dataset(m, scale);
        }),
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        scales: {
          y: { beginAtZero: true, max: max, title: { display: true, text: axisTitle } },
        },
        plugins: { legend: { position: "bottom" } },
      },
    });
  }

  draw(
    "trend-proportions",
    ["eligibility_rate", "consent_rate", "retention", "visit_adherence", "data_completeness", "sae_timeliness"],
    100,
    "%",
    100
  );
  draw("trend-rates", ["recruitment_rate", "screen_to_enrol_ratio"], 1, "per site-month / screened per enrolled");
})();
