// What a crew does to a ticket: the moves its state allows (each queued, see queue.js),
// with the forms some need (dispatch to a named colleague, resolve with a note and a
// failure code, hold and cancel with a reason), and photos.

import { el, clear, api, token, session, ApiError } from "./core.js";
import { t } from "./i18n.js";
import * as queue from "./queue.js";

/// Mirrors `TicketState::can_go_to` (tickets/src/state.rs), so moves queued offline are
/// offered from the state the ticket will be in once the queue is sent.
export const NEXT = {
  open: ["acknowledged", "on_hold", "cancelled", "resolved"],
  acknowledged: ["dispatched", "on_site", "on_hold", "cancelled", "resolved"],
  dispatched: ["on_site", "on_hold", "cancelled", "resolved"],
  on_site: ["resolved", "on_hold"],
  on_hold: ["acknowledged", "dispatched", "on_site", "cancelled", "resolved"],
  resolved: ["closed"],
  closed: [],
  cancelled: [],
};

export const actor = () => localStorage.getItem("steward.actor") || (session.me && session.me.name) || "crew";

const field = (label, input) => el("label", { class: "field" }, el("span", {}, label), input);

/// The crew of a station from the roster, or null when the hub has no roster.
async function roster(station) {
  try {
    const r = await api("/stations/" + encodeURIComponent(station) + "/crew");
    return (r.members || []).map((m) => m.name).filter(Boolean);
  } catch (e) {
    if (e instanceof ApiError && (e.status === 404 || e.status === 0)) return null;
    throw e;
  }
}

/// The action card of a ticket: a button per allowed move; moves needing words open
/// their form in `panel`. `seen` is the state the user sees (after queued moves).
export function actionCard(tk, seen, failureCodes) {
  const panel = el("div", { class: "panel", "data-testid": "action-panel" });
  const msg = el("p", { class: "error", "data-testid": "action-error" });
  const send = (body) => {
    // The page redraws from the queue's change (crew.js), once no form is open.
    clear(panel);
    queue.enqueue(tk.id, Object.assign({ actor: actor(), expected_state: seen, note: "" }, body));
  };
  const form = (testid, fields, submit) => {
    clear(panel);
    msg.textContent = "";
    const f = el("form", { class: "stack", "data-testid": testid }, fields,
      el("div", { class: "buttons" },
        el("button", { type: "submit", class: "primary", "data-testid": testid + "-submit" }, t("crew.submit")),
        el("button", { type: "button", "data-testid": testid + "-back", onclick: () => clear(panel) }, t("crew.back"))));
    f.addEventListener("submit", (e) => { e.preventDefault(); const err = submit(); if (err) msg.textContent = err; });
    panel.appendChild(f);
    const first = f.querySelector("input,select,textarea");
    if (first) first.focus();
    // On a phone the form opens below the fold: bring its Send button into view.
    f.scrollIntoView({ block: "end" });
  };
  const reasonForm = (to, testid, hint) => {
    const reason = el("textarea", { rows: 2, maxlength: 2000, "data-testid": testid + "-reason", placeholder: hint });
    form(testid, [field(t("crew.reason"), reason)], () => {
      if (!reason.value.trim()) return t("crew.need.reason");
      send({ to, note: reason.value.trim() });
    });
  };
  const open = {
    dispatched: async () => {
      let names = null;
      try { names = await roster(tk.station); } catch (e) { msg.textContent = e.message; }
      const who = names && names.length
        ? el("select", { "data-testid": "dispatch-who" }, el("option", { value: "" }, t("crew.pick")), names.map((n) => el("option", { value: n }, n)))
        : el("input", { maxlength: 64, "data-testid": "dispatch-who", placeholder: t("crew.assignee.free") });
      form("dispatch", [field(t("crew.assignee"), who)], () => {
        if (!who.value.trim()) return t("crew.need.assignee");
        send({ to: "dispatched", assignee: who.value.trim() });
      });
    },
    resolved: () => {
      const note = el("textarea", { rows: 3, maxlength: 2000, "data-testid": "resolve-note", placeholder: t("crew.note.hint") });
      const code = el("select", { "data-testid": "resolve-code" }, el("option", { value: "" }, t("crew.pick")),
        failureCodes.map((c) => el("option", { value: c }, t("fc." + c) === "fc." + c ? c : t("fc." + c))));
      form("resolve", [field(t("crew.failure"), code), field(t("crew.note"), note)], () => {
        if (!code.value) return t("crew.need.code");
        if (!note.value.trim()) return t("crew.need.note");
        send({ to: "resolved", note: note.value.trim(), failure_code: code.value });
      });
    },
    on_hold: () => reasonForm("on_hold", "hold", t("crew.hold.hint")),
    cancelled: () => reasonForm("cancelled", "cancel", t("crew.cancel.hint")),
  };
  const label = (to) => (seen === "on_hold" && to !== "cancelled" && to !== "resolved") ? t("crew.resume", t("step." + to)) : t("step." + to);
  const buttons = (NEXT[seen] || []).map((to) => el("button", {
    type: "button", class: "act act-" + to, "data-testid": "act-" + to,
    onclick: () => (open[to] ? open[to]() : send({ to })),
  }, label(to)));
  return el("section", { class: "card", "data-testid": "actions" }, el("h2", {}, t("crew.actions")),
    buttons.length ? el("div", { class: "buttons" }, buttons) : el("p", { class: "muted" }, t("crew.nomoves")), msg, panel);
}

/// A picture as JPEG when the phone gave another type (HEIC, WebP...) or one too big to
/// send: drawn to a canvas and exported, at most 4000 px a side.
async function asUploadable(file) {
  const ok = (file.type === "image/jpeg" || file.type === "image/png") && file.size <= 10 * 1024 * 1024;
  if (ok) return file;
  const bmp = await createImageBitmap(file);
  const k = Math.min(1, 4000 / Math.max(bmp.width, bmp.height));
  const c = document.createElement("canvas");
  c.width = Math.round(bmp.width * k);
  c.height = Math.round(bmp.height * k);
  c.getContext("2d").drawImage(bmp, 0, 0, c.width, c.height);
  const blob = await new Promise((res) => c.toBlob(res, "image/jpeg", 0.85));
  if (!blob) throw new Error(t("photo.convert"));
  return new File([blob], (file.name || "photo").replace(/\.\w+$/, "") + ".jpg", { type: "image/jpeg" });
}

async function authedImage(url) {
  const r = await fetch(url, { headers: { Authorization: "Bearer " + token() } });
  if (!r.ok) throw new Error(r.status + " " + r.statusText);
  return URL.createObjectURL(await r.blob());
}

/// Photos of a ticket: thumbnails and an upload button (needs a connection).
export function photoCard(tk) {
  const grid = el("div", { class: "thumbs", "data-testid": "photos" });
  const msg = el("p", { class: "error", "data-testid": "photo-error" });
  const ok = el("p", { class: "ok", "data-testid": "photo-ok" });
  const input = el("input", { type: "file", accept: "image/*", capture: "environment", "data-testid": "photo-input", class: "file" });
  async function load() {
    const { photos } = await api("/tickets/" + tk.id + "/photos");
    clear(grid);
    for (const p of photos) {
      const img = el("img", { alt: p.sha256.slice(0, 12), "data-testid": "photo-" + p.sha256.slice(0, 12) });
      grid.appendChild(el("a", { href: "#", onclick: async (e) => { e.preventDefault(); window.open(await authedImage(p.url)); } }, img));
      authedImage(p.thumb_url).then((u) => { img.src = u; }).catch(() => {});
    }
  }
  input.addEventListener("change", async () => {
    msg.textContent = ""; ok.textContent = "";
    const file = input.files && input.files[0];
    if (!file) return;
    try {
      const up = await asUploadable(file);
      const body = new FormData();
      body.append("photo", up, up.name || "photo.jpg");
      body.append("actor", actor());
      let r;
      try {
        r = await fetch("/api/v1/tickets/" + tk.id + "/photos", { method: "POST", headers: { Authorization: "Bearer " + token() }, body });
      } catch (_) {
        throw new Error(t("photo.offline"));
      }
      const b = await r.json().catch(() => null);
      if (!r.ok) throw new Error(b && b.error ? b.error.message : r.status + " " + r.statusText);
      ok.textContent = t("photo.done", b.photo.sha256.slice(0, 12));
      input.value = "";
      await load();
    } catch (e) {
      msg.textContent = e.message;
    }
  });
  load().catch((e) => { msg.textContent = e instanceof ApiError && e.status === 0 ? t("photo.offline") : e.message; });
  return el("section", { class: "card", "data-testid": "photo-card" }, el("h2", {}, t("crew.photos")),
    el("label", { class: "button" }, t("photo.add"), input), msg, ok, grid);
}
