// Charts as plain SVG: line/step series with bands and error bars, scatter, and bars, on linear or log
// axes. A dashboard draws a few thousand points at most, so a DOM of SVG elements is fast enough, needs no
// library or build step, and stays inspectable (every series carries data-series / data-points, which the
// browser test reads).

const SVG = "http://www.w3.org/2000/svg";
const PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7",
  "#9c755f", "#bab0ac"];

export const colour = (i) => PALETTE[i % PALETTE.length];
let clipIds = 0; // clipPath ids are document-wide

function el(name, attrs = {}, parent = null) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

function extent(values, log) {
  let vs = values.filter((v) => Number.isFinite(v) && (!log || v > 0));
  if (!vs.length) return [log ? 1 : 0, log ? 10 : 1];
  let lo = Math.min(...vs), hi = Math.max(...vs);
  if (lo === hi) {
    if (log) { lo /= 2; hi *= 2; } else { const d = Math.abs(lo) * 0.1 || 1; lo -= d; hi += d; }
  } else if (!log) {
    const pad = (hi - lo) * 0.05; lo -= pad; hi += pad;
  } else {
    const pad = (hi / lo) ** 0.05; lo /= pad; hi *= pad; // so a marker at the edge is not clipped
  }
  return [lo, hi];
}

function scale([lo, hi], [a, b], log) {
  const f = log ? Math.log10 : (v) => v;
  const l = f(lo), h = f(hi);
  return (v) => a + ((f(v) - l) / (h - l || 1)) * (b - a);
}

function ticks([lo, hi], log, n = 5) {
  if (log) {
    // powers of ten, and 2x and 5x between them when the axis spans less than two decades
    const mantissas = Math.log10(hi / lo) < 2 ? [1, 2, 5] : [1];
    const out = [];
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
      for (const k of mantissas) {
        const v = k * 10 ** e;
        if (v >= lo * 0.999 && v <= hi * 1.001) out.push(v);
      }
    }
    // within one decade: evenly spaced round values (still placed on the log scale)
    return out.length >= 2 ? out : ticks([lo, hi], false, 4).filter((v) => v > 0);
  }
  const raw = (hi - lo) / n, mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
  return out;
}

export function fmt(v) {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(1).replace("e+", "e");
  return +v.toPrecision(4) + "";
}

function frame(container, { width = 460, height = 260, title }) {
  container.replaceChildren();
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img" }, container);
  if (title) el("title", {}, svg).textContent = title;
  return svg;
}

function message(svg, text, width, height) {
  const t = el("text", { x: width / 2, y: height / 2, "text-anchor": "middle", class: "empty" }, svg);
  t.textContent = text;
}

// series: [{label, colour, points: [[x, y]...], step, markers, line (default true), band: [[x, lo, hi]...],
//           errors: [[x, y, lo, hi]...], group}]; legend: [{label, colour}] (default: one per series label)
export function lineChart(container, { series, xLabel, yLabel, logX = false, logY = false, title, legend,
  empty = "no data yet", vlines = [], width = 460, height = 260, bandsInDomain = true }) {
  const svg = frame(container, { width, height, title });
  const m = { l: 58, r: 12, t: 10, b: 40 };
  const xs = [], ys = [];
  for (const s of series) {
    for (const [x, y] of s.points || []) { xs.push(x); ys.push(y); }
    // a band far wider than the data (an extrapolation's) must not squash it: clipped to the plot instead
    for (const [x, lo, hi] of s.band || []) { xs.push(x); if (bandsInDomain) ys.push(lo, hi); }
    for (const [x, y, lo, hi] of s.errors || []) { xs.push(x); ys.push(y, lo, hi); }
  }
  for (const v of vlines) xs.push(v.x);
  const plotted = series.some((s) => (s.points || []).length || (s.errors || []).length);
  if (!plotted) { message(svg, empty, width, height); svg.dataset.points = "0"; return svg; }
  const dx = extent(xs, logX), dy = extent(ys, logY);
  const X = scale(dx, [m.l, width - m.r], logX), Y = scale(dy, [height - m.b, m.t], logY);
  const ok = (x, y) => Number.isFinite(x) && Number.isFinite(y) && (!logX || x > 0) && (!logY || y > 0);

  const axes = el("g", { class: "axes" }, svg);
  for (const t of ticks(dx, logX)) {
    el("line", { x1: X(t), x2: X(t), y1: m.t, y2: height - m.b, class: "grid" }, axes);
    el("text", { x: X(t), y: height - m.b + 14, "text-anchor": "middle" }, axes).textContent = fmt(t);
  }
  for (const t of ticks(dy, logY)) {
    el("line", { x1: m.l, x2: width - m.r, y1: Y(t), y2: Y(t), class: "grid" }, axes);
    el("text", { x: m.l - 5, y: Y(t) + 4, "text-anchor": "end" }, axes).textContent = fmt(t);
  }
  el("rect", { x: m.l, y: m.t, width: width - m.l - m.r, height: height - m.t - m.b, class: "plot-area" }, axes);
  if (xLabel) el("text", { x: (m.l + width - m.r) / 2, y: height - 6, "text-anchor": "middle", class: "label" }, axes)
    .textContent = xLabel;
  if (yLabel) el("text", { x: 12, y: (m.t + height - m.b) / 2, "text-anchor": "middle", class: "label",
    transform: `rotate(-90 12 ${(m.t + height - m.b) / 2})` }, axes).textContent = yLabel;

  const clip = `clip-${++clipIds}`;
  el("rect", { x: m.l, y: m.t, width: width - m.l - m.r, height: height - m.t - m.b },
    el("clipPath", { id: clip }, el("defs", {}, svg)));
  let total = 0;
  for (const s of series) {
    const g = el("g", { class: "series", "data-series": s.label, "data-group": s.group ?? s.label,
      "clip-path": `url(#${clip})` }, svg);
    const band = (s.band || []).filter(([x, lo, hi]) => ok(x, lo) && ok(x, hi));
    if (band.length) {
      const d = band.map(([x, , hi], i) => `${i ? "L" : "M"}${X(x)},${Y(hi)}`).join("")
        + band.slice().reverse().map(([x, lo]) => `L${X(x)},${Y(lo)}`).join("") + "Z";
      el("path", { d, fill: s.colour, "fill-opacity": 0.18, stroke: "none", class: "band" }, g);
    }
    const pts = (s.points || []).filter(([x, y]) => ok(x, y));
    if (pts.length && s.line !== false) {
      let d = "";
      pts.forEach(([x, y], i) => {
        if (!i) d += `M${X(x)},${Y(y)}`;
        else d += s.step ? `H${X(x)}V${Y(y)}` : `L${X(x)},${Y(y)}`;
      });
      if (s.step && s.extendTo !== undefined) d += `H${X(s.extendTo)}`;
      el("path", { d, fill: "none", stroke: s.colour, "stroke-width": s.width || 1.5, "stroke-opacity": s.opacity ?? 1,
        class: "line" }, g);
    }
    if (s.markers || s.line === false) {
      for (const [x, y] of pts) el("circle", { cx: X(x), cy: Y(y), r: s.radius || 3, fill: s.colour, class: "marker" }, g);
    }
    for (const [x, y, lo, hi] of (s.errors || []).filter(([x, y]) => ok(x, y))) {
      if (ok(x, lo) && ok(x, hi)) el("line", { x1: X(x), x2: X(x), y1: Y(lo), y2: Y(hi), stroke: s.colour,
        "stroke-width": 2, class: "error-bar" }, g);
      el("circle", { cx: X(x), cy: Y(y), r: 4.5, fill: "white", stroke: s.colour, "stroke-width": 2,
        class: "marker" }, g);
    }
    const n = pts.length + (s.errors || []).length;
    g.dataset.points = n;
    total += n;
  }
  for (const v of vlines) {
    if (!ok(v.x, dy[0])) continue;
    el("line", { x1: X(v.x), x2: X(v.x), y1: m.t, y2: height - m.b, stroke: v.colour || "#333",
      "stroke-dasharray": "4 3", class: "vline" }, svg);
  }
  svg.dataset.points = total;
  drawLegend(container, legend || uniqueLegend(series));
  return svg;
}

function uniqueLegend(series) {
  const seen = new Map();
  for (const s of series) if (s.label && !seen.has(s.group ?? s.label)) seen.set(s.group ?? s.label, s.colour);
  return [...seen].map(([label, c]) => ({ label, colour: c }));
}

function drawLegend(container, items) {
  if (!items.length) return;
  const ul = document.createElement("ul");
  ul.className = "legend";
  for (const { label, colour: c } of items) {
    const li = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = c;
    li.append(swatch, label);
    ul.appendChild(li);
  }
  container.appendChild(ul);
}

// bars: [{label, value, colour, note}]
export function barChart(container, { bars, yLabel, title, empty = "no data yet", width = 460, height = 260 }) {
  const svg = frame(container, { width, height, title });
  const m = { l: 58, r: 12, t: 18, b: 40 };
  if (!bars.length || !bars.some((b) => b.value > 0)) { message(svg, empty, width, height); svg.dataset.points = "0"; return svg; }
  const hi = Math.max(...bars.map((b) => b.value)) * 1.1;
  const Y = scale([0, hi], [height - m.b, m.t], false);
  const axes = el("g", { class: "axes" }, svg);
  for (const t of ticks([0, hi], false)) {
    el("line", { x1: m.l, x2: width - m.r, y1: Y(t), y2: Y(t), class: "grid" }, axes);
    el("text", { x: m.l - 5, y: Y(t) + 4, "text-anchor": "end" }, axes).textContent = fmt(t);
  }
  if (yLabel) el("text", { x: 12, y: (m.t + height - m.b) / 2, "text-anchor": "middle", class: "label",
    transform: `rotate(-90 12 ${(m.t + height - m.b) / 2})` }, axes).textContent = yLabel;
  const slot = (width - m.l - m.r) / bars.length, w = Math.min(70, slot * 0.6);
  bars.forEach((b, i) => {
    const x = m.l + slot * i + (slot - w) / 2;
    const g = el("g", { class: "series bar", "data-series": b.label, "data-value": b.value }, svg);
    el("rect", { x, y: Y(b.value), width: w, height: Y(0) - Y(b.value), fill: b.colour }, g);
    el("text", { x: x + w / 2, y: height - m.b + 14, "text-anchor": "middle" }, g).textContent = b.label;
    if (b.note) el("text", { x: x + w / 2, y: Y(b.value) - 4, "text-anchor": "middle", class: "note" }, g)
      .textContent = b.note;
  });
  svg.dataset.points = bars.length;
  return svg;
}
