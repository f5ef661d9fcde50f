/**
 * The quick start, as a user runs it: the launcher starts app + proxy on the
 * embedded default in one process tree; one session polls (it parks), another
 * posts, the poll returns the message; SIGTERM answers the parked poll and
 * exits 0.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ChatClient, waitFor } from '../helpers/chat-client.js';
import { request } from '../helpers/proxy-harness.js';

interface Launched {
  base: string;
  controlPort: number;
}

function startLauncher(t: import('node:test').TestContext, env: Record<string, string>) {
  const dataDir = mkdtempSync(join(tmpdir(), 'comet-quick-'));
  const child = spawn(process.execPath, ['--import', 'tsx', 'launcher/main.ts'], {
    env: {
      ...process.env,
      PROXY_PORT: '0',
      APP_PORT: '0',
      CONTROL_PORT: '0',
      DB_PATH: join(dataDir, 'chat.db'),
      LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const ready = new Promise<Launched>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /running at (http:\/\/\S+?)\/? \(app on port \d+, control API on port (\d+)\)/.exec(out);
      if (m) resolve({ base: m[1]!, controlPort: Number(m[2]) });
    });
    child.once('exit', (code) => reject(new Error(`launcher exited with ${code} before listening: ${stderr}`)));
  });
  return { child, ready, dataDir, stderr: () => stderr };
}

test('without GRIP_SECRET and CONTROL_SECRET the launcher generates both for app and proxy, serves the page and creates the database', async (t) => {
  const launcher = startLauncher(t, { GRIP_SECRET: '', CONTROL_SECRET: '' });
  const { base } = await launcher.ready;

  const page = await fetch(`${base}/`);
  assert.equal(page.status, 200);
  assert.match(await page.text(), /comet-chat/);
  // Every forwarded request carries a Grip-Sig; the app refuses a bad one with 401, so 201 proves a shared secret.
  const ada = new ChatClient(base);
  assert.equal((await ada.login('ada')).nick, 'ada');
  assert.ok(existsSync(join(launcher.dataDir, 'chat.db')), 'the SQLite database is where DB_PATH says');
  // The relay deletes an outbox row only once the proxy accepted its publish: an empty outbox after a post proves
  // the app publishes with the proxy's (generated) control secret.
  await ada.post('lobby', 'hello');
  const db = new Database(join(launcher.dataDir, 'chat.db'), { readonly: true, fileMustExist: true });
  t.after(() => db.close());
  await waitFor(() => (db.prepare('SELECT COUNT(*) FROM outbox').pluck().get() as number) === 0, 'the outbox to be published');
});

test('through the launcher a parked poll returns the message another session posts; SIGTERM drains it and exits 0', async (t) => {
  const secret = 'quick-start-secret-0123456789';
  const controlSecret = 'quick-start-control-0123456789';
  const launcher = startLauncher(t, { GRIP_SECRET: secret, CONTROL_SECRET: controlSecret });
  const { base, controlPort } = await launcher.ready;
  const parked = async () => {
    const res = await fetch(`http://127.0.0.1:${controlPort}/stats`, { headers: { authorization: `Bearer ${controlSecret}` } });
    return ((await res.json()) as { parked: number }).parked;
  };
  const withGripKey = await fetch(`http://127.0.0.1:${controlPort}/stats`, { headers: { authorization: `Bearer ${secret}` } });
  assert.equal(withGripKey.status, 401, 'GRIP_SECRET opens no control route');

  const ada = new ChatClient(base);
  const bob = new ChatClient(base);
  await ada.login('ada');
  await bob.login('bob');
  ada.cursors.set('lobby', (await ada.call('GET', '/api/rooms/lobby/messages?limit=1')).body.cursor);

  const pending = ada.poll();
  await waitFor(async () => (await parked()) === 1, 'the poll to be parked');
  const posted = await bob.post('lobby', 'hi from bob');
  const answer = await pending;
  assert.deepEqual(answer.body.events.map((e: { id: number; text: string }) => [e.id, e.text]), [[posted.id, 'hi from bob']]);

  const atShutdown = ada.poll();
  await waitFor(async () => (await parked()) === 1, 'the second poll to be parked');
  launcher.child.kill('SIGTERM');
  const drained = await atShutdown;
  assert.equal(drained.status, 200);
  assert.deepEqual(drained.body.events, []);
  assert.equal(drained.headers.get('connection'), 'close');
  const code = launcher.child.exitCode ?? ((await once(launcher.child, 'exit')) as [number | null])[0];
  assert.equal(code, 0, launcher.stderr());
});

test('with BASE_DOMAIN set the URL the launcher prints is still served, and a foreign Host is refused', async (t) => {
  const launcher = startLauncher(t, { GRIP_SECRET: 'quick-start-secret-0123456789', BASE_DOMAIN: 'chat.test' });
  const { base } = await launcher.ready;
  const page = await fetch(`${base}/`);
  assert.equal(page.status, 200, 'the printed address is the one the proxy listens on');
  const port = new URL(base).port;
  const foreign = await request(`${base}/`, { headers: { host: `evil.example:${port}` } });
  assert.equal(foreign.status, 421);
  assert.match((foreign.json() as { message: string }).message, /evil\.example is not served/);
  assert.equal((await request(`${base}/`, { headers: { host: `c1.chat.test:${port}` } })).status, 200, 'a shard host of the base domain');
  launcher.child.kill('SIGTERM');
  const code = launcher.child.exitCode ?? ((await once(launcher.child, 'exit')) as [number | null])[0];
  assert.equal(code, 0, launcher.stderr());
});
