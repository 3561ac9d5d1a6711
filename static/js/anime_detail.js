/* Title detail: rank, score and members over time, one line per feed; the period control refetches. */
(function () {
  "use strict";
  var AD = window.AD;
  var METRICS = {
    rank: { label: "Rank", reverse: true, digits: 0 },
    score: { label: "Score", reverse: false, digits: 2 },
    members: { label: "Members", reverse: false, digits: 0 },
  };

  function days(feeds) {
    var all = {};
    Object.keys(feeds).forEach(function (feed) {
      feeds[feed].forEach(function (point) { all[point.taken_on] = true; });
    });
    return Object.keys(all).sort();
  }

  function series(points, labels, metric) {
    var byDay = {};
    points.forEach(function (point) { byDay[point.taken_on] = point[metric]; });
    return labels.map(function (day) { return day in byDay ? byDay[day] : null; });
  }

  function summary(metric, feed, values, labels) {
    var spec = METRICS[metric];
    var known = values.filter(function (v) { return v !== null; });
    if (!known.length) return feed + ": no " + spec.label.toLowerCase() + " recorded.";
    var best = spec.reverse ? Math.min.apply(null, known) : Math.max.apply(null, known);
    return feed + ": " + AD.number(known[0], spec.digits) + " → " + AD.number(known[known.length - 1], spec.digits) +
      " from " + labels[0] + " to " + labels[labels.length - 1] + " (best " + AD.number(best, spec.digits) + ")";
  }

  function draw(history) {
    var feeds = Object.keys(history.feeds);
    var labels = days(history.feeds);
    Object.keys(METRICS).forEach(function (metric) {
      var canvas = document.getElementById(metric + "-chart");
      if (!canvas) return;
      var spec = METRICS[metric];
      var datasets = feeds.map(function (feed, i) {
        return {
          label: feed, data: series(history.feeds[feed], labels, metric), spanGaps: true, tension: 0.2, pointRadius: 2,
          borderColor: AD.palette[i % AD.palette.length], backgroundColor: AD.palette[i % AD.palette.length],
        };
      });
      var lines = datasets.map(function (set) { return summary(metric, set.label, set.data, labels); });
      AD.chart(canvas, {
        type: "line",
        data: { labels: labels, datasets: datasets },
        options: {
          interaction: { mode: "index", intersect: false },
          scales: { x: { ticks: { maxRotation: 0, autoSkip: true, maxTicksLimit: 8 } }, y: { reverse: spec.reverse, title: { display: true, text: spec.label + (spec.reverse ? " (1 is best)" : "") } } },
        },
      }, "Line chart of " + history.title + "'s " + spec.label.toLowerCase() + " over " + labels.length + " days. " + lines.join(". ") + ".");
      document.getElementById(metric + "-summary").textContent = lines.join(". ") + ".";
      AD.replace(document.getElementById(metric + "-table"), AD.table(spec.label + " per day and feed", ["Day"].concat(feeds),
        labels.map(function (day, i) {
          return [day].concat(datasets.map(function (set) { return AD.number(set.data[i], spec.digits); }));
        })));
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var data = AD.data("anime-data");
    if (!window.Chart || !document.getElementById("rank-chart")) return;
    draw(data.history);
    document.getElementById("history-days").addEventListener("change", function (event) {
      AD.getJSON(data.api, { days: event.target.value }).then(draw).catch(function (error) {
        AD.failed(document.getElementById("rank-summary"), error);
      });
    });
  });
})();
