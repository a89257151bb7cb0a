// The public report form: residents report a fault for their compound (pre-selected by
// the QR code's `?compound=`), get a tracking code, follow the report with it and rate the
// repair once it is resolved. No token; text nodes only, never innerHTML.

import { t, lang, setLang, LANGS } from "/dashboard/i18n.js";

const CATEGORIES = ["lift", "fire_safety", "water_supply", "drainage", "gate", "lighting", "other"];
const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, String(v));
  }
  for (const c of children) node.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

async function call(method, path, body) {
  const r = await fetch("/api/v1/public" + path, {
    method,
    headers: body ? { "Content-Type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  let data = null;
  try { data = await r.json(); } catch (_) { data = null; }
  if (!r.ok) throw new Error(data && data.error ? data.error.message : String(r.status));
  return data;
}

function applyText() {
  document.documentElement.lang = lang();
  document.title = t("report.title");
  for (const n of document.querySelectorAll("[data-i18n]")) n.textContent = t(n.getAttribute("data-i18n"));
  const cat = $("category");
  const keep = cat.value;
  cat.replaceChildren(...CATEGORIES.map((c) => el("option", { value: c }, t("report.cat." + c))));
  if (keep) cat.value = keep;
}

const fmt = (ms) => (ms ? new Date(ms).toLocaleString() : "-");

async function track(code) {
  $("track-error").textContent = "";
  const out = $("track-result");
  out.replaceChildren();
  try {
    const r = await call("GET", "/reports/" + encodeURIComponent(code.trim()));
    const rows = [
      ["track.status", t("rstate." + r.status)],
      ["report.compound", r.compound_name],
      ["report.category", t("report.cat." + r.category)],
      ["track.reported", fmt(r.reported_ms)],
      ["track.resolved", fmt(r.resolved_ms)],
      ["track.note", r.closure_note || "-"],
    ];
    out.appendChild(el("table", { class: "kv" },
      ...rows.map(([k, v]) => el("tr", {}, el("th", {}, t(k)), el("td", {}, v)))));
    if (r.stars) out.appendChild(el("p", { "data-testid": "track-rated" }, t("rate.done", r.stars)));
    else if (r.may_rate) out.appendChild(rateForm(r.code));
  } catch (e) {
    $("track-error").textContent = e.message;
  }
}

function rateForm(code) {
  const stars = el("select", { "data-testid": "rate-stars" },
    ...[5, 4, 3, 2, 1].map((n) => el("option", { value: n }, "\u2605".repeat(n))));
  const comment = el("input", { maxlength: 500, "data-testid": "rate-comment" });
  const msg = el("p", { class: "error" });
  const form = el("form", {
    onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        await call("POST", "/reports/" + encodeURIComponent(code) + "/rating",
          { stars: Number(stars.value), comment: comment.value || undefined });
        track(code);
      } catch (e) { msg.textContent = e.message; }
    },
  }, el("label", {}, t("rate.stars"), " ", stars), " ", el("label", {}, t("rate.comment"), " ", comment), " ",
  el("button", { type: "submit", "data-testid": "rate-send" }, t("rate.send")), msg);
  return form;
}

function init() {
  const langSel = $("lang");
  for (const [k, name] of Object.entries(LANGS)) langSel.appendChild(el("option", { value: k }, name));
  langSel.value = lang();
  langSel.addEventListener("change", () => { setLang(langSel.value); applyText(); });
  applyText();
  const q = new URLSearchParams(location.search);
  if (q.get("compound")) { $("compound").value = q.get("compound"); $("compound").readOnly = true; }
  if (q.get("code")) { $("code").value = q.get("code"); track(q.get("code")); }
  $("report-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("report-error").textContent = "";
    const body = { compound: $("compound").value.trim(), category: $("category").value, description: $("description").value };
    if ($("location").value.trim()) body.location = $("location").value;
    if ($("contact").value.trim()) body.contact = $("contact").value;
    try {
      const r = await call("POST", "/reports", body);
      $("report-done").textContent = t("report.done", r.tracking_code);
      $("code").value = r.tracking_code;
      $("description").value = "";
    } catch (e) {
      $("report-error").textContent = e.message;
    }
  });
  $("track-form").addEventListener("submit", (ev) => { ev.preventDefault(); track($("code").value); });
}

init();
