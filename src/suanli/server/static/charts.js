// Charts with the vendored uPlot (vendor/uplot, loaded by index.html as the global `uPlot`).

import { fmtNumber, h } from "./dom.js";

export const PALETTE = [
  "#2f6db5", "#d2691e", "#2e8b57", "#b03a48", "#7b5ea7",
  "#8c6d31", "#d6609d", "#5f7f8f", "#9aa832", "#17a2b8",
];

const INTEGER_INCRS = [1, 2, 5].flatMap((m) => Array.from({ length: 10 }, (_, e) => m * 10 ** e)).sort((a, b) => a - b);

function widthOf(box) {
  return Math.max(200, Math.floor(box.clientWidth || box.parentElement?.clientWidth || 360));
}

/**
 * A chart in a new <figure>: `x` values, `series` [{label, values, color?}]. `time` makes x unix
 * seconds shown as dates/times. Returns {el, update(x, series), destroy()}. It follows its box's width.
 */
export function lineChart({ title, x, series, time = false, height = 180, testid, xLabel, bars = false, zero = false, integerX = false, mono = false }) {
  const plotBox = h("div", { class: "plot" });
  const el = h("figure", { class: "chart", "data-testid": testid }, h("figcaption", { class: mono ? "mono" : null }, title), plotBox);
  if (typeof uPlot === "undefined") {
    plotBox.appendChild(h("p", { class: "muted" }, "(charts unavailable: uPlot did not load)"));
    return { el, update() {}, destroy() {} };
  }
  let plot = null;
  let observer = null;
  let labels = null;

  const options = (width) => ({
    width,
    height,
    legend: { show: true, live: true },
    cursor: { drag: { x: true, y: false }, points: { size: 6 } },
    scales: {
      x: { time },
      // `zero`: amounts (hours, dollars) start at 0; an all-zero series still gets a 0..1 axis
      y: zero ? { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } : {},
    },
    axes: [
      {
        stroke: "#555",
        incrs: integerX ? INTEGER_INCRS : undefined, // steps: no 2.25
        grid: { stroke: "#eee", width: 1 },
        ticks: { stroke: "#ddd", width: 1 },
        font: "11px system-ui, sans-serif",
      },
      {
        stroke: "#555",
        grid: { stroke: "#eee", width: 1 },
        ticks: { stroke: "#ddd", width: 1 },
        font: "11px system-ui, sans-serif",
        size: 56,
        space: 24, // more labels on short charts
        values: (u, splits) => splits.map((v) => fmtNumber(v, 3)),
      },
    ],
    series: [
      { label: xLabel || (time ? "time" : "x"), value: time ? undefined : (u, v) => (v === null ? "" : fmtNumber(v)) },
      ...labels.map((s, i) => {
        const color = s.color || PALETTE[i % PALETTE.length];
        return {
          label: s.label,
          stroke: color,
          width: 1.5,
          fill: bars ? `${color}55` : undefined,
          points: { show: (u) => u.data[0].length < 60, size: 4, fill: color },
          paths: bars && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.8, 40], align: 1 }) : undefined,
          spanGaps: true,
          value: (u, v) => (v === null || v === undefined ? "–" : fmtNumber(v, 3)),
        };
      }),
    ],
  });

  const count = (xs) => {
    el.dataset.points = String(xs.length); // how many x values are drawn (tests wait on it)
  };

  const build = (xs, ss) => {
    count(xs);
    labels = ss;
    const data = [xs, ...ss.map((s) => s.values)];
    if (plot) plot.destroy();
    plot = new uPlot(options(widthOf(plotBox)), data, plotBox);
  };

  const update = (xs, ss) => {
    const sameSeries =
      plot && labels && labels.length === ss.length && labels.every((s, i) => s.label === ss[i].label);
    if (sameSeries) {
      count(xs);
      labels = ss;
      plot.setData([xs, ...ss.map((s) => s.values)]);
    } else {
      build(xs, ss);
    }
  };

  // Build once the figure is in the page (its width is known then).
  requestAnimationFrame(() => {
    if (!el.isConnected) return;
    build(x, series);
    observer = new ResizeObserver(() => {
      const width = widthOf(plotBox);
      if (plot && Math.abs(plot.width - width) > 2) plot.setSize({ width, height });
    });
    observer.observe(plotBox);
  });

  return {
    el,
    update: (xs, ss) => {
      x = xs;
      series = ss;
      if (plot || labels) update(xs, ss);
    },
    destroy: () => {
      observer?.disconnect();
      plot?.destroy();
      plot = null;
    },
  };
}
