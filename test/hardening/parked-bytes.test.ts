/**
 * What a parked request may keep (issue 14 item 6, docs/protocol.md §4 step 4): the parking caps count
 * requests, but one request can bring a 16 KiB head and a body the proxy retains for re-asks. A held
 * request whose body is over `maxParkedBodyBytes` (or still arriving) is answered 413
 * `PROXY_ERR_PARKED_BODY_TOO_LARGE`; the head, body and held response of every parked request together
 * stay under `maxParkedBytes` (503 `PROXY_ERR_TOO_MANY_PARKED` with `Retry-After` beyond it); `/stats`
 * and `/metrics` show the bytes parked now, which return to 0 whichever way the requests leave.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { proxyOptionsFromEnv } from '../../proxy/config.js';
import { resolveProxyOptions } from '../../proxy/options.js';
import { createHoldProxy } from '../../proxy/proxy.js';
import { adaAndBob } from '../helpers/chat-client.js';
import { jsonFormat, request, startHarness, TEST_CONTROL_SECRET, TEST_SECRET, waitFor, type HttpResult } from '../helpers/proxy-harness.js';
import { startStack } from '../helpers/stack.js';
import { writeHold } from '../helpers/scripted-app.js';
import { memoryLogger, openRaw, type RawConnection, type RawResponse } from './raw-http.js';

function errorBody(res: HttpResult | RawResponse): { code: string; message: string } {
  const body = (typeof res.json === 'function' ? res.json() : res.json) as { code: string; message: string };
  assert.deepEqual(Object.keys(body).sort(), ['code', 'message']);
  return body;
}

/** The proxy's `comet_proxy_parked_bytes` gauge, scraped from `/metrics`. */
async function parkedBytesMetric(controlUrl: string): Promise<number> {
  const res = await fetch(`${controlUrl}/metrics`, { headers: { authorization: `Bearer ${TEST_CONTROL_SECRET}` } });
  const line = (await res.text()).split('\n').find((l) => l.startsWith('comet_proxy_parked_bytes '));
  assert.ok(line !== undefined, 'comet_proxy_parked_bytes is exposed');
  return Number(line.split(' ')[1]);
}

describe('bytes a parked request keeps', { timeout: 15_000 }, () => {
  test('a held request with a 60 KB body is answered 413 PROXY_ERR_PARKED_BODY_TOO_LARGE, logged once, and never parked', async (t) => {
    const log = memoryLogger('debug');
    const h = await startHarness(t, { logger: log.logger });
    h.app.handle = (_req, res) => writeHold(res, { channel: 'room:a', timeoutS: 1 });
    const from = log.lines.length;
    const res = await h.get('/poll', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x'.repeat(60_000) });
    assert.equal(res.status, 413);
    assert.equal(errorBody(res).code, 'PROXY_ERR_PARKED_BODY_TOO_LARGE');
    assert.equal(h.app.requests.length, 1, 'the app was asked; only the parking was refused');
    assert.equal(h.app.requests[0]!.body.length, 60_000, 'the app got the whole body');
    const stats = h.proxy.stats();
    assert.equal(stats.parked, 0);
    assert.equal(stats.parkedBytes, 0);
    const lines = log.lines.slice(from).filter((l) => l.level >= 30);
    assert.equal(lines.length, 1, `one log line, got ${JSON.stringify(lines)}`);
    assert.equal(lines[0]!.level, 30);
  });

  test('a body of exactly maxParkedBodyBytes parks, is counted, and is sent again on a re-ask', async (t) => {
    const h = await startHarness(t, { maxParkedBodyBytes: 1000 });
    h.app.handle = (req, res) => {
      if (req.headers['grip-last'] === undefined) writeHold(res, { channel: 'room:a; prev-id=1' });
      else res.writeHead(200, { 'content-type': 'text/plain' }).end(`echo ${req.body.length}`);
    };
    const poll = h.get('/poll', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'y'.repeat(1000) });
    await h.waitParked(1);
    assert.ok(h.proxy.stats().parkedBytes >= 1000, `the body is counted, got ${h.proxy.stats().parkedBytes}`);
    await h.control('/publish/', { items: [{ channel: 'room:a', id: '3', 'prev-id': '2', formats: jsonFormat({}) }] });
    assert.equal((await poll).text, 'echo 1000');
    assert.equal(h.proxy.stats().parkedBytes, 0);

    const over = await h.get('/poll', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'y'.repeat(1001) });
    assert.equal(over.status, 413);
    assert.equal(errorBody(over).code, 'PROXY_ERR_PARKED_BODY_TOO_LARGE');
  });

  test('a request whose body is still arriving when the app answers with a hold is answered 413, not parked', async (t) => {
    // An app that answers before reading the request body: the proxy cannot know what the body will cost.
    const app = createServer((_req, res) => writeHold(res, { channel: 'room:a', timeoutS: 1 }));
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => (app.close(() => resolve()), app.closeAllConnections())));
    let conn: RawConnection | undefined;
    t.after(() => conn?.destroy()); // before the proxy closes: it waits for every connection
    const proxy = createHoldProxy({ upstreamUrl: `http://127.0.0.1:${(app.address() as AddressInfo).port}`, secret: TEST_SECRET, controlSecret: TEST_CONTROL_SECRET, clientPort: 0, controlPort: 0 });
    t.after(() => proxy.close());
    const { clientPort } = await proxy.listen();

    conn = await openRaw(clientPort);
    const head = `POST /poll HTTP/1.1\r\nHost: 127.0.0.1:${clientPort}\r\nTransfer-Encoding: chunked\r\n\r\n`;
    const res = await conn.send(`${head}5\r\nhello\r\n`); // the last chunk never comes
    assert.equal(res.status, 413);
    assert.equal(errorBody(res).code, 'PROXY_ERR_PARKED_BODY_TOO_LARGE');
    assert.equal(proxy.stats().parked, 0);
    assert.equal(proxy.stats().parkedBytes, 0);
  });

  test('head, body and held response of every parked request count against maxParkedBytes; beyond it a hold gets 503 with Retry-After', async (t) => {
    const h = await startHarness(t, { maxHeaderBytes: 8192, maxParkedBodyBytes: 1024, maxParkedBytes: 24_000, parkedRetryAfterS: 9 });
    const held = 'h'.repeat(500);
    h.app.handle = (_req, res) => writeHold(res, { channel: 'room:a', body: held });
    const pad = { 'x-pad': 'p'.repeat(6000) };
    const parked = [h.get('/poll', { headers: pad }), h.get('/poll', { headers: pad })];
    await h.waitParked(2);
    const two = h.proxy.stats().parkedBytes;
    assert.ok(two >= 2 * (6000 + 500) && two < 2 * (6000 + 500 + 1024), `two requests of 6 KB heads and 500-byte held bodies, got ${two}`);
    parked.push(h.get('/poll', { headers: pad }));
    await h.waitParked(3);

    const refused = await h.get('/poll', { headers: pad });
    assert.equal(refused.status, 503);
    assert.equal(errorBody(refused).code, 'PROXY_ERR_TOO_MANY_PARKED');
    assert.equal(refused.headers['retry-after'], '9');
    assert.equal(h.proxy.stats().parked, 3, 'the refused hold was not parked');
    assert.ok(h.proxy.stats().parkedBytes <= 24_000);
    // A small request still fits under the budget.
    const small = h.get('/poll');
    await h.waitParked(4);

    await h.control('/publish/', { items: [{ channel: 'room:a', formats: jsonFormat({ n: 1 }) }] });
    for (const res of await Promise.all([...parked, small])) assert.equal(res.status, 200);
    assert.equal(h.proxy.stats().parkedBytes, 0);
  });

  test('parked bytes in /stats and /metrics return to 0 after delivery, timeout, abort and supersession', async (t) => {
    const h = await startHarness(t, { minHoldTimeoutMs: 0 });
    const cid = 'V1StGXR8_Z5jdHi6B-myT';
    h.app.handle = (req, res) => {
      if (req.url.startsWith('/timeout')) return writeHold(res, { channel: 'room:t', timeoutS: 0.2 });
      if (req.url.startsWith('/cid')) return writeHold(res, { connectionId: cid, channel: 'room:c' });
      writeHold(res, { channel: 'room:a' });
    };
    const settled = async (what: string) => {
      await waitFor(() => h.proxy.stats().parkedBytes === 0, { message: `parked bytes back to 0 after ${what}` });
      assert.equal(await parkedBytesMetric(h.controlUrl), 0);
    };

    const delivered = h.get('/poll', { headers: { 'x-pad': 'd'.repeat(2000) } });
    await h.waitParked(1);
    const bytes = h.proxy.stats().parkedBytes;
    assert.ok(bytes > 2000, `a 2 KB head is counted, got ${bytes}`);
    assert.equal(await parkedBytesMetric(h.controlUrl), bytes);
    await h.control('/publish/', { items: [{ channel: 'room:a', formats: jsonFormat({}) }] });
    assert.equal((await delivered).status, 200);
    await settled('a delivery');

    assert.equal((await h.get('/timeout')).status, 200);
    await settled('a timeout');

    const abort = new AbortController();
    const aborted = h.get('/poll', { signal: abort.signal });
    await h.waitParked(1);
    abort.abort();
    await assert.rejects(aborted);
    await settled('a client abort');

    const older = h.get('/cid?n=1');
    await h.waitParked(1);
    const newer = h.get('/cid?n=2', { headers: { 'x-pad': 'n'.repeat(3000) } });
    assert.equal((await older).status, 200, 'the older request was superseded');
    await h.waitParked(1);
    assert.ok(h.proxy.stats().parkedBytes > 3000, 'only the newer request is counted');
    await h.control('/close/', { items: [{ 'connection-id': cid }] });
    assert.equal((await newer).status, 410);
    await settled('supersession and close');
  });

  test('a leased re-poll that carries a body goes to the app, so it parks with its whole body instead of being refused', async (t) => {
    const stack = await startStack(t);
    const { ada, bob } = await adaAndBob(stack.base);
    const first = ada.poll(); // through the app, which grants the lease
    await waitFor(async () => (await stack.stats()).parked === 1, { message: 'the first poll to park' });
    await bob.post('general', 'one');
    assert.equal((await first).status, 200);
    assert.equal((await stack.stats()).leases, 1);
    const holdsBefore = (await stack.stats()).holds;

    // Ada's exact re-poll, which the lease would let the proxy park without the app, but with a body.
    const cookie = (ada as unknown as { cookie: string }).cookie; // ChatClient keeps it private; fetch cannot send a GET body
    const withBody = request(stack.base + ada.pollPath(), { headers: { cookie, 'content-type': 'text/plain', 'content-length': '6' }, body: 'cursor' });
    await waitFor(async () => (await stack.stats()).parked === 1, { message: 'the re-poll with a body to park' });
    const stats = await stack.stats();
    assert.equal(stats.holds, holdsBefore + 1, 'the app held it');
    assert.equal(stats.repollParks, 0, 'the proxy did not park it alone');
    await bob.post('general', 'two');
    const res = await withBody;
    assert.equal(res.status, 200);
    assert.deepEqual((res.json() as { events: Array<{ text: string }> }).events.map((e) => e.text), ['two']);
  });

  test('both limits are options with defaults, read from the environment and validated before anything opens', () => {
    const base = { upstreamUrl: 'http://127.0.0.1:8081', secret: TEST_SECRET, controlSecret: TEST_CONTROL_SECRET };
    const o = resolveProxyOptions(base);
    assert.deepEqual([o.maxParkedBodyBytes, o.maxParkedBytes], [8 * 1024, 64 * 1024 * 1024]);
    assert.throws(() => resolveProxyOptions({ ...base, maxParkedBodyBytes: -1 }), /maxParkedBodyBytes must be an integer >= 0, got -1/);
    assert.throws(() => resolveProxyOptions({ ...base, maxParkedBytes: 0 }), /maxParkedBytes must be an integer >= 1, got 0/);
    // The largest request the proxy accepts must fit in the budget on its own, or it could never park.
    assert.throws(
      () => resolveProxyOptions({ ...base, maxHeaderBytes: 16_384, maxParkedBodyBytes: 8192, maxParkedBytes: 20_000 }),
      /maxParkedBytes \(20000\) must be at least maxHeaderBytes \+ maxParkedBodyBytes \(24576\)/,
    );
    const env = proxyOptionsFromEnv({ GRIP_SECRET: TEST_SECRET, CONTROL_SECRET: TEST_CONTROL_SECRET, LOG_LEVEL: 'silent', MAX_PARKED_BODY_BYTES: '0', MAX_PARKED_BYTES: '1048576' }, []);
    assert.deepEqual([env.maxParkedBodyBytes, env.maxParkedBytes], [0, 1_048_576]);
  });
});
