// History charts: a line per device (the bucket average, or the value for flags and
// states) and, for numbers, a band from each bucket's minimum to its maximum.

import { el, clear } from "./core.js";
import { t } from "./i18n.js";

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  for (const c of children) node.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

const COLORS = ["#2f6fdf", "#d0392b", "#1f7a3a", "#c76b00", "#7b3fbf", "#008c95", "#6b7280"];

function num(v) {
  if (typeof v === "number") return v;
  if (typeof v === "boolean") return v ? 1 : 0;
  return null;
}

/// A point's line value and band: `{t, v, lo, hi}`, or null when it has no number.
function sample(p) {
  const v = num(p.avg ?? p.value);
  if (v === null) return null;
  const lo = num(p.min), hi = num(p.max);
  return { t: p.ts_ms, v, lo: lo ?? v, hi: hi ?? v, band: lo !== null && hi !== null };
}

/// Draw `series` (`{device: [points]}`) of `metric` between `from` and `to` into `box`.
export function drawChart(box, metric, series, from, to) {
  clear(box);
  // The viewBox is the box's own pixel size, so text is never stretched.
  const W = Math.max(320, box.clientWidth || 800), H = 220, L = 48, B = 22, T = 8, R = 8;
  const lines = Object.entries(series || {}).map(([d, pts]) => [d, pts.map(sample).filter(Boolean)]);
  const all = lines.flatMap(([, s]) => s.flatMap((p) => [p.lo, p.hi]));
  if (!all.length) {
    box.appendChild(el("p", { "data-testid": "chart-empty" }, t("chart.empty", metric)));
    return;
  }
  let lo = Math.min(...all), hi = Math.max(...all);
  if (lo === hi) { lo -= 1; hi += 1; }
  const x = (ts) => L + ((ts - from) / (to - from)) * (W - L - R);
  const y = (v) => T + (1 - (v - lo) / (hi - lo)) * (H - T - B);
  const root = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": metric });
  root.appendChild(svg("line", { class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B }));
  root.appendChild(svg("line", { class: "axis", x1: L, y1: T, x2: L, y2: H - B }));
  for (const v of [lo, (lo + hi) / 2, hi]) root.appendChild(svg("text", { x: 2, y: y(v) + 3 }, Number(v.toPrecision(4))));
  root.appendChild(svg("text", { x: L, y: H - 6 }, new Date(from).toLocaleString()));
  root.appendChild(svg("text", { x: W - R, y: H - 6, "text-anchor": "end" }, new Date(to).toLocaleString()));
  const legend = el("div", { class: "legend" });
  let banded = false;
  lines.forEach(([device, pts], i) => {
    const color = COLORS[i % COLORS.length];
    if (pts.some((p) => p.band)) {
      banded = true;
      const top = pts.map((p) => x(p.t).toFixed(1) + "," + y(p.hi).toFixed(1));
      const bottom = pts.slice().reverse().map((p) => x(p.t).toFixed(1) + "," + y(p.lo).toFixed(1));
      root.appendChild(svg("polygon", { points: top.concat(bottom).join(" "), fill: color, "fill-opacity": 0.15,
        stroke: "none", "data-testid": "band-" + device }));
    }
    const d = pts.map((p, j) => (j ? "L" : "M") + x(p.t).toFixed(1) + " " + y(p.v).toFixed(1)).join(" ");
    root.appendChild(svg("path", { d, fill: "none", stroke: color, "stroke-width": 1.5, "data-testid": "series-" + device }));
    const swatch = el("span", {}, "\u25a0 " + device);
    swatch.style.color = color;
    legend.appendChild(swatch);
  });
  if (banded) legend.appendChild(el("span", { class: "muted" }, t("chart.band")));
  box.appendChild(root);
  box.appendChild(legend);
}

const PRESETS = [1, 6, 24, 168, 720];

/// A metric picker with preset and custom ranges; `load(metric, from, to)` returns
/// `{device: [points]}`. Returns the section and its `draw()`.
export function historyCard(title, options, load) {
  const select = el("select", { "data-testid": "chart-metric" }, options.map(([v, label]) => el("option", { value: v }, label)));
  const range = el("select", { "data-testid": "chart-range" },
    PRESETS.map((h) => el("option", { value: h }, h < 48 ? t("range.hours", h) : t("range.days", h / 24))),
    el("option", { value: "custom" }, t("range.custom")));
  const local = (ms) => { const d = new Date(ms - new Date().getTimezoneOffset() * 60000); return d.toISOString().slice(0, 16); };
  const fromIn = el("input", { type: "datetime-local", "data-testid": "chart-from", value: local(Date.now() - 86400000) });
  const toIn = el("input", { type: "datetime-local", "data-testid": "chart-to", value: local(Date.now()) });
  const custom = el("span", { class: "custom", hidden: true }, el("label", {}, t("from"), fromIn), el("label", {}, t("to"), toIn));
  const chart = el("div", { class: "chart", "data-testid": "chart" });
  const err = el("p", { class: "error", "data-testid": "chart-error" });
  const form = el("form", { class: "inline" }, el("label", {}, t("metric"), select), el("label", {}, t("range"), range), custom,
    el("button", { type: "submit", "data-testid": "chart-go" }, t("show")));
  const section = el("section", { class: "card" }, el("h2", {}, title), form, err, chart);
  async function draw() {
    let from, to;
    if (range.value === "custom") {
      from = new Date(fromIn.value).getTime();
      to = new Date(toIn.value).getTime();
    } else {
      to = Date.now();
      from = to - Number(range.value) * 3600000;
    }
    try {
      if (!(from < to)) throw new Error(t("from") + " \u2265 " + t("to"));
      const series = await load(select.value, from, to);
      err.textContent = "";
      drawChart(chart, select.value.split(":").pop(), series, from, to);
    } catch (e) {
      err.textContent = e.message;
    }
  }
  range.addEventListener("change", () => { custom.hidden = range.value !== "custom"; if (range.value !== "custom") draw(); });
  select.addEventListener("change", draw);
  form.addEventListener("submit", (e) => { e.preventDefault(); draw(); });
  return { section, draw, select };
}
