/* A person's stats: status bar, genre bar, score doughnut and activity line. The page's tables hold the same numbers. */
(function () {
  "use strict";
  var AD = window.AD;
  var data = AD.data("stats-data");
  if (!data || !window.Chart) return;
  AD.setupCharts();
  var $ = function (id) { return document.getElementById(id); };
  var labels = function (rows) { return rows.map(function (r) { return r[0]; }); };
  var values = function (rows, i) { return rows.map(function (r) { return r[i || 1]; }); };
  var whole = { y: { beginAtZero: true, ticks: AD.ticks(0) } };

  AD.chart($("status-chart"), {
    type: "bar",
    data: { labels: labels(data.statuses), datasets: [{ label: "Titles", data: values(data.statuses), backgroundColor: AD.palette[0] }] },
    options: { plugins: { legend: { display: false } }, scales: whole },
  });
  AD.chart($("genre-chart"), {
    type: "bar",
    data: { labels: labels(data.genres), datasets: [{ label: "Titles", data: values(data.genres), backgroundColor: AD.palette[1] }] },
    options: { indexAxis: "y", plugins: { legend: { display: false } }, scales: { x: { beginAtZero: true, ticks: AD.ticks(0) } } },
  });
  var scored = data.scores.filter(function (r) { return r[1] > 0; });
  AD.chart($("score-chart"), {
    type: "doughnut",
    data: { labels: labels(scored), datasets: [{ label: "Titles", data: values(scored), backgroundColor: AD.palette }] },
  });
  AD.chart($("activity-chart"), {
    type: "line",
    data: {
      labels: labels(data.activity),
      datasets: [
        { label: "Changes", data: values(data.activity, 1), borderColor: AD.palette[0], backgroundColor: AD.palette[0] },
        { label: "Episodes", data: values(data.activity, 2), borderColor: AD.palette[2], backgroundColor: AD.palette[2] },
      ],
    },
    options: { scales: whole },
  });
})();
