// The field staff web app in a real browser (docs/WEB_APP.md, "Tests"):
// Debian's chromium driven by playwright-core against outpostd on
// 127.0.0.1. Each scenario is what a person does; the assertions are what
// they would see, and what the node then holds. Screenshots of the main
// screens go to SHOTS_DIR. Ends with "N passed, N failed".
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {createRequire} from 'node:module';
import {needPackages} from './deps.mjs';

// lib.mjs imports playwright-core: loaded only once it is known to be there
needPackages();
const {apiLogin, launch, makeNode, startNode, tmpdir, SOURCE_ROOT} = await import('./lib.mjs');
const require = createRequire(import.meta.url);
const AXE_SRC = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const SHOTS = process.env.SHOTS_DIR || tmpdir('shots');
fs.mkdirSync(SHOTS, {recursive: true});

const ANA = ['ana', 'field', 'correct horse ana'];
const MARIA = ['maria', 'manager', 'correct horse maria'];
const results = [];
let node, node2, browser;

async function scenario(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    results.push([name, true]);
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    results.push([name, false]);
    console.log(`FAIL ${name}: ${e.stack || e}`);
  }
}

async function signIn(page, base, [name, , pw]) {
  await page.goto(base + '/');
  await page.waitForSelector('#name');
  await page.fill('#name', name);
  await page.fill('#password', pw);
  await page.click('button[type=submit]');
  await page.waitForSelector('#q');
}

/* Waits until the header's status says nothing is waiting (no
 * waitForFunction: the page's CSP allows no string evaluation). */
async function drained(page) {
  for (let i = 0; i < 100; i++) {
    if (!/waiting/.test(await page.textContent('#status'))) return;
    await page.waitForTimeout(100);
  }
  throw new Error('the outbox did not drain: ' + await page.textContent('#status'));
}

async function shot(page, name) {
  await page.screenshot({path: path.join(SHOTS, name + '.png'), fullPage: true});
}

async function axe(page, what) {
  // through the debugging protocol, which the page's CSP does not govern
  // (the app itself allows no injected script)
  const r = await page.evaluate(AXE_SRC + ';\naxe.run(document, {runOnly: [\'wcag2a\', \'wcag2aa\', \'wcag21aa\']})');
  const bad = r.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  assert.deepEqual(bad, [], `axe on ${what}`);
}

async function main() {
  const dir = tmpdir('browser');
  const db = makeNode(dir, 'EU-DE', [ANA, MARIA]);
  node = await startNode(db);
  // a second node whose policy forbids the birth date
  const dir2 = tmpdir('browser-forbid');
  const db2 = makeNode(dir2, 'EU-DE', [ANA]);
  fs.mkdirSync(path.join(dir2, 'policy'));
  const policy = fs.readFileSync(path.join(SOURCE_ROOT, 'schema/regions/EU-DE.yaml'), 'utf8')
    .replace(/^forbidden: \[\]$/m, 'forbidden:\n  - field: contact.birth_date\n    reason: "not asked in this office"\n    basis: "test"');
  assert.notEqual(policy.indexOf('contact.birth_date\n    reason'), -1);
  fs.writeFileSync(path.join(dir2, 'policy/EU-DE.yaml'), policy);
  node2 = await startNode(db2, {OUTPOST_POLICY: path.join(dir2, 'policy/EU-DE.yaml')});
  browser = await launch();
  // a step that fails says so in seconds, and the run stays within its budget
  const newContext = browser.newContext.bind(browser);
  browser.newContext = async (o) => {
    const c = await newContext(o);
    c.setDefaultTimeout(10000);
    return c;
  };
  const api = await apiLogin(node.base, ANA[0], ANA[2]);

  const ctx = await browser.newContext({locale: 'en-US', viewport: {width: 1000, height: 800}});
  const page = await ctx.newPage();
  const csp = [];
  page.on('console', (m) => { if (/Content.Security.Policy/i.test(m.text())) csp.push(m.text()); });
  let contactId = null;

  await scenario('the app is served with a strict CSP and a small first load', async () => {
    const resp = await page.goto(node.base + '/');
    assert.equal(resp.status(), 200);
    assert.match(resp.url(), /\/app\/$/);
    assert.match(resp.headers()['content-security-policy'], /script-src 'self';/);
    await page.waitForSelector('#name');
    const bytes = await page.evaluate(() => performance.getEntriesByType('resource')
      .concat(performance.getEntriesByType('navigation')).reduce((a, e) => a + e.transferSize, 0));
    assert.ok(bytes < 200 * 1024, `first load ${bytes} bytes`);
    console.log(`     first load: ${bytes} bytes on the wire`);
    await shot(page, 'login');
    await axe(page, 'sign in');
  });

  await scenario('sign in, by keyboard alone', async () => {
    await page.fill('#name', 'ana');
    await page.fill('#password', 'wrong password');
    await page.click('button[type=submit]');
    await page.waitForSelector('.error:text("Sign-in failed")');
    // from the top of the page: Tab to the skip link, the language, the
    // user name, the password; type; Enter signs in
    await page.goto(node.base + '/app/#/login');
    await page.waitForSelector('#name');
    await page.fill('#name', '');
    await page.fill('#password', '');
    await page.evaluate(() => document.activeElement && document.activeElement.blur());
    const focused = () => page.evaluate(() => document.activeElement.id || document.activeElement.className);
    for (let i = 0; i < 6 && (await focused()) !== 'skip'; i++) await page.keyboard.press('Tab');
    const order = [await focused()];
    for (let i = 0; i < 4; i++) {
      await page.keyboard.press('Tab');
      order.push(await focused());
    }
    assert.deepEqual(order, ['skip', 'lang', 'name', 'password', 'login-submit']);
    await page.focus('#name');
    await page.keyboard.type('ana');
    await page.keyboard.press('Tab');
    await page.keyboard.type(ANA[2]);
    await page.keyboard.press('Enter');
    await page.waitForSelector('#q');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'q');
    assert.equal(await page.textContent('h1'), 'Search contacts and organizations');
  });

  await scenario('create a contact', async () => {
    await page.click('a[href="#/new/contact"]');
    await page.waitForSelector('#f-given_name');
    await page.fill('#f-given_name', 'José');
    await page.fill('#f-family_name', 'Müller');
    await page.fill('#f-email', 'jose.mueller@example.org');
    await page.fill('#f-locality', 'Łódź');
    await page.click('button[type=submit]');
    await page.waitForURL(/#\/contact\//);
    await page.waitForSelector('h1:text("José Müller")');
    contactId = page.url().split('/').pop();
    const r = await api('GET', '/contacts/' + contactId);
    assert.equal(r.status, 200);
    assert.equal(r.data.locality, 'Łódź');
    await axe(page, 'contact page');
  });

  await scenario('search with and without diacritics', async () => {
    for (const q of ['jose', 'José', 'MULLER', 'lodz']) {
      await page.goto(node.base + '/app/#/search');
      await page.fill('#q', q);
      await page.waitForSelector('#hits a:text("José Müller")', {timeout: 5000});
    }
    await page.fill('#q', 'nobody-by-this-name');
    await page.waitForSelector('#hits li:text("Nothing found")');
    await page.fill('#q', 'mül');
    await page.waitForSelector('#hits a:text("José Müller")');
    await shot(page, 'search');
    await axe(page, 'search');
    await page.click('#hits a');
    await page.waitForSelector('h1:text("José Müller")');
    // organizations are found the same way and have their page
    const org = await api('POST', '/organizations', {name: 'Tkalnia Łódź', locality: 'Łódź'});
    assert.equal(org.status, 201);
    await page.goto(node.base + '/app/#/search');
    await page.fill('#q', 'tkalnia lodz');
    await page.click('#hits a:text("Tkalnia Łódź")');
    await page.waitForSelector('h1:text("Tkalnia Łódź")');
    assert.match(page.url(), /#\/organization\//);
    await page.waitForSelector('button[data-channel=visit]');
  });

  await scenario('edit with a conflict is shown, never overwritten', async () => {
    await page.goto(node.base + '/app/#/edit/contact/' + contactId);
    await page.waitForSelector('#f-job_title');
    await page.fill('#f-job_title', 'Buyer');
    // meanwhile a colleague (here the API) changes the record
    const cur = await api('GET', '/contacts/' + contactId);
    const ch = await api('PATCH', '/contacts/' + contactId, {job_title: 'Head of purchasing'}, {'If-Match': cur.etag});
    assert.equal(ch.status, 200);
    await page.click('button[type=submit]');
    await page.waitForSelector('h1:text("Someone else changed this record")');
    assert.equal(await page.textContent('td.yours'), 'Buyer');
    assert.equal(await page.textContent('td.theirs'), 'Head of purchasing');
    // nothing was overwritten yet
    assert.equal((await api('GET', '/contacts/' + contactId)).data.job_title, 'Head of purchasing');
    await shot(page, 'conflict');
    await axe(page, 'conflict');
    await page.click('#keep-mine');
    await page.waitForSelector('h1:text("José Müller")');
    assert.equal((await api('GET', '/contacts/' + contactId)).data.job_title, 'Buyer');
  });

  await scenario('consent capture follows the region: double opt-in stays pending', async () => {
    await page.goto(node.base + '/app/#/contact/' + contactId);
    await page.waitForSelector('#consent-channel');
    const offered = await page.locator('#consent-channel option').evaluateAll((os) => os.map((o) => o.value));
    assert.ok(offered.includes('email') && offered.includes('call'), offered.join(' '));
    await page.selectOption('#consent-channel', 'email'); // EU-DE: double opt-in
    await page.fill('#consent-purpose', 'newsletter');
    await page.click('form:has(#consent-channel) button[type=submit]');
    await page.waitForSelector('[data-status=pending]:has-text("pending confirmation")');
    const c = await api('GET', '/contacts/' + contactId + '/consents');
    assert.equal(c.data.items.length, 1);
    assert.equal(c.data.items[0].status, 'pending');
    assert.equal(c.data.items[0].method, 'double_opt_in');
  });

  await scenario('an activity captured offline arrives once on reconnect', async () => {
    await page.goto(node.base + '/app/#/contact/' + contactId);
    await page.waitForSelector('h1:text("José Müller")');
    await page.evaluate(() => navigator.serviceWorker.ready);
    const before = (await api('GET', '/activities?contact=' + contactId)).data.items.length;
    await ctx.setOffline(true);
    await page.fill('#log-text', 'Left the autumn flyer');
    await page.click('button[data-channel=direct_mail]');
    await page.waitForSelector('p:text("Saved on this device")');
    await page.waitForSelector('#status:text("1 waiting")');
    // still offline: the shell and the record come from the device
    await page.reload();
    await page.waitForSelector('h1:text("José Müller")');
    await page.waitForSelector('.banner:text("Offline copy")');
    await shot(page, 'offline');
    assert.equal((await api('GET', '/activities?contact=' + contactId)).data.items.length, before);
    await ctx.setOffline(false);
    await page.evaluate(() => window.dispatchEvent(new Event('online')));
    await drained(page);
    const after = (await api('GET', '/activities?contact=' + contactId)).data.items;
    assert.equal(after.length, before + 1);
    assert.equal(after.filter((a) => a.subject === 'Left the autumn flyer').length, 1);
    assert.equal(after.find((a) => a.subject === 'Left the autumn flyer').channel, 'direct_mail');
  });

  await scenario('a capture whose answer was lost is sent again and stored once', async () => {
    const c2 = await browser.newContext({locale: 'en-US', serviceWorkers: 'block'});
    const p2 = await c2.newPage();
    await signIn(p2, node.base, ANA);
    await p2.goto(node.base + '/app/#/contact/' + contactId);
    await p2.waitForSelector('h1:text("José Müller")');
    const before = (await api('GET', '/notes?contact=' + contactId)).data.items.length;
    let cut = 0;
    await p2.route('**/api/v1/notes', async (route) => {
      if (cut++ === 0) {
        await route.fetch(); // the node commits the note ...
        await route.abort('connectionreset'); // ... and the answer never arrives
      } else {
        await route.continue();
      }
    });
    await p2.fill('#note-text', 'Wants a second visit in spring');
    await p2.click('form button[type=submit]:text("Add a note")');
    await p2.waitForSelector('p:text("Saved on this device")');
    assert.equal((await api('GET', '/notes?contact=' + contactId)).data.items.length, before + 1);
    await p2.evaluate(() => window.dispatchEvent(new Event('online')));
    await drained(p2);
    assert.equal(cut, 2);
    const notes = (await api('GET', '/notes?contact=' + contactId)).data.items;
    assert.equal(notes.filter((n) => n.body === 'Wants a second visit in spring').length, 1);
    await c2.close();
  });

  await scenario('a capture the node refuses waits for the user: corrected and sent, or discarded', async () => {
    const posts = [];
    // requests that reached the node (an offline try fails before it)
    page.on('requestfinished', (rq) => { if (rq.method() === 'POST' && /\/api\/v1\/contacts$/.test(rq.url())) posts.push(rq.postData()); });
    const named = async (family) => (await api('GET', '/contacts?limit=500')).data.items.filter((c) => c.family_name === family);
    // captured away from the office with an e-mail the node refuses
    await page.goto(node.base + '/app/#/new/contact');
    await page.waitForSelector('#f-given_name');
    await ctx.setOffline(true);
    await page.fill('#f-given_name', 'Wanjiru');
    await page.fill('#f-family_name', 'Kamau');
    await page.fill('#f-email', 'wanjiru-at-example');
    await page.click('button[type=submit]');
    await page.waitForSelector('#form-error:text("Saved on this device")');
    await ctx.setOffline(false);
    await page.evaluate(() => window.dispatchEvent(new Event('online')));
    await page.waitForSelector('#attention-link:text("1 need attention")');
    assert.equal(posts.length, 1);
    assert.equal((await named('Kamau')).length, 0);
    // the node's reason, beside the values as captured
    await page.click('#attention-link');
    await page.waitForSelector('h1:text("Captures the office refused")');
    const reason = await page.textContent('form.attention .reason');
    assert.match(reason, /Refused \(4\d\d\)/);
    assert.match(reason, /email/i);
    assert.equal(await page.inputValue('form.attention input[name=email]'), 'wanjiru-at-example');
    assert.equal(await page.getAttribute('form.attention input[name=email]', 'aria-invalid'), 'true');
    await shot(page, 'attention');
    await axe(page, 'needs attention');
    // not sent again by itself: flushes pass it by
    await page.evaluate(() => window.dispatchEvent(new Event('online')));
    await page.waitForTimeout(500);
    assert.equal(posts.length, 1, 'a refused capture was sent again without the user');
    assert.equal(await page.locator('form.attention').count(), 1);
    // corrected and sent: stored once, the list empties
    await page.fill('form.attention input[name=email]', 'wanjiru@example.org');
    await page.click('form.attention button.resend');
    await page.waitForSelector('#attention-none');
    const kept = await named('Kamau');
    assert.equal(kept.length, 1);
    assert.equal(kept[0].email, 'wanjiru@example.org');
    assert.equal(posts.length, 2);
    assert.equal(await page.locator('#attention-link').count(), 0);
    // refused at once (online): corrected on the form, which still holds
    // the values, so nothing is kept for later
    await page.goto(node.base + '/app/#/new/contact');
    await page.waitForSelector('#f-given_name');
    await page.fill('#f-given_name', 'Otieno');
    await page.fill('#f-family_name', 'Odhiambo');
    await page.fill('#f-email', 'not an address');
    await page.click('button[type=submit]');
    await page.waitForSelector('#form-error.error:has-text("email")');
    assert.equal(await page.inputValue('#f-family_name'), 'Odhiambo');
    assert.equal(await page.locator('#attention-link').count(), 0);
    // refused after the office came back, then discarded: nothing left anywhere
    await ctx.setOffline(true);
    await page.click('button[type=submit]');
    await page.waitForSelector('#form-error:text("Saved on this device")');
    await ctx.setOffline(false);
    await page.evaluate(() => window.dispatchEvent(new Event('online')));
    await page.waitForSelector('#attention-link:text("1 need attention")');
    await page.click('#attention-link');
    await page.waitForSelector('form.attention .reason');
    await page.click('form.attention button.discard');
    await page.waitForSelector('#attention-none');
    assert.equal(await page.locator('#attention-link').count(), 0);
    assert.doesNotMatch(await page.textContent('#status'), /waiting|attention/);
    const left = await page.evaluate(() => new Promise((res, rej) => {
      const rq = indexedDB.open('outpost');
      rq.onsuccess = () => { const c = rq.result.transaction('outbox').objectStore('outbox').count(); c.onsuccess = () => res(c.result); c.onerror = () => rej(c.error); };
      rq.onerror = () => rej(rq.error);
    }));
    assert.equal(left, 0, 'the outbox is empty after the discard');
    assert.equal((await named('Odhiambo')).length, 0);
  });

  await scenario('a forbidden field is absent where the region forbids it', async () => {
    await page.goto(node.base + '/app/#/new/contact');
    await page.waitForSelector('#f-given_name');
    assert.equal(await page.locator('#f-birth_date').count(), 1); // allowed on the first node
    const c3 = await browser.newContext({locale: 'en-US'});
    const p3 = await c3.newPage();
    await signIn(p3, node2.base, ANA);
    await p3.goto(node2.base + '/app/#/new/contact');
    await p3.waitForSelector('#f-given_name');
    assert.equal(await p3.locator('#f-birth_date').count(), 0);
    assert.equal(await p3.locator('#f-job_title').count(), 1);
    // fields that never leave the office carry the mark (EU-DE: the street
    // and postal code are local_only), the others do not
    assert.equal(await p3.locator('label[for=f-street] .office').count(), 1);
    assert.equal(await p3.locator('label[for=f-postal_code] .office').count(), 1);
    assert.equal(await p3.locator('label[for=f-email] .office').count(), 0);
    // the address in the country's order: street, postal code, then city
    const order = await p3.locator('form input').evaluateAll((els) => els.map((e) => e.id));
    assert.ok(order.indexOf('f-street') < order.indexOf('f-postal_code') &&
      order.indexOf('f-postal_code') < order.indexOf('f-locality'), order.join(' '));
    await shot(p3, 'new-contact');
    await axe(p3, 'new contact form');
    // a restricted record says so
    const api2 = await apiLogin(node2.base, ANA[0], ANA[2]);
    const r = await api2('POST', '/contacts', {given_name: 'Kept', family_name: 'Here', restricted: true});
    assert.equal(r.status, 201);
    await p3.goto(node2.base + '/app/#/contact/' + r.data.id);
    await p3.waitForSelector('#restricted:has-text("never leaves this office")');
    await shot(p3, 'restricted');
    await c3.close();
  });

  await scenario('German and Swahili screens', async () => {
    const c4 = await browser.newContext({locale: 'de-DE'});
    const p4 = await c4.newPage();
    await p4.goto(node.base + '/');
    await p4.waitForSelector('h1:text("Anmelden")');
    assert.equal(await p4.getAttribute('html', 'lang'), 'de');
    await signIn(p4, node.base, ANA);
    assert.equal(await p4.textContent('h1'), 'Kontakte und Organisationen suchen');
    await p4.goto(node.base + '/app/#/contact/' + contactId);
    await p4.waitForSelector('h2:text("Aktivitäten")');
    await shot(p4, 'contact-de');
    // a custom field of the region, with its local label and its rule
    await p4.goto(node.base + '/app/#/new/organization');
    await p4.waitForSelector('label[for=f-custom-ust_id]:has-text("USt-IdNr.")');
    await p4.fill('#f-name', 'Weberei Süd');
    await p4.fill('#f-custom-ust_id', 'DE12');
    await p4.click('button[type=submit]');
    await p4.waitForSelector('#form-error:has-text("USt-IdNr.")');
    const orgs = (await api('GET', '/organizations?limit=100')).data.items;
    assert.equal(orgs.filter((o) => o.name === 'Weberei Süd').length, 0);
    await p4.fill('#f-custom-ust_id', 'DE123456789');
    await p4.click('button[type=submit]');
    await p4.waitForSelector('h1:text("Weberei Süd")');
    await p4.waitForSelector('dd[data-field="custom.ust_id"]:text("DE123456789")');
    await p4.goto(node.base + '/app/#/contact/' + contactId);
    await p4.waitForSelector('h2:text("Aktivitäten")');
    await p4.selectOption('#lang', 'sw');
    await p4.waitForSelector('h2:text("Shughuli")');
    assert.equal(await p4.getAttribute('html', 'lang'), 'sw');
    await p4.goto(node.base + '/app/#/search');
    await p4.waitForSelector('h1:text("Tafuta watu na mashirika")');
    await shot(p4, 'search-sw');
    await c4.close();
  });

  await scenario('an Arabic screen is laid out right to left', async () => {
    const c5 = await browser.newContext({locale: 'ar', viewport: {width: 900, height: 700}});
    const p5 = await c5.newPage();
    await p5.goto(node.base + '/');
    await p5.waitForSelector('h1:text("تسجيل الدخول")');
    assert.equal(await p5.getAttribute('html', 'dir'), 'rtl');
    await signIn(p5, node.base, ANA);
    await p5.goto(node.base + '/app/#/contact/' + contactId);
    await p5.waitForSelector('h1:text("José Müller")');
    const brand = await p5.locator('.brand').boundingBox();
    const h1 = await p5.locator('h1').boundingBox();
    const main = await p5.locator('main').boundingBox();
    assert.ok(brand.x > 900 / 2, `brand at x=${brand.x}: it starts on the right`);
    assert.ok(h1.x + h1.width > main.x + main.width - 20, 'the title hugs the right edge');
    const overflow = await p5.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
    assert.equal(overflow, false, 'nothing spills past the viewport');
    await shot(p5, 'contact-ar');
    await axe(p5, 'contact page in Arabic');
    await c5.close();
  });

  await scenario('a deal and a task made and edited from the contact page', async () => {
    await page.goto(node.base + '/app/#/contact/' + contactId);
    await page.click('#new-deal');
    await page.waitForSelector('#f-title');
    await page.fill('#f-title', 'Autumn order');
    await page.selectOption('#f-stage', 'proposal');
    await page.fill('#f-currency', 'EUR');
    await page.fill('#f-amount_minor', '1250');
    await page.click('button[type=submit]');
    await page.waitForSelector('h1:text("José Müller")');
    const deals = (await api('GET', '/deals?contact=' + contactId)).data.items;
    assert.equal(deals.length, 1);
    assert.equal(deals[0].amount_minor, 125000); // typed in euros, stored in cents
    assert.equal(deals[0].stage, 'proposal');
    await page.click('#new-task');
    await page.waitForSelector('#f-title');
    await page.fill('#f-title', 'Bring the samples');
    await page.click('button[type=submit]');
    await page.waitForSelector('a:text("Bring the samples")');
    await page.click('a:text("Autumn order")');
    await page.waitForSelector('#f-amount_minor');
    assert.equal(await page.inputValue('#f-amount_minor'), '1250');
    await page.selectOption('#f-stage', 'negotiation');
    await page.click('button[type=submit]');
    await page.waitForSelector('h1:text("José Müller")');
    assert.equal((await api('GET', '/deals/' + deals[0].id)).data.stage, 'negotiation');
  });

  await scenario('pipeline, tasks for today and the team view', async () => {
    const c6 = await browser.newContext({locale: 'de-DE'});
    const p6 = await c6.newPage();
    await signIn(p6, node.base, MARIA);
    await p6.goto(node.base + '/app/#/pipeline');
    await p6.waitForSelector('.col[aria-label="Verhandlung"] .card:has-text("Autumn order")');
    const money = await p6.locator('.card:has-text("Autumn order") .muted').textContent();
    assert.match(money, /1\.250,00\s€/);
    await shot(p6, 'pipeline');
    await axe(p6, 'pipeline');
    await p6.goto(node.base + '/app/#/team');
    await p6.waitForSelector('table tbody tr');
    // people by their names (GET /api/v1/users), never by a piece of an id
    const who = await p6.locator('tbody th[scope=row]').allTextContents();
    assert.ok(who.includes('ana'), 'team rows: ' + who.join(', '));
    assert.ok(who.every((w) => !/^[0-9a-f-]{8}$/.test(w)), 'team rows: ' + who.join(', '));
    await shot(p6, 'team');
    await axe(p6, 'team');
    await p6.goto(node.base + '/app/#/tasks');
    await p6.waitForSelector('h1:text("Meine Aufgaben für heute")');
    await c6.close();
    // ana's own tasks for today: the one made on the contact page
    await page.goto(node.base + '/app/#/tasks');
    await page.waitForSelector('li:has-text("Bring the samples")');
    await page.click('li:has-text("Bring the samples") button');
    await page.waitForSelector('p:text("None yet.")');
    assert.equal((await api('GET', '/tasks?contact=' + contactId)).data.items[0].status, 'done');
  });

  await scenario('a manager creates a campaign, sees its dry run, starts and pauses it', async () => {
    const c7 = await browser.newContext({locale: 'en-US'});
    const p7 = await c7.newPage();
    p7.on('console', (m) => { if (/Content.Security.Policy/i.test(m.text())) csp.push(m.text()); });
    await signIn(p7, node.base, MARIA);
    const mapi = await apiLogin(node.base, MARIA[0], MARIA[2]);
    await p7.click('a[href="#/campaigns"]');
    await p7.waitForSelector('h1:text("Campaigns")');
    await p7.waitForSelector('p:text("No campaigns yet.")');
    await p7.fill('input[name=name]', 'Winter');
    await p7.fill('input[name=lang1]', 'en');
    await p7.fill('input[name=subject1]', 'News for {{given_name}}');
    await p7.fill('textarea[name=body1]', 'Hello {{vorname}}');
    await p7.click('#campaign-create');
    // the node names what is wrong, and keeps nothing
    await p7.waitForSelector('#campaign-error:has-text("templates.en.body: unknown slot {{vorname}}")');
    assert.equal((await mapi('GET', '/campaigns')).data.campaigns.length, 0);
    await p7.fill('textarea[name=body1]', 'Hello {{name}},\nwinter is here.');
    await p7.fill('input[name=lang2]', 'de');
    await p7.fill('input[name=subject2]', 'Neues für {{given_name}}');
    await p7.fill('textarea[name=body2]', 'Hallo {{given_name}}');
    await p7.click('#campaign-create');
    await p7.waitForSelector('#dry-run');
    const list = (await mapi('GET', '/campaigns')).data.campaigns;
    assert.equal(list.length, 1);
    assert.equal(list[0].state, 'draft');
    const dry = (await mapi('POST', '/campaigns/' + list[0].id + '/dry-run')).data;
    assert.ok(dry.segment > 0, JSON.stringify(dry));
    assert.equal(await p7.textContent('#dry-run-send'),
      `${dry.would_send} of ${dry.segment} contacts would get the message.`);
    assert.equal(await p7.textContent('#dry-run-refused'), `${dry.refused} are refused:`);
    // nobody here has consented to e-mail: every refusal has its reason
    assert.equal(dry.would_send, 0);
    await p7.waitForSelector('#dry-run li:has-text("no consent on file")');
    await shot(p7, 'campaign-dry-run');
    await axe(p7, 'campaign dry run');
    await p7.click('#campaign-start');
    await p7.waitForSelector(`#campaign-${list[0].id} td:text("running")`);
    assert.equal((await mapi('GET', '/campaigns/' + list[0].id)).data.state, 'running');
    const cells = await p7.locator(`#campaign-${list[0].id} td`).allTextContents();
    assert.equal(cells.length, 9, cells.join('|')); // state, 7 figures, the button
    await p7.click(`#campaign-${list[0].id} button:text("Pause")`);
    await p7.waitForSelector(`#campaign-${list[0].id} td:text("paused")`);
    assert.equal((await mapi('GET', '/campaigns/' + list[0].id)).data.state, 'paused');
    await shot(p7, 'campaigns');
    await axe(p7, 'campaigns');
    // the channel is the manager's choice: an SMS campaign needs no subject
    await p7.selectOption('#campaign-channel', 'sms');
    await p7.fill('input[name=name]', 'Winter SMS');
    await p7.fill('input[name=lang1]', 'en');
    await p7.fill('textarea[name=body1]', 'Hello {{given_name}}');
    await p7.click('#campaign-create');
    await p7.waitForSelector('#dry-run');
    const sms = (await mapi('GET', '/campaigns')).data.campaigns.find((c) => c.name === 'Winter SMS');
    assert.equal(sms && sms.channel, 'sms');
    // a field user has no campaign screen and no campaign route
    assert.equal(await page.locator('a[href="#/campaigns"]').count(), 0);
    assert.equal((await api('GET', '/campaigns')).status, 403);
    await c7.close();
  });

  assert.deepEqual(csp, [], 'no Content-Security-Policy violations');
}

let failed = 0;
try {
  await main();
} catch (e) {
  console.log('FAIL setup: ' + (e.stack || e));
  failed++;
} finally {
  if (browser) await browser.close();
  if (node) await node.stop();
  if (node2) await node2.stop();
}
const passed = results.filter((r) => r[1]).length;
failed += results.length - passed;
console.log(`screenshots in ${SHOTS}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
