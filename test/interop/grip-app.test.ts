/**
 * A GRIP app written for Pushpin with the published libraries
 * (test/interop/grip-app.ts: @fanoutio/serve-grip, @fanoutio/grip's Publisher
 * and validateGripSig) runs behind our real hold proxy, unchanged: holds with
 * prev-id, publishes authenticated with the libraries' JWT, timeouts and
 * Grip-Status, Grip-Sig, the publish-during-answer race, and a counting test.
 * Everything on real loopback sockets on ephemeral ports.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import { SignJWT } from 'jose';
import { HttpResponseFormat, Publisher, PublishException, WebSocketMessageFormat } from '@fanoutio/grip';
import { createHoldProxy, type HoldProxy } from '../../proxy/proxy.js';
import { defer } from '../helpers/app-harness.js';
import { waitFor } from '../helpers/chat-client.js';
import { request, type HttpResult } from '../helpers/proxy-harness.js';
import { CHANNEL, createGripApp, type GripApp, type GripAppConfig, type LogItem } from './grip-app.js';

/** The Grip-Sig key: the proxy signs with it, the app verifies with it (the GRIP URL's `verify-key`). */
const SECRET = 'grip-interop-secret-0123456789';
/** The control API credential: the app publishes with it (the GRIP URL's `key`). */
const CONTROL_SECRET = 'grip-interop-control-0123456789';
/** The app's issuer for publishing: the proxy's `controlIssuer` (CONTROL_ISSUER) is set to it. */
const APP_ISS = 'grip-app';

interface GripStack {
  grip: GripApp;
  proxy: HoldProxy;
  /** Our proxy's client port, `http://127.0.0.1:PORT`. */
  clientUrl: string;
  /** Our proxy's control API. */
  controlUrl: string;
  /** The app itself, bypassing the proxy. */
  appUrl: string;
}

/** Starts the GRIP app and our proxy in front of it (default options), both on port 0; teardown on `t`. */
async function startGripStack(t: TestContext, config: Omit<GripAppConfig, 'gripUrl'> = {}): Promise<GripStack> {
  // The app's port must be known before the proxy is built, and the control port before the app is: listen
  // first, attach the app once the proxy is up.
  const appServer = http.createServer();
  await new Promise<void>((resolve) => appServer.listen(0, '127.0.0.1', resolve));
  // defer: last registered, first run (the proxy stops before the app, polls before the proxy).
  defer(
    t,
    () =>
      new Promise<void>((resolve) => {
        appServer.close(() => resolve());
        appServer.closeAllConnections();
      }),
  );
  const appUrl = `http://127.0.0.1:${(appServer.address() as AddressInfo).port}`;
  const proxy = createHoldProxy({ upstreamUrl: appUrl, secret: SECRET, controlSecret: CONTROL_SECRET, controlIssuer: APP_ISS, clientPort: 0, controlPort: 0 });
  defer(t, () => proxy.close());
  const { clientPort, controlPort } = await proxy.listen();
  const controlUrl = `http://127.0.0.1:${controlPort}`;
  // A GRIP URL as in Pushpin's docs: iss + key make the Publisher send `Authorization: Bearer <JWT>` signed with the
  // control secret; verify-key is the Grip-Sig key it checks requests with (without it the library would use `key`).
  const grip = createGripApp({ ...config, gripUrl: gripUrl(controlUrl) });
  appServer.on('request', grip.app);
  return { grip, proxy, clientUrl: `http://127.0.0.1:${clientPort}`, controlUrl, appUrl };
}

/** The GRIP URL a correctly configured app uses with our proxy (README, "Pushing from your own code"). */
function gripUrl(controlUrl: string): string {
  return `${controlUrl}/?iss=${APP_ISS}&key=${encodeURIComponent(CONTROL_SECRET)}&verify-key=${encodeURIComponent(SECRET)}`;
}

function itemsOf(res: HttpResult): LogItem[] {
  return (res.json() as { items: LogItem[] }).items;
}

function gripHeaders(res: HttpResult): string[] {
  return Object.keys(res.headers).filter((name) => name.startsWith('grip-'));
}

async function waitParked(proxy: HoldProxy, n: number): Promise<void> {
  await waitFor(() => proxy.stats().parked === n, `${n} parked request(s)`);
}

/**
 * Follows the channel like a long-polling client: polls with the last id it has until it holds `count` items
 * (bounded polls and time). Returns every item id received, in arrival order, duplicates included.
 */
async function follow(t: TestContext, clientUrl: string, count: number, timeoutMs: number, start = '0'): Promise<string[]> {
  // Ends with the test even when it failed early, so no poll outlives the stack.
  const stop = new AbortController();
  defer(t, () => stop.abort());
  const received: string[] = [];
  let last = start;
  const deadline = Date.now() + timeoutMs;
  for (let polls = 0; received.length < count; polls++) {
    if (polls > count * 4 + 20 || Date.now() > deadline || stop.signal.aborted) {
      throw new Error(`follow: ${received.length} of ${count} items after ${polls} polls`);
    }
    const signal = AbortSignal.any([stop.signal, AbortSignal.timeout(Math.max(1, deadline - Date.now()))]);
    const res = await request(`${clientUrl}/messages?last=${encodeURIComponent(last)}`, { signal });
    assert.equal(res.status, 200, res.text);
    for (const item of itemsOf(res)) {
      received.push(item.id);
      last = item.id;
    }
  }
  return received;
}

const ids = (n: number, from = 1): string[] => Array.from({ length: n }, (_, i) => String(from + i));

test('a poll is held on the channel with its prev-id and answered by a publish from the Publisher', async (t) => {
  const { grip, proxy, clientUrl } = await startGripStack(t);
  const poll = request(`${clientUrl}/messages?last=0`);
  await waitParked(proxy, 1);
  assert.equal(grip.holds, 1);

  // Published with the library's JWT (iss + key), id "1", prev-id "0": the parked request's prev-id.
  const item = await grip.append('hello');
  const res = await poll;
  assert.equal(res.status, 200);
  assert.deepEqual(itemsOf(res), [item]);
  assert.match(String(res.headers['content-type']), /^application\/json/);
  // The delivered response inherits the held response's headers (as in Pushpin); no Grip-* header leaks.
  assert.equal(res.headers['x-held'], 'yes');
  assert.equal(res.headers['x-grip-signed'], 'true');
  assert.deepEqual(gripHeaders(res), []);
  const stats = proxy.stats();
  assert.equal(stats.parked, 0);
  assert.equal(stats.deliveries, 1);
  assert.equal(stats.reasks, 0);

  // A poll behind the log is answered at once by the app, not held.
  const behind = await request(`${clientUrl}/messages?last=0`);
  assert.deepEqual(itemsOf(behind), [item]);
  assert.equal(grip.holds, 1);
});

test('a message posted through the proxy is published to a parked client; ids and prev-ids chain', async (t) => {
  const { grip, proxy, clientUrl } = await startGripStack(t);
  await grip.append('one');
  const poll = request(`${clientUrl}/messages?last=1`);
  await waitParked(proxy, 1);
  // The POST is not held (no Grip-Hold): it passes through; the app publishes "2" with prev-id "1" meanwhile.
  const posted = await request(`${clientUrl}/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ text: 'two' }),
  });
  assert.equal(posted.status, 201);
  assert.deepEqual(posted.json(), { id: '2', text: 'two' });
  assert.deepEqual(itemsOf(await poll), [{ id: '2', text: 'two' }]);
});

test("Grip-Timeout: the held response reaches the client when nothing is published, and Grip-Status replaces its status", async (t) => {
  const { proxy, clientUrl } = await startGripStack(t);
  // setHoldLongPoll(1) sends `Grip-Timeout: 1` (whole seconds; our minimum hold is 1 s).
  let started = Date.now();
  const res = await request(`${clientUrl}/messages?last=0&timeout=1`);
  let heldMs = Date.now() - started;
  assert.equal(res.status, 200);
  assert.deepEqual(itemsOf(res), []);
  assert.equal(res.headers['x-held'], 'yes');
  assert.deepEqual(gripHeaders(res), []);
  assert.ok(heldMs >= 900 && heldMs < 3000, `held ${heldMs} ms for Grip-Timeout: 1`);

  // serve-grip sends a held 304 as 200 + `Grip-Status: 304`; the client gets the 304 on timeout.
  started = Date.now();
  const notModified = await request(`${clientUrl}/messages?last=0&timeout=1&notModified=1`);
  heldMs = Date.now() - started;
  assert.equal(notModified.status, 304);
  assert.equal(notModified.body.length, 0);
  assert.ok(heldMs >= 900 && heldMs < 3000, `held ${heldMs} ms`);
  assert.equal(proxy.stats().timeouts, 2);
});

test("the app's validateGripSig accepts the proxy's Grip-Sig and tells requests that did not come through it", async (t) => {
  const { clientUrl, appUrl } = await startGripStack(t);
  const through = await request(`${clientUrl}/whoami`);
  assert.deepEqual(through.json(), { proxied: true, signed: true });

  // A client cannot forge the header through the proxy: it strips every Grip-* request header and signs anew.
  const forgedThrough = await request(`${clientUrl}/whoami`, { headers: { 'grip-sig': 'forged' } });
  assert.deepEqual(forgedThrough.json(), { proxied: true, signed: true });

  // Straight to the app: no signature, a token signed with another key, an expired token with the right key.
  const direct = await request(`${appUrl}/whoami`);
  assert.equal((direct.json() as { signed: boolean }).signed, false);
  const now = Math.floor(Date.now() / 1000);
  const otherKey = await new SignJWT({ iss: 'comet-chat' })
    .setProtectedHeader({ alg: 'HS256' })
    .setExpirationTime(now + 600)
    .sign(new TextEncoder().encode('some-other-secret-0123456789'));
  const expired = await new SignJWT({ iss: 'comet-chat' })
    .setProtectedHeader({ alg: 'HS256' })
    .setExpirationTime(now - 10)
    .sign(new TextEncoder().encode(SECRET));
  for (const token of [otherKey, expired, 'not-a-jwt']) {
    const res = await request(`${appUrl}/whoami`, { headers: { 'grip-sig': token } });
    assert.equal((res.json() as { signed: boolean }).signed, false, `token ${token.slice(0, 20)}...`);
  }

  // So a poll straight to the app is answered at once, without a hold instruction.
  const poll = await request(`${appUrl}/messages?last=0`, { headers: { 'grip-sig': otherKey } });
  assert.equal(poll.status, 200);
  assert.equal(poll.headers['x-grip-signed'], 'false');
  assert.equal(poll.headers['grip-hold'], undefined);
  assert.deepEqual(itemsOf(poll), []);
});

test('the control API takes the Publisher with its JWT or the plain control key, and refuses it without them or with the Grip-Sig key', async (t) => {
  const { proxy, controlUrl } = await startGripStack(t);
  const format = new HttpResponseFormat({ body: 'x' });

  await new Publisher(gripUrl(controlUrl)).publishHttpResponse(CHANNEL, format);
  // Bearer <key> (a GRIP URL with `key` and no `iss`) is accepted too.
  await new Publisher({ control_uri: controlUrl, key: CONTROL_SECRET }).publishHttpResponse(CHANNEL, format);
  assert.equal(proxy.stats().publishes, 2);

  const refused = [
    new Publisher({ control_uri: controlUrl }),
    new Publisher({ control_uri: controlUrl, control_iss: APP_ISS, key: 'wrong-secret-0123456789abc' }),
    new Publisher({ control_uri: controlUrl, key: 'wrong-secret-0123456789abc' }),
    // A GRIP URL with one key for both jobs, as Fanout Cloud uses: the Grip-Sig key opens nothing here.
    new Publisher(`${controlUrl}/?iss=${APP_ISS}&key=${encodeURIComponent(SECRET)}`),
    new Publisher({ control_uri: controlUrl, key: SECRET }),
    // The right key with another issuer.
    new Publisher({ control_uri: controlUrl, control_iss: 'someone-else', key: CONTROL_SECRET }),
  ];
  for (const publisher of refused) {
    await assert.rejects(publisher.publishHttpResponse(CHANNEL, format), (err: unknown) => {
      assert.ok(err instanceof PublishException);
      assert.equal(err.context.statusCode, 401);
      return true;
    });
  }
  assert.equal(proxy.stats().publishes, 2);
});

test('a message published while the app is answering a poll reaches the client through prev-id (the proxy re-asks)', async (t) => {
  let releaseHold!: () => void;
  let holdReached!: () => void;
  const reached = new Promise<void>((resolve) => (holdReached = resolve));
  const gate = new Promise<void>((resolve) => (releaseHold = resolve));
  let gated = false;
  const { grip, proxy, clientUrl } = await startGripStack(t, {
    // Only the first poll waits: the re-ask must go straight through.
    beforeHold: async () => {
      if (gated) return;
      gated = true;
      holdReached();
      await gate;
    },
  });
  const poll = request(`${clientUrl}/messages?last=0`);
  await reached;
  // The app has read an empty log and is about to hold with prev-id "0"; "1" is published before the proxy parks.
  const item = await grip.append('during the answer');
  assert.equal(proxy.stats().parked, 0);
  releaseHold();
  const res = await poll;
  assert.deepEqual(itemsOf(res), [item]);
  const stats = proxy.stats();
  assert.equal(stats.reasks, 1, 'the stale hold (prev-id 0, channel at 1) was re-asked, not parked');
  assert.equal(stats.parked, 0);
  assert.equal(grip.holds, 1);
});

test('messages published while a client is between polls are caught up through its last id, once each', async (t) => {
  const { grip, proxy, clientUrl } = await startGripStack(t);
  const first = request(`${clientUrl}/messages?last=0`);
  await waitParked(proxy, 1);
  await grip.append('a');
  assert.deepEqual(itemsOf(await first).map((i) => i.id), ['1']);
  // Nobody parked: GRIP does not queue channel items, the app's log carries them.
  await grip.append('b');
  await grip.append('c');
  const catchUp = await request(`${clientUrl}/messages?last=1`);
  assert.deepEqual(itemsOf(catchUp).map((i) => i.id), ['2', '3']);
  const next = request(`${clientUrl}/messages?last=3`);
  await waitParked(proxy, 1);
  await grip.append('d');
  assert.deepEqual(itemsOf(await next).map((i) => i.id), ['4']);
});

test('counting: three long-polling clients each receive all 60 messages posted through the proxy, exactly once, in order', async (t) => {
  const N = 60;
  const CLIENTS = 3;
  const { grip, proxy, clientUrl } = await startGripStack(t);
  const followers = Array.from({ length: CLIENTS }, () => follow(t, clientUrl, N, 60_000));
  for (const f of followers) f.catch(() => {}); // awaited below; keeps an early failure above from going unhandled
  await waitParked(proxy, CLIENTS);
  // Posted one after another as fast as the app answers, so clients are often between polls or mid re-poll.
  for (let i = 1; i <= N; i++) {
    const res = await request(`${clientUrl}/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text: `m${i}` }),
    });
    assert.equal(res.status, 201);
  }
  const received = await Promise.all(followers);
  for (const got of received) assert.deepEqual(got, ids(N));
  assert.deepEqual(grip.log.map((i) => i.id), ids(N));
  const stats = proxy.stats();
  assert.equal(stats.parked, 0);
  assert.equal(stats.publishes, N);
  assert.equal(stats.resyncs, 0);
});

test('items for formats a parked response does not take (http-stream, ws-message) are accepted and leave it parked, as in Pushpin', async (t) => {
  const { grip, proxy, clientUrl } = await startGripStack(t);
  const poll = request(`${clientUrl}/messages?last=0`);
  await waitParked(proxy, 1);
  // The library publishes these for stream and WebSocket subscribers; the publish succeeds and reaches no parked response.
  await grip.publisher.publishHttpStream(CHANNEL, 'stream data\n');
  await grip.publisher.publishFormats(CHANNEL, new WebSocketMessageFormat('ws data'));
  let stats = proxy.stats();
  assert.equal(stats.parked, 1);
  assert.equal(stats.deliveries, 0);
  // The library types `code` as a string: `"code": "202"` on the wire, a 202 to the client.
  const body = JSON.stringify({ items: [{ id: '1', text: 'accepted' }] });
  await grip.publisher.publishHttpResponse(CHANNEL, new HttpResponseFormat({ code: '202', reason: 'Accepted', body }), '1', '0');
  const res = await poll;
  assert.equal(res.status, 202);
  assert.equal(res.statusMessage, 'Accepted');
  assert.equal(res.text, body);
  stats = proxy.stats();
  assert.equal(stats.deliveries, 1);
  assert.equal(stats.parked, 0);
});

test('base64 item ids (with "=") work as ids and prev-ids: parked, published, caught up', async (t) => {
  // Four bytes encode to eight characters ending in "==".
  const base64Id = (n: number): string => Buffer.from(String(n).padStart(4, '0')).toString('base64');
  assert.equal(base64Id(1), 'MDAwMQ==');
  const { grip, proxy, clientUrl } = await startGripStack(t, { itemId: base64Id });
  const N = 12;
  const follower = follow(t, clientUrl, N, 30_000, base64Id(0));
  follower.catch(() => {}); // awaited below; this only keeps an early failure above from going unhandled
  await waitParked(proxy, 1);
  for (let i = 1; i <= N; i++) await grip.append(`m${i}`);
  assert.deepEqual(await follower, Array.from({ length: N }, (_, i) => base64Id(i + 1)));
  assert.equal(proxy.stats().resyncs, 0);
});
