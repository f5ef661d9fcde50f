import assert from 'node:assert/strict';
import { createServer, get } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { describe, test } from 'node:test';
import { signGripSig, verifyGripSig } from '../../protocol/grip-sig.js';
import { createHoldProxy } from '../../proxy/proxy.js';
import { pino } from 'pino';
import { request, startHarness, TEST_CONTROL_SECRET, TEST_SECRET, waitFor } from '../helpers/proxy-harness.js';
import { writeHold } from '../helpers/scripted-app.js';

describe('header hygiene', { timeout: 10_000 }, () => {
  test('client Grip-* headers never reach the app, and the app gets a valid Grip-Sig and X-Forwarded-*', async (t) => {
    const h = await startHarness(t);
    const forged = await signGripSig('attacker-secret-0123456789');
    const res = await h.get('/api/rooms?x=1', {
      headers: {
        'Grip-Sig': forged,
        'Grip-Last': 'room:a; last-id=999',
        'Grip-Channel': 'room:a',
        'Grip-Anything': 'x',
        'X-Client': 'kept',
      },
    });
    assert.equal(res.status, 200);
    const seen = await h.app.waitForRequest(1);
    assert.equal(seen.url, '/api/rooms?x=1');
    assert.deepEqual(
      Object.keys(seen.headers).filter((n) => n.startsWith('grip-')),
      ['grip-sig'],
      'only the proxy-made Grip-Sig reaches the app',
    );
    assert.notEqual(seen.headers['grip-sig'], forged);
    assert.equal(await verifyGripSig(seen.headers['grip-sig'] as string, TEST_SECRET), true);
    assert.equal(seen.headers['x-client'], 'kept');
    assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(seen.headers['x-forwarded-proto'], 'http');
    assert.equal(seen.headers['x-forwarded-host'], new URL(h.clientUrl).host);
  });

  test('hop-by-hop request headers are not forwarded, but the body framing is', async (t) => {
    const h = await startHarness(t);
    h.app.handle = (req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(req.body);
    };
    const res = await h.get('/echo', {
      method: 'POST',
      headers: { Connection: 'close, X-Hop, Content-Length', 'X-Hop': '1', TE: 'trailers', 'Keep-Alive': 'timeout=5', 'X-End': '1' },
      body: 'payload',
    });
    assert.equal(res.text, 'payload');
    const seen = await h.app.waitForRequest(1);
    assert.equal(seen.headers['x-hop'], undefined);
    assert.equal(seen.headers.te, undefined);
    assert.equal(seen.headers['keep-alive'], undefined);
    assert.notEqual(seen.headers.connection, 'close', 'the upstream connection stays keep-alive');
    assert.equal(seen.headers['x-end'], '1');
    assert.equal(seen.headers['content-length'], '7');
  });

  test("the app's Grip-* headers never reach the client on a pass-through response", async (t) => {
    const h = await startHarness(t);
    h.app.handle = (_req, res) => {
      res.writeHead(200, { 'Grip-Channel': 'room:a', 'Grip-Timeout': '5', 'Grip-Other': '1', 'X-App': 'kept', 'Content-Type': 'text/plain' });
      res.end('plain');
    };
    const res = await h.get('/');
    assert.equal(res.text, 'plain');
    assert.equal(res.headers['x-app'], 'kept');
    assert.deepEqual(Object.keys(res.headers).filter((n) => n.startsWith('grip-')), []);
  });
});

describe('pass-through', { timeout: 10_000 }, () => {
  test('a response without Grip-Hold streams to the client before the app ends it', async (t) => {
    const h = await startHarness(t);
    let finish!: () => void;
    const finished = new Promise<void>((resolve) => (finish = resolve));
    h.app.handle = async (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first;');
      await finished;
      res.end('second');
    };
    const body = await new Promise<string>((resolve, reject) => {
      get(`${h.clientUrl}/stream`, { agent: false }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
          // The first chunk arrived while the app is still waiting: nothing was buffered.
          if (text === 'first;') finish();
        });
        res.on('end', () => resolve(text));
        res.on('error', reject);
      }).on('error', reject);
    });
    assert.equal(body, 'first;second');
  });

  test('status, reason, headers and a POST body pass through both ways', async (t) => {
    const h = await startHarness(t);
    h.app.handle = (req, res) => {
      res.writeHead(418, 'Short And Stout', { 'content-type': 'application/json', 'set-cookie': ['a=1', 'b=2'] });
      res.end(JSON.stringify({ method: req.method, got: req.body.toString() }));
    };
    const res = await h.get('/api/rooms/general/messages', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"text":"hello"}',
    });
    assert.equal(res.status, 418);
    assert.equal(res.statusMessage, 'Short And Stout');
    assert.deepEqual(res.headers['set-cookie'], ['a=1', 'b=2']);
    assert.deepEqual(res.json(), { method: 'POST', got: '{"text":"hello"}' });
  });
});

describe('client aborts', { timeout: 10_000 }, () => {
  test('a client that leaves before the app answers cancels the upstream request and is not logged as an app error', async (t) => {
    const lines: Array<{ level: number; msg: string }> = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const h = await startHarness(t, { logger });
    let appSawClose!: () => void;
    const closedAtApp = new Promise<void>((resolve) => (appSawClose = resolve));
    h.app.handle = (_req, res) => {
      res.on('close', () => appSawClose()); // never answers; the proxy must let go
    };
    const abort = new AbortController();
    const poll = h.get('/poll', { signal: abort.signal });
    await h.app.waitForRequest(1);
    abort.abort();
    await assert.rejects(poll);
    await closedAtApp;
    await waitFor(() => lines.some((l) => /client went away/.test(l.msg)), { message: 'the abort to be logged' });
    const problems = lines.filter((l) => l.level >= 40);
    assert.deepEqual(problems, [], 'a client abort is not a warning or an error');
  });
});

describe('upstream failures', { timeout: 10_000 }, () => {
  test('an unreachable app gives 502 PROXY_ERR_UPSTREAM_UNAVAILABLE quickly', async (t) => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));

    const proxy = createHoldProxy({ upstreamUrl: `http://127.0.0.1:${port}`, secret: TEST_SECRET, controlSecret: TEST_CONTROL_SECRET, clientPort: 0, controlPort: 0 });
    t.after(() => proxy.close());
    const { clientPort } = await proxy.listen();
    const started = Date.now();
    const res = await request(`http://127.0.0.1:${clientPort}/`);
    assert.ok(Date.now() - started < 1000, 'answered without waiting for a timeout');
    assert.equal(res.status, 502);
    assert.equal(res.headers['content-type'], 'application/json; charset=utf-8');
    assert.equal((res.json() as { code: string }).code, 'PROXY_ERR_UPSTREAM_UNAVAILABLE');
  });

  test('an app that does not answer within upstreamTimeoutMs gives 504 PROXY_ERR_UPSTREAM_TIMEOUT', async (t) => {
    const h = await startHarness(t, { upstreamTimeoutMs: 100 });
    h.app.handle = () => {}; // never answers
    const res = await h.get('/slow');
    assert.equal(res.status, 504);
    assert.equal((res.json() as { code: string }).code, 'PROXY_ERR_UPSTREAM_TIMEOUT');
  });

  test('a hold instruction the proxy cannot parse gives 502 PROXY_ERR_BAD_INSTRUCTION', async (t) => {
    const h = await startHarness(t);
    h.app.handle = (_req, res) => {
      res.writeHead(200, { 'Grip-Hold': 'websocket' });
      res.end();
    };
    const res = await h.get('/poll');
    assert.equal(res.status, 502);
    const body = res.json() as { code: string; message: string };
    assert.equal(body.code, 'PROXY_ERR_BAD_INSTRUCTION');
    assert.match(body.message, /Grip-Hold/);
  });

  test('a held response larger than heldResponseMaxBytes is a bad instruction', async (t) => {
    const h = await startHarness(t, { heldResponseMaxBytes: 10 });
    h.app.handle = (_req, res) => writeHold(res, { channel: 'a', body: 'x'.repeat(11) });
    const res = await h.get('/poll');
    assert.equal(res.status, 502);
    assert.equal((res.json() as { code: string }).code, 'PROXY_ERR_BAD_INSTRUCTION');
    assert.equal(h.proxy.stats().parked, 0);
  });

  test('an idle upstream socket is closed by the proxy after upstreamIdleTimeoutMs, before the app would close it', async (t) => {
    const h = await startHarness(t, { upstreamIdleTimeoutMs: 200 });
    const appSockets: Socket[] = [];
    h.app.handle = (_req, res, raw) => {
      appSockets.push(raw.socket);
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok');
    };
    assert.equal((await h.get('/a')).status, 200);
    let closed = false;
    appSockets[0]!.once('close', () => (closed = true));
    // The scripted app keeps idle sockets for Node's default 5 s: a close well before that is the proxy's.
    await waitFor(() => closed, { timeoutMs: 3_000, message: 'the proxy closes its idle upstream socket' });
    assert.equal((await h.get('/b')).status, 200);
    assert.equal(appSockets.length, 2);
    assert.notEqual(appSockets[1], appSockets[0], 'the next request opened a new upstream connection');
  });

  test('more requests than upstreamMaxSockets wait for a socket instead of failing', async (t) => {
    const h = await startHarness(t, { upstreamMaxSockets: 1 });
    h.app.handle = (req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(req.url);
    };
    const answers = await Promise.all([1, 2, 3, 4].map((n) => h.get(`/n${n}`)));
    assert.deepEqual(answers.map((r) => [r.status, r.text]), [[200, '/n1'], [200, '/n2'], [200, '/n3'], [200, '/n4']]);
  });
});
