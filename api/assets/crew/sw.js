// The crew app's service worker: keeps the app shell so the app opens without a
// connection. Shell files are fetched from the network first (a new hub's app reaches the
// phone) and from the cache when there is none. API calls are never cached here: the app
// keeps its own copy of what it last saw and queues actions (queue.js).

const CACHE = "steward-crew-v1";
const SHELL = ["/crew/", "/crew/index.html", "/crew/crew.css", "/crew/crew.js", "/crew/actions.js",
  "/crew/queue.js", "/crew/core.js", "/crew/chart.js", "/crew/i18n.js", "/crew/manifest.webmanifest",
  "/crew/icon-192.png", "/crew/icon-512.png"];

self.addEventListener("install", (e) => {
  e.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (e) => {
  e.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

self.addEventListener("fetch", (e) => {
  const url = new URL(e.request.url);
  if (e.request.method !== "GET" || url.origin !== location.origin || !url.pathname.startsWith("/crew")) return;
  e.respondWith(fetch(e.request).then((r) => {
    if (r.ok) { const copy = r.clone(); caches.open(CACHE).then((c) => c.put(e.request, copy)); }
    return r;
  }).catch(() => caches.match(e.request, { ignoreSearch: true })
    .then((hit) => hit || caches.match("/crew/"))));
});
