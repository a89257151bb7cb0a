// The estate (streets > communities > compounds with live counts) and a compound's
// device tiles, coloured by the worst of the device's active tickets and alarm readings.

import { el, clear, api, link, main, every, onTicketEvent, refresher, pageTitle, session, seesTickets,
  metricValue, fmtValue, metricLabel, alarmOf, orderedMetrics } from "./core.js";
import { t } from "./i18n.js";
import { historyCard } from "./chart.js";

const PRIO_RANK = { P1: 3, P2: 2, P3: 1 };
const SEV_RANK = { alarm: 3, warning: 2, notice: 1, ok: 0 };
const PRIO_SEV = { P1: "alarm", P2: "warning", P3: "notice" };

function countBy(list, key) {
  const out = {};
  for (const x of list) (out[x[key]] = out[x[key]] || []).push(x);
  return out;
}

export async function estatePage() {
  const { compounds } = await api("/compounds");
  const stamp = el("span", { class: "muted", "data-testid": "estate-updated" });
  const card = el("section", { class: "card", "data-testid": "estate" }, pageTitle(t("estate")), stamp);
  const cells = {};
  // The estate as a tree: street > community > compounds, by name.
  const tree = {};
  for (const c of compounds) {
    const street = (tree[c.street_name] = tree[c.street_name] || {});
    (street[c.community_name] = street[c.community_name] || []).push(c);
  }
  for (const [street, communities] of Object.entries(tree).sort()) {
    card.appendChild(el("h3", { "data-testid": "street-" + street }, t("street", street)));
    for (const [community, list] of Object.entries(communities).sort()) {
      const rows = list.map((c) => {
        cells[c.id] = { counts: el("td", { class: "counts", "data-testid": "counts-" + c.id }), tickets: el("td", { "data-testid": "active-" + c.id }) };
        return el("tr", { "data-testid": "compound-" + c.id },
          el("td", {}, link(["compound", c.id], c.name)),
          el("td", {}, link(["crew", c.station], c.station_name, { title: c.station })),
          el("td", {}, String(c.devices)), cells[c.id].counts, seesTickets() ? cells[c.id].tickets : null);
      });
      card.appendChild(el("div", { class: "community" }, el("h4", {}, t("community", community)),
        el("div", { class: "scroll" }, el("table", {},
          el("thead", {}, el("tr", {}, el("th", {}, t("compound")), el("th", {}, t("station")), el("th", {}, t("devices")),
            el("th", {}, t("status")), el("th", {}, t("tickets.active")))), el("tbody", {}, rows)))));
    }
  }
  const r = refresher(async () => {
    const [{ devices }, tickets] = await Promise.all([api("/liveness"), api("/tickets?active=true&limit=1000")]);
    const byCompound = countBy(devices, "compound");
    const ticketsBy = countBy(tickets.tickets, "compound");
    for (const [id, cell] of Object.entries(cells)) {
      const n = { online: 0, offline: 0, silent: 0, unknown: 0 };
      for (const d of byCompound[id] || []) n[d.liveness] = (n[d.liveness] || 0) + 1;
      clear(cell.counts);
      for (const k of ["online", "offline", "silent", "unknown"]) cell.counts.appendChild(el("span", { class: k }, t("n." + k, n[k])));
      clear(cell.tickets);
      const mine = ticketsBy[id] || [];
      for (const p of ["P1", "P2", "P3"]) {
        const k = mine.filter((x) => x.priority === p).length;
        if (k) cell.tickets.appendChild(el("span", { class: "prio " + p }, p + " \u00d7 " + k));
      }
    }
    stamp.textContent = t("updated", new Date().toLocaleTimeString());
  });
  card.insertBefore(r.box, card.children[1]);
  main.appendChild(card);
  await r.go();
  every(10000, r.go);
  onTicketEvent(r.go);
}

/// A tile's severity: the worst of its active tickets and its alarm readings.
function severity(d, state, tickets) {
  let sev = "ok", why = "";
  const values = (state && state.state && state.state.values) || {};
  const alarm = alarmOf(d.kind, values);
  if (alarm) { sev = alarm.severity; why = metricLabel(alarm.metric) + " = " + fmtValue(d.kind, alarm.metric, alarm.value); }
  const worst = tickets.slice().sort((a, b) => PRIO_RANK[b.priority] - PRIO_RANK[a.priority])[0];
  if (worst && SEV_RANK[PRIO_SEV[worst.priority]] > SEV_RANK[sev]) { sev = PRIO_SEV[worst.priority]; why = ""; }
  return { sev, why, worst };
}

function tile(d) {
  const status = el("span", { class: "liveness", "data-testid": "liveness-" + d.id }, "\u2026");
  const badge = el("div", { class: "badge", "data-testid": "badge-" + d.id });
  const body = el("dl", {});
  const tickets = seesTickets() ? link(["tickets", "device", d.id], t("tile.tickets"), { "data-testid": "tile-tickets-" + d.id }) : null;
  const node = el("div", { class: "tile", "data-testid": "tile-" + d.id, "data-severity": "ok" },
    el("h3", {}, d.id + " ", status), el("div", { class: "where" }, d.kind + " \u00b7 " + d.building_name + (d.location ? ", " + d.location : "")),
    badge, body, tickets);
  function update(state, active) {
    status.textContent = state.liveness;
    status.className = "liveness " + state.liveness;
    const { sev, why, worst } = severity(d, state, active);
    node.className = "tile sev-" + sev + " " + state.liveness;
    node.setAttribute("data-severity", sev);
    clear(badge);
    if (sev !== "ok") badge.appendChild(el("strong", {}, t("sev." + sev)));
    if (why) badge.appendChild(el("span", {}, " " + why));
    if (worst) badge.appendChild(el("span", {}, " ", link(["ticket", String(worst.id)], t("tile.ticket", worst.id, worst.priority), { "data-testid": "tile-ticket-" + d.id })));
    clear(body);
    const values = (state.state && state.state.values) || {};
    for (const k of orderedMetrics(d.kind, values, 8)) {
      body.appendChild(el("dt", { title: k }, metricLabel(k)));
      body.appendChild(el("dd", { "data-testid": "metric-" + d.id + "-" + k }, fmtValue(d.kind, k, metricValue(values[k]))));
    }
  }
  return { node, update };
}

export async function compoundPage([id]) {
  if (!id) throw new Error(t("error.nopage", "compound"));
  const { devices: all } = await api("/liveness");
  const devices = all.filter((d) => d.compound === id);
  if (!devices.length) throw new Error(t("error.nopage", "compound " + id));
  main.appendChild(pageTitle(devices[0].compound_name, "compound-title"));
  const tiles = el("div", { class: "tiles", "data-testid": "tiles" });
  const r = refresher(async () => {
    const [states, active] = await Promise.all([
      Promise.all(devices.map((d) => api("/devices/" + encodeURIComponent(d.id) + "/state"))),
      seesTickets() ? api("/tickets?active=true&compound=" + encodeURIComponent(id)) : { tickets: [] },
    ]);
    const byDevice = countBy(active.tickets, "device_id");
    devices.forEach((d, i) => tileFor[d.id].update(states[i], byDevice[d.id] || []));
  });
  main.appendChild(el("section", { class: "card" }, el("h2", {}, t("devices")), r.box, tiles));
  const tileFor = {};
  for (const d of devices) { tileFor[d.id] = tile(d); tiles.appendChild(tileFor[d.id].node); }
  await r.go();
  every(5000, r.go);
  onTicketEvent((ev) => { if (ev.compound === id) r.go(); });

  const kinds = [...new Set(devices.map((d) => d.kind))].filter((k) => session.catalog[k]);
  const options = kinds.flatMap((k) => session.catalog[k].metrics.filter((m) => m.type === "float" || m.type === "int")
    .map((m) => [k + ":" + m.name, k + " \u00b7 " + metricLabel(m.name) + (m.unit ? " (" + m.unit + ")" : "")]));
  if (!options.length) return;
  const h = historyCard(t("history"), options, async (value, from, to) => {
    const [kind, metric] = value.split(":");
    const res = await api("/compounds/" + encodeURIComponent(id) + "/history?kind=" + kind +
      "&metric=" + encodeURIComponent(metric) + "&from=" + from + "&to=" + to);
    return res.series;
  });
  main.appendChild(h.section);
  await h.draw();
  every(30000, h.draw);
}

