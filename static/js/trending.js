/* Trending: the five tables follow the form's controls without a page reload (the form still works without JS). */
(function () {
  "use strict";
  var AD = window.AD;
  var KINDS = ["climbers", "fallers", "momentum", "new_entries", "streaks"];

  function meta(params, env) {
    var text = "Feed " + params.feed + ", " + params.window + "-day window. ";
    if (!env.date) return text + "No snapshot on or before this day.";
    return text + "Snapshot of " + env.date + (env.baseline_date ? ", compared with " + env.baseline_date : "") + ".";
  }

  function current(form) {
    var values = new FormData(form);
    return {
      feed: values.get("feed"), window: values.get("window"), limit: values.get("limit"), as_of: values.get("as_of") || "",
    };
  }

  function load(form, api) {
    var params = current(form);
    var common = { feed: params.feed, limit: params.limit, as_of: params.as_of };
    var windowed = Object.assign({ window: params.window }, common);
    var queries = {
      climbers: windowed, fallers: windowed, momentum: windowed, new_entries: common, streaks: common,
    };
    form.setAttribute("aria-busy", "true");
    Promise.all(KINDS.map(function (kind) { return AD.getJSON(api[kind], queries[kind]); })).then(function (answers) {
      answers.forEach(function (env, i) {
        AD.replace(document.getElementById("table-" + KINDS[i]), AD.trendTable(KINDS[i], env));
      });
      var metaLine = document.getElementById("trending-meta");
      metaLine.textContent = meta(params, answers[0]);
      form.querySelectorAll(".error").forEach(function (node) { node.remove(); });
      var query = new URLSearchParams(params);
      if (!params.as_of) query.delete("as_of");
      history.replaceState(null, "", "?" + query);
    }).catch(function (error) {
      AD.failed(document.getElementById("trending-meta"), error);
    }).finally(function () {
      form.removeAttribute("aria-busy");
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var data = AD.data("trending-data");
    var form = document.getElementById("trending-form");
    form.addEventListener("change", function () { load(form, data.api); });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      load(form, data.api);
    });
  });
})();
