// Tickets: open tickets by priority, one ticket's page (place, device, condition,
// escalation, audit trail, a chart of the device) and the crew board, whose buttons
// appear only for a role that may move tickets.

import { el, clear, append, api, link, main, every, onTicketEvent, refresher, pageTitle, session, role, fmtTime,
  fmtDuration, metricValue, fmtValue, metricLabel, orderedMetrics, ACTOR_KEY } from "./core.js";
import { t } from "./i18n.js";
import { onCallCard } from "./people.js";
import { historyCard } from "./chart.js";

const NEXT_STEPS = {
  open: ["acknowledged"],
  acknowledged: ["dispatched", "on_hold"],
  dispatched: ["on_site", "on_hold"],
  // Resolving needs a note and a failure code: the crew app's form (the ticket's link).
  on_site: ["on_hold"],
  on_hold: ["dispatched"],
  resolved: ["closed"],
};

function nextDue(tk) {
  if (tk.acknowledged_ms == null) return { what: "acknowledge", at: tk.ack_due_ms };
  if (tk.on_site_due_ms != null && tk.on_site_ms == null) return { what: "on_site", at: tk.on_site_due_ms };
  if (tk.resolve_due_ms != null && tk.resolved_ms == null) return { what: "resolve", at: tk.resolve_due_ms };
  return null;
}

function countdown(tk) {
  const due = nextDue(tk);
  const span = el("span", { class: "due", "data-testid": "due-" + tk.id });
  const tick = () => {
    if (!due) { span.textContent = "-"; return; }
    const left = due.at - Date.now();
    span.textContent = t("due." + due.what) + ": " + fmtDuration(left);
    span.className = "due" + (left < 0 ? " late" : "");
  };
  tick();
  return { span, tick };
}

const where = (tk) => tk.building_name + (tk.location ? ", " + tk.location : "");

function ticketRow(tk, extra) {
  const c = countdown(tk);
  const row = el("tr", { "data-testid": "ticket-" + tk.id },
    el("td", {}, link(["ticket", String(tk.id)], "#" + tk.id, { "data-testid": "ticket-link-" + tk.id })),
    el("td", {}, el("span", { class: "prio " + tk.priority }, tk.priority)),
    el("td", {}, tk.title),
    el("td", {}, tk.device_id),
    el("td", {}, link(["compound", tk.compound], tk.compound_name), el("div", { class: "muted" }, where(tk))),
    el("td", {}, tk.station_name),
    el("td", { "data-testid": "ticket-state-" + tk.id }, tk.state),
    el("td", {}, fmtTime(tk.opened_ms)),
    el("td", {}, c.span),
    extra ? el("td", {}, extra) : null);
  return { row, tick: c.tick };
}

const HEAD = ["col.id", "col.prio", "col.title", "col.device", "col.compound", "col.station", "col.state", "col.opened", "col.sla"];
const table = (testid, rows, extra) => el("div", { class: "scroll" }, el("table", { "data-testid": testid },
  el("thead", {}, el("tr", {}, HEAD.map((h) => el("th", {}, t(h))), extra ? el("th", {}, t(extra)) : null)), el("tbody", {}, rows)));

export async function ticketsPage([by, device]) {
  const scope = by === "device" && device ? "&device_id=" + encodeURIComponent(device) : "";
  const box = el("section", { class: "card", "data-testid": "tickets" }, pageTitle(scope ? t("tickets.device", device) : t("tickets.title")));
  main.appendChild(box);
  const body = el("div", {});
  let ticks = [];
  const r = refresher(async () => {
    const { tickets } = await api("/tickets?active=true" + scope);
    clear(body);
    ticks = [];
    for (const p of ["P1", "P2", "P3"]) {
      const list = tickets.filter((x) => x.priority === p);
      body.appendChild(el("h3", {}, p + " (" + list.length + ")"));
      body.appendChild(table("tickets-" + p, list.map((x) => { const row = ticketRow(x); ticks.push(row.tick); return row.row; })));
    }
  });
  box.appendChild(r.box);
  box.appendChild(body);
  await r.go();
  every(1000, () => ticks.forEach((f) => f()));
  onTicketEvent(r.go);
}

/// The detail's `name=value` parts, an `event=` part apart: the readings are the device's
/// last ones when the rule fired, which for an event may predate it.
function parseDetail(detail) {
  const out = { event: null, readings: [] };
  for (const part of (detail || "").split(", ").filter(Boolean)) {
    const [k, ...v] = part.split("=");
    if (k === "event") out.event = v.join("=");
    else out.readings.push([k, v.join("=")]);
  }
  return out;
}

const row = (label, value, testid) => el("tr", {}, el("th", {}, label), el("td", { "data-testid": testid }, value));

/// The rows of a ticket's page from the ticket, its device and the device's state.
function ticketRows(tk, device, state) {
  const kind = device ? device.kind : tk.kind;
  const d = parseDetail(tk.detail);
  const values = (state && state.state && state.state.values) || {};
  const now = orderedMetrics(kind, values, 6).map((k) => metricLabel(k) + " = " + fmtValue(kind, k, metricValue(values[k]))).join(", ");
  const esc = tk.escalation_level <= 1 ? t("esc.1") : t("esc.n", tk.escalation_level - 1);
  return [
    row(t("ticket.where"), [tk.street_name, tk.compound_name, where(tk)].join(" \u00b7 "), "ticket-where"),
    row(t("ticket.device"), [tk.device_id + " (" + kind + ")"], "ticket-device"),
    row(t("ticket.priority"), el("span", { class: "prio " + tk.priority }, tk.priority), "ticket-priority"),
    row(t("ticket.state"), tk.state, "ticket-state"),
    row(t("station"), tk.station_name, "ticket-station"),
    row(t("ticket.escalation"), t("ticket.escalation.v", tk.escalation_level, esc), "ticket-escalation"),
    row(t("ticket.condition"), tk.condition_active ? t("cond.active", fmtTime(tk.last_seen_ms)) : t("cond.cleared", fmtTime(tk.cleared_ms)), "ticket-condition"),
    d.event ? row(t("ticket.event"), t("ticket.event.v", d.event), "ticket-event") : null,
    d.readings.length ? row(d.event ? t("ticket.readings.before") : t("ticket.readings"), readings(kind, d.readings), "ticket-readings") : null,
    now ? row(t("ticket.now"), now, "ticket-now") : null,
    row(t("ticket.opened"), fmtTime(tk.opened_ms), "ticket-opened"),
    row(t("ticket.occurrences"), String(tk.occurrences), "ticket-occurrences"),
  ];
}

const readings = (kind, list) => list.map(([k, v]) => metricLabel(k) + " = " +
  fmtValue(kind, k, v === "true" ? true : v === "false" ? false : isNaN(Number(v)) ? v : Number(v))).join(", ");

/// An audit note; the rules write the detail into the "raised" note, shown as the page shows it.
function auditNote(kind, a) {
  if (a.action !== "raised" || !/^\w+=/.test(a.note)) return a.note;
  const p = parseDetail(a.note);
  return [p.event ? t("ticket.event.v", p.event) : null,
    p.readings.length ? (p.event ? t("ticket.readings.before") : t("ticket.readings")) + ": " + readings(kind, p.readings) : null]
    .filter(Boolean).join(". ");
}

export async function ticketPage([id]) {
  if (!/^\d+$/.test(id || "")) throw new Error(t("error.nopage", "ticket " + (id || "")));
  const title = pageTitle("", "ticket-title");
  const problems = el("div", {});
  const kv = el("tbody", {});
  const audit = el("tbody", {});
  let device = null;
  async function load() {
    const detail = await api("/tickets/" + id);
    const tk = detail.ticket;
    // A resident's report has no device; any other failure is shown under the ticket.
    const errors = [];
    const optional = (p) => api(p).catch((e) => { if (e.status !== 404) errors.push(tk.device_id + ": " + e.message); return null; });
    const [dev, state] = await Promise.all([
      optional("/devices/" + encodeURIComponent(tk.device_id)),
      optional("/devices/" + encodeURIComponent(tk.device_id) + "/state"),
    ]);
    device = dev;
    const kind = dev ? dev.kind : tk.kind;
    title.textContent = t("ticket.title", tk.id) + " \u00b7 " + tk.title;
    clear(problems);
    errors.forEach((m) => problems.appendChild(el("p", { class: "error" }, m)));
    clear(kv);
    append(kv, ticketRows(tk, dev, state));
    clear(audit);
    append(audit, detail.audit.map((a) => el("tr", {}, el("td", {}, fmtTime(a.ts_ms)), el("td", {}, a.actor),
      el("td", {}, a.action + (a.to_state ? " \u2192 " + a.to_state : "")), el("td", {}, auditNote(kind, a)))));
    return tk;
  }
  const tk = await load();
  // Later loads follow the ticket's events; a failed one says so and keeps the page.
  const r = refresher(load);
  main.appendChild(el("section", { class: "card", "data-testid": "ticket-page" }, title, r.box, problems,
    el("table", { class: "kv" }, kv)));
  main.appendChild(el("section", { class: "card" }, el("h2", {}, t("ticket.audit")),
    el("div", { class: "scroll" }, el("table", { "data-testid": "ticket-audit" },
      el("thead", {}, el("tr", {}, ["audit.when", "audit.who", "audit.what", "audit.note"].map((h) => el("th", {}, t(h))))), audit))));
  onTicketEvent((ev) => { if (String(ev.ticket_id) === id) r.go(); });
  const cat = device && session.catalog[device.kind];
  if (!cat) return;
  const chartable = cat.metrics.filter((m) => ["float", "int", "bool"].includes(m.type));
  const first = cat.key_metrics.filter((k) => chartable.some((m) => m.name === k));
  const names = first.concat(chartable.map((m) => m.name).filter((n) => !first.includes(n)));
  const h = historyCard(t("ticket.chart", tk.device_id), names.map((n) => [n, metricLabel(n)]), async (metric, from, to) => {
    const res = await api("/devices/" + encodeURIComponent(tk.device_id) + "/history?metric=" + encodeURIComponent(metric) + "&from=" + from + "&to=" + to);
    return { [tk.device_id]: res.points };
  });
  main.appendChild(h.section);
  await h.draw();
}

export async function crewPage([station]) {
  if (!station) {
    const { compounds } = await api("/compounds");
    const stations = new Map(compounds.map((c) => [c.station, c.station_name]));
    main.appendChild(el("section", { class: "card" }, pageTitle(t("crew.boards")),
      el("ul", {}, [...stations].sort().map(([s, name]) => el("li", {}, link(["crew", s], name, { "data-testid": "crew-link-" + s }))))));
    return;
  }
  const canMove = session.me.may_move_tickets;
  const actor = el("input", { value: localStorage.getItem(ACTOR_KEY) || "", placeholder: session.me.name, "data-testid": "actor", maxlength: 64 });
  actor.addEventListener("change", () => localStorage.setItem(ACTOR_KEY, actor.value.trim()));
  const msg = el("p", { class: "error", "data-testid": "crew-error" });
  const body = el("tbody", {});
  const title = pageTitle(t("crew.title", station), "crew-title");
  const r = refresher(load);
  main.appendChild(el("section", { class: "card", "data-testid": "crew-board" }, title,
    canMove ? el("form", { class: "inline" }, el("label", {}, t("crew.actor"), actor)) : el("p", { class: "muted", "data-testid": "read-only" }, t("crew.readonly", t("role." + role()))),
    msg, r.box, el("div", { class: "scroll" }, el("table", {}, el("thead", {}, el("tr", {}, HEAD.map((h) => el("th", {}, t(h))), canMove ? el("th", {}, t("col.action")) : null)), body))));
  main.appendChild(onCallCard(station));
  let ticks = [];
  async function move(tk, to) {
    msg.textContent = "";
    const who = actor.value.trim() || session.me.name;
    try {
      // No canned note: notes are what the crew writes, in the crew app.
      await api("/tickets/" + tk.id + "/transition", { method: "POST", body: { to, actor: who } });
    } catch (e) {
      msg.textContent = e.message;
    }
    await r.go();
  }
  async function load() {
    const { tickets } = await api("/tickets?active=true&station=" + encodeURIComponent(station));
    tickets.sort((a, b) => a.priority.localeCompare(b.priority) || a.opened_ms - b.opened_ms);
    if (tickets.length) title.textContent = t("crew.title", tickets[0].station_name);
    clear(body);
    ticks = [];
    for (const tk of tickets) {
      const buttons = canMove ? (NEXT_STEPS[tk.state] || []).map((to) =>
        el("button", { type: "button", "data-testid": "transition-" + tk.id + "-" + to, onclick: () => move(tk, to) }, t("step." + to))) : null;
      const x = ticketRow(tk, buttons);
      ticks.push(x.tick);
      body.appendChild(x.row);
    }
  }
  await r.go();
  every(1000, () => ticks.forEach((f) => f()));
  onTicketEvent((ev) => { if (ev.station === station) r.go(); });
}
