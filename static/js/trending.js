/* Trending: the five tables follow the form's controls without a page reload (the form still works without JS).
   The server renders the tables (/trending/tables/); this script only swaps them in. */
(function () {
  "use strict";
  var AD = window.AD;

  function query(form) {
    var params = new URLSearchParams(new FormData(form));
    if (!params.get("as_of")) params.delete("as_of");
    return params;
  }

  function load(form, url) {
    var params = query(form);
    form.setAttribute("aria-busy", "true");
    AD.getHTML(url, params).then(function (fresh) {
      var meta = document.getElementById("trending-meta");
      // The meta line stays the same element, so screen readers announce its new text.
      meta.replaceChildren.apply(meta, Array.from(fresh.getElementById("trending-meta").childNodes));
      document.getElementById("trending-tables").replaceWith(fresh.getElementById("trending-tables"));
      // The fresh tables used valid values: the fields' errors go, and so do the fields' references to them.
      form.querySelectorAll(".error").forEach(function (node) { node.remove(); });
      form.querySelectorAll("[aria-invalid]").forEach(function (field) {
        var described = field.getAttribute("aria-describedby").split(" ").filter(function (id) {
          return !id.endsWith("_error");
        });
        field.removeAttribute("aria-invalid");
        if (described.length) field.setAttribute("aria-describedby", described.join(" "));
        else field.removeAttribute("aria-describedby");
      });
      history.replaceState(null, "", "?" + params);
    }).catch(function (error) {
      AD.failed(document.getElementById("trending-meta"), error);
    }).finally(function () {
      form.removeAttribute("aria-busy");
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var data = AD.data("trending-data");
    var form = document.getElementById("trending-form");
    form.addEventListener("change", function () { load(form, data.tables_url); });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      load(form, data.tables_url);
    });
  });
})();
