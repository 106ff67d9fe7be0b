// A calibration chart in plain SVG: the hit rate of each confidence bin against the diagonal of a
// perfectly calibrated forecaster, with each bin's count. No library: the CSP allows only our files.

const SVG = "http://www.w3.org/2000/svg";
const W = 320;
const H = 220;
const PAD = { left: 40, right: 10, top: 12, bottom: 36 };
const PLOT_W = W - PAD.left - PAD.right;
const PLOT_H = H - PAD.top - PAD.bottom;

function node(tag, attrs = {}, text = "") {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) element.setAttribute(name, String(value));
  if (text) element.textContent = text;
  return element;
}

const x = (confidence) => PAD.left + confidence * PLOT_W;
const y = (rate) => PAD.top + (1 - rate) * PLOT_H;

/** The chart of `bins` ({bin, lower, upper, count, hits, hitRate}), titled `label`. */
export function calibrationChart(bins, label) {
  const svg = node("svg", {
    viewBox: `0 0 ${W} ${H}`,
    class: "calibration-chart",
    role: "img",
    "aria-label": `Calibration of ${label}: hit rate by stated confidence`,
  });
  svg.append(node("title", {}, `Calibration: ${label}`));
  const axes = node("g", { class: "calibration-chart__axes" });
  for (const tick of [0, 0.5, 1]) {
    axes.append(node("line", { x1: PAD.left, x2: W - PAD.right, y1: y(tick), y2: y(tick), class: "grid" }));
    axes.append(node("text", { x: PAD.left - 6, y: y(tick) + 4, "text-anchor": "end" }, `${tick * 100}%`));
    axes.append(node("text", { x: x(tick), y: H - PAD.bottom + 14, "text-anchor": "middle" }, tick.toFixed(1)));
  }
  axes.append(node("text", { x: PAD.left + PLOT_W / 2, y: H - 4, "text-anchor": "middle" }, "stated confidence"));
  svg.append(axes);
  // Perfect calibration: a bin's hit rate equals its confidence.
  svg.append(node("line", { x1: x(0), y1: y(0), x2: x(1), y2: y(1), class: "calibration-chart__ideal" }));
  const bars = node("g", { class: "calibration-chart__bars" });
  for (const bin of bins) {
    if (!bin.count) continue;
    const left = x(bin.lower) + 2;
    const width = x(bin.upper) - x(bin.lower) - 4;
    const bar = node("rect", {
      x: left,
      y: y(bin.hitRate),
      width,
      height: Math.max(y(0) - y(bin.hitRate), 1),
      class: "calibration-chart__bar",
      "data-bin": bin.bin,
      "data-count": bin.count,
      "data-hits": bin.hits,
      "data-hit-rate": bin.hitRate,
    });
    bar.append(node("title", {}, `confidence ${bin.lower.toFixed(1)}–${bin.upper.toFixed(1)}: ${bin.hits} of ${bin.count} right`));
    bars.append(bar);
    bars.append(node("text", { x: left + width / 2, y: y(bin.hitRate) - 3, "text-anchor": "middle", class: "calibration-chart__count" }, `${bin.count}`));
  }
  svg.append(bars);
  return svg;
}
