// Charts of the safety dashboard and the efficacy pages (Chart.js, vendored).
// Each <canvas data-chart="kind" data-chart-data='{...}'> is drawn from its data attribute;
// the table next to it holds the same numbers (the chart's text alternative).
(function () {
  "use strict";
  if (!window.Chart) {
    return;
  }
  // Drawn at once: no motion (prefers-reduced-motion), and a print or screenshot shows the data.
  window.Chart.defaults.animation = false;
  var palette = ["#0d6efd", "#dc3545", "#198754", "#fd7e14", "#6f42c1", "#20c997", "#6c757d", "#d63384"];

  function colour(i, alpha) {
    var hex = palette[i % palette.length];
    if (alpha === undefined) {
      return hex;
    }
    var n = parseInt(hex.slice(1), 16);
    return "rgba(" + (n >> 16) + "," + ((n >> 8) & 255) + "," + (n & 255) + "," + alpha + ")";
  }

  function studyDayAxis() {
    return { type: "linear", title: { display: true, text: "Study day (dosing day 0)" } };
  }

  var builders = {
    // AE counts by grade, one bar per cohort.
    grades: function (data) {
      return {
        type: "bar",
        data: {
          labels: data.labels,
          datasets: data.datasets.map(function (d, i) {
            return { label: d.label, data: d.data, backgroundColor: colour(i, 0.8) };
          })
        },
        options: {
          maintainAspectRatio: false,
          scales: { y: { beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: "Events" } } }
        }
      };
    },
    // Multiples of the ULN over study days, one line per subject or analyte.
    uln: function (data) {
      return {
        type: "line",
        data: {
          datasets: data.datasets.map(function (d, i) {
            return { label: d.label, data: d.data, borderColor: colour(i), backgroundColor: colour(i), tension: 0.1 };
          })
        },
        options: {
          maintainAspectRatio: false,
          scales: { x: studyDayAxis(), y: { beginAtZero: true, title: { display: true, text: "× ULN" } } }
        }
      };
    },
    // Per cohort: the median at each timepoint, with the min-max band shaded.
    "efficacy-cohort": function (data) {
      var datasets = [];
      data.cohorts.forEach(function (c, i) {
        datasets.push({ label: c.label + " min", data: c.min, borderWidth: 0, pointRadius: 0, fill: false, spanGaps: true, band: true });
        datasets.push({ label: c.label + " range", data: c.max, borderWidth: 0, pointRadius: 0, fill: "-1", backgroundColor: colour(i, 0.15), spanGaps: true, band: true });
        datasets.push({ label: c.label + " median", data: c.median, borderColor: colour(i), backgroundColor: colour(i), spanGaps: true });
      });
      return {
        type: "line",
        data: { labels: data.labels, datasets: datasets },
        options: {
          maintainAspectRatio: false,
          plugins: { legend: { labels: { filter: function (item, chart) { return !chart.datasets[item.datasetIndex].band; } } } },
          scales: { y: { title: { display: true, text: data.unit || "" } } }
        }
      };
    },
    // One subject: the value and its change from baseline over study days.
    "efficacy-subject": function (data) {
      return {
        type: "line",
        data: {
          datasets: [
            { label: "Value (" + data.unit + ")", data: data.value, borderColor: colour(0), backgroundColor: colour(0), yAxisID: "y" },
            { label: "Change from baseline", data: data.change, borderColor: colour(3), backgroundColor: colour(3), borderDash: [6, 4], yAxisID: "y1" }
          ]
        },
        options: {
          maintainAspectRatio: false,
          scales: {
            x: studyDayAxis(),
            y: { position: "left", title: { display: true, text: data.unit } },
            y1: { position: "right", grid: { drawOnChartArea: false }, title: { display: true, text: "Change" } }
          }
        }
      };
    }
  };

  document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
    var build = builders[canvas.getAttribute("data-chart")];
    if (!build) {
      return;
    }
    new window.Chart(canvas, build(JSON.parse(canvas.getAttribute("data-chart-data"))));
  });
})();
