// deviceupdate console: the little behaviour the pages need, kept out of
// the HTML so that the Content-Security-Policy forbids inline script.
(function () {
  "use strict";

  // The dashboard's chart: a bar per model, stacked by version, the
  // approved version outlined; a click lists the devices of that bar.
  var palette = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];
  function drawFleet(root) {
    var canvas = root.querySelector("#fleet-chart");
    var data = root.querySelector("#fleet-data");
    if (!canvas || !data || typeof Chart === "undefined" || canvas.dataset.drawn) {
      return;
    }
    canvas.dataset.drawn = "1";
    var d = JSON.parse(data.textContent);
    var datasets = d.versions.map(function (v, i) {
      return {
        label: v.version,
        data: v.counts,
        backgroundColor: palette[i % palette.length],
        borderColor: "#111",
        borderWidth: d.models.map(function (_, m) { return d.approved[m] === v.version ? 3 : 0; })
      };
    });
    var labels = d.models.map(function (m, i) { return d.approved[i] ? m + " (approved " + d.approved[i] + ")" : m; });
    new Chart(canvas, {
      type: "bar",
      data: { labels: labels, datasets: datasets },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } },
        plugins: { legend: { position: "bottom" } },
        onClick: function (evt, elements) {
          if (!elements.length) {
            return;
          }
          var el = elements[0];
          var q = new URLSearchParams({ key: d.keys[el.index], version: d.versions[el.datasetIndex].version });
          window.location.assign("/devices?" + q.toString());
        }
      }
    });
  }

  // The import form's progress bar follows htmx's upload progress.
  document.addEventListener("htmx:xhr:progress", function (evt) {
    var bar = document.getElementById("import-progress");
    if (!bar || !evt.detail || !evt.detail.lengthComputable) {
      return;
    }
    bar.hidden = false;
    bar.value = Math.round(evt.detail.loaded * 100 / evt.detail.total);
  });
  document.addEventListener("htmx:beforeRequest", function (evt) {
    var bar = document.getElementById("import-progress");
    if (bar && evt.detail.elt && evt.detail.elt.id === "import-form") {
      bar.hidden = false;
      bar.value = 0;
    }
  });

  document.addEventListener("DOMContentLoaded", function () { drawFleet(document); });
  document.addEventListener("htmx:load", function (evt) { drawFleet(evt.detail.elt); });
})();
