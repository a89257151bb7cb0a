// The dispatcher's desk (docs/dispatch.md): a ticket from a phone call, and the desk's
// actions on a ticket (transfer to another station, merge, link, cancel with a reason).
// Desktop layout; text nodes only, never innerHTML.

import { el, clear, api, main, pageTitle, fmtTime, link, ACTOR_KEY } from "./core.js";
import { t } from "./i18n.js";

const CATEGORIES = ["lift", "fire_safety", "water_supply", "drainage", "gate", "lighting", "other"];

function field(label, input) {
  return el("label", { class: "field" }, el("span", {}, t(label)), " ", input);
}

function actorInput() {
  const a = el("input", { maxlength: 64, value: localStorage.getItem(ACTOR_KEY) || "", "data-testid": "desk-actor" });
  a.addEventListener("change", () => localStorage.setItem(ACTOR_KEY, a.value.trim()));
  return a;
}

export async function deskPage(args) {
  const { compounds } = await api("/compounds");
  const stations = new Map(compounds.map((c) => [c.station, c.station_name]));
  const actor = actorInput();
  main.appendChild(el("section", { class: "card" }, pageTitle(t("desk.title")), field("desk.actor", actor)));
  main.appendChild(callForm(compounds, actor));
  const panel = el("section", { class: "card", "data-testid": "desk-ticket" });
  main.appendChild(panel);
  const id = el("input", { type: "number", min: 1, value: args[0] || "", "data-testid": "desk-ticket-id" });
  const open = el("form", { class: "inline", onsubmit: (e) => { e.preventDefault(); location.hash = "#/desk/" + encodeURIComponent(id.value); } },
    field("desk.ticket", id), el("button", { type: "submit", "data-testid": "desk-open" }, t("desk.load")));
  main.insertBefore(el("section", { class: "card" }, open), panel);
  if (args[0]) await showTicket(panel, Number(args[0]), stations, actor);
}

function callForm(compounds, actor) {
  const prio = el("select", { "data-testid": "call-priority" }, ["P1", "P2", "P3"].map((p) => el("option", { value: p }, p)));
  prio.value = "P2";
  const name = el("input", { maxlength: 64, required: true, "data-testid": "call-name" });
  const phone = el("input", { maxlength: 32, required: true, type: "tel", "data-testid": "call-phone" });
  const compound = el("select", { "data-testid": "call-compound" }, compounds.map((c) => el("option", { value: c.id }, c.name + " (" + c.id + ")")));
  const building = el("input", { maxlength: 64, "data-testid": "call-building" });
  const floor = el("input", { maxlength: 16, "data-testid": "call-floor" });
  const where = el("input", { maxlength: 200, "data-testid": "call-location" });
  const category = el("select", { "data-testid": "call-category" }, CATEGORIES.map((c) => el("option", { value: c }, t("report.cat." + c))));
  const desc = el("textarea", { maxlength: 1000, rows: 3, required: true, "data-testid": "call-description" });
  const msg = el("p", { "data-testid": "call-result" });
  const err = el("p", { class: "error", "data-testid": "call-error" });
  const qr = el("p", {});
  const showQr = () => {
    clear(qr);
    const base = "/api/v1/compounds/" + encodeURIComponent(compound.value) + "/report-qr";
    qr.appendChild(el("span", { class: "muted" }, t("desk.qr"), ": "));
    qr.appendChild(el("a", { href: base + ".svg", target: "_blank" }, "SVG"));
    qr.appendChild(document.createTextNode(" \u00b7 "));
    qr.appendChild(el("a", { href: base + ".png", target: "_blank" }, "PNG"));
  };
  compound.addEventListener("change", showQr);
  showQr();
  const form = el("form", {
    class: "stack",
    onsubmit: async (e) => {
      e.preventDefault();
      err.textContent = "";
      msg.textContent = "";
      const body = {
        priority: prio.value, caller: { name: name.value, phone: phone.value }, compound: compound.value,
        category: category.value, description: desc.value,
      };
      if (building.value.trim()) body.building = building.value.trim();
      if (floor.value.trim()) body.floor = floor.value.trim();
      if (where.value.trim()) body.location = where.value.trim();
      if (actor.value.trim()) body.actor = actor.value.trim();
      try {
        const tk = await api("/tickets", { method: "POST", body });
        clear(msg);
        msg.appendChild(link(["desk", String(tk.id)], t("desk.created", tk.id, tk.station_name)));
        desc.value = "";
      } catch (x) { err.textContent = x.message; }
    },
  }, field("desk.priority", prio), field("desk.caller.name", name), field("desk.caller.phone", phone),
  field("desk.compound", compound), field("desk.building", building), field("desk.floor", floor),
  field("desk.location", where), field("desk.category", category), field("desk.description", desc),
  el("button", { type: "submit", "data-testid": "call-create" }, t("desk.create")));
  return el("section", { class: "card" }, el("h2", {}, t("desk.new")), form, msg, err, qr);
}

async function showTicket(panel, id, stations, actor) {
  clear(panel);
  const d = await api("/tickets/" + id);
  const tk = d.ticket;
  const who = () => (actor.value.trim() ? { actor: actor.value.trim() } : {});
  const out = el("p", { "data-testid": "desk-action-result" });
  const err = el("p", { class: "error", "data-testid": "desk-action-error" });
  const act = (path, body) => async (e) => {
    e.preventDefault();
    err.textContent = "";
    try {
      await api("/tickets/" + id + path, { method: "POST", body: Object.assign(body(), who()) });
      await showTicket(panel, id, stations, actor);
      panel.appendChild(el("p", { "data-testid": "desk-action-result" }, t("desk.done", path.slice(1))));
    } catch (x) { err.textContent = x.message; }
  };
  const rows = [
    ["ticket.priority", tk.priority], ["desk.state", tk.state], ["desk.station", tk.station_name],
    ["col.compound", tk.compound_name], ["col.title", tk.title],
    ["desk.caller", d.caller ? d.caller.name + " \u00b7 " + d.caller.phone : "-"],
  ];
  const station = el("select", { "data-testid": "transfer-station" },
    [...stations].filter(([s]) => s !== tk.station).sort().map(([s, n]) => el("option", { value: s }, n)));
  const reason = el("input", { maxlength: 500, required: true, "data-testid": "transfer-reason" });
  const into = el("input", { type: "number", min: 1, required: true, "data-testid": "merge-into" });
  const note = el("input", { maxlength: 500, "data-testid": "merge-note" });
  const other = el("input", { type: "number", min: 1, required: true, "data-testid": "link-ticket" });
  const relation = el("select", { "data-testid": "link-relation" },
    ["related", "duplicate"].map((r) => el("option", { value: r }, t("desk.relation." + r))));
  const why = el("input", { maxlength: 500, required: true, "data-testid": "cancel-reason" });
  panel.appendChild(pageTitle(t("desk.actions", id), "desk-ticket-title"));
  panel.appendChild(el("table", { class: "kv" }, el("tbody", {}, rows.map(([k, v]) => el("tr", {}, el("th", {}, t(k)), el("td", {}, v))))));
  panel.appendChild(el("h3", {}, t("desk.links")));
  panel.appendChild(d.links.length
    ? el("ul", { "data-testid": "desk-links" }, d.links.map((l) => el("li", {}, "#" + l.from + " " + l.relation + " #" + l.to + " \u00b7 " + fmtTime(l.ts_ms))))
    : el("p", { class: "muted" }, t("desk.nolinks")));
  if (tk.state !== "resolved" && tk.state !== "closed" && tk.state !== "cancelled") {
    panel.appendChild(el("form", { class: "inline", onsubmit: act("/transfer", () => ({ station: station.value, reason: reason.value })) },
      field("desk.transfer", station), field("desk.reason", reason), el("button", { type: "submit", "data-testid": "transfer-go" }, t("desk.transfer.go"))));
    panel.appendChild(el("form", { class: "inline", onsubmit: act("/merge", () => ({ into: Number(into.value), note: note.value })) },
      field("desk.merge", into), field("desk.note", note), el("button", { type: "submit", "data-testid": "merge-go" }, t("desk.merge.go"))));
    panel.appendChild(el("form", { class: "inline", onsubmit: act("/cancel", () => ({ reason: why.value })) },
      field("desk.cancel", why), el("button", { type: "submit", "data-testid": "cancel-go" }, t("desk.cancel.go"))));
  }
  panel.appendChild(el("form", { class: "inline", onsubmit: act("/links", () => ({ ticket: Number(other.value), relation: relation.value })) },
    field("desk.link", other), relation, el("button", { type: "submit", "data-testid": "link-go" }, t("desk.link.go"))));
  panel.appendChild(out);
  panel.appendChild(err);
  panel.appendChild(el("p", {}, link(["ticket", String(id)], t("ticket.title", id))));
}
