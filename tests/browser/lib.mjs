// Shared by the browser test and the web bench: a node (outpost init,
// users, outpostd on 127.0.0.1 with a port it picks) and Debian's chromium
// driven by playwright-core. Processes are stopped by PID.
import {spawn, execFileSync} from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {chromium} from 'playwright-core';

export const OUTPOST = process.env.OUTPOST;
export const OUTPOSTD = process.env.OUTPOSTD;
export const SOURCE_ROOT = process.env.SOURCE_ROOT;
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

process.env.OUTPOST_ALLOW_ROOT = '1';

export function tmpdir(name) {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-' + name + '-'));
}

/* A node database for region with users [[name, role, password]...]. */
export function makeNode(dir, region, users) {
  const db = path.join(dir, 'node.db');
  execFileSync(OUTPOST, ['init', '--region', region, '--db', db], {stdio: 'pipe'});
  for (const [name, role, pw] of users)
    execFileSync(OUTPOST, ['user', 'add', name, '--role', role, '--password-stdin', '--db', db],
      {input: pw + '\n', stdio: ['pipe', 'pipe', 'pipe']});
  return db;
}

/* outpostd on 127.0.0.1:0; resolves {pid, base, stop()} once it listens. */
export function startNode(db, env) {
  return new Promise((resolve, reject) => {
    const p = spawn(OUTPOSTD, ['--db', db, '--listen', '127.0.0.1:0'],
      {env: Object.assign({}, process.env, env || {}), stdio: ['ignore', 'ignore', 'pipe']});
    let log = '';
    const timer = setTimeout(() => reject(new Error('outpostd did not start: ' + log)), 10000);
    p.stderr.on('data', (d) => {
      log += d;
      const m = /\(port (\d+)\)/.exec(log);
      if (m && timer) {
        clearTimeout(timer);
        resolve({pid: p.pid, base: 'http://127.0.0.1:' + m[1], log: () => log,
          stop: () => new Promise((res) => { p.once('exit', res); process.kill(p.pid, 'SIGTERM'); })});
      }
    });
    p.on('exit', (code) => reject(new Error('outpostd exited ' + code + ': ' + log)));
  });
}

export async function launch() {
  return chromium.launch({executablePath: CHROMIUM, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage']});
}

/* The node's API as a script sees it: login, then JSON calls. */
export async function apiLogin(base, name, password) {
  const r = await fetch(base + '/api/v1/session', {method: 'POST',
    headers: {'Content-Type': 'application/json'}, body: JSON.stringify({name, password})});
  if (r.status !== 201) throw new Error('login ' + name + ': ' + r.status);
  const token = (await r.json()).token;
  return async (method, p, body, headers) => {
    const res = await fetch(base + '/api/v1' + p, {method, headers: Object.assign({
      'Authorization': 'Bearer ' + token, 'Content-Type': 'application/json'}, headers || {}),
    body: body === undefined ? undefined : JSON.stringify(body)});
    const text = await res.text();
    return {status: res.status, etag: res.headers.get('etag'), data: text ? JSON.parse(text) : null};
  };
}
