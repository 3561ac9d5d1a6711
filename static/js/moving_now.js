/* "Moving now" refreshes itself when a new snapshot commits: while the tab is visible it asks for the data
   version every minute (a 304 while nothing changed) and, when it moves, swaps in the widget anew. */
(function () {
  "use strict";
  var section = document.getElementById("moving-section");
  if (!section) return;
  var EVERY_MS = 60 * 1000;
  var etag = null;

  async function check() {
    if (document.visibilityState !== "visible") return;
    var headers = etag ? { "If-None-Match": etag } : {};
    var response = await fetch(section.dataset.versionUrl, { headers: headers, cache: "no-store" });
    if (response.status === 304) return;
    if (!response.ok) return;
    var seen = etag;
    etag = response.headers.get("ETag");
    if (seen === null) return; // the first answer: the page already shows this version
    var fresh = await fetch(section.dataset.movingUrl, { cache: "no-store" });
    if (!fresh.ok) return;
    var holder = document.createElement("div");
    holder.innerHTML = await fresh.text();
    var widget = holder.querySelector("#moving-now");
    if (widget) document.getElementById("moving-now").replaceWith(widget);
  }

  check();
  setInterval(function () { check().catch(function () {}); }, EVERY_MS);
  document.addEventListener("visibilitychange", function () { check().catch(function () {}); });
})();
