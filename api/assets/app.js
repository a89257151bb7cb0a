// Steward dashboard: plain JavaScript, no build step. Every piece of data goes into the
// page through text nodes or attributes (never innerHTML), so names and messages from
// devices and users cannot inject markup.
"use strict";

const TOKEN_KEY = "steward.token";
const ACTOR_KEY = "steward.actor";
const main = document.getElementById("main");
const liveBadge = document.getElementById("live");

// Numeric metrics offered for charts, per device kind (names from the device contract).
const CHART_METRICS = {
  lift: ["speed_m_s", "load_pct", "floor", "levelling_error_mm"],
  pump: ["outlet_pressure_mpa", "inlet_pressure_mpa", "flow_m3h", "vibration_mm_s", "bearing_temp_c", "level_m"],
  smoke: ["co_ppm", "temperature_c", "obscuration_pct_per_m", "battery_v"],
  gate: ["motor_current_a", "held_open_s"],
};
const NEXT_STEPS = {
  open: ["acknowledged"],
  acknowledged: ["dispatched", "on_hold"],
  dispatched: ["on_site", "on_hold"],
  on_site: ["resolved", "on_hold"],
  on_hold: ["dispatched"],
  resolved: ["closed"],
};
const STEP_LABEL = {
  acknowledged: "Acknowledge", dispatched: "Dispatch", on_site: "On site",
  resolved: "Resolve", closed: "Close", on_hold: "Hold",
};

// ---- DOM helpers -------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, String(v));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  for (const c of children) node.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
}

function fmtTime(ms) {
  return ms ? new Date(ms).toLocaleString() : "-";
}

function fmtDuration(ms) {
  const late = ms < 0;
  let s = Math.floor(Math.abs(ms) / 1000);
  const d = Math.floor(s / 86400); s -= d * 86400;
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  const pad = (n) => String(n).padStart(2, "0");
  const body = (d ? d + "d " : "") + pad(h) + ":" + pad(m) + ":" + pad(s);
  return late ? "overdue " + body : body;
}

// ---- API ---------------------------------------------------------------------------

function token() {
  return localStorage.getItem(TOKEN_KEY) || "";
}

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path, opts) {
  const o = opts || {};
  const headers = { Authorization: "Bearer " + token() };
  if (o.body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch("/api/v1" + path, {
    method: o.method || "GET",
    headers,
    body: o.body === undefined ? undefined : JSON.stringify(o.body),
  });
  let body = null;
  try { body = await r.json(); } catch (_) { body = null; }
  if (!r.ok) {
    const msg = body && body.error ? body.error.message : r.statusText;
    if (r.status === 401) showLogin("The token was refused.");
    throw new ApiError(r.status, msg);
  }
  return body;
}

// ---- Login and the live stream ------------------------------------------------------

const loginBox = document.getElementById("login");
const loginError = document.getElementById("login-error");

function showLogin(message) {
  stopStream();
  loginBox.hidden = false;
  main.hidden = true;
  loginError.textContent = message || "";
}

document.getElementById("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const t = document.getElementById("token").value.trim();
  localStorage.setItem(TOKEN_KEY, t);
  try {
    await api("/compounds");
  } catch (e) {
    if (e.status !== 401) showLogin("Cannot reach the hub: " + e.message);
    return;
  }
  loginBox.hidden = true;
  main.hidden = false;
  startStream();
  route();
});

document.getElementById("logout").addEventListener("click", () => {
  localStorage.removeItem(TOKEN_KEY);
  showLogin("");
});

let stream = null;
const streamListeners = new Set();

function startStream() {
  stopStream();
  // EventSource cannot send headers: the token goes in the query, and the browser
  // resumes with Last-Event-ID on its own after a drop.
  stream = new EventSource("/api/v1/alerts/stream?access_token=" + encodeURIComponent(token()));
  stream.addEventListener("open", () => setLive(true));
  stream.addEventListener("error", () => setLive(false));
  stream.addEventListener("ticket", (m) => {
    let ev;
    try { ev = JSON.parse(m.data); } catch (_) { return; }
    for (const f of streamListeners) f(ev);
  });
}

function stopStream() {
  if (stream) stream.close();
  stream = null;
  setLive(false);
}

function setLive(on) {
  liveBadge.textContent = on ? "live" : "offline";
  liveBadge.className = "live " + (on ? "on" : "off");
}

// ---- Router ------------------------------------------------------------------------

let page = { cleanup: [] };

function onPageLeave(f) { page.cleanup.push(f); }
function every(ms, f) { const id = setInterval(f, ms); onPageLeave(() => clearInterval(id)); }
function onTicketEvent(f) { streamListeners.add(f); onPageLeave(() => streamListeners.delete(f)); }

function route() {
  for (const f of page.cleanup) f();
  page = { cleanup: [] };
  clear(main);
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  const render = {
    "": estatePage,
    compound: compoundPage,
    tickets: ticketsPage,
    rating: ratingPage,
    crew: crewPage,
  }[parts[0]] || notFound;
  render(parts.slice(1)).catch((e) => append(main, [el("p", { class: "error", "data-testid": "page-error" }, e.message)]));
}

window.addEventListener("hashchange", route);

async function notFound() {
  append(main, [el("p", {}, "No such page.")]);
}

// ---- Estate ------------------------------------------------------------------------

async function estatePage() {
  const card = el("section", { class: "card", "data-testid": "estate" }, el("h2", {}, "Estate"));
  main.appendChild(card);
  const [{ compounds }, { devices }] = await Promise.all([api("/compounds"), api("/liveness")]);
  const counts = {};
  for (const d of devices) {
    const c = (counts[d.compound] = counts[d.compound] || { online: 0, offline: 0, silent: 0, unknown: 0 });
    c[d.liveness] = (c[d.liveness] || 0) + 1;
  }
  // The estate as a tree: street > community > compounds.
  const tree = {};
  for (const c of compounds) {
    const street = (tree[c.street] = tree[c.street] || {});
    (street[c.community] = street[c.community] || []).push(c);
  }
  for (const [street, communities] of Object.entries(tree)) {
    card.appendChild(el("h3", { "data-testid": "street-" + street }, "Street " + street));
    for (const [community, list] of Object.entries(communities)) {
      const rows = list.map((c) => {
        const n = counts[c.id] || { online: 0, offline: 0, silent: 0, unknown: 0 };
        return el("tr", { "data-testid": "compound-" + c.id },
          el("td", {}, el("a", { href: "#/compound/" + encodeURIComponent(c.id) }, c.name)),
          el("td", {}, el("a", { href: "#/crew/" + encodeURIComponent(c.station) }, c.station)),
          el("td", {}, String(c.devices)),
          el("td", { class: "counts", "data-testid": "counts-" + c.id },
            el("span", { class: "online" }, n.online + " online"),
            el("span", { class: "offline" }, n.offline + " offline"),
            el("span", { class: "silent" }, n.silent + " silent"),
            el("span", { class: "unknown" }, n.unknown + " unknown")));
      });
      card.appendChild(el("div", { class: "community" },
        el("h4", {}, "Community " + community),
        el("table", {},
          el("thead", {}, el("tr", {}, el("th", {}, "Compound"), el("th", {}, "Station"), el("th", {}, "Devices"), el("th", {}, "Status"))),
          el("tbody", {}, rows))));
    }
  }
}

// ---- Compound: live tiles and charts ------------------------------------------------

// A device state's latest value is `[value, event time ms]`.
function metricValue(v) {
  if (Array.isArray(v)) return v[0];
  if (v && typeof v === "object" && "value" in v) return v.value;
  return v;
}

async function compoundPage([id]) {
  const { devices } = await api("/devices?compound=" + encodeURIComponent(id));
  main.appendChild(el("h2", {}, "Compound " + id));
  const tiles = el("div", { class: "tiles", "data-testid": "tiles" });
  main.appendChild(el("section", { class: "card" }, el("h2", {}, "Devices"), tiles));
  const tileFor = {};
  for (const d of devices) {
    const body = el("dl", {});
    const status = el("span", { "data-testid": "liveness-" + d.id }, "…");
    const tile = el("div", { class: "tile", "data-testid": "tile-" + d.id },
      el("h3", {}, d.id + " ", status), el("div", {}, d.kind + " · " + (d.location || d.building)), body);
    tiles.appendChild(tile);
    tileFor[d.id] = { tile, body, status };
  }
  async function refresh() {
    await Promise.all(devices.map(async (d) => {
      const s = await api("/devices/" + encodeURIComponent(d.id) + "/state").catch(() => null);
      if (!s) return;
      const t = tileFor[d.id];
      t.status.textContent = s.liveness;
      t.tile.className = "tile " + s.liveness;
      clear(t.body);
      const values = (s.state && s.state.values) || {};
      for (const [k, v] of Object.entries(values).slice(0, 8)) {
        t.body.appendChild(el("dt", {}, k));
        t.body.appendChild(el("dd", {}, String(metricValue(v))));
      }
    }));
  }
  await refresh();
  every(5000, refresh);

  const kinds = [...new Set(devices.map((d) => d.kind))].filter((k) => CHART_METRICS[k]);
  if (!kinds.length) return;
  const select = el("select", { "data-testid": "chart-metric" },
    kinds.flatMap((k) => CHART_METRICS[k].map((m) => el("option", { value: k + ":" + m }, k + " · " + m))));
  const hours = el("select", { "data-testid": "chart-range" },
    [1, 6, 24, 168].map((h) => el("option", { value: h }, h < 48 ? h + " h" : h / 24 + " days")));
  const chart = el("div", { class: "chart", "data-testid": "chart" });
  main.appendChild(el("section", { class: "card" }, el("h2", {}, "History"),
    el("form", { class: "inline" }, el("label", {}, "Metric", select), el("label", {}, "Range", hours)), chart));
  async function draw() {
    const [kind, metric] = select.value.split(":");
    const to = Date.now();
    const from = to - Number(hours.value) * 3600000;
    const h = await api("/compounds/" + encodeURIComponent(id) + "/history?kind=" + kind +
      "&metric=" + encodeURIComponent(metric) + "&from=" + from + "&to=" + to);
    drawChart(chart, h, from, to);
  }
  select.addEventListener("change", () => draw().catch(() => {}));
  hours.addEventListener("change", () => draw().catch(() => {}));
  await draw();
  every(30000, () => draw().catch(() => {}));
}

const COLORS = ["#2f6fdf", "#d0392b", "#1f7a3a", "#c76b00", "#7b3fbf", "#008c95", "#6b7280"];

function drawChart(box, h, from, to) {
  clear(box);
  // The viewBox is the box's own pixel size, so text is never stretched.
  const W = Math.max(400, box.clientWidth || 800), H = 220, L = 48, B = 22, T = 8, R = 8;
  const series = Object.entries(h.series || {});
  const values = series.flatMap(([, pts]) => pts.map((p) => p.avg)).filter((v) => typeof v === "number");
  if (!values.length) {
    box.appendChild(el("p", { "data-testid": "chart-empty" }, "No data for " + h.metric + " in this range."));
    return;
  }
  let lo = Math.min(...values), hi = Math.max(...values);
  if (lo === hi) { lo -= 1; hi += 1; }
  const x = (t) => L + ((t - from) / (to - from)) * (W - L - R);
  const y = (v) => T + (1 - (v - lo) / (hi - lo)) * (H - T - B);
  const root = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": h.metric });
  root.appendChild(svg("line", { class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B }));
  root.appendChild(svg("line", { class: "axis", x1: L, y1: T, x2: L, y2: H - B }));
  for (const v of [lo, (lo + hi) / 2, hi]) {
    root.appendChild(svg("text", { x: 2, y: y(v) + 3 }, Number(v.toPrecision(4))));
  }
  root.appendChild(svg("text", { x: L, y: H - 6 }, new Date(from).toLocaleString()));
  root.appendChild(svg("text", { x: W - R, y: H - 6, "text-anchor": "end" }, new Date(to).toLocaleString()));
  const legend = el("div", { class: "legend" });
  series.forEach(([device, pts], i) => {
    const color = COLORS[i % COLORS.length];
    const d = pts.filter((p) => typeof p.avg === "number")
      .map((p, j) => (j ? "L" : "M") + x(p.ts_ms).toFixed(1) + " " + y(p.avg).toFixed(1)).join(" ");
    root.appendChild(svg("path", { d, fill: "none", stroke: color, "stroke-width": 1.5, "data-testid": "series-" + device }));
    const swatch = el("span", {}, "■ " + device);
    swatch.style.color = color;
    legend.appendChild(swatch);
  });
  box.appendChild(root);
  box.appendChild(legend);
}

// ---- Tickets: open tickets with SLA countdowns ---------------------------------------

function nextDue(t) {
  if (t.acknowledged_ms == null) return { what: "acknowledge", at: t.ack_due_ms };
  if (t.on_site_due_ms != null && t.on_site_ms == null) return { what: "on site", at: t.on_site_due_ms };
  if (t.resolve_due_ms != null && t.resolved_ms == null) return { what: "resolve", at: t.resolve_due_ms };
  return null;
}

function countdown(t) {
  const due = nextDue(t);
  const span = el("span", { class: "due", "data-testid": "due-" + t.id });
  const tick = () => {
    if (!due) { span.textContent = "-"; return; }
    const left = due.at - Date.now();
    span.textContent = due.what + ": " + fmtDuration(left);
    span.className = "due" + (left < 0 ? " late" : "");
  };
  tick();
  return { span, tick };
}

function ticketRow(t, extra) {
  const c = countdown(t);
  const row = el("tr", { "data-testid": "ticket-" + t.id },
    el("td", {}, "#" + t.id),
    el("td", {}, el("span", { class: "prio " + t.priority }, t.priority)),
    el("td", {}, t.title),
    el("td", {}, t.device_id),
    el("td", {}, t.compound),
    el("td", {}, t.station),
    el("td", { "data-testid": "ticket-state-" + t.id }, t.state),
    el("td", {}, fmtTime(t.opened_ms)),
    el("td", {}, c.span),
    extra ? el("td", {}, extra) : null);
  return { row, tick: c.tick };
}

const TICKET_HEAD = ["Id", "Prio", "Title", "Device", "Compound", "Station", "State", "Opened", "SLA"];

async function ticketsPage() {
  const box = el("section", { class: "card", "data-testid": "tickets" }, el("h2", {}, "Open tickets"));
  main.appendChild(box);
  const body = el("div", {});
  box.appendChild(body);
  let ticks = [];
  async function load() {
    const { tickets } = await api("/tickets?active=true");
    clear(body);
    ticks = [];
    for (const p of ["P1", "P2", "P3"]) {
      const list = tickets.filter((t) => t.priority === p);
      body.appendChild(el("h3", {}, p + " (" + list.length + ")"));
      const rows = list.map((t) => { const r = ticketRow(t); ticks.push(r.tick); return r.row; });
      body.appendChild(el("table", { "data-testid": "tickets-" + p },
        el("thead", {}, el("tr", {}, TICKET_HEAD.map((h) => el("th", {}, h)))), el("tbody", {}, rows)));
    }
  }
  await load();
  every(1000, () => ticks.forEach((f) => f()));
  onTicketEvent(() => load().catch(() => {}));
}

// ---- SLA / star rating ---------------------------------------------------------------

async function ratingPage() {
  const { compounds } = await api("/compounds");
  const stations = [...new Set(compounds.map((c) => c.station))].sort();
  const scope = el("select", { "data-testid": "rating-scope" },
    stations.map((s) => el("option", { value: s }, "station " + s)),
    compounds.map((c) => el("option", { value: c.id }, "compound " + c.name)));
  const month = el("input", { type: "month", value: new Date().toISOString().slice(0, 7), "data-testid": "rating-month" });
  const out = el("div", { "data-testid": "rating" });
  const form = el("form", { class: "inline" }, el("label", {}, "Scope", scope), el("label", {}, "Month", month),
    el("button", { type: "submit", "data-testid": "rating-go" }, "Show"));
  main.appendChild(el("section", { class: "card" }, el("h2", {}, "Service rating"), form, out));
  async function show() {
    const r = await api("/reports/rating?of=" + encodeURIComponent(scope.value) + "&month=" + encodeURIComponent(month.value));
    clear(out);
    const pct = (v) => (v == null ? "-" : (v * 100).toFixed(1) + " %");
    const num = (v) => (v == null ? "-" : v.toFixed(1));
    out.appendChild(el("p", { class: "stars", "data-testid": "rating-stars" },
      r.stars == null ? "not rated" : "★".repeat(r.stars) + "☆".repeat(5 - r.stars)));
    const rows = [
      ["Tickets", r.tickets], ["Cancelled", r.cancelled], ["Score", num(r.score)],
      ["Acknowledged within SLA", pct(r.ack_within_sla)], ["On site within SLA", pct(r.on_site_within_sla)],
      ["Resolved within SLA", pct(r.resolved_within_sla)], ["Mean time to acknowledge (min)", num(r.mean_ack_min)],
      ["Mean time to resolve (min)", num(r.mean_resolve_min)], ["Repeat failures", r.repeat_failures],
    ];
    out.appendChild(el("table", {}, el("tbody", {}, rows.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v))))));
  }
  form.addEventListener("submit", (e) => { e.preventDefault(); show().catch((err) => { clear(out); out.appendChild(el("p", { class: "error" }, err.message)); }); });
  await show();
}

// ---- Crew board ----------------------------------------------------------------------

async function crewPage([station]) {
  if (!station) {
    const { compounds } = await api("/compounds");
    const stations = [...new Set(compounds.map((c) => c.station))].sort();
    main.appendChild(el("section", { class: "card" }, el("h2", {}, "Crew boards"),
      el("ul", {}, stations.map((s) => el("li", {}, el("a", { href: "#/crew/" + encodeURIComponent(s), "data-testid": "crew-link-" + s }, s))))));
    return;
  }
  const actor = el("input", { value: localStorage.getItem(ACTOR_KEY) || "dashboard", "data-testid": "actor", maxlength: 64 });
  actor.addEventListener("change", () => localStorage.setItem(ACTOR_KEY, actor.value.trim()));
  const msg = el("p", { class: "error", "data-testid": "crew-error" });
  const body = el("tbody", {});
  main.appendChild(el("section", { class: "card", "data-testid": "crew-board" },
    el("h2", {}, "Crew board: " + station),
    el("form", { class: "inline" }, el("label", {}, "Acting as", actor)), msg,
    el("table", {}, el("thead", {}, el("tr", {}, TICKET_HEAD.map((h) => el("th", {}, h)), el("th", {}, "Action"))), body)));
  let ticks = [];
  async function move(t, to) {
    msg.textContent = "";
    const who = actor.value.trim();
    if (!who) { msg.textContent = "Enter who is acting."; return; }
    try {
      await api("/tickets/" + t.id + "/transition", { method: "POST", body: { to, actor: who, note: "from the crew board" } });
    } catch (e) {
      msg.textContent = e.message;
    }
    await load();
  }
  async function load() {
    const { tickets } = await api("/tickets?active=true&station=" + encodeURIComponent(station));
    tickets.sort((a, b) => a.priority.localeCompare(b.priority) || a.opened_ms - b.opened_ms);
    clear(body);
    ticks = [];
    for (const t of tickets) {
      const buttons = (NEXT_STEPS[t.state] || []).map((to) =>
        el("button", { type: "button", "data-testid": "transition-" + t.id + "-" + to, onclick: () => move(t, to) }, STEP_LABEL[to] || to));
      const r = ticketRow(t, buttons);
      ticks.push(r.tick);
      body.appendChild(r.row);
    }
  }
  await load();
  every(1000, () => ticks.forEach((f) => f()));
  onTicketEvent((ev) => { if (ev.station === station) load().catch(() => {}); });
}

// ---- Start ---------------------------------------------------------------------------

if (token()) {
  loginBox.hidden = true;
  startStream();
  route();
} else {
  showLogin("");
}
