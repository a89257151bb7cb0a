// Steward dashboard: plain JavaScript modules, no build step. This module logs in, keeps
// the live alert stream, shows the pages the token's role may use and routes between them.

import { el, main, token, TOKEN_KEY, ACTOR_KEY, session, loadSession, newPage, streamListeners,
  setUnauthorizedHandler, role } from "./core.js";
import { t, lang, setLang, LANGS } from "./i18n.js";
import { estatePage, compoundPage } from "./estate.js";
import { ticketsPage, ticketPage, crewPage } from "./tickets.js";
import { ratingPage, vendorPage } from "./reports.js";
import { peoplePage } from "./people.js";
import { deskPage } from "./desk.js";

const liveBadge = document.getElementById("live");
const loginBox = document.getElementById("login");
const loginError = document.getElementById("login-error");
const nav = document.getElementById("nav");
const who = document.getElementById("who");

// Pages by role; the first is the start page. A vendor sees its own devices only.
const PAGES = {
  admin: ["estate", "tickets", "rating", "crew", "people", "desk"],
  manager: ["estate", "tickets", "rating", "crew", "people"],
  crew: ["estate", "tickets", "rating", "crew", "people"],
  vendor: ["vendor"],
  // A building captain reads its buildings' tickets (and files reports through the API).
  captain: ["tickets"],
  dispatcher: ["desk", "tickets", "estate"],
};
const ROUTES = {
  estate: ["estate", estatePage], compound: ["estate", compoundPage], tickets: ["tickets", ticketsPage],
  ticket: ["tickets", ticketPage], rating: ["rating", ratingPage], crew: ["crew", crewPage], vendor: ["vendor", vendorPage],
  people: ["people", peoplePage],
  desk: ["desk", deskPage],
};

function applyText() {
  document.documentElement.lang = lang();
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.getAttribute("data-i18n"));
}

function showLogin(message) {
  stopStream();
  session.me = null;
  loginBox.hidden = false;
  main.hidden = true;
  nav.hidden = true;
  who.textContent = "";
  newPage();
  loginError.textContent = message || "";
}
setUnauthorizedHandler(() => showLogin(t("login.refused")));

async function enter() {
  await loadSession();
  loginBox.hidden = true;
  main.hidden = false;
  nav.hidden = false;
  who.textContent = t("signed.as", session.me.name, t("role." + role()));
  who.setAttribute("data-role", role());
  for (const a of nav.querySelectorAll("a[data-page]")) a.hidden = !PAGES[role()].includes(a.getAttribute("data-page"));
  startStream();
  route();
}

document.getElementById("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const input = document.getElementById("token");
  localStorage.setItem(TOKEN_KEY, input.value.trim());
  // The name typed on a crew board belongs to the person who logged in before.
  localStorage.removeItem(ACTOR_KEY);
  input.value = "";
  try {
    await enter();
  } catch (e) {
    if (e.status !== 401) showLogin(t("login.unreachable", e.message));
  }
});

document.getElementById("logout").addEventListener("click", () => {
  localStorage.removeItem(TOKEN_KEY);
  localStorage.removeItem(ACTOR_KEY);
  location.hash = "";
  showLogin("");
});

const langSelect = document.getElementById("lang");
for (const [code, name] of Object.entries(LANGS)) langSelect.appendChild(el("option", { value: code }, name));
langSelect.value = lang();
langSelect.addEventListener("change", () => {
  setLang(langSelect.value);
  applyText();
  setLive(liveOn);
  if (session.me) { who.textContent = t("signed.as", session.me.name, t("role." + role())); route(); }
});

// ---- The live stream -------------------------------------------------------------------

let stream = null;

function startStream() {
  stopStream();
  // Vendors and captains get no alert stream, and no badge saying it is off.
  const streamless = role() === "vendor" || role() === "captain";
  liveBadge.hidden = streamless;
  if (streamless) return;
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

let liveOn = false;

function setLive(on) {
  liveOn = on;
  liveBadge.textContent = on ? t("live.on") : t("live.off");
  liveBadge.className = "live " + (on ? "on" : "off");
}

// ---- Router ----------------------------------------------------------------------------

function route() {
  if (!session.me) return;
  newPage();
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  const allowed = PAGES[role()];
  const name = parts[0] || allowed[0];
  const entry = ROUTES[name];
  for (const a of nav.querySelectorAll("a[data-page]")) a.classList.toggle("here", entry && a.getAttribute("data-page") === entry[0]);
  const fail = (msg) => main.appendChild(el("p", { class: "error", "data-testid": "page-error" }, msg));
  if (!entry) { fail(t("error.nopage", location.hash)); return; }
  if (!allowed.includes(entry[0])) { fail(t("error.role", t("role." + role()))); return; }
  entry[1](parts.slice(1)).catch((e) => fail(t("error.page", e.message)));
}

window.addEventListener("hashchange", route);

// ---- Start -----------------------------------------------------------------------------

applyText();
if (token()) {
  enter().catch((e) => { if (e.status !== 401) showLogin(t("login.unreachable", e.message)); });
} else {
  showLogin("");
}
