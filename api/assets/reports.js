// The service rating, which says what it leaves out (pending tickets) and what "not
// rated" means, and the vendor's view of its own devices and their rejected payloads.

import { el, clear, api, main, every, refresher, pageTitle, session, fmtTime } from "./core.js";
import { t } from "./i18n.js";

export async function ratingPage() {
  const { compounds } = await api("/compounds");
  const stations = new Map(compounds.map((c) => [c.station, c.station_name]));
  const scope = el("select", { "data-testid": "rating-scope" },
    [...stations].sort().map(([s, name]) => el("option", { value: s }, t("rating.station", name))),
    compounds.map((c) => el("option", { value: c.id }, t("rating.compound", c.name))));
  const month = el("input", { type: "month", value: new Date().toISOString().slice(0, 7), "data-testid": "rating-month" });
  const out = el("div", { "data-testid": "rating" });
  const err = el("p", { class: "error", "data-testid": "rating-error" });
  const form = el("form", { class: "inline" }, el("label", {}, t("rating.scope"), scope), el("label", {}, t("rating.month"), month),
    el("button", { type: "submit", "data-testid": "rating-go" }, t("show")));
  main.appendChild(el("section", { class: "card" }, pageTitle(t("rating.title")), form, err, out));
  async function show() {
    const r = await api("/reports/rating?of=" + encodeURIComponent(scope.value) + "&month=" + encodeURIComponent(month.value));
    clear(out);
    err.textContent = "";
    const pct = (v) => (v == null ? "-" : (v * 100).toFixed(1) + " %");
    const num = (v) => (v == null ? "-" : v.toFixed(1));
    out.appendChild(el("p", { class: "stars", "data-testid": "rating-stars" },
      r.stars == null ? t("rating.notrated") : "\u2605".repeat(r.stars) + "\u2606".repeat(5 - r.stars),
      r.stars != null && r.pending ? el("span", { class: "provisional" }, t("rating.provisional", r.pending)) : null));
    if (r.stars == null) out.appendChild(el("p", { class: "note", "data-testid": "rating-notrated" }, t("rating.notrated.why")));
    out.appendChild(el("p", { class: r.pending ? "caveat" : "note", "data-testid": "rating-pending" },
      r.pending ? t("rating.pending", r.pending, r.pending_p1) : t("rating.nopending")));
    const rows = [
      ["rating.tickets", r.tickets], ["rating.cancelled", r.cancelled], ["rating.active", r.active], ["rating.score", num(r.score)],
      ["rating.ack", pct(r.ack_within_sla)], ["rating.onsite", pct(r.on_site_within_sla)],
      ["rating.resolved", pct(r.resolved_within_sla)], ["rating.mean_ack", num(r.mean_ack_min)],
      ["rating.mean_resolve", num(r.mean_resolve_min)], ["rating.repeat", r.repeat_failures],
    ];
    out.appendChild(el("table", { class: "kv" }, el("tbody", {}, rows.map(([k, v]) => el("tr", {}, el("th", {}, t(k)), el("td", {}, v))))));
  }
  form.addEventListener("submit", (e) => { e.preventDefault(); show().catch((x) => { clear(out); err.textContent = x.message; }); });
  await show();
}

export async function vendorPage() {
  const name = session.me.vendor || session.me.name;
  const body = el("tbody", {});
  const rejects = el("tbody", {});
  const none = el("p", { class: "muted", "data-testid": "vendor-norejects", hidden: true }, t("vendor.norejects"));
  const r = refresher(async () => {
    const [{ devices }, rj] = await Promise.all([api("/liveness"), api("/rejects?limit=100")]);
    clear(body);
    for (const d of devices) {
      body.appendChild(el("tr", { "data-testid": "vendor-device-" + d.id },
        el("td", {}, d.id), el("td", {}, d.kind), el("td", {}, d.compound_name + " \u00b7 " + d.building_name + (d.location ? ", " + d.location : "")),
        el("td", {}, el("span", { class: "liveness " + d.liveness }, d.liveness)),
        el("td", { "data-testid": "last-seen-" + d.id }, d.last_seen_ms ? fmtTime(d.last_seen_ms) : t("never"))));
    }
    clear(rejects);
    none.hidden = rj.rejects.length > 0;
    for (const x of rj.rejects) {
      rejects.appendChild(el("tr", { class: "reject" }, el("td", {}, x.ts ? new Date(x.ts).toLocaleString() : "-"),
        el("td", {}, x.device_id || "-"), el("td", {}, el("code", {}, x.reason)), el("td", {}, x.detail), el("td", {}, x.topic)));
    }
  });
  const th = (keys) => el("thead", {}, el("tr", {}, keys.map((k) => el("th", {}, t(k)))));
  main.appendChild(el("section", { class: "card", "data-testid": "vendor-view" }, pageTitle(t("vendor.title", name)), r.box,
    el("div", { class: "scroll" }, el("table", { "data-testid": "vendor-devices" },
      th(["col.device", "vendor.kind", "vendor.where", "status", "vendor.last_seen"]), body))));
  main.appendChild(el("section", { class: "card" }, el("h2", {}, t("vendor.rejects")), none,
    el("div", { class: "scroll" }, el("table", { "data-testid": "vendor-rejects" },
      th(["vendor.when", "col.device", "vendor.reason", "vendor.detail", "vendor.topic"]), rejects))));
  await r.go();
  every(10000, r.go);
}
