/* Title detail: the title's own numbers once per day, and its feed rank in each feed; the period control refetches.
   Every calendar day from the first to the last point is on the x axis, so a day without a snapshot is a gap. */
(function () {
  "use strict";
  var AD = window.AD;
  // The title's numbers (history.days): one chart each, a second number on its own axis.
  var CHARTS = {
    score: { words: "score", digits: 2, lines: [{ key: "score", label: "Score", axis: "y" }] },
    ranks: {
      words: "MAL rank and popularity", digits: 0, reverse: true,
      lines: [{ key: "rank", label: "MAL rank", axis: "y" }, { key: "popularity", label: "Popularity", axis: "y1" }],
    },
    audience: {
      words: "members and favorites", digits: 0,
      lines: [{ key: "members", label: "Members", axis: "y" }, { key: "favorites", label: "Favorites", axis: "y1" }],
    },
  };
  var FEEDS = { digits: 0, reverse: true, title: "Feed rank" };

  function format(value, digits) {
    if (value === null || value === undefined) return "–";
    return digits ? Number(value).toFixed(digits) : AD.number(value, 0);
  }

  function summary(spec, set, labels) {
    var known = set.data.filter(function (v) { return v !== null; });
    if (!known.length) return set.label + ": none recorded.";
    var best = spec.reverse ? Math.min.apply(null, known) : Math.max.apply(null, known);
    return set.label + ": " + format(known[0], spec.digits) + " → " + format(known[known.length - 1], spec.digits) +
      " from " + labels[0] + " to " + labels[labels.length - 1] + " (best " + format(best, spec.digits) + ")";
  }

  function scales(spec, datasets) {
    var axes = { x: { ticks: { maxRotation: 0, autoSkip: true, maxTicksLimit: 8 } } };
    datasets.forEach(function (set) {
      if (axes[set.yAxisID]) return;
      var first = set.yAxisID === "y";
      axes[set.yAxisID] = {
        position: first ? "left" : "right",
        reverse: Boolean(spec.reverse),
        ticks: AD.ticks(spec.digits),
        grid: { drawOnChartArea: first },
        title: { display: true, text: (spec.title || set.label) + (spec.reverse ? " (1 is best)" : "") },
      };
    });
    return axes;
  }

  function drawChart(name, spec, datasets, labels, title) {
    var canvas = document.getElementById(name + "-chart");
    datasets.forEach(function (set, i) {
      var colour = AD.palette[i % AD.palette.length];
      set.borderColor = set.backgroundColor = colour;
      set.pointRadius = 2;
    });
    var lines = datasets.map(function (set) { return summary(spec, set, labels); });
    AD.chart(canvas, {
      type: "line",
      data: { labels: labels, datasets: datasets },
      options: {
        interaction: { mode: "index", intersect: false },
        scales: scales(spec, datasets),
        plugins: {
          tooltip: {
            callbacks: {
              label: function (item) { return item.dataset.label + ": " + format(item.raw, spec.digits); },
            },
          },
        },
      },
    }, "Line chart of " + title + " over " + labels.length + " days. " + lines.join(". ") + ".");
    document.getElementById(name + "-summary").textContent = lines.join(". ") + ".";
    var columns = ["Day"].concat(datasets.map(function (set) { return set.label; }));
    AD.replace(document.getElementById(name + "-table"), AD.table(title + " per day", columns,
      labels.map(function (day, i) {
        return [day].concat(datasets.map(function (set) { return format(set.data[i], spec.digits); }));
      })));
  }

  /* Per feed, its feed rank; where that is not the position (top, popular), the position too, dashed. */
  function feedLines(history, labels, rankLabels) {
    var sets = [];
    Object.keys(history.feeds).forEach(function (feed) {
      var points = history.feeds[feed];
      var rankBy = history.rank_by[feed];
      sets.push({ label: feed + " (" + rankLabels[rankBy] + ")", yAxisID: "y", data: AD.onDays(points, labels, "feed_rank") });
      if (rankBy !== "position") {
        sets.push({ label: feed + " (position)", yAxisID: "y", borderDash: [4, 3], data: AD.onDays(points, labels, "position") });
      }
    });
    return sets;
  }

  function draw(history, rankLabels) {
    var labels = AD.calendar(history.days);
    Object.keys(CHARTS).forEach(function (name) {
      var spec = CHARTS[name];
      var datasets = spec.lines.map(function (line) {
        return { label: line.label, yAxisID: line.axis, data: AD.onDays(history.days, labels, line.key) };
      });
      drawChart(name, spec, datasets, labels, history.title + "'s " + spec.words);
    });
    drawChart("feeds", FEEDS, feedLines(history, labels, rankLabels), labels, history.title + "'s feed ranks");
  }

  document.addEventListener("DOMContentLoaded", function () {
    var data = AD.data("anime-data");
    if (!window.Chart || !document.getElementById("score-chart")) return;
    draw(data.history, data.rank_labels);
    document.getElementById("history-days").addEventListener("change", function (event) {
      AD.getJSON(data.api, { days: event.target.value }).then(function (history) {
        draw(history, data.rank_labels);
      }).catch(function (error) {
        AD.failed(document.getElementById("score-summary"), error);
      });
    });
  });
})();
