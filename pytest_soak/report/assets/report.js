/* pytest-soak HTML report: draws the charts from the JSON block #soak-data with uPlot.
   Texts reach the page through textContent only (uPlot does the same for its legends). */
(function () {
  "use strict";
  var PHASE_TINTS = ["#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#edc948", "#76b7b2", "#ff9da7", "#9c755f"];
  var SERIES = {
    memory: ["#1f5fbf", "#d62728", "#222222"],
    bars: ["#8c8c8c", "#2ca02c", "#ff7f0e", "#9467bd"]
  };

  function bytes(v) {
    if (v == null) return "";
    var units = ["B", "KiB", "MiB", "GiB", "TiB"], a = Math.abs(v), i = 0;
    while (a >= 1024 && i < units.length - 1) { a /= 1024; i++; }
    return (v < 0 ? "-" : "") + (i === 0 ? a.toFixed(0) : a.toFixed(a < 10 ? 2 : 1)) + " " + units[i];
  }

  function plain(v) { return v == null ? "" : (Math.abs(v) < 10 ? v.toFixed(2) : Math.round(v).toLocaleString("en")); }

  function tint(hex, alpha) {
    var n = parseInt(hex.slice(1), 16);
    return "rgba(" + (n >> 16) + "," + ((n >> 8) & 255) + "," + (n & 255) + "," + alpha + ")";
  }

  function width(el) { return Math.max(360, Math.min(1100, el.clientWidth || 900)); }

  function showError(el, err) {
    var p = document.createElement("p");
    p.className = "chart-error";
    p.textContent = "this chart could not be drawn: " + err;
    el.appendChild(p);
  }

  /* Background: the phases as tints, cycle ends as dashed lines with their numbers, the
     warm-up greyed. Drawn under the grid and the series. */
  function backgrounds(chart) {
    return function (u) {
      var ctx = u.ctx, top = u.bbox.top, h = u.bbox.height;
      ctx.save();
      chart.phaseSpans.forEach(function (s) {
        var x0 = u.valToPos(s.from, "x", true), x1 = u.valToPos(s.to, "x", true);
        ctx.fillStyle = tint(PHASE_TINTS[s.phase % PHASE_TINTS.length], 0.13);
        ctx.fillRect(x0, top, Math.max(1, x1 - x0), h);
      });
      ctx.font = Math.round(10 * devicePixelRatio) + "px sans-serif";
      chart.cycles.forEach(function (c) {
        var x0 = u.valToPos(c.from, "x", true), x1 = u.valToPos(c.to, "x", true);
        if (c.kind === "warm-up") {
          ctx.fillStyle = "rgba(120,120,120,0.22)";
          ctx.fillRect(x0, top, Math.max(1, x1 - x0), h);
        }
        ctx.strokeStyle = "rgba(60,60,60,0.55)";
        ctx.setLineDash([4 * devicePixelRatio, 4 * devicePixelRatio]);
        ctx.beginPath(); ctx.moveTo(x1, top); ctx.lineTo(x1, top + h); ctx.stroke();
        ctx.fillStyle = "#333";
        var name = c.kind === "warm-up" ? "warm-up" : (c.kind === "extra" ? c.number + "+" : String(c.number));
        if (x1 - x0 > 14 * devicePixelRatio) ctx.fillText(name, x0 + 3 * devicePixelRatio, top + 12 * devicePixelRatio);
      });
      ctx.restore();
    };
  }

  function phaseLegend(el, chart) {
    var used = {};
    chart.phaseSpans.forEach(function (s) { used[s.phase] = true; });
    var box = document.createElement("div");
    box.className = "phase-legend";
    chart.phases.forEach(function (name, i) {
      if (!used[i]) return;
      var item = document.createElement("span"), swatch = document.createElement("i");
      swatch.style.background = tint(PHASE_TINTS[i % PHASE_TINTS.length], 0.35);
      item.appendChild(swatch);
      item.appendChild(document.createTextNode(name));
      box.appendChild(item);
    });
    var warm = document.createElement("span"), grey = document.createElement("i");
    grey.style.background = "rgba(120,120,120,0.4)";
    warm.appendChild(grey);
    warm.appendChild(document.createTextNode("warm-up cycle (not judged)"));
    box.appendChild(warm);
    el.appendChild(box);
  }

  function memoryChart(el, chart) {
    var fmt = chart.unit === "bytes" ? bytes : plain;
    var colors = SERIES.memory;
    var opts = {
      width: width(el), height: 320,
      scales: { x: { time: false } },
      axes: [
        { label: "seconds into the run" },
        { size: 80, values: function (u, vals) { return vals.map(fmt); } }
      ],
      series: [
        { label: "t (s)", value: function (u, v) { return v == null ? "" : v.toFixed(1) + " s"; } },
        { label: chart.series[0].label, stroke: colors[0], width: 1.5, spanGaps: true,
          points: { show: false }, value: function (u, v) { return fmt(v); } },
        { label: chart.series[1].label, stroke: colors[1], width: 0, paths: function () { return null; },
          points: { show: true, size: 7, fill: colors[1], stroke: colors[1] }, value: function (u, v) { return fmt(v); } },
        { label: chart.series[2].label, stroke: colors[2], width: 2, dash: [8, 4], spanGaps: true,
          points: { show: false }, value: function (u, v) { return fmt(v); } }
      ],
      hooks: { drawClear: [backgrounds(chart)] }
    };
    var data = [chart.x].concat(chart.series.map(function (s) { return s.values; }));
    new uPlot(opts, data, el);
    phaseLegend(el, chart);
  }

  function barsChart(el, chart) {
    var n = chart.categories.length, xs = [];
    for (var i = 0; i < n; i++) xs.push(i);
    var colors = chart.unit === "ms" ? SERIES.bars.slice(2) : SERIES.bars;
    var bars = uPlot.paths.bars;
    var opts = {
      width: Math.min(540, width(el)), height: 280,
      scales: { x: { time: false, range: [-0.5, n - 0.5] }, y: { range: function (u, min, max) { return [0, max > 0 ? max * 1.1 : 1]; } } },
      axes: [
        { splits: function () { return xs; }, grid: { show: false },
          values: function (u, vals) { return vals.map(function (v) { return chart.categories[v] == null ? "" : chart.categories[v]; }); } },
        { size: 60, values: function (u, vals) { return vals.map(plain); } }
      ],
      series: [{ label: "phase", value: function (u, v) { return v == null ? "" : chart.categories[v]; } }].concat(
        chart.series.map(function (s, k) {
          return { label: s.label, stroke: colors[k], fill: tint(colors[k], 0.75), width: 1,
                   paths: bars({ size: [0.38, 64], align: k === 0 ? -1 : 1 }), points: { show: false },
                   value: function (u, v) { return plain(v); } };
        }))
    };
    new uPlot(opts, [xs].concat(chart.series.map(function (s) { return s.values; })), el);
  }

  var data = JSON.parse(document.getElementById("soak-data").textContent);
  data.charts.forEach(function (chart) {
    var el = document.getElementById(chart.id);
    if (!el) return;
    try {
      if (typeof uPlot === "undefined") throw new Error("uPlot did not load");
      (chart.kind === "memory" ? memoryChart : barsChart)(el, chart);
      el.setAttribute("data-drawn", "true");
    } catch (err) {
      showError(el, err && err.message ? err.message : err);
      if (window.console) console.error("pytest-soak report: chart " + chart.id + ": " + err);
    }
  });
})();
