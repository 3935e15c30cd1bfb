/* The app shell offline (docs/WEB_APP.md, "Away from the office"): the
 * shell is served from the cache and refreshed from the node behind it;
 * the API is never cached here (records kept offline live in IndexedDB). */
'use strict';
const CACHE = 'outpost-shell-1';
const SHELL = ['./', 'index.html', 'app.css', 'app.js', 'icon.svg', 'manifest.webmanifest',
  'i18n/en.json', 'i18n/es.json', 'i18n/pt-BR.json', 'i18n/fr.json', 'i18n/de.json',
  'i18n/ru.json', 'i18n/sw.json', 'i18n/ar.json'];

self.addEventListener('install', (ev) => {
  ev.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (ev) => {
  ev.waitUntil(caches.keys().then((keys) => Promise.all(
    keys.filter((k) => k !== CACHE).map((k) => caches.delete(k)))).then(() => self.clients.claim()));
});

self.addEventListener('fetch', (ev) => {
  const url = new URL(ev.request.url);
  if (ev.request.method !== 'GET' || url.origin !== self.location.origin ||
      !url.pathname.startsWith('/app/'))
    return; /* the API and everything else: straight to the network */
  ev.respondWith(caches.open(CACHE).then(async (cache) => {
    const hit = await cache.match(ev.request, {ignoreSearch: true});
    const fresh = fetch(ev.request).then((r) => {
      if (r.ok) cache.put(ev.request, r.clone());
      return r;
    });
    if (hit) {
      fresh.catch(() => {});
      return hit;
    }
    return fresh;
  }));
});
