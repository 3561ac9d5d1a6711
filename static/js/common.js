/* AnimeDash: helpers every page script shares (window.AD). No inline scripts: data comes from json_script. */
(function () {
  "use strict";

  var AD = {};
  var NO_DATA_HTML =
    "<p><strong>No data yet.</strong> Take the first snapshot with <code>python manage.py etl run --all</code>, " +
    "or load a simulated history with <code>make demo</code>.</p>";

  AD.palette = ["#2e51a2", "#d1495b", "#0a7d38", "#e08e0b", "#6a1b9a", "#00838f", "#8d6e63", "#c2185b", "#5c6bc0", "#558b2f"];

  /* The JSON a json_script tag carries. */
  AD.data = function (id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  };

  /* A DOM element: AD.el("a", {href: "/"}, ["text", child]). */
  AD.el = function (tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") node.textContent = attrs[key];
      else if (attrs[key] !== null && attrs[key] !== undefined && attrs[key] !== false) node.setAttribute(key, attrs[key]);
    });
    (children || []).forEach(function (child) {
      if (child !== null && child !== undefined) node.append(child);
    });
    return node;
  };

  /* Answers this tab already holds, by URL: {etag, body}, oldest first, at most KEPT_MAX of them. */
  var KEPT_KEY = "animedash:answers";
  var KEPT_MAX = 40;

  function keptAnswers() {
    try {
      return JSON.parse(sessionStorage.getItem(KEPT_KEY)) || [];
    } catch (error) {
      return [];  // storage off, or full of something else: fetch plainly
    }
  }

  function keep(url, etag, body) {
    var answers = keptAnswers().filter(function (answer) { return answer.url !== url; });
    answers.push({ url: url, etag: etag, body: body });
    try {
      sessionStorage.setItem(KEPT_KEY, JSON.stringify(answers.slice(-KEPT_MAX)));
    } catch (error) {
      // storage off or full: the next request for this URL just fetches plainly
    }
  }

  /* GET `url`'s text, revalidating what this tab already holds: If-None-Match with its ETag, and a 304
     (no body) gives the kept text. The script sends the header itself, with the browser's HTTP cache
     off for the request ("no-store"), because a browser that revalidates on its own turns the 304 into
     a 200 the script cannot tell from a fresh answer. */
  function getText(url, accept) {
    var kept = keptAnswers().filter(function (answer) { return answer.url === url; })[0];
    var headers = { Accept: accept };
    if (kept) headers["If-None-Match"] = kept.etag;
    return fetch(url, { headers: headers, cache: "no-store" }).then(function (response) {
      if (response.status === 304 && kept) return kept.body;
      if (!response.ok) throw new Error("The server answered " + response.status + " for " + url);
      return response.text().then(function (body) {
        var etag = response.headers.get("ETag");
        if (etag) keep(url, etag, body);
        return body;
      });
    });
  }

  /* GET the JSON API; empty parameters are left out so the API applies its defaults. */
  AD.getJSON = function (url, params) {
    var query = new URLSearchParams();
    Object.keys(params || {}).forEach(function (key) {
      var value = params[key];
      if (value !== null && value !== undefined && value !== "") query.set(key, value);
    });
    return getText(url + (query.toString() ? "?" + query : ""), "application/json").then(JSON.parse);
  };

  /* GET a server-rendered fragment (our own markup) as a DocumentFragment to take elements from. */
  AD.getHTML = function (url, params) {
    return getText(url + "?" + new URLSearchParams(params), "text/html").then(function (html) {
      var template = document.createElement("template");
      template.innerHTML = html;
      return template.content;
    });
  };

  /* Axis ticks: whole numbers only (ranks, counts), or a score's two decimals. */
  AD.ticks = function (digits) {
    var ticks = { precision: digits };
    if (digits) ticks.callback = function (value) { return Number(value).toFixed(digits); };
    return ticks;
  };

  /* Every calendar day from the first point's day to the last one's, so a day without data is a gap. */
  AD.calendar = function (points) {
    if (!points.length) return [];
    var day = new Date(points[0].taken_on + "T00:00:00Z");
    var last = new Date(points[points.length - 1].taken_on + "T00:00:00Z");
    var days = [];
    for (; day <= last; day.setUTCDate(day.getUTCDate() + 1)) days.push(day.toISOString().slice(0, 10));
    return days;
  };

  /* `points[].key` on each of `days`, null where no point was recorded that day. */
  AD.onDays = function (points, days, key) {
    var byDay = {};
    points.forEach(function (point) { byDay[point.taken_on] = point[key]; });
    return days.map(function (day) { return day in byDay ? byDay[day] : null; });
  };

  AD.number = function (value, digits) {
    if (value === null || value === undefined || value === "") return "–";
    return Number(value).toLocaleString("en-US", { maximumFractionDigits: digits === undefined ? 2 : digits });
  };

  AD.animeUrl = function (malId) {
    return document.body.dataset.animeUrl.replace("/0/", "/" + malId + "/");
  };

  AD.emptyState = function (message) {
    var box = AD.el("div", { class: "empty", role: "status" });
    if (message === null) box.innerHTML = NO_DATA_HTML;
    else box.append(AD.el("p", { text: message }));
    return box;
  };

  AD.isNoData = function (env) {
    return Boolean(env && env.insufficient_history && env.insufficient_history.have_days === 0);
  };

  function num(content) {
    return AD.el("td", { class: "num", text: content === null || content === undefined ? "–" : String(content) });
  }

  /* A plain data table (the visible alternative to a chart). */
  AD.table = function (caption, columns, rows) {
    var head = AD.el("tr", {}, columns.map(function (column, i) {
      return AD.el("th", { scope: "col", class: i ? "num" : null, text: column });
    }));
    var body = AD.el("tbody", {}, rows.map(function (row) {
      return AD.el("tr", {}, row.map(function (cell, i) {
        return i ? num(cell) : AD.el("th", { scope: "row", text: String(cell) });
      }));
    }));
    return AD.el("table", { class: "data" }, [AD.el("caption", { class: "vh", text: caption }), AD.el("thead", {}, [head]), body]);
  };

  AD.replace = function (container, child) {
    container.replaceChildren(child);
  };

  /* Draw (or redraw) a chart on a canvas, and describe it for screen readers. */
  AD.chart = function (canvas, config, label) {
    var existing = window.Chart.getChart(canvas);
    if (existing) existing.destroy();
    if (label) canvas.setAttribute("aria-label", label);
    return new window.Chart(canvas, config);
  };

  AD.setupCharts = function () {
    if (!window.Chart) return;
    var defaults = window.Chart.defaults;
    defaults.font.family = getComputedStyle(document.body).fontFamily;
    defaults.color = "#555b6e";
    defaults.maintainAspectRatio = false;
    // Straight lines that stop where nothing was recorded: a line never shows a value that was not measured.
    defaults.datasets.line.tension = 0;
    defaults.datasets.line.spanGaps = false;
    if (window.matchMedia("(prefers-reduced-motion: reduce)").matches) defaults.animation = false;
    else defaults.animation.duration = 300;
  };

  /* Tabs: click or arrow keys move the selection; only the selected tab is in the tab order. */
  AD.tabs = function (tablist) {
    var tabs = Array.prototype.slice.call(tablist.querySelectorAll('[role="tab"]'));
    function select(tab, focus) {
      tabs.forEach(function (other) {
        var selected = other === tab;
        other.setAttribute("aria-selected", String(selected));
        other.tabIndex = selected ? 0 : -1;
        document.getElementById(other.getAttribute("aria-controls")).hidden = !selected;
      });
      if (focus) tab.focus();
    }
    tabs.forEach(function (tab, i) {
      tab.addEventListener("click", function () { select(tab, false); });
      tab.addEventListener("keydown", function (event) {
        var next = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[event.key];
        if (next === undefined) return;
        event.preventDefault();
        select(tabs[(next + tabs.length) % tabs.length], true);
      });
    });
    tablist.parentElement.classList.add("js-tabs");
    select(tabs.filter(function (t) { return t.getAttribute("aria-selected") === "true"; })[0] || tabs[0], false);
  };

  /* Cover images: when one cannot load (offline, blocked), the placeholder under it shows. */
  function covers() {
    document.querySelectorAll("[data-cover-img]").forEach(function (img) {
      var cover = img.closest("[data-cover]");
      function failed() { cover.classList.add("cover-failed"); }
      if (img.complete && !img.naturalWidth) failed();
      else img.addEventListener("error", failed);
    });
  }

  /* A message where a fetch failed, instead of a silently stale chart. */
  AD.failed = function (container, error) {
    AD.replace(container, AD.emptyState("Could not load this data (" + error.message + "). Try again in a moment."));
  };

  window.AD = AD;
  document.addEventListener("DOMContentLoaded", function () {
    covers();
    AD.setupCharts();
  });
})();
