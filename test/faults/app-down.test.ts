/**
 * Fault: the app is down (or hangs). The proxy must answer new requests
 * quickly with its coded JSON error, and requests it already holds must not
 * notice: they depend only on the proxy and the control API.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { test } from 'node:test';
import { createHoldProxy } from '../../proxy/proxy.js';
import { raceDeadline } from '../helpers/fault-stack.js';
import { jsonFormat, request, startHarness, TEST_CONTROL_SECRET, TEST_SECRET, type HttpResult } from '../helpers/proxy-harness.js';
import { writeHold } from '../helpers/scripted-app.js';

const CID_A = 'AAAAAAAAAAAAAAAAAAAA1';
const CID_B = 'BBBBBBBBBBBBBBBBBBBB2';
/**
 * How long an answer may take before the test calls it slow. Loopback answers take milliseconds; the bound is
 * generous for loaded CI machines and still far below the 30 s upstream timeout a hanging connect would cost.
 */
const DEADLINE_MS = 2000;

function assertCodedError(res: HttpResult | 'deadline', status: number, code: string): void {
  assert.notEqual(res, 'deadline', `no answer within ${DEADLINE_MS} ms`);
  const answer = res as HttpResult;
  assert.equal(answer.status, status);
  assert.match(String(answer.headers['content-type']), /^application\/json/);
  const body = answer.json() as { code: string; message: string };
  assert.equal(body.code, code);
  assert.equal(typeof body.message, 'string');
}

test('with the app down, GETs and POSTs get 502 PROXY_ERR_UPSTREAM_UNAVAILABLE before a 2 s deadline', async (t) => {
  const h = await startHarness(t);
  // A first answer leaves a keep-alive socket to the app in the proxy's pool.
  assert.equal((await h.get('/warm-up')).status, 200);
  await h.app.close();

  for (let i = 0; i < 3; i++) {
    assertCodedError(await raceDeadline(h.get(`/api/rooms?try=${i}`), DEADLINE_MS, 'deadline' as const), 502, 'PROXY_ERR_UPSTREAM_UNAVAILABLE');
  }
  const post = h.get('/api/rooms/lobby/messages', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ text: 'into the void' }),
  });
  assertCodedError(await raceDeadline(post, DEADLINE_MS, 'deadline' as const), 502, 'PROXY_ERR_UPSTREAM_UNAVAILABLE');
  assert.equal(h.proxy.stats().parked, 0);
});

test('an app that accepts connections but never answers gets 504 PROXY_ERR_UPSTREAM_TIMEOUT after upstreamTimeoutMs', async (t) => {
  // A hung app (stopped process, deadlock): TCP accepts, HTTP never answers.
  const sockets = new Set<Socket>();
  const arrived: IncomingMessage[] = [];
  const hung = createServer((req) => arrived.push(req));
  hung.on('connection', (s: Socket) => sockets.add(s));
  await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((resolve) => hung.close(() => resolve()));
  });
  const proxy = createHoldProxy({
    upstreamUrl: `http://127.0.0.1:${(hung.address() as AddressInfo).port}`,
    secret: TEST_SECRET,
    controlSecret: TEST_CONTROL_SECRET,
    clientPort: 0,
    controlPort: 0,
    upstreamTimeoutMs: 150,
  });
  t.after(() => proxy.close());
  const { clientPort } = await proxy.listen();

  const started = Date.now();
  const res = await raceDeadline(request(`http://127.0.0.1:${clientPort}/api/poll`), DEADLINE_MS, 'deadline' as const);
  assertCodedError(res, 504, 'PROXY_ERR_UPSTREAM_TIMEOUT');
  assert.ok(Date.now() - started >= 140, 'not before the upstream timeout');
  assert.equal(arrived.length, 1, 'the request did reach the hung app');
});

test('requests parked before the app went down are still delivered by publish and by push', async (t) => {
  const h = await startHarness(t);
  h.app.handle = (req, res) => {
    if (req.url === '/a') writeHold(res, { channel: 'room:a', connectionId: CID_A, body: '{"timeout":"a"}' });
    else writeHold(res, { connectionId: CID_B, body: '{"timeout":"b"}' });
  };
  const a = h.get('/a');
  const b = h.get('/b');
  await h.waitParked(2);
  await h.app.close();
  // The app is gone: a new request fails fast...
  assertCodedError(await raceDeadline(h.get('/new'), DEADLINE_MS, 'deadline' as const), 502, 'PROXY_ERR_UPSTREAM_UNAVAILABLE');
  assert.equal(h.proxy.stats().parked, 2, '...and the parked requests are still parked');

  const published = await h.control('/publish/', { items: [{ channel: 'room:a', id: '7', formats: jsonFormat({ events: [7] }) }] });
  assert.deepEqual(published.json(), { delivered: 1, queued: 0, dropped: 0, reasked: 0 });
  assert.equal((await a).text, '{"events":[7]}');

  const pushed = await h.control('/push/', { items: [{ 'connection-id': CID_B, formats: jsonFormat({ pushed: true }) }] });
  assert.deepEqual(pushed.json(), { delivered: 1, queued: 0, dropped: 0, reasked: 0 });
  assert.equal((await b).text, '{"pushed":true}');
  assert.equal(h.proxy.stats().parked, 0);
});

test('a request parked before the app went down times out with its held response', async (t) => {
  const h = await startHarness(t, { minHoldTimeoutMs: 0 });
  h.app.handle = (_req, res) => writeHold(res, { channel: 'room:c', timeoutS: 0.2, status: '200', body: '{"timeout":"c"}' });
  const c = h.get('/c');
  await h.waitParked(1);
  await h.app.close();

  const res = await raceDeadline(c, 5000, 'deadline' as const);
  assert.notEqual(res, 'deadline');
  assert.equal((res as HttpResult).status, 200);
  assert.equal((res as HttpResult).text, '{"timeout":"c"}');
  const stats = h.proxy.stats();
  assert.equal(stats.timeouts, 1);
  assert.equal(stats.parked, 0);
});
