/**
 * The rest of GRIP (issue 16 item 3), side by side: the same plain GRIP
 * backend (grip-features-app.ts) behind the real Pushpin 1.36 and behind our
 * proxy, the same requests and publishes, the same answers expected from both
 * for every docs/protocol.md §12 row Pushpin supports: `application/grip-instruct`,
 * `Grip-Expose-Headers` (hold and item), `Grip-Set-Meta` with `filter=skip-self`,
 * `Grip-Link rel=next` on a response hold, JSON-P. What only we do (refusals,
 * the strict callback check) is tested on ours alone, at the end.
 *
 * Pushpin is required (`.ci/run` installs it); without it these tests fail, never skip. Pushpin gives no way
 * to see that a hold is subscribed, so a publish to it is repeated (bounded) until the held poll answers; every
 * check below holds whichever of those publishes lands.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runInNewContext } from 'node:vm';
import { after, before, describe, test } from 'node:test';
import { findExecutable, freePort, logTail, serverEnv, spawnChild, type ManagedChild } from '../../bench/models/child-process.js';
import { writePushpinConfig } from '../../bench/models/pushpin-config.js';
import { createHoldProxy, type HoldProxy } from '../../proxy/proxy.js';
import { waitFor } from '../helpers/chat-client.js';
import { request, type HttpResult } from '../helpers/proxy-harness.js';
import { HELD_BODY, startGripFeaturesApp, type GripFeaturesApp } from './grip-features-app.js';

const SECRET = 'grip-features-secret-0123456789abcdef';
const CONTROL_SECRET = 'grip-features-control-0123456789';
const PUSHPIN_BINARIES = ['pushpin', 'condure', 'zurl', 'pushpin-proxy', 'pushpin-handler'];
const READY_MS = 30_000;
/** Publishes repeated to a target that cannot say when a hold is subscribed (Pushpin), and the wait between. */
const PUBLISH_ATTEMPTS = 40;
const PUBLISH_INTERVAL_MS = 250;

interface Target {
  name: 'ours' | 'pushpin';
  base: string;
  publish(items: unknown[]): Promise<void>;
  /** Resolves once the hold on `channel` can receive a publish (ours: parked; Pushpin: the app answered). */
  held(channel: string): Promise<void>;
}

let app: GripFeaturesApp;
let proxy: HoldProxy;
let pushpin: ManagedChild | undefined;
let dir: string;
const targets: Target[] = [];
let channelSeq = 0;
const freshChannel = (what: string): string => `${what}-${++channelSeq}`;

/** Resolves once `predicate` holds; bounded in time, checked every 5 ms. */
async function until(predicate: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`${what} not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<void> {
  const res = await request(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  assert.ok(res.status === 200, `publish to ${url}: ${res.status} ${res.text}`);
}

/** The answer to a poll of `path` held on `channel`, once `items` are published (repeated until it answers). */
async function heldAnswer(target: Target, path: string, channel: string, items: unknown[]): Promise<HttpResult> {
  let settled = false;
  const poll = request(`${target.base}${path}`, { signal: AbortSignal.timeout(20_000) }).finally(() => (settled = true));
  await target.held(channel);
  for (let attempt = 0; !settled; attempt++) {
    if (attempt >= PUBLISH_ATTEMPTS) throw new Error(`${target.name}: no answer to ${path} after ${attempt} publishes`);
    await target.publish(items);
    const tick = new Promise((resolve) => setTimeout(resolve, PUBLISH_INTERVAL_MS));
    await Promise.race([poll.catch(() => undefined), tick]);
  }
  return poll;
}

function item(channel: string, format: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { channel, formats: { 'http-response': format }, ...extra };
}

/** Runs a JSON-P script and returns what it passed to `callback`. */
function callbackArgument(script: string, callback: string): unknown {
  let received: unknown;
  runInNewContext(script, { [callback]: (value: unknown) => (received = value) });
  return received;
}

function requirePushpin(): string {
  const missing = PUSHPIN_BINARIES.filter((bin) => findExecutable(bin) === null);
  if (missing.length > 0) assert.fail(`Pushpin is required (${missing.join(', ')} not on PATH): apt-get install -y pushpin (.ci/run does)`);
  return findExecutable('pushpin')!;
}

async function startPushpin(appPort: number): Promise<Target> {
  const bin = requirePushpin();
  const configDir = join(dir, 'conf');
  const runDir = join(dir, 'run');
  const logDir = join(dir, 'log');
  for (const d of [configDir, runDir, logDir]) mkdirSync(d, { recursive: true });
  const [httpPort, publishPort] = [await freePort(), await freePort()];
  const confPath = writePushpinConfig(configDir, { runDir, logDir, httpPort, publishPort, appPort, sigKey: SECRET, maxClients: 20 });
  // `aco` turns on Pushpin's JSON-P (and CORS) for the route: the JSON-P row compares against it.
  writeFileSync(join(configDir, 'routes'), `*,aco 127.0.0.1:${appPort}\n`);
  pushpin = await spawnChild({ name: 'pushpin', command: bin, args: ['--config', confPath], cwd: configDir, env: serverEnv({}), logPath: join(dir, 'pushpin.log'), processGroup: true });
  const base = `http://127.0.0.1:${httpPort}`;
  const publishUrl = `http://127.0.0.1:${publishPort}/publish/`;
  const target: Target = {
    name: 'pushpin',
    base,
    publish: (items) => postJson(publishUrl, { items }),
    held: (channel) => until(() => app.holdsOn(channel) > 0, `the app to hold ${channel}`),
  };
  // Ready when a plain request makes the whole trip, then when one hold is answered by a publish.
  const deadline = Date.now() + READY_MS;
  await waitFor(
    async () => {
      if (!pushpin!.running()) throw new Error(`pushpin exited:\n${logTail(pushpin!.logPath)}`);
      return request(`${base}/json`, { signal: AbortSignal.timeout(2000) }).then((r) => r.status === 200, () => false);
    },
    'Pushpin to pass a request to the app',
    READY_MS,
  );
  for (;;) {
    const channel = freshChannel('probe');
    const res = await heldAnswer(target, `/hold?ch=${channel}`, channel, [item(channel, { body: 'ready' })]).catch(() => null);
    if (res?.status === 200 && res.text === 'ready') break;
    if (Date.now() > deadline) throw new Error('Pushpin did not answer a held request with a publish');
  }
  return target;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pp-grip-'));
  app = await startGripFeaturesApp();
  proxy = createHoldProxy({
    upstreamUrl: `http://127.0.0.1:${app.port}`,
    secret: SECRET,
    controlSecret: CONTROL_SECRET,
    clientPort: 0,
    controlPort: 0,
    jsonpCallbackParam: 'callback',
  });
  const { clientPort, controlPort } = await proxy.listen();
  targets.push({
    name: 'ours',
    base: `http://127.0.0.1:${clientPort}`,
    publish: (items) => postJson(`http://127.0.0.1:${controlPort}/publish/`, { items }, { authorization: `Bearer ${CONTROL_SECRET}` }),
    held: (channel) => until(() => app.holdsOn(channel) > 0 && proxy.stats().parked > 0, `a request parked on ${channel}`),
  });
  targets.push(await startPushpin(app.port));
});

after(async () => {
  await pushpin?.stop();
  await proxy?.close();
  await app?.close();
  rmSync(dir, { recursive: true, force: true });
});

const both = ['ours', 'pushpin'] as const;
const targetNamed = (name: string): Target => targets.find((t) => t.name === name)!;

describe('the same GRIP backend behind Pushpin 1.36 and behind our proxy', { timeout: 120_000 }, () => {
  for (const name of both) {
    test(`${name}: an application/grip-instruct answer holds the request; the item inherits the JSON's response headers`, async () => {
      const target = targetNamed(name);
      const ch = freshChannel('instruct');
      const res = await heldAnswer(target, `/instruct/hold?ch=${ch}`, ch, [item(ch, { body: 'from the item' })]);
      assert.equal(res.status, 200);
      assert.equal(res.text, 'from the item');
      assert.equal(res.headers['x-held'], 'yes');
      assert.equal(res.headers['content-type'], 'application/json');
    });

    test(`${name}: an application/grip-instruct answer without hold is answered with the JSON's response`, async () => {
      const res = await request(`${targetNamed(name).base}/instruct/plain`);
      assert.equal(res.status, 202);
      assert.equal(res.text, 'plain answer');
      assert.equal(res.headers['x-from-json'], '1');
    });

    test(`${name}: Grip-Expose-Headers on the hold keeps only the named headers of the held response`, async () => {
      const target = targetNamed(name);
      const ch = freshChannel('expose');
      const res = await heldAnswer(target, `/expose?ch=${ch}`, ch, [item(ch, { body: 'x' })]);
      assert.equal(res.text, 'x');
      assert.equal(res.headers['x-a'], 'a');
      assert.equal(res.headers['x-b'], undefined);
      assert.equal(res.headers['grip-expose-headers'], undefined);
    });

    test(`${name}: Grip-Expose-Headers in an item removes the named headers from the delivered response (Pushpin 1.36)`, async () => {
      const target = targetNamed(name);
      const ch = freshChannel('item-expose');
      const headers = { 'X-C': 'c', 'X-D': 'd', 'Grip-Expose-Headers': 'X-C, Content-Type' };
      const res = await heldAnswer(target, `/hold?ch=${ch}`, ch, [item(ch, { headers, body: 'y' })]);
      assert.equal(res.text, 'y');
      assert.equal(res.headers['x-c'], undefined);
      assert.equal(res.headers['x-d'], 'd');
      // The held response's Content-Type too: the list applies to the merged headers.
      assert.equal(res.headers['content-type'], undefined);
    });

    test(`${name}: Grip-Set-Meta user=ada with filter=skip-self: ada's own item is not delivered to her, the next one is`, async () => {
      const target = targetNamed(name);
      const ch = freshChannel('meta');
      const items = [item(ch, { body: 'from ada' }, { meta: { sender: 'ada' } }), item(ch, { body: 'from bob' }, { meta: { sender: 'bob' } })];
      const res = await heldAnswer(target, `/meta?ch=${ch}&user=ada`, ch, items);
      assert.equal(res.text, 'from bob');
      // And bob, held on the same channel as bob, gets ada's.
      const ch2 = freshChannel('meta');
      const items2 = [item(ch2, { body: 'from ada' }, { meta: { sender: 'ada' } })];
      assert.equal((await heldAnswer(target, `/meta?ch=${ch2}&user=bob`, ch2, items2)).text, 'from ada');
    });

    test(`${name}: a response hold with Grip-Link rel=next gets the published item; the link is never fetched`, async () => {
      const target = targetNamed(name);
      const ch = freshChannel('link');
      const before = app.nextFetches;
      const res = await heldAnswer(target, `/link?ch=${ch}`, ch, [item(ch, { body: 'z' })]);
      assert.equal(res.text, 'z');
      assert.equal(app.nextFetches, before);
    });

    test(`${name}: JSON-P: ?callback=cb wraps a plain answer and a held one as cb({code, reason, headers, body})`, async () => {
      const target = targetNamed(name);
      const plain = await request(`${target.base}/json?callback=cb`);
      assert.equal(plain.status, 200);
      assert.match(String(plain.headers['content-type']), /^application\/javascript/);
      assert.ok(plain.text.startsWith('/**/cb('), plain.text);
      const wrapped = callbackArgument(plain.text, 'cb') as { code: number; reason: string; headers: Record<string, string>; body: string };
      assert.equal(wrapped.code, 200);
      assert.equal(wrapped.reason, 'OK');
      assert.deepEqual(JSON.parse(wrapped.body), { a: 1, s: 'line\u2028sep' });
      const contentType = Object.entries(wrapped.headers).find(([k]) => k.toLowerCase() === 'content-type')?.[1];
      assert.equal(contentType, 'application/json');
      assert.equal(plain.headers['cache-control'], 'no-store');

      const ch = freshChannel('jsonp');
      const held = await heldAnswer(target, `/hold?ch=${ch}&callback=cb`, ch, [item(ch, { code: 201, headers: { 'X-E': 'e' }, body: '{"n":1}' })]);
      assert.equal(held.status, 200);
      const inner = callbackArgument(held.text, 'cb') as { code: number; headers: Record<string, string>; body: string };
      assert.equal(inner.code, 201);
      assert.equal(inner.body, '{"n":1}');
      assert.equal(Object.entries(inner.headers).find(([k]) => k.toLowerCase() === 'x-e')?.[1], 'e');
    });
  }
});

describe('what only our proxy does', () => {
  const ours = (): Target => targetNamed('ours');

  test('a JSON-P callback that is not an identifier path is refused with 400 PROXY_ERR_BAD_CALLBACK, and the app never sees it', async () => {
    for (const bad of ['alert(1)//', '', 'a b', '1abc', 'x'.repeat(129), 'a..b']) {
      const res = await request(`${ours().base}/json?callback=${encodeURIComponent(bad)}`);
      assert.equal(res.status, 400, bad);
      assert.equal((res.json() as { code: string }).code, 'PROXY_ERR_BAD_CALLBACK');
      assert.match(String(res.headers['content-type']), /^application\/json/);
    }
  });

  test('a WebSocket upgrade gets 501 PROXY_ERR_UPGRADE_UNSUPPORTED, not the app', async () => {
    const res = await request(`${ours().base}/socket`, { headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' } });
    assert.equal(res.status, 501);
    assert.equal((res.json() as { code: string }).code, 'PROXY_ERR_UPGRADE_UNSUPPORTED');
  });
});
