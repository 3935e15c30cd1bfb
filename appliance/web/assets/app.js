/* Outpost for field staff (docs/WEB_APP.md). Plain JS, no framework, no
 * outside requests: one page, views chosen by the hash, the node's JSON API
 * under /api/v1. Text from records goes in with textContent only. */
'use strict';

const API = '/api/v1';
const LANGS = ['en', 'es', 'pt-BR', 'fr', 'de', 'ru', 'sw', 'ar'];
const LOG_CHANNELS = ['visit', 'call', 'direct_mail', 'email', 'messaging_app'];
const HIDDEN_FIELDS = ['owner_id', 'custom'];
const PLURAL = {contact: 'contacts', organization: 'organizations', deal: 'deals', task: 'tasks'};
const S = {
  token: localStorage.getItem('outpost.token') || '',
  user: JSON.parse(localStorage.getItem('outpost.user') || 'null'),
  lang: 'en', msgs: {}, en: {}, layout: JSON.parse(localStorage.getItem('outpost.layout') || 'null'),
  layoutReady: null,
  online: true,
};

/* ---- small helpers ------------------------------------------------------- */

function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const kid of kids.flat()) {
    if (kid === null || kid === undefined || kid === false) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}

function t(key, vars) {
  let s = S.msgs[key] ?? S.en[key] ?? key;
  for (const [k, v] of Object.entries(vars || {})) s = s.replace('{' + k + '}', v);
  return s;
}

const fmtDate = (iso) => iso ? new Intl.DateTimeFormat(S.lang, {dateStyle: 'medium', timeStyle: iso.length > 10 ? 'short' : undefined}).format(new Date(iso)) : '';
function fmtMoney(minor, cur) {
  if (minor === null || minor === undefined) return '';
  if (!cur) return new Intl.NumberFormat(S.lang).format(minor);
  const nf = new Intl.NumberFormat(S.lang, {style: 'currency', currency: cur});
  const digits = nf.resolvedOptions().maximumFractionDigits;
  return nf.format(minor / 10 ** digits);
}

function main() { return document.getElementById('main'); }

function show(title, ...kids) {
  const m = main();
  const items = kids.flat(Infinity).filter((k) => k !== null && k !== undefined && k !== false);
  m.replaceChildren(h('h1', {id: 'title', tabindex: '-1', text: title}), ...items);
  document.title = title + ' · Outpost';
  document.getElementById('title').focus();
}

function status(text) { document.getElementById('status').textContent = text || ''; }

/* ---- the API -------------------------------------------------------------- */

class Offline extends Error {}

async function api(method, path, body, headers) {
  const hd = Object.assign({'Accept': 'application/json'}, headers || {});
  if (S.token) hd['Authorization'] = 'Bearer ' + S.token;
  if (body !== undefined) hd['Content-Type'] = 'application/json';
  let r;
  try {
    r = await fetch(API + path, {method, headers: hd, body: body === undefined ? undefined : JSON.stringify(body)});
  } catch (e) {
    setOnline(false);
    throw new Offline(e.message);
  }
  setOnline(true);
  let data = null;
  const text = await r.text();
  if (text) { try { data = JSON.parse(text); } catch (e) { data = {detail: text}; } }
  if (r.status === 401 && !path.startsWith('/session')) { signOut(); throw new Error(t('login.title')); }
  return {status: r.status, ok: r.ok, data, etag: r.headers.get('ETag')};
}

function detail(res) { return (res.data && (res.data.detail || res.data.title)) || String(res.status); }

function setOnline(on) {
  if (S.online === on) return;
  S.online = on;
  updateWaiting();
}

/* ---- IndexedDB: records viewed lately, and the outbox --------------------- */

let dbp = null;
function db() {
  dbp = dbp || new Promise((res, rej) => {
    const rq = indexedDB.open('outpost', 1);
    rq.onupgradeneeded = () => {
      rq.result.createObjectStore('records', {keyPath: 'key'});
      rq.result.createObjectStore('outbox', {keyPath: 'key'});
    };
    rq.onsuccess = () => res(rq.result);
    rq.onerror = () => rej(rq.error);
  });
  return dbp;
}

async function idb(store, mode, fn) {
  const d = await db();
  return new Promise((res, rej) => {
    const tx = d.transaction(store, mode);
    const out = fn(tx.objectStore(store));
    tx.oncomplete = () => res(out && 'result' in out ? out.result : undefined);
    tx.onerror = () => rej(tx.error);
  });
}

async function remember(entity, rec, extra) {
  const key = entity + '/' + rec.id;
  await idb('records', 'readwrite', (s) => s.put({key, entity, rec, extra: extra || {}, at: new Date().toISOString()}));
  const all = await idb('records', 'readonly', (s) => s.getAll());
  if (all.length > 200) {
    all.sort((a, b) => a.at.localeCompare(b.at));
    await idb('records', 'readwrite', (s) => all.slice(0, all.length - 200).forEach((r) => s.delete(r.key)));
  }
}
const recall = (entity, id) => idb('records', 'readonly', (s) => s.get(entity + '/' + id));

/* Answers that mean "not now" rather than "not this": sent again later. */
const RETRY = [408, 412, 425, 429];

/* A create goes to the outbox first, with its idempotency key, then out. */
/* onScreen: the form still shows what was typed, so a refusal answered
 * now is corrected there and not also kept for #/attention. */
async function capture(collection, body, label, onScreen) {
  const item = {key: crypto.randomUUID(), collection, body, label, at: new Date().toISOString()};
  await idb('outbox', 'readwrite', (s) => s.put(item));
  let sent = await flush();
  /* a flush already under way may have read the outbox before this item */
  if (!sent.has(item.key) && S.online) sent = await flush();
  const res = sent.get(item.key) || null;
  if (onScreen && res && !res.ok && res.status !== 409 && !RETRY.includes(res.status)) {
    await idb('outbox', 'readwrite', (s) => s.delete(item.key));
    updateWaiting();
  }
  return res;
}

let flushing = null;
function flush() {
  flushing = flushing || (async () => {
    const done = new Map();
    try {
      const items = (await idb('outbox', 'readonly', (s) => s.getAll())).filter((it) => !it.refused);
      items.sort((a, b) => a.at.localeCompare(b.at));
      for (const it of items) {
        let res;
        try {
          res = await api('POST', '/' + it.collection, it.body, {'Idempotency-Key': it.key});
        } catch (e) {
          if (e instanceof Offline) break;
          throw e;
        }
        if (res.ok || res.status === 409) {
          await idb('outbox', 'readwrite', (s) => s.delete(it.key));
          done.set(it.key, res);
        } else if (res.status >= 400 && res.status < 500 && !RETRY.includes(res.status)) {
          /* refused: held for the user (#/attention), not sent again until they act */
          it.refused = {status: res.status, detail: detail(res), at: new Date().toISOString(),
            fields: ((res.data && res.data.errors) || []).map((e) => e.pointer).filter(Boolean)};
          await idb('outbox', 'readwrite', (s) => s.put(it));
          done.set(it.key, res);
        } else {
          break;
        }
      }
    } finally {
      flushing = null;
      updateWaiting();
    }
    return done;
  })();
  return flushing;
}

async function updateWaiting() {
  let all = [];
  try { all = (await idb('outbox', 'readonly', (s) => s.getAll())) || []; } catch (e) { all = []; }
  const held = all.filter((it) => it.refused).length, n = all.length - held;
  const parts = [];
  if (!S.online) parts.push(t('offline'));
  if (n) parts.push(t('waiting', {n}));
  status(parts.join(' · '));
  if (held) {
    const el = document.getElementById('status');
    el.append(parts.length ? ' · ' : '', h('a', {href: '#/attention', id: 'attention-link', text: t('attention.count', {n: held})}));
  }
}

/* ---- language ------------------------------------------------------------- */

function pickLang() {
  const chosen = localStorage.getItem('outpost.lang');
  if (chosen && LANGS.includes(chosen)) return chosen;
  for (const l of navigator.languages || [navigator.language || 'en']) {
    if (LANGS.includes(l)) return l;
    const base = l.split('-')[0];
    const m = LANGS.find((x) => x === base || x.split('-')[0] === base);
    if (m) return m;
  }
  return 'en';
}

async function loadLang() {
  S.lang = pickLang();
  const get = async (l) => (await fetch('i18n/' + l + '.json')).json();
  const [en, msgs] = await Promise.all([get('en'), S.lang === 'en' ? null : get(S.lang)]);
  S.en = en;
  S.msgs = msgs || en;
  document.documentElement.lang = S.lang;
  document.documentElement.dir = S.msgs.dir || 'ltr';
  document.getElementById('lang-label').textContent = t('language');
  document.querySelector('.skip').textContent = t('skip');
  document.getElementById('lang').value = localStorage.getItem('outpost.lang') || '';
}

/* ---- the region's layout -------------------------------------------------- */

async function loadLayout() {
  try {
    const r = await api('GET', '/layout');
    if (r.ok) {
      S.layout = r.data;
      localStorage.setItem('outpost.layout', JSON.stringify(r.data));
    }
  } catch (e) { /* offline: the copy from last time */ }
}

function fieldsOf(entity) {
  const l = S.layout && S.layout.entities && S.layout.entities[entity];
  let fs = l ? l.fields.filter((f) => !HIDDEN_FIELDS.includes(f.name)) : [];
  const fmt = (S.layout && S.layout.address_format) || '';
  const order = [...fmt.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
  if (order.length) {
    const addr = fs.filter((f) => order.includes(f.name)).sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name));
    const first = fs.findIndex((f) => order.includes(f.name));
    if (first >= 0) fs = [...fs.slice(0, first).filter((f) => !order.includes(f.name)), ...addr, ...fs.slice(first).filter((f) => !order.includes(f.name))];
  }
  return fs;
}

function fieldLabel(f) {
  if (f.labels) return f.labels[S.lang] || f.labels[S.lang.split('-')[0]] || f.labels.en || f.name.replace(/^custom\./, '');
  return t('field.' + f.name);
}

function valueOf(rec, f) {
  if (f.name.startsWith('custom.')) return rec.custom ? rec.custom[f.name.slice(7)] : undefined;
  return rec[f.name];
}

function officeMark(f) {
  return f.office_only ? h('span', {class: 'office', title: t('office_only'), text: '⌂ ' + t('office_only')}) : null;
}

function shown(f, v) {
  if (v === null || v === undefined || v === '') return '';
  if (f.type === 'date' || f.type === 'time') return fmtDate(v);
  if (f.type === 'bool') return v ? '✓' : '✗';
  if (f.type === 'enum') return S.msgs['stage.' + v] || S.en['stage.' + v] ? t('stage.' + v) : v;
  return String(v);
}

/* ---- screens -------------------------------------------------------------- */

function nav() {
  const here = location.hash.split('/')[1] || '';
  const links = S.token ? [['search', 'nav.search'], ['pipeline', 'nav.pipeline'], ['tasks', 'nav.tasks']] : [];
  if (S.user && S.user.role === 'manager') links.push(['team', 'nav.team'], ['campaigns', 'nav.campaigns']);
  const n = document.getElementById('nav');
  n.replaceChildren(...links.map(([k, m]) => h('a', {href: '#/' + k, 'aria-current': here === k ? 'page' : null, text: t(m)})));
  if (S.token) n.append(h('a', {href: '#/logout', text: t('nav.logout') + (S.user ? ' (' + S.user.name + ')' : '')}));
}

function loginView() {
  const err = h('p', {class: 'error', role: 'alert'});
  const form = h('form', {onsubmit: async (ev) => {
    ev.preventDefault();
    err.textContent = '';
    try {
      const r = await api('POST', '/session', {name: form.elements.name.value, password: form.elements.password.value});
      if (!r.ok) { err.textContent = t('login.failed', {detail: detail(r)}); return; }
      S.token = r.data.token;
      S.user = r.data.user;
      localStorage.setItem('outpost.token', S.token);
      localStorage.setItem('outpost.user', JSON.stringify(S.user));
      S.layoutReady = loadLayout(); /* the search screen does not need it */
      location.hash = '#/search';
    } catch (e) { err.textContent = t('login.failed', {detail: e.message}); }
  }},
  h('label', {for: 'name', text: t('login.name')}), h('input', {id: 'name', name: 'name', autocomplete: 'username', required: true}),
  h('label', {for: 'password', text: t('login.password')}), h('input', {id: 'password', name: 'password', type: 'password', autocomplete: 'current-password', required: true}),
  h('button', {type: 'submit', id: 'login-submit', text: t('login.submit')}), err);
  show(t('login.title'), form);
}

function signOut() {
  if (S.token) api('DELETE', '/session').catch(() => {});
  S.token = '';
  S.user = null;
  localStorage.removeItem('outpost.token');
  localStorage.removeItem('outpost.user');
  location.hash = '#/login';
}

function searchView() {
  const list = h('ul', {class: 'hits', id: 'hits', 'aria-live': 'polite'});
  let timer = null, seq = 0;
  const run = async (q) => {
    const mine = ++seq;
    if (!q.trim()) { list.replaceChildren(); return; }
    try {
      const r = await api('GET', '/search?q=' + encodeURIComponent(q) + '&limit=20');
      if (mine !== seq) return;
      if (!r.ok) { list.replaceChildren(h('li', {class: 'error', text: detail(r)})); return; }
      if (!r.data.items.length) { list.replaceChildren(h('li', {text: t('search.none', {q})})); return; }
      list.replaceChildren(...r.data.items.map((it) => h('li', {},
        h('a', {href: '#/' + it.entity + '/' + it.id, text: it.label}),
        h('span', {class: 'kind', text: t('entity.' + it.entity)}))));
    } catch (e) { if (e instanceof Offline) list.replaceChildren(h('li', {text: t('offline')})); }
  };
  const input = h('input', {id: 'q', type: 'search', autocomplete: 'off', oninput: (ev) => {
    clearTimeout(timer);
    timer = setTimeout(() => run(ev.target.value), 200);
  }});
  show(t('search.title'),
    h('label', {for: 'q', text: t('search.label')}), input, list,
    h('div', {class: 'row'},
      h('a', {class: 'button', href: '#/new/contact', text: t('search.new_contact')}),
      h('a', {class: 'button secondary', href: '#/new/organization', text: t('search.new_organization')})));
  input.focus();
}

function fieldList(entity, rec) {
  const dl = h('dl', {class: 'fields'});
  for (const f of fieldsOf(entity)) {
    const v = valueOf(rec, f);
    if (f.name === 'restricted' || v === null || v === undefined || v === '') continue;
    dl.append(h('dt', {}, fieldLabel(f), officeMark(f)), h('dd', {'data-field': f.name, text: shown(f, v)}));
  }
  return dl;
}

function listSection(title, items, render) {
  return [h('h2', {text: title}), items.length ? h('ul', {class: 'list'}, items.map((i) => h('li', {}, render(i)))) : h('p', {class: 'muted', text: t('none')})];
}

async function loadRecord(entity, id, related) {
  const plural = entity === 'contact' ? 'contacts' : 'organizations';
  try {
    const r = await api('GET', '/' + plural + '/' + id);
    if (!r.ok) return {error: detail(r)};
    const extra = {};
    const rel = await Promise.all(related.map(([name, path]) => api('GET', path).then((x) => [name, x.ok ? (x.data.items || []) : []])));
    for (const [name, items] of rel) extra[name] = items;
    await remember(entity, r.data, extra);
    return {rec: r.data, extra, etag: r.etag};
  } catch (e) {
    if (!(e instanceof Offline)) throw e;
    const c = await recall(entity, id);
    return c ? {rec: c.rec, extra: c.extra, offline: c.at} : {error: t('not_cached')};
  }
}

function activityLine(a) {
  return [h('strong', {text: t('channel.' + a.channel)}), ' · ', fmtDate(a.occurred_at), a.subject ? ' · ' + a.subject : '', a.body ? ' — ' + a.body : ''];
}

function logForm(contactId, organizationId, after) {
  const msg = h('p', {role: 'status'});
  const text = h('input', {id: 'log-text', autocomplete: 'off'});
  const buttons = LOG_CHANNELS.map((ch) => h('button', {type: 'button', class: 'secondary', 'data-channel': ch, text: t('channel.' + ch), onclick: async () => {
    const body = {channel: ch, direction: 'outbound', occurred_at: new Date().toISOString()};
    if (contactId) body.contact_id = contactId;
    if (organizationId) body.organization_id = organizationId;
    if (text.value.trim()) body.subject = text.value.trim();
    const res = await capture('activities', body, t('channel.' + ch));
    msg.className = res && !res.ok && res.status !== 409 ? 'error' : 'okmsg';
    msg.textContent = !res ? t('queued') : res.ok ? t('log.logged') : t('error', {detail: detail(res)});
    text.value = '';
    if (res && res.ok && after) after();
  }}));
  return [h('h2', {text: t('section.log')}), h('label', {for: 'log-text', text: t('log.text')}), text, h('div', {class: 'row'}, buttons), msg];
}

function noteForm(link, after) {
  const msg = h('p', {role: 'status'});
  const area = h('textarea', {id: 'note-text', required: true});
  const form = h('form', {onsubmit: async (ev) => {
    ev.preventDefault();
    if (!area.value.trim()) return;
    const res = await capture('notes', Object.assign({body: area.value.trim()}, link), t('section.notes'));
    msg.textContent = !res ? t('queued') : res.ok ? t('saved') : t('error', {detail: detail(res)});
    area.value = '';
    if (res && res.ok && after) after();
  }}, h('label', {for: 'note-text', text: t('note.text')}), area, h('button', {type: 'submit', text: t('note.add')}), msg);
  return form;
}

function consentForm(contactId, after) {
  const rules = (S.layout && S.layout.consent) || [];
  if (!rules.length) return null;
  const msg = h('p', {role: 'status'});
  const sel = h('select', {id: 'consent-channel'}, rules.map((r) => h('option', {value: r.channel, text: t('channel.' + r.channel) + ' — ' + t('consent.mode.' + r.mode)})));
  const purpose = h('input', {id: 'consent-purpose', value: 'newsletter', required: true});
  return h('form', {onsubmit: async (ev) => {
    ev.preventDefault();
    const rule = rules.find((r) => r.channel === sel.value);
    const body = {channel: sel.value, purpose: purpose.value.trim(), method: rule.mode, kind: 'marketing',
      evidence: {source: 'field app', captured_by: S.user ? S.user.name : ''}};
    try {
      const res = await api('POST', '/contacts/' + contactId + '/consents', body);
      msg.textContent = res.ok ? t('saved') : t('error', {detail: detail(res)});
      if (res.ok && after) after();
    } catch (e) { msg.textContent = t('offline'); }
  }}, h('h2', {text: t('consent.add')}), h('label', {for: 'consent-channel', text: t('consent.channel')}), sel,
  h('label', {for: 'consent-purpose', text: t('consent.purpose')}), purpose, h('button', {type: 'submit', text: t('save')}), msg);
}

async function contactView(id) {
  const x = await loadRecord('contact', id, [
    ['deals', '/deals?contact=' + id], ['activities', '/activities?contact=' + id + '&sort=updated'],
    ['tasks', '/tasks?contact=' + id], ['notes', '/notes?contact=' + id], ['consents', '/contacts/' + id + '/consents']]);
  if (x.error) { show(t('entity.contact'), h('p', {class: 'error', text: x.error})); return; }
  const c = x.rec, e = x.extra;
  const name = [c.given_name, c.family_name].filter(Boolean).join(' ') || c.email || c.id;
  const reload = () => contactView(id);
  show(name,
    x.offline ? h('p', {class: 'banner', text: t('offline_copy', {when: fmtDate(x.offline)})}) : null,
    c.restricted ? h('p', {class: 'banner', id: 'restricted', text: '⌂ ' + t('restricted')}) : null,
    x.offline ? null : h('a', {class: 'button secondary', href: '#/edit/contact/' + id, text: t('edit')}),
    fieldList('contact', c),
    logForm(id, null, reload),
    listSection(t('section.activities'), e.activities || [], activityLine),
    listSection(t('section.deals'), e.deals || [], (d) => [h('a', {href: '#/edit/deal/' + d.id, text: d.title}), ' · ', t('stage.' + d.stage), ' · ', fmtMoney(d.amount_minor, d.currency)]),
    x.offline ? null : h('a', {class: 'button secondary', id: 'new-deal', href: '#/new/deal/' + id, text: t('search.new_deal')}),
    listSection(t('section.tasks'), e.tasks || [], (k) => [h('a', {href: '#/edit/task/' + k.id, text: k.title}), k.due_at ? ' · ' + t('tasks.due', {when: fmtDate(k.due_at)}) : '']),
    x.offline ? null : h('a', {class: 'button secondary', id: 'new-task', href: '#/new/task/' + id, text: t('search.new_task')}),
    listSection(t('section.notes'), e.notes || [], (n) => [fmtDate(n.created_at), ' — ', n.body]),
    noteForm({contact_id: id}, reload),
    listSection(t('section.consents'), e.consents || [], (k) => [t('channel.' + k.channel), ' · ', k.purpose, ' · ',
      h('span', {class: k.status === 'pending' ? 'pending' : '', 'data-status': k.status, text: t('consent.status.' + k.status)})]),
    x.offline ? null : consentForm(id, reload));
}

async function organizationView(id) {
  const x = await loadRecord('organization', id, [['deals', '/deals?organization=' + id],
    ['activities', '/activities?organization=' + id + '&sort=updated'], ['notes', '/notes?organization=' + id]]);
  if (x.error) { show(t('entity.organization'), h('p', {class: 'error', text: x.error})); return; }
  const o = x.rec, e = x.extra;
  const reload = () => organizationView(id);
  show(o.name,
    x.offline ? h('p', {class: 'banner', text: t('offline_copy', {when: fmtDate(x.offline)})}) : null,
    o.restricted ? h('p', {class: 'banner', text: '⌂ ' + t('restricted')}) : null,
    x.offline ? null : h('a', {class: 'button secondary', href: '#/edit/organization/' + id, text: t('edit')}),
    fieldList('organization', o),
    logForm(null, id, reload),
    listSection(t('section.deals'), e.deals || [], (d) => [d.title, ' · ', t('stage.' + d.stage), ' · ', fmtMoney(d.amount_minor, d.currency)]),
    listSection(t('section.activities'), e.activities || [], activityLine),
    listSection(t('section.notes'), e.notes || [], (n) => [fmtDate(n.created_at), ' — ', n.body]),
    noteForm({organization_id: id}, reload));
}

/* Money is typed in major units (12.50) and stored in minor units (1250). */
function minorDigits(cur) {
  try { return new Intl.NumberFormat('en', {style: 'currency', currency: cur || 'EUR'}).resolvedOptions().maximumFractionDigits; } catch (e) { return 2; }
}

/* A stored UTC time as a datetime-local input wants it, in local time. */
function localTime(iso) {
  const d = new Date(iso);
  return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
}

/* What a form asks for: no references (set from where the form was
 * opened) and the "keep in this office" box last. */
function formFields(entity) {
  const fs = fieldsOf(entity).filter((f) => f.type !== 'ref' && f.type !== 'object');
  return [...fs.filter((f) => f.name !== 'restricted'), ...fs.filter((f) => f.name === 'restricted')];
}

function input(f, value, cur) {
  const id = 'f-' + f.name.replace('.', '-');
  let el;
  if (f.type === 'enum' && f.values) {
    el = h('select', {id, name: f.name}, h('option', {value: ''}), f.values.map((v) => h('option', {value: v, text: S.en['stage.' + v] ? t('stage.' + v) : v})));
  } else if (f.type === 'bool') {
    el = h('input', {id, name: f.name, type: 'checkbox'});
    el.checked = !!value;
    return h('div', {}, h('label', {for: id}, el, ' ', fieldLabel(f), officeMark(f)));
  } else {
    const type = {email: 'email', phone: 'tel', date: 'date', integer: 'number', money: 'number', time: 'datetime-local'}[f.type] || 'text';
    el = h('input', {id, name: f.name, type, maxlength: f.max_length || null, autocomplete: 'off', step: f.type === 'money' ? 'any' : null});
  }
  if (f.type === 'time' && value) value = localTime(value);
  if (f.type === 'money' && value !== null && value !== undefined) value = value / 10 ** minorDigits(cur);
  if (value !== null && value !== undefined) el.value = value;
  if (f.required) el.required = true;
  if (f.pattern) el.dataset.pattern = f.pattern;
  return h('div', {}, h('label', {for: id}, fieldLabel(f), f.required ? ' *' : '', officeMark(f)), el);
}

function formValues(form, entity, rec) {
  const body = {}, errors = [];
  const cur = (form.elements.currency && form.elements.currency.value.trim().toUpperCase()) || (rec && rec.currency);
  for (const f of formFields(entity)) {
    const el = form.elements[f.name];
    if (!el) continue;
    let v = el.type === 'checkbox' ? el.checked : el.value.trim();
    if (v === '') v = null;
    if (f.type === 'integer') v = v === null ? null : Number(v);
    if (f.type === 'money') v = v === null ? null : Math.round(Number(v) * 10 ** minorDigits(cur));
    if (f.type === 'time' && v !== null) v = new Date(v).toISOString();
    if (v !== null && f.pattern && !(new RegExp(f.pattern)).test(v)) errors.push(fieldLabel(f));
    const old = rec ? valueOf(rec, f) : undefined;
    if (rec && (old ?? null) === v) continue;
    if (!rec && (v === null || v === false)) continue;
    if (f.name.startsWith('custom.')) (body.custom = body.custom || {})[f.name.slice(7)] = v;
    else body[f.name] = v;
  }
  return {body, errors};
}

async function editView(entity, id, parent) {
  const plural = PLURAL[entity];
  if (!plural) { show(t('edit'), h('p', {class: 'error', text: t('error', {detail: entity})})); return; }
  let rec = null, etag = null;
  if (id) {
    const r = await api('GET', '/' + plural + '/' + id);
    if (!r.ok) { show(t('edit'), h('p', {class: 'error', text: detail(r)})); return; }
    rec = r.data;
    etag = r.etag;
  }
  /* a deal or task is made from a contact's page and goes back there */
  const contactId = parent || (rec && rec.contact_id);
  const back = (saved) => contactId && (entity === 'deal' || entity === 'task') ? '#/contact/' + contactId :
    saved ? '#/' + entity + '/' + saved : id ? '#/' + entity + '/' + id : '#/search';
  const err = h('p', {class: 'error', role: 'alert', id: 'form-error'});
  const form = h('form', {novalidate: true, onsubmit: async (ev) => {
    ev.preventDefault();
    const {body, errors} = formValues(form, entity, rec);
    if (!id && parent) body.contact_id = parent;
    if (!id && entity === 'task' && S.user) body.assignee_id = S.user.id;
    if (errors.length) { err.textContent = t('error', {detail: errors.join(', ')}); return; }
    if (!id) {
      if (entity === 'contact') {
        const res = await capture('contacts', body, t('entity.contact'), true);
        if (!res) { err.className = 'okmsg'; err.textContent = t('queued'); return; }
        if (!res.ok) { err.textContent = t('error', {detail: detail(res)}); return; }
        location.hash = '#/contact/' + res.data.id;
        return;
      }
      const res = await api('POST', '/' + plural, body);
      if (!res.ok) { err.textContent = t('error', {detail: detail(res)}); return; }
      location.hash = back(res.data.id);
      return;
    }
    const res = await api('PATCH', '/' + plural + '/' + id, body, {'If-Match': etag});
    if (res.status === 412) { conflictView(entity, plural, id, body, back(id)); return; }
    if (!res.ok) { err.textContent = t('error', {detail: detail(res)}); return; }
    location.hash = back(id);
  }}, formFields(entity).map((f) => input(f, rec ? valueOf(rec, f) : undefined, rec && rec.currency)),
  h('button', {type: 'submit', text: t('save')}),
  h('a', {class: 'button secondary', href: back(null), text: t('cancel')}), err);
  show(t(id ? 'edit' : 'search.new_' + entity) + (rec ? ': ' + (rec.name || rec.title || [rec.given_name, rec.family_name].filter(Boolean).join(' ')) : ''), form);
}

/* A 412: the user's values beside the stored ones, and a choice. */
async function conflictView(entity, plural, id, mine, back) {
  const r = await api('GET', '/' + plural + '/' + id);
  const theirs = r.data;
  const rows = [];
  for (const f of formFields(entity)) {
    const custom = f.name.startsWith('custom.');
    const key = custom ? f.name.slice(7) : f.name;
    const has = custom ? mine.custom && key in mine.custom : key in mine;
    if (!has) continue;
    const yours = custom ? mine.custom[key] : mine[key];
    rows.push(h('tr', {}, h('th', {scope: 'row', text: fieldLabel(f)}), h('td', {class: 'yours', text: shown(f, yours)}), h('td', {class: 'theirs', text: shown(f, valueOf(theirs, f))})));
  }
  show(t('conflict.title'), h('p', {class: 'banner', role: 'alert', text: t('conflict.help')}),
    h('table', {}, h('thead', {}, h('tr', {}, h('th', {scope: 'col', text: t('conflict.field')}), h('th', {scope: 'col', text: t('conflict.yours')}), h('th', {scope: 'col', text: t('conflict.theirs')}))), h('tbody', {}, rows)),
    h('div', {class: 'row'},
      h('button', {type: 'button', id: 'keep-mine', text: t('conflict.keep_mine'), onclick: async () => {
        const res = await api('PATCH', '/' + plural + '/' + id, mine, {'If-Match': r.etag});
        if (res.status === 412) { conflictView(entity, plural, id, mine, back); return; }
        if (res.ok) location.hash = back;
      }}),
      h('button', {type: 'button', class: 'secondary', id: 'take-theirs', text: t('conflict.take_theirs'), onclick: () => { location.hash = back; }})));
}

async function pipelineView() {
  const r = await api('GET', '/deals?limit=500');
  const stages = ['lead', 'qualified', 'proposal', 'negotiation', 'won', 'lost'];
  const deals = r.ok ? r.data.items : [];
  show(t('pipeline.title'), h('div', {class: 'board'}, stages.map((s) => {
    const here = deals.filter((d) => d.stage === s);
    const total = here.filter((d) => d.amount_minor && d.currency);
    const cur = total.length ? total[0].currency : null;
    const sum = total.filter((d) => d.currency === cur).reduce((a, d) => a + d.amount_minor, 0);
    return h('section', {class: 'col', 'aria-label': t('stage.' + s)}, h('h2', {text: t('stage.' + s) + ' (' + here.length + ')'}),
      cur ? h('p', {class: 'muted', text: fmtMoney(sum, cur)}) : null,
      here.map((d) => h('div', {class: 'card'}, h('div', {text: d.title}), h('div', {class: 'muted', text: fmtMoney(d.amount_minor, d.currency)}),
        d.contact_id ? h('a', {href: '#/contact/' + d.contact_id, text: t('entity.contact')}) : d.organization_id ? h('a', {href: '#/organization/' + d.organization_id, text: t('entity.organization')}) : null)));
  })));
}

async function tasksView() {
  const me = S.user ? S.user.id : '';
  const r = await api('GET', '/tasks?status=open&limit=500' + (me ? '&assignee=' + me : ''));
  const end = new Date();
  end.setHours(23, 59, 59, 999);
  const items = (r.ok ? r.data.items : []).filter((k) => !k.due_at || new Date(k.due_at) <= end);
  show(t('tasks.title'), h('ul', {class: 'list'}, items.map((k) => h('li', {},
    h('strong', {text: k.title}), k.due_at ? ' · ' + t('tasks.due', {when: fmtDate(k.due_at)}) : '', ' ',
    k.contact_id ? h('a', {href: '#/contact/' + k.contact_id, text: t('entity.contact')}) : null, ' ',
    h('button', {type: 'button', class: 'secondary', text: t('tasks.done'), onclick: async () => {
      await api('PATCH', '/tasks/' + k.id, {status: 'done'}, {'If-Match': '"' + k.version + '"'});
      tasksView();
    }})))), items.length ? null : h('p', {class: 'muted', text: t('none')}));
}

async function teamView() {
  if (!S.user || S.user.role !== 'manager') { show(t('team.title'), h('p', {text: t('team.managers_only')})); return; }
  const [r, us] = await Promise.all([api('GET', '/activities?sort=updated&limit=1000'), api('GET', '/users')]);
  /* people by name; an id the list does not know (a user since deleted) by its end */
  const names = new Map((us.ok ? us.data.items : []).map((u) => [u.id, u.display_name || u.name]));
  const since = Date.now() - 7 * 86400000;
  const by = new Map();
  for (const a of (r.ok ? r.data.items : [])) {
    if (new Date(a.occurred_at).getTime() < since) continue;
    const k = a.owner_id || '—';
    const row = by.get(k) || {total: 0};
    row[a.channel] = (row[a.channel] || 0) + 1;
    row.total++;
    by.set(k, row);
  }
  const chans = ['visit', 'call', 'sms', 'messaging_app', 'email', 'direct_mail', 'meeting'];
  const nf = new Intl.NumberFormat(S.lang);
  show(t('team.title'), h('table', {}, h('thead', {}, h('tr', {}, h('th', {scope: 'col', text: t('team.user')}), chans.map((c) => h('th', {scope: 'col', text: t('channel.' + c)})), h('th', {scope: 'col', text: t('team.total')}))),
    h('tbody', {}, [...by].map(([owner, row]) => h('tr', {}, h('th', {scope: 'row', text: names.get(owner) || (owner === (S.user && S.user.id) ? S.user.name : owner.slice(-8))}),
      chans.map((c) => h('td', {text: nf.format(row[c] || 0)})), h('td', {text: nf.format(row.total)}))))));
}

/* Campaigns (docs/OUTREACH.md "Campaigns"), for managers: the list with
 * each campaign's figures, start and pause; a new campaign is stored as a
 * draft and its dry run shown before anyone starts it. */
const FIGURES = ['planned', 'sent', 'refused', 'delivered', 'bounced', 'unsubscribed', 'responded'];

async function campaignAction(id, action) {
  const r = await api('POST', '/campaigns/' + id + '/' + action);
  if (!r.ok) status(t('error', {detail: detail(r)}));
  return r;
}

function dryRunView(id, d) {
  const nf = new Intl.NumberFormat(S.lang);
  const reasons = Object.entries(d.refused_by_reason || {});
  return h('section', {id: 'dry-run', 'aria-live': 'polite'},
    h('h2', {text: t('campaigns.dry_run')}),
    h('p', {id: 'dry-run-send', text: t('campaigns.would_send', {n: nf.format(d.would_send), of: nf.format(d.segment)})}),
    h('p', {id: 'dry-run-refused', text: t('campaigns.refused', {n: nf.format(d.refused)})}),
    reasons.length ? h('ul', {}, reasons.map(([k, v]) => h('li', {text: t('campaigns.reason.' + k) + ': ' + nf.format(v)}))) : null,
    h('button', {type: 'button', id: 'campaign-start', text: t('campaigns.start'), onclick: async () => {
      const r = await campaignAction(id, 'start');
      if (r.ok) { location.hash = '#/campaigns'; campaignsView(); }
    }}));
}

function campaignForm() {
  const err = h('p', {class: 'error', role: 'alert', id: 'campaign-error'});
  const out = h('div');
  const field = (name, label, attrs) => h('label', {}, t(label), h('input', Object.assign({name}, attrs || {})));
  const tmpl = (n) => h('fieldset', {}, h('legend', {text: t('campaigns.template', {n})}),
    field('lang' + n, 'campaigns.language', {size: 3, maxlength: 3, required: n === 1}),
    field('subject' + n, 'campaigns.subject', {maxlength: 200}),
    h('label', {}, t('campaigns.body'), h('textarea', {name: 'body' + n, rows: 4})));
  const list = (v) => v.split(',').map((x) => x.trim()).filter(Boolean);
  const channel = h('select', {name: 'channel', id: 'campaign-channel'},
    ['email', 'sms', 'print', 'call'].map((c) => h('option', {value: c, text: t('campaigns.channel.' + c)})));
  const form = h('form', {id: 'campaign-form', onsubmit: async (ev) => {
    ev.preventDefault();
    err.textContent = '';
    out.replaceChildren();
    const e = form.elements;
    const templates = {};
    for (const n of [1, 2, 3]) {
      const l = e['lang' + n].value.trim();
      if (l) templates[l] = {subject: e['subject' + n].value, body: e['body' + n].value};
    }
    const segment = {};
    if (list(e.country.value).length) segment.country = list(e.country.value);
    if (list(e.language.value).length) segment.language = list(e.language.value);
    const body = {name: e.name.value, channel: e.channel.value, purpose: e.purpose.value, segment, templates,
      fallback_language: e.lang1.value.trim()};
    const r = await api('POST', '/campaigns', body);
    if (!r.ok) { err.textContent = detail(r); return; }
    const d = await api('POST', '/campaigns/' + r.data.id + '/dry-run');
    if (!d.ok) { err.textContent = detail(d); return; }
    out.replaceChildren(dryRunView(r.data.id, d.data));
  }},
  field('name', 'campaigns.name', {required: true, maxlength: 200}),
  h('label', {for: 'campaign-channel', text: t('campaigns.channel')}), channel,
  field('purpose', 'campaigns.purpose', {required: true, value: 'newsletter'}),
  field('country', 'campaigns.countries', {placeholder: 'DE, AT'}),
  field('language', 'campaigns.languages', {placeholder: 'de, pt'}),
  h('p', {class: 'muted', text: t('campaigns.slots')}),
  tmpl(1), tmpl(2), tmpl(3),
  h('button', {type: 'submit', id: 'campaign-create', text: t('campaigns.create')}), err);
  return [h('h2', {text: t('campaigns.new')}), form, out];
}

async function campaignsView() {
  if (!S.user || S.user.role !== 'manager') { show(t('campaigns.title'), h('p', {text: t('campaigns.managers_only')})); return; }
  const r = await api('GET', '/campaigns');
  const nf = new Intl.NumberFormat(S.lang);
  const rows = (r.ok ? r.data.campaigns : []).map((c) => h('tr', {id: 'campaign-' + c.id},
    h('th', {scope: 'row', text: c.name}), h('td', {text: t('campaigns.state.' + c.state)}),
    FIGURES.map((f) => h('td', {text: nf.format(c.figures[f])})),
    h('td', {}, ['draft', 'paused'].includes(c.state) ? h('button', {type: 'button', class: 'secondary', text: t('campaigns.start'),
      onclick: async () => { if ((await campaignAction(c.id, 'start')).ok) campaignsView(); }}) : null,
    ['running', 'scheduled'].includes(c.state) ? h('button', {type: 'button', class: 'secondary', text: t('campaigns.pause'),
      onclick: async () => { if ((await campaignAction(c.id, 'pause')).ok) campaignsView(); }}) : null)));
  show(t('campaigns.title'),
    rows.length ? h('table', {id: 'campaigns'}, h('thead', {}, h('tr', {}, h('th', {scope: 'col', text: t('campaigns.name')}),
      h('th', {scope: 'col', text: t('campaigns.state')}), FIGURES.map((f) => h('th', {scope: 'col', text: t('campaigns.figure.' + f)})),
      h('th', {scope: 'col', text: ''}))), h('tbody', {}, rows)) : h('p', {class: 'muted', text: t('campaigns.none')}),
    campaignForm());
}

/* Captures the node refused (a 4xx): the node's reason, the values as
 * captured to correct and send again, or discard. Nothing here is sent
 * without the user's tap. */
const SINGULAR = {contacts: 'contact', activities: 'activity', notes: 'note'};

async function attentionView() {
  const items = (await idb('outbox', 'readonly', (s) => s.getAll())).filter((it) => it.refused);
  items.sort((a, b) => a.at.localeCompare(b.at));
  show(t('attention.title'), items.length ? h('p', {text: t('attention.help')}) : h('p', {class: 'muted', id: 'attention-none', text: t('attention.none')}),
    items.map((it) => attentionItem(it)));
}

/* The editable values of a captured body: its text, number and yes/no
 * members and custom fields; links to other records (..._id) stay as
 * they were. */
function editable(body) {
  const out = [];
  for (const [k, v] of Object.entries(body)) {
    if (k.endsWith('_id')) continue;
    if (k === 'custom' && v && typeof v === 'object') {
      for (const [ck, cv] of Object.entries(v)) out.push(['custom.' + ck, cv]);
    } else if (v === null || ['string', 'number', 'boolean'].includes(typeof v)) out.push([k, v]);
  }
  return out;
}

function attentionItem(it) {
  const entity = SINGULAR[it.collection] || it.collection;
  const layout = new Map(fieldsOf(entity).map((f) => [f.name, f]));
  const msg = h('p', {role: 'status'});
  const inputs = editable(it.body).map(([name, v]) => {
    const id = 'att-' + it.key + '-' + name.replace('.', '-');
    const f = layout.get(name) || {name};
    const el = typeof v === 'boolean' ? h('input', {id, name, type: 'checkbox'}) : h('input', {id, name, autocomplete: 'off'});
    if (typeof v === 'boolean') el.checked = v;
    else el.value = v === null ? '' : String(v);
    if (it.refused.fields.some((p) => p === '/' + name.replace('.', '/'))) el.setAttribute('aria-invalid', 'true');
    return [name, v, h('div', {}, h('label', {for: id, text: layout.has(name) ? fieldLabel(f) : name}), el)];
  });
  const form = h('form', {class: 'attention', 'data-key': it.key, onsubmit: async (ev) => {
    ev.preventDefault();
    const body = JSON.parse(JSON.stringify(it.body));
    for (const [name, old] of inputs) {
      const el = form.elements[name];
      let v = el.type === 'checkbox' ? el.checked : el.value.trim();
      if (typeof old === 'number' && v !== '') v = Number(v);
      const custom = name.startsWith('custom.');
      const target = custom ? body.custom : body, key = custom ? name.slice(7) : name;
      if (v === '') delete target[key];
      else target[key] = v;
    }
    /* the same key: a refused create stored none, so a lost answer is still caught */
    const next = Object.assign({}, it, {body});
    delete next.refused;
    await idb('outbox', 'readwrite', (s) => s.put(next));
    let sent = await flush();
    if (!sent.has(it.key) && S.online) sent = await flush(); /* a flush under way read the outbox before */
    if (!sent.has(it.key)) { msg.textContent = t('queued'); return; }
    attentionView(); /* sent, or refused again and drawn with the new reason */
  }},
  h('h2', {text: t('entity.' + entity) + (it.label && it.label !== t('entity.' + entity) ? ' · ' + it.label : '') + ' · ' + fmtDate(it.at)}),
  h('p', {class: 'error reason', text: t('attention.reason', {status: it.refused.status, detail: it.refused.detail})}),
  inputs.map((x) => x[2]),
  h('div', {class: 'row'},
    h('button', {type: 'submit', class: 'resend', text: t('attention.resend')}),
    h('button', {type: 'button', class: 'secondary discard', text: t('attention.discard'), onclick: async () => {
      await idb('outbox', 'readwrite', (s) => s.delete(it.key));
      updateWaiting();
      attentionView();
    }})), msg);
  return form;
}

/* ---- routing -------------------------------------------------------------- */

async function route() {
  const [, view, a, b] = location.hash.split('/');
  nav();
  if (!S.token && view !== 'login') { location.hash = '#/login'; return; }
  try {
    if (S.layoutReady && ['contact', 'organization', 'new', 'edit', 'pipeline'].includes(view)) await S.layoutReady;
    switch (view) {
    case 'login': return loginView();
    case 'logout': return signOut();
    case 'contact': return await contactView(a);
    case 'organization': return await organizationView(a);
    case 'new': return await editView(a, null, b);
    case 'edit': return await editView(a, b);
    case 'pipeline': return await pipelineView();
    case 'tasks': return await tasksView();
    case 'team': return await teamView();
    case 'campaigns': return await campaignsView();
    case 'attention': return await attentionView();
    default: return searchView();
    }
  } catch (e) {
    show(t('offline'), h('p', {class: 'error', text: e instanceof Offline ? t('offline') : t('error', {detail: e.message})}));
  }
}

async function start() {
  await loadLang();
  document.getElementById('lang').addEventListener('change', async (ev) => {
    if (ev.target.value) localStorage.setItem('outpost.lang', ev.target.value);
    else localStorage.removeItem('outpost.lang');
    await loadLang();
    route();
  });
  /* the shell's cache fills after the first screen, not competing with it */
  const register = () => navigator.serviceWorker.register('sw.js').catch(() => {});
  if ('serviceWorker' in navigator) {
    if (document.readyState === 'complete') setTimeout(register, 500);
    else window.addEventListener('load', () => setTimeout(register, 500));
  }
  window.addEventListener('hashchange', route);
  window.addEventListener('online', () => flush());
  setInterval(() => flush(), 30000);
  if (S.token && !S.layout) S.layoutReady = loadLayout();
  if (!location.hash) location.hash = S.token ? '#/search' : '#/login';
  await route();
  flush().catch(() => {});
}

start();
