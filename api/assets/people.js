// People of the estate (docs/people.md): who is on call at each station the token sees,
// and the people it may list (admin: everyone; crew: those its station uses). Contacts
// are shown as the API sends them: masked where the token may not see them in clear.

import { el, clear, api, main, refresher, pageTitle, role } from "./core.js";
import { t } from "./i18n.js";

const contact = (p) => [p.phone, p.email].filter(Boolean).join(" \u00b7 ");

/// The crew board's card: who is on call now, the head and the crew members of a station.
export function onCallCard(station) {
  const body = el("div", {});
  const card = el("section", { class: "card", "data-testid": "on-call-card" }, el("h2", {}, t("people.oncall")), body);
  api("/stations/" + encodeURIComponent(station) + "/crew").then((c) => {
    const onCall = c.members.filter((m) => c.on_call.includes(m.id));
    body.appendChild(el("p", { "data-testid": "on-call-now" },
      onCall.length ? onCall.map((m) => m.name + (contact(m) ? " (" + contact(m) + ")" : "")).join(", ")
        : c.on_call.length ? c.on_call.join(", ") : t("people.nobody")));
    if (c.head) body.appendChild(el("p", {}, t("people.head") + ": " + c.head.name + (contact(c.head) ? " (" + contact(c.head) + ")" : "")));
    if (c.members.length) {
      body.appendChild(el("table", { "data-testid": "crew-members" },
        el("thead", {}, el("tr", {}, ["people.name", "people.crew", "people.contact"].map((h) => el("th", {}, t(h))))),
        el("tbody", {}, c.members.map((m) => el("tr", {}, el("td", {}, m.name), el("td", {}, m.crew), el("td", {}, contact(m)))))));
    }
  }).catch(() => card.remove());
  return card;
}

export async function peoplePage() {
  const { compounds } = await api("/compounds");
  const stations = [...new Map(compounds.map((c) => [c.station, c.station_name]))].sort();
  const onCall = el("tbody", {});
  const people = el("tbody", {});
  const tz = el("p", { class: "muted", "data-testid": "people-timezone" });
  const r = refresher(async () => {
    const rows = await Promise.all(stations.map(([s, name]) =>
      api("/stations/" + encodeURIComponent(s) + "/on-call").then((o) => [name, o]).catch(() => null)));
    clear(onCall);
    for (const row of rows.filter(Boolean)) {
      const [name, o] = row;
      tz.textContent = t("people.timezone", o.timezone);
      onCall.appendChild(el("tr", { "data-testid": "on-call-" + o.station }, el("td", {}, name),
        el("td", {}, o.on_call.length ? o.on_call.map((p) => p.name).join(", ") : t("people.nobody")),
        el("td", {}, o.on_call.map(contact).filter(Boolean).join(", "))));
    }
    if (role() !== "admin" && role() !== "crew") return;
    const list = await api("/people");
    tz.textContent = t("people.timezone", list.timezone);
    clear(people);
    for (const p of list.people) {
      const roles = [].concat(p.crews, p.head_of.map((s) => t("people.head") + " " + s), p.captain_of.map((b) => t("people.captain") + " " + b));
      people.appendChild(el("tr", { "data-testid": "person-" + p.id }, el("td", {}, p.name), el("td", {}, p.id),
        el("td", {}, roles.join(", ")), el("td", {}, contact(p)), el("td", {}, p.channels.join(", "))));
    }
  });
  main.appendChild(el("section", { class: "card", "data-testid": "on-call" }, pageTitle(t("people.oncall")), tz, r.box,
    el("div", { class: "scroll" }, el("table", {},
      el("thead", {}, el("tr", {}, ["station", "people.name", "people.contact"].map((h) => el("th", {}, t(h))))), onCall))));
  if (role() === "admin" || role() === "crew") {
    main.appendChild(el("section", { class: "card", "data-testid": "people" }, el("h2", {}, t("people.title")),
      el("div", { class: "scroll" }, el("table", {},
        el("thead", {}, el("tr", {}, ["people.name", "people.id", "people.roles", "people.contact", "people.channels"].map((h) => el("th", {}, t(h))))), people))));
  }
  await r.go();
}
