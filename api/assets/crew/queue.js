// The offline queue: every action of the crew app is queued on the phone first
// (localStorage, so it survives a reload or a dead battery) and sent in order as soon as
// the hub answers. Each carries the state the user saw (`expected_state`), so a ticket
// that moved meanwhile is refused with 409: such a conflict, or any other refusal, stays
// in the queue, shown, until the user dismisses it. Nothing is dropped silently.

import { token } from "./core.js";

const KEY = "steward.crew.queue";
const listeners = new Set();

export function items() {
  try { return JSON.parse(localStorage.getItem(KEY) || "[]"); } catch (_) { return []; }
}

function save(list) {
  localStorage.setItem(KEY, JSON.stringify(list));
  for (const f of listeners) f();
}

export function onChange(f) { listeners.add(f); }

/// Queue a move of ticket `ticket` (the transition body) and try to send it.
export function enqueue(ticket, body) {
  const list = items();
  list.push({ qid: Date.now().toString(36) + Math.random().toString(36).slice(2, 8), ticket, body,
    status: "pending", message: "", queued_ms: Date.now() });
  save(list);
  flush();
}

export function discard(qid) { save(items().filter((i) => i.qid !== qid)); }

/// The state a ticket will be in once its queued moves are applied.
export function projected(ticket, state) {
  let s = state;
  for (const i of items()) if (i.ticket === ticket && i.status === "pending") s = i.body.to;
  return s;
}

export const pendingFor = (ticket) => items().filter((i) => i.ticket === ticket);

let flushing = false;

/// Send pending moves in order. A ticket with a refused move keeps its later moves back
/// until the refusal is dismissed; no connection (or a hub error) stops and retries later.
export async function flush() {
  if (flushing) return;
  flushing = true;
  try {
    for (;;) {
      const list = items();
      const held = new Set(list.filter((i) => i.status !== "pending").map((i) => i.ticket));
      const next = list.find((i) => i.status === "pending" && !held.has(i.ticket));
      if (!next) break;
      let r;
      try {
        r = await fetch("/api/v1/tickets/" + next.ticket + "/transition", {
          method: "POST",
          headers: { Authorization: "Bearer " + token(), "Content-Type": "application/json" },
          body: JSON.stringify(next.body),
        });
      } catch (_) {
        break;
      }
      if (r.status === 401 || r.status === 429 || r.status >= 500) break;
      let message = "";
      if (!r.ok) {
        try { message = (await r.json()).error.message; } catch (_) { message = r.status + " " + r.statusText; }
      }
      const now = items();
      const it = now.find((i) => i.qid === next.qid);
      if (it) {
        if (r.ok) now.splice(now.indexOf(it), 1);
        else { it.status = r.status === 409 ? "conflict" : "refused"; it.message = message; }
      }
      save(now);
    }
  } finally {
    flushing = false;
  }
}

window.addEventListener("online", () => flush());
setInterval(() => flush(), 4000);
