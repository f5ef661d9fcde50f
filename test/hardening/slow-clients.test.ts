/**
 * Request head size and slow clients (common/http-limits.ts) on the proxy's
 * client and control ports and on the app: a head over `maxHeaderBytes` is 431,
 * a head trickled for longer than `headersTimeoutMs` (slow-loris) or a body
 * for longer than `requestTimeoutMs` is 408 and the socket is closed; all as
 * `{code, message}` JSON. None of these timeouts may cut a long-poll that is
 * parked after its request arrived. Timeouts are shrunk to tens of ms.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { resolveProxyOptions } from '../../proxy/options.js';
import { resolveAppOptions } from '../../server/options.js';
import { startApp } from '../helpers/app-harness.js';
import { startHarness, TEST_CONTROL_SECRET, TEST_SECRET } from '../helpers/proxy-harness.js';
import { writeHold } from '../helpers/scripted-app.js';
import { httpRequest, memoryLogger, openRaw, parseResponse, sendRaw } from './raw-http.js';

const HEADERS_TIMEOUT_MS = 200;
const SLOW = { headersTimeoutMs: HEADERS_TIMEOUT_MS, requestTimeoutMs: 400 };

/**
 * Trickles a request head one header line every 40 ms until the server closes
 * the connection (bounded: at most 200 lines, 8 s). Resolves with what came
 * back and when the connection closed.
 */
async function slowLoris(port: number): Promise<{ status: number; body: unknown; closedAfterMs: number }> {
  const conn = await openRaw(port);
  conn.write(`GET /api/session HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n`);
  let closedAfterMs: number | null = null;
  void conn.closed.then((ms) => (closedAfterMs = ms));
  for (let i = 0; i < 200 && closedAfterMs === null; i++) {
    conn.write(`X-Slow-${i}: a\r\n`);
    await new Promise((resolve) => setTimeout(resolve, 40));
  }
  conn.destroy();
  assert.ok(closedAfterMs !== null, 'the server closed the connection');
  const res = parseResponse(conn.received());
  assert.ok(res !== null, `a complete answer before the close, got ${conn.received().toString('latin1').slice(0, 200)}`);
  return { status: res.status, body: res.json, closedAfterMs };
}

function assertCutAfterHeadersTimeout(closedAfterMs: number): void {
  assert.ok(closedAfterMs >= HEADERS_TIMEOUT_MS - 20, `closed after ${closedAfterMs} ms, not before the headers timeout`);
  assert.ok(closedAfterMs < HEADERS_TIMEOUT_MS + 1500, `closed after ${closedAfterMs} ms, soon after the headers timeout`);
}

describe('slow clients', { timeout: 20_000 }, () => {
  test('a client trickling its request head to the proxy is answered 408 PROXY_ERR_REQUEST_TIMEOUT and disconnected', async (t) => {
    const log = memoryLogger('info');
    const h = await startHarness(t, { ...SLOW, logger: log.logger });
    const res = await slowLoris(Number(new URL(h.clientUrl).port));
    assert.equal(res.status, 408);
    assert.deepEqual(Object.keys(res.body as object).sort(), ['code', 'message']);
    assert.equal((res.body as { code: string }).code, 'PROXY_ERR_REQUEST_TIMEOUT');
    assertCutAfterHeadersTimeout(res.closedAfterMs);
    assert.equal(h.app.requests.length, 0, 'the app never saw it');
    const lines = log.lines.filter((l) => l.code === 'PROXY_ERR_REQUEST_TIMEOUT');
    assert.equal(lines.length, 1, 'logged once');
    assert.equal(lines[0]!.level, 30);
  });

  test('the control port cuts a slow-loris client the same way', async (t) => {
    const h = await startHarness(t, SLOW);
    const res = await slowLoris(Number(new URL(h.controlUrl).port));
    assert.equal(res.status, 408);
    assert.equal((res.body as { code: string }).code, 'PROXY_ERR_REQUEST_TIMEOUT');
    assertCutAfterHeadersTimeout(res.closedAfterMs);
  });

  test('the app cuts a slow-loris client with 408 APP_ERR_REQUEST_TIMEOUT', async (t) => {
    const h = await startApp(t, { options: SLOW });
    const res = await slowLoris(Number(new URL(h.base).port));
    assert.equal(res.status, 408);
    assert.equal((res.body as { code: string }).code, 'APP_ERR_REQUEST_TIMEOUT');
    assertCutAfterHeadersTimeout(res.closedAfterMs);
  });

  test('a body trickled for longer than requestTimeoutMs is answered 408 and nothing is published', async (t) => {
    const h = await startHarness(t, SLOW);
    const port = Number(new URL(h.controlUrl).port);
    const conn = await openRaw(port);
    conn.write(`POST /publish/ HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${TEST_CONTROL_SECRET}\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{`);
    let closed = false;
    void conn.closed.then(() => (closed = true));
    for (let i = 0; i < 150 && !closed; i++) {
      conn.write(' ');
      await new Promise((resolve) => setTimeout(resolve, 40));
    }
    conn.destroy();
    const res = parseResponse(conn.received());
    assert.ok(res !== null && closed, 'answered and closed');
    assert.equal(res.status, 408);
    assert.equal((res.json as { code: string }).code, 'PROXY_ERR_REQUEST_TIMEOUT');
    assert.equal(h.proxy.stats().publishes, 0);
  });

  test('a parked long-poll outlives requestTimeoutMs, headersTimeoutMs and keepAliveTimeoutMs on a reused connection', async (t) => {
    // Scaled down: a 1 s hold against 100-200 ms timeouts stands for a 55 s hold against the 5-30 s defaults.
    const h = await startHarness(t, { headersTimeoutMs: 100, requestTimeoutMs: 200, keepAliveTimeoutMs: 100 });
    h.app.handle = (req, res) => {
      if (req.url === '/poll') writeHold(res, { channel: 'room:a', timeoutS: 1, body: '{"events":[],"timeout":true}' });
      else res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    };
    const port = Number(new URL(h.clientUrl).port);
    const conn = await openRaw(port);
    t.after(() => conn.destroy());
    const host = `127.0.0.1:${port}`;
    const first = await conn.send(`GET /plain HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
    assert.equal(first.text, 'ok');
    const started = performance.now();
    const poll = await conn.send(`GET /poll HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
    const heldMs = performance.now() - started;
    assert.equal(poll.status, 200);
    assert.equal(poll.text, '{"events":[],"timeout":true}', 'the hold timeout answered it, not a request timeout');
    assert.ok(heldMs >= 900, `held for ${heldMs} ms`);
    assert.equal(h.proxy.stats().timeouts, 1);
  });

  test('a request head over maxHeaderBytes is 431 at the proxy and at the app', async (t) => {
    const h = await startHarness(t, { maxHeaderBytes: 4096 });
    const proxyPort = Number(new URL(h.clientUrl).port);
    const small = await sendRaw(proxyPort, httpRequest('GET', '/x', `127.0.0.1:${proxyPort}`, { headers: [['X-Fill', 'a'.repeat(3000)]] }));
    assert.equal(small.status, 200);
    const big = await sendRaw(proxyPort, httpRequest('GET', '/x', `127.0.0.1:${proxyPort}`, { headers: [['X-Fill', 'a'.repeat(5000)]] }));
    assert.equal(big.status, 431);
    assert.deepEqual(big.json, { code: 'PROXY_ERR_HEADERS_TOO_LARGE', message: 'the request head is too large' });

    const app = await startApp(t);
    const appPort = Number(new URL(app.base).port);
    const tooBig = await sendRaw(appPort, httpRequest('GET', '/api/config', `127.0.0.1:${appPort}`, { headers: [['X-Fill', 'a'.repeat(18 * 1024)]] }));
    assert.equal(tooBig.status, 431);
    assert.equal((tooBig.json as { code: string }).code, 'APP_ERR_HEADERS_TOO_LARGE');
    const fits = await sendRaw(appPort, httpRequest('GET', '/api/config', `127.0.0.1:${appPort}`, { headers: [['X-Fill', 'a'.repeat(16 * 1024)]] }));
    assert.equal(fits.status, 200, 'the app takes what the proxy accepts plus what the proxy adds');
  });

  test('head and timeout limits are options with defaults; a headers timeout above the request timeout is refused', () => {
    const proxy = resolveProxyOptions({ upstreamUrl: 'http://127.0.0.1:8081', secret: TEST_SECRET, controlSecret: TEST_CONTROL_SECRET });
    assert.deepEqual(
      [proxy.maxHeaderBytes, proxy.headersTimeoutMs, proxy.requestTimeoutMs, proxy.keepAliveTimeoutMs],
      [16 * 1024, 10_000, 30_000, 5_000],
    );
    const app = resolveAppOptions({ secret: TEST_SECRET });
    assert.deepEqual([app.maxHeaderBytes, app.headersTimeoutMs, app.requestTimeoutMs, app.keepAliveTimeoutMs], [17 * 1024, 10_000, 30_000, 65_000]);
    assert.throws(
      () => resolveProxyOptions({ upstreamUrl: 'http://127.0.0.1:8081', secret: TEST_SECRET, controlSecret: TEST_CONTROL_SECRET, headersTimeoutMs: 5000, requestTimeoutMs: 1000 }),
      /headersTimeoutMs \(5000\) must not exceed requestTimeoutMs \(1000\)/,
    );
    assert.throws(() => resolveAppOptions({ secret: TEST_SECRET, headersTimeoutMs: 5000, requestTimeoutMs: 1000 }), /headersTimeoutMs \(5000\) must not exceed/);
    assert.equal(resolveProxyOptions({ upstreamUrl: 'http://127.0.0.1:8081', secret: TEST_SECRET, controlSecret: TEST_CONTROL_SECRET, requestTimeoutMs: 0 }).requestTimeoutMs, 0);
    assert.throws(() => resolveProxyOptions({ upstreamUrl: 'http://127.0.0.1:8081', secret: TEST_SECRET, controlSecret: TEST_CONTROL_SECRET, maxHeaderBytes: 100 }), /maxHeaderBytes must be an integer 1024-1048576/);
  });
});
