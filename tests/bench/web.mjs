// The body of tests/bench/web: see there. Prints one line per screen with
// the median of RUNS runs (bytes transferred, ms until usable).
import {execFileSync} from 'node:child_process';
import path from 'node:path';
import {needPackages} from '../browser/deps.mjs';

needPackages();
const {launch, makeNode, startNode, tmpdir} = await import('../browser/lib.mjs');

const count = Number(process.argv[2] || 2000);
const runs = Number(process.argv[3] || 3);
const USER = ['fieldbench', 'manager', 'correct horse bench'];
const SLOW = {offline: false, latency: 150, downloadThroughput: 1.6e6 / 8, uploadThroughput: 750e3 / 8};

const dir = tmpdir('bench-web');
const db = makeNode(dir, 'EU-DE', [USER]);
execFileSync(process.env.GEN_CONTACTS, ['--count', String(count), '--seed', '1', '--out', path.join(dir, 'c.csv')]);
execFileSync(process.env.OUTPOST, ['import', '--db', db, path.join(dir, 'c.csv')], {stdio: 'pipe'});
const node = await startNode(db);
const browser = await launch();
const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rows = new Map();
const add = (name, bytes, ms) => {
  const r = rows.get(name) || {bytes: [], ms: []};
  r.bytes.push(bytes);
  r.ms.push(ms);
  rows.set(name, r);
};

try {
  for (let i = 0; i < runs; i++) {
    const ctx = await browser.newContext({viewport: {width: 412, height: 860}, locale: 'en-US'});
    const page = await ctx.newPage();
    const cdp = await ctx.newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', SLOW);
    await cdp.send('Emulation.setCPUThrottlingRate', {rate: 4});
    let bytes = 0;
    cdp.on('Network.loadingFinished', (e) => { bytes += e.encodedDataLength; });
    const step = async (name, go, ready) => {
      bytes = 0;
      const t0 = Date.now();
      await go();
      await page.waitForSelector(ready, {timeout: 30000});
      // usable: the control takes a key press and the main thread is free
      await page.focus(ready).catch(() => {});
      await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0))));
      add(name, bytes, Date.now() - t0);
    };
    await step('first load (cold), sign-in form', () => page.goto(node.base + '/'), '#password');
    await step('sign in -> search screen', async () => {
      await page.fill('#name', USER[0]);
      await page.fill('#password', USER[2]);
      await page.click('button[type=submit]');
    }, '#q');
    await step('search "muller" as typed -> hits', async () => { await page.type('#q', 'muller'); }, '#hits a');
    await step('contact page with its lists', async () => { await page.click('#hits a'); }, '#log-text');
    await step('pipeline board', () => page.goto(node.base + '/app/#/pipeline'), '.board');
    await step('reload (warm: shell from the service worker)', () => page.reload(), '#q, #log-text, .board');
    await ctx.close();
  }
  console.log(`web app, ${count} contacts, CPU 4x slower, 1.6 Mbit/s down, 750 kbit/s up, 150 ms RTT; median of ${runs}`);
  console.log('screen'.padEnd(48) + 'bytes'.padStart(10) + 'ms'.padStart(8));
  for (const [name, r] of rows)
    console.log(name.padEnd(48) + String(median(r.bytes)).padStart(10) + String(median(r.ms)).padStart(8));
} finally {
  await browser.close();
  await node.stop();
}
