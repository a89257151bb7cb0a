// The crew app: log in with the crew token, the station's tickets (most urgent first,
// resolved ones until closed), a ticket's page with everything needed on site, and the
// moves its state allows. What it last saw is kept on the phone, so with no connection
// it still shows the tickets and queues the crew's moves (queue.js).

import { el, clear, api, main, token, TOKEN_KEY, ACTOR_KEY, fmtTime, fmtDuration, session, loadSession,
  metricValue, fmtValue, metricLabel, orderedMetrics, setUnauthorizedHandler, ApiError } from "./core.js";
import { t, lang, setLang, LANGS } from "./i18n.js";
import { historyCard } from "./chart.js";
import * as queue from "./queue.js";
import { actionCard, photoCard } from "./actions.js";

const CACHE = "steward.crew.cache.";
const SHOWN = ["open", "acknowledged", "dispatched", "on_site", "on_hold", "resolved"];

/// GET through the phone's copy: fresh when the hub answers, the last copy (marked
/// stale) when there is no connection.
async function cached(path) {
  try {
    const body = await api(path);
    localStorage.setItem(CACHE + path, JSON.stringify(body));
    return { body, stale: false };
  } catch (e) {
    const copy = localStorage.getItem(CACHE + path);
    if (e instanceof ApiError && e.status === 0 && copy) return { body: JSON.parse(copy), stale: true };
    throw e;
  }
}

function nextDue(tk) {
  if (tk.state === "resolved" || tk.state === "closed" || tk.state === "cancelled") return null;
  if (tk.acknowledged_ms == null) return { what: "acknowledge", at: tk.ack_due_ms };
  if (tk.on_site_due_ms != null && tk.on_site_ms == null) return { what: "on_site", at: tk.on_site_due_ms };
  if (tk.resolve_due_ms != null && tk.resolved_ms == null) return { what: "resolve", at: tk.resolve_due_ms };
  return null;
}

const ticks = new Set();
setInterval(() => ticks.forEach((f) => f()), 1000);

function sla(tk, testid) {
  const span = el("span", { class: "sla", "data-testid": testid });
  const due = nextDue(tk);
  const tick = () => {
    if (!due) { span.textContent = tk.state === "resolved" ? t("crew.toclose") : "\u2013"; return; }
    const left = due.at - Date.now();
    span.textContent = t("due." + due.what) + " " + fmtDuration(left);
    span.className = "sla" + (left < 0 ? " late" : left < 15 * 60000 ? " soon" : "");
  };
  tick();
  ticks.add(tick);
  return span;
}

const stateText = (s) => t("state." + s);
const place = (tk) => [tk.compound_name, tk.building_name, tk.location].filter(Boolean).join(" \u00b7 ");

function pendingBadge(id) {
  const items = queue.pendingFor(id);
  if (!items.length) return null;
  const bad = items.some((i) => i.status !== "pending");
  return el("span", { class: "badge" + (bad ? " bad" : ""), "data-testid": "pending-" + id },
    bad ? t("queue.conflict.short") : t("queue.pending.n", items.length));
}

function staleNote(stale) {
  return stale ? el("p", { class: "caveat", "data-testid": "stale" }, t("crew.stale")) : null;
}

async function listPage() {
  const station = (session.me.stations || [])[0];
  const q = "/tickets?limit=500&state=" + SHOWN.join(",") + (station ? "&station=" + encodeURIComponent(station) : "");
  const { body, stale } = await cached(q);
  const rank = (tk) => { const d = nextDue(tk); return d ? d.at : Number.MAX_SAFE_INTEGER; };
  const tickets = body.tickets.sort((a, b) => a.priority.localeCompare(b.priority) || rank(a) - rank(b) || a.id - b.id);
  const title = tickets.length ? tickets[0].station_name : station || t("crew.all");
  const list = el("div", { class: "list", "data-testid": "ticket-list" }, tickets.map((tk) => {
    const seen = queue.projected(tk.id, tk.state);
    return el("a", { class: "tk " + tk.priority + (seen === "resolved" ? " done" : ""), href: "#/ticket/" + tk.id, "data-testid": "ticket-" + tk.id },
      el("div", { class: "row" }, el("span", { class: "prio " + tk.priority }, tk.priority),
        el("span", { class: "state", "data-testid": "state-" + tk.id }, stateText(seen)), sla(tk, "sla-" + tk.id)),
      el("div", { class: "title" }, "#" + tk.id + " " + tk.title),
      el("div", { class: "muted" }, place(tk)),
      pendingBadge(tk.id));
  }));
  main.appendChild(el("h2", { "data-testid": "list-title" }, t("crew.list", title)));
  main.appendChild(staleNote(stale) || document.createTextNode(""));
  main.appendChild(tickets.length ? list : el("p", { class: "muted", "data-testid": "no-tickets" }, t("crew.none")));
}

function queueCard(id) {
  const items = queue.pendingFor(id);
  if (!items.length) return null;
  return el("section", { class: "card queue", "data-testid": "queue" }, el("h2", {}, t("queue.title")),
    el("ul", {}, items.map((i) => el("li", { class: "q-" + i.status, "data-testid": "queued-" + i.body.to },
      el("strong", {}, t("step." + i.body.to)), " ",
      i.status === "pending" ? t("queue.pending") : (i.status === "conflict" ? t("queue.conflict", i.message) : t("queue.refused", i.message)),
      i.status === "pending" ? null : el("button", { type: "button", "data-testid": "dismiss-" + i.body.to,
        onclick: () => { queue.discard(i.qid); route(); } }, t("queue.dismiss"))))));
}

const kv = (rows) => el("dl", { class: "kv" }, rows.filter(Boolean).flatMap(([k, v, id]) => [el("dt", {}, k), el("dd", id ? { "data-testid": id } : {}, v)]));

async function deviceCard(tk) {
  if (!tk.device_id || tk.device_id.startsWith("resident:")) return null;
  const box = el("div", { "data-testid": "condition" }, t("crew.loading"));
  const card = el("section", { class: "card" }, el("h2", {}, t("crew.condition")), box);
  cached("/devices/" + encodeURIComponent(tk.device_id) + "/state").then(({ body }) => {
    clear(box);
    const values = (body.state && body.state.values) || {};
    const names = orderedMetrics(tk.kind, values, 6);
    box.appendChild(kv([[t("crew.liveness"), t("crew.live." + body.liveness) === "crew.live." + body.liveness ? body.liveness : t("crew.live." + body.liveness)],
      [t("crew.lastseen"), fmtTime(body.state && body.state.last_seen_ms)],
      ...names.map((n) => [metricLabel(n), fmtValue(tk.kind, n, metricValue(values[n]))])]));
  }).catch((e) => { box.textContent = e.message; });
  return card;
}

function chartCard(tk) {
  const cat = session.catalog && session.catalog[tk.kind];
  if (!cat || !navigator.onLine) return null;
  const chartable = cat.metrics.filter((m) => ["float", "int", "bool"].includes(m.type));
  const first = cat.key_metrics.filter((k) => chartable.some((m) => m.name === k));
  const names = first.concat(chartable.map((m) => m.name).filter((n) => !first.includes(n)));
  const h = historyCard(t("ticket.chart", tk.device_id), names.map((n) => [n, metricLabel(n)]), async (metric, from, to) => {
    const res = await api("/devices/" + encodeURIComponent(tk.device_id) + "/history?metric=" + encodeURIComponent(metric) + "&from=" + from + "&to=" + to);
    return { [tk.device_id]: res.points };
  });
  setTimeout(() => h.draw(), 0);
  return h.section;
}

async function ticketPage(id) {
  const { body: d, stale } = await cached("/tickets/" + id);
  const tk = d.ticket;
  const seen = queue.projected(tk.id, tk.state);
  const codes = d.failure_codes || [];
  main.appendChild(el("p", {}, el("a", { href: "#/", "data-testid": "back" }, "\u2190 " + t("crew.back.list"))));
  main.appendChild(staleNote(stale) || document.createTextNode(""));
  main.appendChild(el("section", { class: "card head " + tk.priority, "data-testid": "ticket-head" },
    el("div", { class: "row" }, el("span", { class: "prio " + tk.priority }, tk.priority),
      el("span", { class: "state", "data-testid": "ticket-state" }, stateText(seen)), sla(tk, "ticket-sla")),
    el("h2", { "data-testid": "ticket-title" }, "#" + tk.id + " " + tk.title),
    kv([[t("ticket.where"), place(tk), "where"],
      [t("ticket.device"), tk.device_id + (tk.kind && tk.kind !== "resident" ? " (" + tk.kind + ")" : "")],
      [t("ticket.escalation"), t("ticket.escalation.v", tk.escalation_level, tk.escalation_level > 1 ? t("esc.n", tk.escalation_level - 1) : t("esc.1")), "escalation"],
      [t("ticket.opened"), fmtTime(tk.opened_ms)],
      d.assignee ? [t("crew.assignee"), d.assignee, "assignee"] : null,
      d.failure_code ? [t("crew.failure"), d.failure_code, "failure-code"] : null,
      tk.detail ? [t("crew.detail"), tk.detail] : null])));
  const q = queueCard(tk.id);
  if (q) main.appendChild(q);
  main.appendChild(actionCard(tk, seen, codes));
  main.appendChild(photoCard(tk));
  const dev = await deviceCard(tk);
  if (dev) main.appendChild(dev);
  const chart = chartCard(tk);
  if (chart) main.appendChild(chart);
  main.appendChild(el("section", { class: "card" }, el("h2", {}, t("ticket.audit")),
    el("ol", { class: "audit", "data-testid": "audit" }, d.audit.slice().reverse().map((r) => el("li", {},
      el("div", { class: "muted" }, fmtTime(r.ts_ms) + " \u00b7 " + r.actor),
      el("div", {}, r.to_state ? (r.from_state ? stateText(r.from_state) + " \u2192 " : "") + stateText(r.to_state) : r.action),
      r.note ? el("div", { class: "note" }, r.note) : null)))));
}

// ---- Shell: login, language, connection, routing -------------------------------------

const loginBox = document.getElementById("login");
const net = document.getElementById("net");
const pending = document.getElementById("pending");
const logoutBtn = document.getElementById("logout");

function translateStatic() {
  document.documentElement.lang = lang();
  document.querySelectorAll("[data-i18n]").forEach((n) => { n.textContent = t(n.dataset.i18n); });
  showNet();
}

function showNet() {
  const on = navigator.onLine;
  net.textContent = on ? t("live.on") : t("live.off");
  net.className = "net " + (on ? "on" : "off");
  const n = queue.items().length;
  pending.hidden = n === 0;
  pending.textContent = t("queue.pending.n", n);
}

let routing = Promise.resolve();
export function route() {
  routing = routing.then(async () => {
    ticks.clear();
    const h = location.hash.replace(/^#\/?/, "").split("/");
    clear(main);
    try {
      if (h[0] === "ticket" && h[1]) await ticketPage(h[1]);
      else await listPage();
    } catch (e) {
      main.appendChild(el("p", { class: "error", "data-testid": "page-error" }, t("error.page", e.message)));
    }
    showNet();
  });
  return routing;
}

async function start() {
  translateStatic();
  if (!token()) { loginBox.hidden = false; return; }
  try {
    await loadSession();
    localStorage.setItem(CACHE + "session", JSON.stringify({ me: session.me, catalog: session.catalog }));
  } catch (e) {
    const copy = localStorage.getItem(CACHE + "session");
    if (!(e instanceof ApiError && e.status === 0 && copy)) {
      loginBox.hidden = false;
      document.getElementById("login-error").textContent = e.status === 401 ? t("login.refused") : t("login.unreachable", e.message);
      return;
    }
    Object.assign(session, JSON.parse(copy));
  }
  loginBox.hidden = true;
  logoutBtn.hidden = false;
  main.dataset.who = session.me.name;
  await route();
  queue.flush();
  listen();
}

/// Ticket events from the hub's alert stream redraw the page: a new P1 appears without
/// a reload. A ticket's page with a form open is left alone until the form is sent.
let stream = null;
function listen() {
  if (stream) stream.close();
  stream = new EventSource("/api/v1/alerts/stream?access_token=" + encodeURIComponent(token()));
  stream.addEventListener("ticket", (m) => {
    let ev;
    try { ev = JSON.parse(m.data); } catch (_) { return; }
    const h = location.hash.replace(/^#\/?/, "").split("/");
    if (h[0] === "ticket" && (String(ev.ticket_id) !== h[1] || document.querySelector("[data-testid=action-panel] form"))) return;
    route();
  });
}

document.getElementById("login-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const v = document.getElementById("token").value.trim();
  const who = document.getElementById("actor").value.trim();
  if (!v) return;
  localStorage.setItem(TOKEN_KEY, v);
  if (who) localStorage.setItem(ACTOR_KEY, who);
  document.getElementById("login-error").textContent = "";
  start();
});
logoutBtn.addEventListener("click", () => {
  localStorage.removeItem(TOKEN_KEY);
  if (stream) { stream.close(); stream = null; }
  logoutBtn.hidden = true;
  clear(main);
  loginBox.hidden = false;
});
setUnauthorizedHandler(() => { loginBox.hidden = false; });
const langSel = document.getElementById("lang");
for (const [k, name] of Object.entries(LANGS)) langSel.appendChild(el("option", { value: k }, name));
langSel.value = lang();
langSel.addEventListener("change", () => { setLang(langSel.value); translateStatic(); route(); });
document.getElementById("actor").value = localStorage.getItem(ACTOR_KEY) || "";
window.addEventListener("hashchange", route);
window.addEventListener("online", () => { showNet(); queue.flush(); });
window.addEventListener("offline", showNet);
// A queued move sent (or refused) changes what the page shows.
let lastQueue = JSON.stringify(queue.items());
queue.onChange(() => {
  showNet();
  const now = JSON.stringify(queue.items());
  if (now !== lastQueue) {
    lastQueue = now;
    if (loginBox.hidden && !document.querySelector("[data-testid=action-panel] form")) route();
  }
});
if ("serviceWorker" in navigator) navigator.serviceWorker.register("/crew/sw.js", { scope: "/crew/" }).catch(() => {});
start();
