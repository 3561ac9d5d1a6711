/* Dashboard: top 10, genre distribution and seasonal trends charts, and the trending widget's tabs. */
(function () {
  "use strict";
  var AD = window.AD;
  var $ = function (id) { return document.getElementById(id); };

  var GENRE_METRICS = {
    count: { label: "Titles", unit: "", help: "Number of titles in the snapshot that have this genre." },
    coverage: { label: "Coverage %", unit: " %", help: "Coverage: share of the snapshot's titles that have this genre (a title has several, so coverages add up to more than 100 %)." },
    frequency: { label: "Frequency %", unit: " %", help: "Frequency: share of all genre tags in the snapshot that are this genre (frequencies add up to 100 %)." },
  };
  var SEASON_METRICS = {
    mean_score: { label: "Mean score", digits: 2 },
    volume: { label: "Volume (titles)", digits: 0 },
    mean_members: { label: "Mean members", digits: 0 },
    mean_popularity: { label: "Mean popularity rank", digits: 0, reverse: true },
    total_favorites: { label: "Total favorites", digits: 0 },
  };

  function snapshotMeta(env) {
    return env.date ? "Snapshot of " + env.date + "." : "";
  }

  function short(text) {
    return text.length > 28 ? text.slice(0, 27) + "…" : text;
  }

  function lowest(rows) {
    var scores = rows.map(function (r) { return r.score; }).filter(function (v) { return v !== null; });
    return scores.length ? Math.max(0, Math.floor(Math.min.apply(null, scores) * 2) / 2 - 0.5) : 0;
  }

  /* Top 10 */
  function drawTop(env) {
    var rows = env.results;
    $("top-meta").textContent = snapshotMeta(env);
    AD.chart($("top-chart"), {
      type: "bar",
      data: {
        labels: rows.map(function (r) { return short(r.title); }),
        datasets: [{ label: "Score", data: rows.map(function (r) { return r.score; }), backgroundColor: AD.palette[0] }],
      },
      options: {
        indexAxis: "y",
        plugins: { legend: { display: false }, tooltip: { callbacks: { title: function (items) { return rows[items[0].dataIndex].title; } } } },
        // Top scores sit within a point of each other; an axis from 0 would hide every difference.
        scales: { x: { title: { display: true, text: "Score" }, beginAtZero: false, min: lowest(rows), ticks: AD.ticks(2) } },
        onClick: function (event, elements) {
          if (elements.length) window.location.href = AD.animeUrl(rows[elements[0].index].mal_id);
        },
      },
    }, rows.length
      ? "Bar chart of the top " + rows.length + " titles by score, from " + rows[0].title + " (" + rows[0].score + "); the table below lists the same data."
      : "Empty chart: no titles in this snapshot.");
  }

  /* Genres */
  var genre = { env: null };

  function drawGenres() {
    var env = genre.env;
    var metric = $("genre-metric").value;
    var type = $("genre-type").value;
    var spec = GENRE_METRICS[metric];
    var rows = env.results;
    var kind = $("genre-kind").value;
    $("genre-meta").textContent = snapshotMeta(env);
    $("genre-empty").replaceChildren();
    if (!rows.length) {
      $("genre-empty").append(AD.emptyState(AD.isNoData(env) ? null : "No " + kind + " are recorded for this snapshot."));
    }
    var values = rows.map(function (r) { return r[metric]; });
    var colors = rows.map(function (r, i) { return AD.palette[i % AD.palette.length]; });
    AD.chart($("genre-chart"), {
      type: type,
      data: {
        labels: rows.map(function (r) { return r.name; }),
        datasets: [{ label: spec.label, data: values, backgroundColor: type === "pie" ? colors : AD.palette[0] }],
      },
      options: {
        plugins: {
          legend: { display: type === "pie", position: "right" },
          tooltip: {
            callbacks: {
              label: function (item) {
                var r = rows[item.dataIndex];
                return r.name + ": " + r.count + " titles · coverage " + r.coverage + " % · frequency " + r.frequency + " %";
              },
              footer: function () { return [GENRE_METRICS.coverage.help, GENRE_METRICS.frequency.help]; },
            },
          },
        },
        scales: type === "pie" ? {} : { y: { beginAtZero: true, title: { display: true, text: spec.label } } },
      },
    }, rows.length
      ? (type === "pie" ? "Pie" : "Bar") + " chart of " + spec.label.toLowerCase() + " per " + kind.replace(/s$/, "") + ", " + rows.length + " in all; the data table below lists them."
      : "Empty chart: nothing recorded.");
    $("genre-summary").textContent = rows.length
      ? rows.length + " " + kind + ". Most common: " + rows.slice(0, 3).map(function (r) { return r.name + " (" + AD.number(r[metric]) + spec.unit + ")"; }).join(", ") + ". " + spec.help
      : "";
    AD.replace($("genre-table"), AD.table("Genre distribution", ["Name", "Titles", "Coverage %", "Frequency %"],
      rows.map(function (r) { return [r.name, r.count, r.coverage, r.frequency]; })));
  }

  function loadGenres() {
    var params = { feed: $("genre-feed").value, kind: $("genre-kind").value };
    AD.getJSON(data.api.genres, params).then(function (env) {
      genre.env = env;
      drawGenres();
    }).catch(function (error) { AD.failed($("genre-empty"), error); });
  }

  /* Seasons */
  var season = { answer: null };

  var SEASONS = ["winter", "spring", "summer", "fall"];

  function seasonLabel(row) {
    return row.year + " " + row.season.charAt(0).toUpperCase() + row.season.slice(1);
  }

  /* Every season from the first row's to the last row's, each with its row or null: a season without one
     (no title, or too few to show) is a gap in the line, not a line drawn across it. */
  function seasonSlots(rows) {
    function ordinal(row) { return row.year * SEASONS.length + SEASONS.indexOf(row.season); }
    // Seasons are MAL's four; a name typed otherwise in the admin gets no calendar place: rows as they come.
    if (!rows.length || rows.some(function (row) { return SEASONS.indexOf(row.season) < 0; })) {
      return rows.map(function (row) { return { label: seasonLabel(row), row: row }; });
    }
    var byOrdinal = {};
    rows.forEach(function (row) { byOrdinal[ordinal(row)] = row; });
    var slots = [];
    for (var n = ordinal(rows[0]); n <= ordinal(rows[rows.length - 1]); n++) {
      var season = { year: Math.floor(n / SEASONS.length), season: SEASONS[n % SEASONS.length] };
      slots.push({ label: seasonLabel(season), row: byOrdinal[n] || null });
    }
    return slots;
  }

  function hiddenNote(answer) {
    var hidden = answer.hidden_small_seasons;
    if (!hidden) return "";
    return " " + hidden + " season" + (hidden === 1 ? "" : "s") + " with fewer than " + answer.min_volume +
      " titles " + (hidden === 1 ? "is" : "are") + " not shown.";
  }

  function drawSeasons() {
    var answer = season.answer;
    var rows = answer.results;
    var slots = seasonSlots(rows);
    var metric = $("season-metric").value;
    var second = $("season-metric2").value;
    var type = $("season-type").value;
    var metrics = second && second !== metric ? [metric, second] : [metric];
    var scales = {};
    var datasets = metrics.map(function (name, i) {
      var spec = SEASON_METRICS[name];
      var axis = i ? "y1" : "y";
      scales[axis] = {
        position: i ? "right" : "left",
        reverse: Boolean(spec.reverse),
        title: { display: true, text: spec.label + (spec.reverse ? " (lower is more popular)" : "") },
        grid: { drawOnChartArea: !i },
        ticks: AD.ticks(spec.digits),
      };
      return {
        label: spec.label, yAxisID: axis, data: slots.map(function (slot) { return slot.row ? slot.row[name] : null; }),
        borderColor: AD.palette[i ? 1 : 0], backgroundColor: AD.palette[i ? 1 : 0],
      };
    });
    $("season-meta").textContent = "Seasons " + answer.from_year + "–" + answer.to_year + ", over every title known (by the season it aired); a season needs at least " + answer.min_volume + " titles to be shown.";
    $("season-empty").replaceChildren();
    if (!rows.length) {
      $("season-empty").append(AD.emptyState(answer.hidden_small_seasons
        ? "No season of " + answer.from_year + "–" + answer.to_year + " has " + answer.min_volume + " titles or more." + hiddenNote(answer) + " Choose a wider range."
        : "No titles aired in a season of " + answer.from_year + "–" + answer.to_year + ". Choose a wider range."));
    }
    var names = metrics.map(function (m) { return SEASON_METRICS[m].label.toLowerCase(); }).join(" and ");
    AD.chart($("season-chart"), {
      type: type,
      data: { labels: slots.map(function (slot) { return slot.label; }), datasets: datasets },
      options: {
        interaction: { mode: "index", intersect: false },
        scales: scales,
        plugins: {
          tooltip: {
            callbacks: {
              footer: function (items) {
                var row = items.length && slots[items[0].dataIndex].row;
                return row ? row.volume + " title" + (row.volume === 1 ? "" : "s") + " this season" : "";
              },
            },
          },
        },
      },
    }, (type === "line" ? "Line" : "Bar") + " chart of " + names + " per season, " + rows.length + " seasons from " + answer.from_year + " to " + answer.to_year + "; the data table below lists them.");
    var spec = SEASON_METRICS[metric];
    var best = rows.filter(function (r) { return r[metric] !== null; }).sort(function (a, b) {
      return spec.reverse ? a[metric] - b[metric] : b[metric] - a[metric];
    })[0];
    $("season-summary").textContent = rows.length
      ? rows.length + " seasons. " + (best ? "Highest " + spec.label.toLowerCase() + ": " + seasonLabel(best) + " (" + (spec.digits ? best[metric].toFixed(spec.digits) : AD.number(best[metric], 0)) + ", " + best.volume + " titles)." : "") + hiddenNote(answer)
      : hiddenNote(answer).trim();
    AD.replace($("season-table"), AD.table("Seasonal trends", ["Season", "Volume", "Mean score", "Mean members", "Mean popularity rank", "Total favorites"],
      rows.map(function (r) { return [seasonLabel(r), r.volume, r.mean_score, AD.number(r.mean_members, 0), AD.number(r.mean_popularity, 0), r.total_favorites]; })));
  }

  function loadSeasons(fromYear, toYear) {
    AD.getJSON(data.api.seasons, { from_year: fromYear, to_year: toYear }).then(function (answer) {
      season.answer = answer;
      drawSeasons();
    }).catch(function (error) { AD.failed($("season-empty"), error); });
  }

  function seasonRange() {
    var range = $("season-range").value;
    $("season-custom").hidden = range !== "custom";
    if (range === "custom") return;
    loadSeasons(season.thisYear - Number(range) + 1, season.thisYear);
  }

  function applyCustomRange() {
    var from = Number($("season-from").value);
    var to = Number($("season-to").value);
    if (!from || !to || from > to) {
      AD.replace($("season-empty"), AD.emptyState("Enter a From year that is not after the To year."));
      return;
    }
    loadSeasons(from, to);
  }

  var data;
  document.addEventListener("DOMContentLoaded", function () {
    data = AD.data("dashboard-data");
    AD.tabs(document.querySelector("#trending-widget [role=tablist]"));
    if (!window.Chart) return;
    drawTop(data.top);
    $("top-feed").addEventListener("change", function () {
      var feed = $("top-feed").value;
      // The chart is drawn here from the JSON answer; the table is the server's own markup.
      AD.getJSON(data.api["top-rated"], { feed: feed, limit: data.top_rows }).then(drawTop)
        .catch(function (error) { AD.failed($("top-table"), error); });
      AD.getHTML(data.top_table_url, { feed: feed }).then(function (fragment) {
        $("top-table").replaceChildren(fragment);
      }).catch(function (error) { AD.failed($("top-table"), error); });
    });

    genre.env = data.genres;
    drawGenres();
    $("genre-metric").addEventListener("change", drawGenres);
    $("genre-type").addEventListener("change", drawGenres);
    $("genre-feed").addEventListener("change", loadGenres);
    $("genre-kind").addEventListener("change", loadGenres);

    season.answer = data.seasons;
    // The server's default range ends in the current year (of its clock, in UTC).
    season.thisYear = data.seasons.to_year;
    if (data.season_years.first) {
      $("season-from").min = $("season-to").min = data.season_years.first;
    }
    drawSeasons();
    ["season-metric", "season-metric2", "season-type"].forEach(function (id) { $(id).addEventListener("change", drawSeasons); });
    $("season-range").addEventListener("change", seasonRange);
    $("season-apply").addEventListener("click", applyCustomRange);
  });
})();
