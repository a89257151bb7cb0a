// Shared by every page: DOM helpers (text nodes and attributes only, never innerHTML, so
// names and messages from devices and users cannot inject markup), the API client, the
// session (who is logged in, the metric catalogue) and the page lifecycle.

import { t } from "./i18n.js";

export const TOKEN_KEY = "steward.token";
export const ACTOR_KEY = "steward.actor";

export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, String(v));
  }
  return append(node, children);
}

export function append(node, children) {
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
}

export function fmtTime(ms) {
  return ms ? new Date(ms).toLocaleString() : "-";
}

export function fmtDuration(ms) {
  const late = ms < 0;
  let s = Math.floor(Math.abs(ms) / 1000);
  const d = Math.floor(s / 86400); s -= d * 86400;
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  const pad = (n) => String(n).padStart(2, "0");
  const body = (d ? d + "d " : "") + pad(h) + ":" + pad(m) + ":" + pad(s);
  return late ? t("overdue", body) : body;
}

export const link = (hash, text, attrs) => el("a", Object.assign({ href: "#/" + hash.map(encodeURIComponent).join("/") }, attrs || {}), text);

// ---- API ---------------------------------------------------------------------------

export function token() {
  return localStorage.getItem(TOKEN_KEY) || "";
}

export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

let onUnauthorized = () => {};
export function setUnauthorizedHandler(f) { onUnauthorized = f; }

export async function api(path, opts) {
  const o = opts || {};
  const headers = { Authorization: "Bearer " + token() };
  if (o.body !== undefined) headers["Content-Type"] = "application/json";
  let r;
  try {
    r = await fetch("/api/v1" + path, {
      method: o.method || "GET",
      headers,
      body: o.body === undefined ? undefined : JSON.stringify(o.body),
    });
  } catch (e) {
    throw new ApiError(0, "network: " + e.message);
  }
  let body = null;
  try { body = await r.json(); } catch (_) { body = null; }
  if (!r.ok) {
    const msg = body && body.error ? body.error.message : r.status + " " + r.statusText;
    if (r.status === 401) onUnauthorized();
    throw new ApiError(r.status, msg);
  }
  return body;
}

// ---- Session: who is logged in and the metric catalogue ----------------------------

export const session = { me: null, catalog: null };

export async function loadSession() {
  const [me, catalog] = await Promise.all([api("/me"), api("/catalog")]);
  session.me = me;
  session.catalog = Object.fromEntries(catalog.kinds.map((k) => [k.kind, k]));
}

export const role = () => (session.me ? session.me.role : "");
export const seesTickets = () => role() !== "vendor";

/// A metric's label without the unit already printed after its value.
export function metricLabel(name) {
  return name.replace(/_(pct_per_m|mm_s|m_s|mpa|m3h|kw|ppm|pct|mm|a|c|v|s|m)$/, "").replace(/_/g, " ");
}

/// A latest value as people read it: yes/no, a number with its unit, an enum's word.
export function fmtValue(kind, name, v) {
  const spec = ((session.catalog || {})[kind] || { metrics: [] }).metrics.find((m) => m.name === name);
  if (typeof v === "boolean") return v ? t("yes") : t("no");
  if (typeof v === "number") {
    const n = Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(4)));
    return spec && spec.unit ? n + " " + spec.unit : n;
  }
  return v === null || v === undefined ? "-" : String(v);
}

// A device state's latest value is `[value, event time ms]`.
export function metricValue(v) {
  if (Array.isArray(v)) return v[0];
  if (v && typeof v === "object" && "value" in v) return v.value;
  return v;
}

/// The worst alarm reading of a device: `{severity, metric, value}` or null.
export function alarmOf(kind, values) {
  const cat = (session.catalog || {})[kind];
  if (!cat) return null;
  let worst = null;
  for (const a of cat.alarms) {
    if (!(a.metric in values)) continue;
    const v = metricValue(values[a.metric]);
    if (v !== a.equals) continue;
    if (!worst || (a.severity === "alarm" && worst.severity !== "alarm")) worst = { severity: a.severity, metric: a.metric, value: v };
  }
  return worst;
}

/// The key metrics of a kind first, then the others, at most `n`.
export function orderedMetrics(kind, values, n) {
  const cat = (session.catalog || {})[kind];
  const keys = cat ? cat.key_metrics.filter((k) => k in values) : [];
  const rest = Object.keys(values).filter((k) => !keys.includes(k)).sort();
  return keys.concat(rest).slice(0, n);
}

// ---- Page lifecycle ------------------------------------------------------------------

export const main = document.getElementById("main");
let page = { cleanup: [] };
export const streamListeners = new Set();

export function newPage() {
  for (const f of page.cleanup) f();
  page = { cleanup: [] };
  clear(main);
}
export function onPageLeave(f) { page.cleanup.push(f); }
export function every(ms, f) { const id = setInterval(f, ms); onPageLeave(() => clearInterval(id)); }
export function onTicketEvent(f) { streamListeners.add(f); onPageLeave(() => streamListeners.delete(f)); }

/// A paragraph that shows the last refresh error, and a wrapper that fills it: the page
/// keeps its last data and says that it is stale, instead of dropping the error.
export function refresher(run) {
  const box = el("p", { class: "error", "data-testid": "refresh-error", hidden: true });
  const go = () => run().then(() => { box.hidden = true; box.textContent = ""; }).catch((e) => {
    box.hidden = false;
    box.textContent = t("error.refresh", new Date().toLocaleTimeString(), e.message);
  });
  return { box, go };
}

export function pageTitle(text, testid) {
  return el("h2", { "data-testid": testid || "page-title" }, text);
}
