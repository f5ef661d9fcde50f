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
import { chmodSync, mkdtempSync, readFileSync, rmSync, existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ChatClient, waitFor } from '../helpers/chat-client.js';
import { request } from '../helpers/proxy-harness.js';

interface Launched {
  base: string;
  controlPort: number;
}

/** Starts the launcher on `dataDir` (a fresh one, removed afterwards, unless given). */
function startLauncher(t: import('node:test').TestContext, env: Record<string, string>, given?: string) {
  const dataDir = given ?? mkdtempSync(join(tmpdir(), 'comet-quick-'));
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
    if (given === undefined) rmSync(dataDir, { recursive: true, force: true });
  });
  let stderr = '';
  let out = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const ready = new Promise<Launched>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /running at (http:\/\/\S+?)\/? \(app on port \d+, control API on port (\d+)\)/.exec(out);
      if (m) resolve({ base: m[1]!, controlPort: Number(m[2]) });
    });
    child.once('exit', (code) => reject(new Error(`launcher exited with ${code} before listening: ${stderr}`)));
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, ready, dataDir, stderr: () => stderr, stdout: () => out, exited };
}

const SECRET_NAMES = ['GRIP_SECRET', 'CONTROL_SECRET', 'LEASE_KEY'];

function readSecrets(path: string): Map<string, string> {
  const values = new Map<string, string>();
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const m = /^([A-Z_]+)=(.+)$/.exec(line);
    if (m) values.set(m[1]!, m[2]!);
  }
  return values;
}

async function stats(controlPort: number, secret: string): Promise<number> {
  return (await fetch(`http://127.0.0.1:${controlPort}/stats`, { headers: { authorization: `Bearer ${secret}` } })).status;
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

test('with BASE_DOMAIN set the launcher prints the page under that name, where the session cookie works, and a foreign Host is refused', async (t) => {
  const launcher = startLauncher(t, { GRIP_SECRET: 'quick-start-secret-0123456789', BASE_DOMAIN: 'chat.test' });
  const { base } = await launcher.ready;
  const printed = new URL(base);
  assert.equal(printed.hostname, 'chat.test', 'not 127.0.0.1: a browser there drops the cookie scoped to chat.test');
  assert.match(launcher.stdout(), /open it as chat\.test, not 127\.0\.0\.1 .*c1\.\.c4\.chat\.test must resolve to this machine/);
  // chat.test does not resolve here: reach the proxy on loopback with the printed name as Host, as a browser would.
  const port = printed.port;
  const local = `http://127.0.0.1:${port}`;
  const page = await request(`${local}/`, { headers: { host: `chat.test:${port}` } });
  assert.equal(page.status, 200, 'the printed name is served');
  const signIn = await request(`${local}/api/session`, {
    method: 'POST',
    headers: { host: `chat.test:${port}`, 'content-type': 'application/json' },
    body: JSON.stringify({ nick: 'ada' }),
  });
  assert.equal(signIn.status, 201);
  const cookie = String(signIn.headers['set-cookie']);
  const domain = /Domain=([^;]+)/i.exec(cookie)?.[1];
  assert.ok(domain !== undefined, cookie);
  // RFC 6265 §5.1.3: the printed host must domain-match the cookie's Domain, or the browser refuses the cookie.
  assert.ok(printed.hostname === domain || printed.hostname.endsWith(`.${domain}`), `${printed.hostname} matches Domain=${domain}`);
  const foreign = await request(`${local}/`, { headers: { host: `evil.example:${port}` } });
  assert.equal(foreign.status, 421);
  assert.match((foreign.json() as { message: string }).message, /evil\.example is not served/);
  assert.equal((await request(`${local}/`, { headers: { host: `c1.chat.test:${port}` } })).status, 200, 'a shard host of the base domain');
  launcher.child.kill('SIGTERM');
  assert.equal(await launcher.exited, 0, launcher.stderr());
});

test('generated secrets are saved beside the database in secrets.env, mode 0600, its path printed but never a secret; the next start reuses them', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'comet-secrets-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const path = join(dataDir, 'secrets.env');
  const first = startLauncher(t, { GRIP_SECRET: '', CONTROL_SECRET: '', LEASE_KEY: '', LOG_LEVEL: 'info' }, dataDir);
  const { controlPort } = await first.ready;
  assert.equal(statSync(path).mode & 0o777, 0o600);
  const saved = readSecrets(path);
  assert.deepEqual([...saved.keys()], SECRET_NAMES);
  assert.equal(new Set(saved.values()).size, 3, 'three different secrets');
  assert.ok(first.stdout().includes(path), `the path is printed: ${first.stdout()}`);
  assert.match(first.stdout(), /GRIP_SECRET, CONTROL_SECRET, LEASE_KEY generated/);
  assert.match(first.stdout(), new RegExp(`/status`));
  assert.equal(await stats(controlPort, saved.get('CONTROL_SECRET')!), 200, 'the saved CONTROL_SECRET opens the control API');
  first.child.kill('SIGTERM');
  assert.equal(await first.exited, 0, first.stderr());
  for (const value of saved.values()) assert.ok(!first.stdout().includes(value) && !first.stderr().includes(value), 'no secret on stdout, in the logs or on stderr');

  const second = startLauncher(t, { GRIP_SECRET: '', CONTROL_SECRET: '', LEASE_KEY: '' }, dataDir);
  const again = await second.ready;
  assert.match(second.stdout(), /GRIP_SECRET, CONTROL_SECRET, LEASE_KEY reused/);
  assert.deepEqual(readSecrets(path), saved, 'the file is unchanged');
  assert.equal(await stats(again.controlPort, saved.get('CONTROL_SECRET')!), 200, 'the same secret after a restart');
  second.child.kill('SIGTERM');
  assert.equal(await second.exited, 0, second.stderr());
});

test('a secret set in the environment wins and is never written to secrets.env', async (t) => {
  const controlSecret = 'quick-start-control-from-env-0123456789';
  const launcher = startLauncher(t, { GRIP_SECRET: '', CONTROL_SECRET: controlSecret, LEASE_KEY: '' });
  const { controlPort } = await launcher.ready;
  const saved = readSecrets(join(launcher.dataDir, 'secrets.env'));
  assert.deepEqual([...saved.keys()], ['GRIP_SECRET', 'LEASE_KEY']);
  assert.ok(!readFileSync(join(launcher.dataDir, 'secrets.env'), 'utf8').includes(controlSecret));
  assert.equal(await stats(controlPort, controlSecret), 200);
  assert.doesNotMatch(launcher.stdout(), /status page/, 'the operator has the control secret already');
});

test('a secrets.env others may read is refused: exit 2 naming it, and nothing starts', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'comet-secrets-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const path = join(dataDir, 'secrets.env');
  const first = startLauncher(t, { GRIP_SECRET: '', CONTROL_SECRET: '', LEASE_KEY: '' }, dataDir);
  await first.ready;
  first.child.kill('SIGTERM');
  assert.equal(await first.exited, 0);
  chmodSync(path, 0o644);
  const second = startLauncher(t, { GRIP_SECRET: '', CONTROL_SECRET: '', LEASE_KEY: '' }, dataDir);
  second.ready.catch(() => {});
  assert.equal(await second.exited, 2);
  assert.ok(second.stderr().includes(`comet-chat: ${path} is readable by other users (mode 0644)`), second.stderr());
});
