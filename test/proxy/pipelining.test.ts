/**
 * "Keepalive but not pipelining": a legacy client that pipelines a request
 * behind a parked poll on the same connection must not wait for the hold.
 * The proxy answers the poll with its timeout response at once (the client
 * re-polls) and the pipelined request is answered right after, in order.
 *
 * Pipelined requests are forwarded one at a time per connection, with a
 * bounded queue behind the one being answered (docs/protocol.md §1.8).
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { memoryLogger, openRaw, parseResponse, type RawResponse } from '../hardening/raw-http.js';
import { startHarness, waitFor } from '../helpers/proxy-harness.js';
import { writeHold } from '../helpers/scripted-app.js';

/** Sends raw bytes on one connection and collects everything the server writes until it has `responses` responses. */
function rawExchange(port: number, payload: string, responses: number, onConnected?: (write: (s: string) => void) => void) {
  return new Promise<string>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let data = '';
    socket.setEncoding('utf8');
    socket.on('connect', () => {
      socket.write(payload);
      onConnected?.((s) => socket.write(s));
    });
    socket.on('data', (chunk: string) => {
      data += chunk;
      if ((data.match(/HTTP\/1\.1 \d{3}/g) ?? []).length >= responses && /\r\n\r\n[\s\S]*ok-next$/.test(data)) {
        socket.end();
        resolve(data);
      }
    });
    socket.on('error', reject);
    socket.setTimeout(5000, () => {
      socket.destroy();
      reject(new Error(`no complete answer within 5 s; got ${JSON.stringify(data)}`));
    });
  });
}

test('a request pipelined behind a parked poll releases the poll with its timeout response, then is answered', async (t) => {
  const h = await startHarness(t);
  h.app.handle = (req, res) => {
    if (req.url === '/poll') writeHold(res, { channel: 'c', timeoutS: 55, body: 'timeout-body' });
    else res.end('ok-next');
  };
  const port = Number(new URL(h.clientUrl).port);
  let sendNext: (s: string) => void = () => undefined;
  const answer = rawExchange(port, 'GET /poll HTTP/1.1\r\nHost: localhost\r\n\r\n', 2, (write) => (sendNext = write));
  await h.waitParked(1);
  sendNext('GET /next HTTP/1.1\r\nHost: localhost\r\n\r\n');
  const raw = await answer;

  const first = raw.indexOf('timeout-body');
  const second = raw.indexOf('ok-next');
  assert.ok(first > 0 && second > first, `both answers, in order: ${JSON.stringify(raw)}`);
  assert.equal(h.proxy.stats().pipelineReleases, 1);
  assert.equal(h.proxy.stats().parked, 0);
});

test('a poll whose connection already has a pipelined request behind it is never parked', async (t) => {
  const h = await startHarness(t);
  let releaseHold: () => void = () => undefined;
  h.app.handle = (req, res) => {
    if (req.url === '/poll') {
      // Answer the hold only once the pipelined request has reached the proxy.
      releaseHold = () => writeHold(res, { channel: 'c', timeoutS: 55, body: 'timeout-body' });
    } else {
      res.end('ok-next');
    }
  };
  const port = Number(new URL(h.clientUrl).port);
  let atProxy = 0;
  h.proxy.clientServer.on('request', () => atProxy++);
  const answer = rawExchange(port, 'GET /poll HTTP/1.1\r\nHost: localhost\r\n\r\nGET /next HTTP/1.1\r\nHost: localhost\r\n\r\n', 2);
  await waitFor(() => atProxy === 2 && h.app.requests.length === 1, { message: 'both requests at the proxy, the poll at the app' });
  releaseHold();
  const raw = await answer;
  assert.ok(raw.indexOf('timeout-body') < raw.indexOf('ok-next'), raw);
  // One request at a time per connection: the app is asked for the next one only after the poll was answered.
  assert.deepEqual(h.app.requests.map((r) => r.url), ['/poll', '/next']);
  assert.equal(h.proxy.stats().pipelineReleases, 1);
  assert.equal(h.proxy.stats().holds, 1);
  assert.equal(h.proxy.stats().parked, 0);
});

/** `n` pipelined requests in one buffer, `GET /n/0` ... (no `Connection: close`: that ends a pipeline). */
function pipelined(n: number, path = (i: number) => `/n/${i}`): string {
  return Array.from({ length: n }, (_, i) => `GET ${path(i)} HTTP/1.1\r\nHost: localhost\r\n\r\n`).join('');
}

/** Every complete response in `raw`, in order. */
function responsesIn(raw: Buffer): RawResponse[] {
  const out: RawResponse[] = [];
  for (let at = 0; ; ) {
    const res = parseResponse(raw.subarray(at));
    if (res === null) return out;
    out.push(res);
    at += res.wireLength;
  }
}

test('pipelined requests are answered in order, and the app is asked for one at a time', async (t) => {
  const h = await startHarness(t);
  let inFlight = 0;
  let peak = 0;
  h.app.handle = (req, res) => {
    inFlight++;
    peak = Math.max(peak, inFlight);
    // A slower app, so requests forwarded concurrently would overlap here.
    setTimeout(() => {
      inFlight--;
      res.end(`answer ${req.method} ${req.url} ${req.body.toString()}`);
    }, 15);
  };
  const conn = await openRaw(Number(new URL(h.clientUrl).port));
  t.after(() => conn.destroy());
  const post = 'POST /n/post HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nhello';
  conn.write(pipelined(4) + post + pipelined(4, (i) => `/m/${i}`));
  await waitFor(() => responsesIn(conn.received()).length === 9, { timeoutMs: 5000, message: 'nine answers' });
  assert.deepEqual(
    responsesIn(conn.received()).map((r) => r.text),
    [0, 1, 2, 3].map((i) => `answer GET /n/${i} `).concat('answer POST /n/post hello', [0, 1, 2, 3].map((i) => `answer GET /m/${i} `)),
  );
  assert.equal(peak, 1, 'never two requests of one connection at the app at once');
});

test('past pipelineMaxQueued waiting requests the next is answered 429 PROXY_ERR_TOO_MANY_PIPELINED and the connection closed, once logged', async (t) => {
  const log = memoryLogger('info');
  const h = await startHarness(t, { pipelineMaxQueued: 4, logger: log.logger });
  h.app.handle = (req, res) => void res.end(`ok ${req.url}`);
  const conn = await openRaw(Number(new URL(h.clientUrl).port));
  t.after(() => conn.destroy());
  conn.write(pipelined(10));
  await conn.closed;
  const answers = responsesIn(conn.received());
  // One being answered plus four waiting are served; the sixth is refused; nothing after it is answered.
  assert.deepEqual(answers.slice(0, 5).map((r) => r.text), [0, 1, 2, 3, 4].map((i) => `ok /n/${i}`));
  assert.equal(answers.length, 6);
  const refusal = answers[5]!;
  assert.equal(refusal.status, 429);
  assert.equal(refusal.headers.connection, 'close');
  assert.deepEqual(Object.keys(refusal.json as object).sort(), ['code', 'message']);
  assert.equal((refusal.json as { code: string }).code, 'PROXY_ERR_TOO_MANY_PIPELINED');
  assert.equal(h.app.requests.length, 5, 'the refused request and those after it never reach the app');
  const warnings = log.lines.filter((l) => l.level === 40);
  assert.equal(warnings.length, 1, JSON.stringify(warnings));
  assert.equal(warnings[0]!.clientAddress, '127.0.0.1');
  assert.equal(warnings[0]!.requestId, refusal.headers['x-request-id']);
});

test('while pipelineMaxQueued requests wait the connection is not read, so a request sent then waits in the kernel instead of being refused', async (t) => {
  const h = await startHarness(t, { pipelineMaxQueued: 2 });
  let releaseFirst: () => void = () => undefined;
  h.app.handle = (req, res) => {
    if (req.url === '/n/0') releaseFirst = () => void res.end('ok /n/0');
    else res.end(`ok ${req.url}`);
  };
  let serverSide: Socket | undefined;
  h.proxy.clientServer.once('connection', (socket: Socket) => (serverSide = socket));
  let atProxy = 0;
  h.proxy.clientServer.on('request', () => atProxy++);
  const conn = await openRaw(Number(new URL(h.clientUrl).port));
  t.after(() => conn.destroy());
  conn.write(pipelined(3));
  await waitFor(() => atProxy === 3 && h.app.requests.length === 1, { message: 'one request at the app, two waiting' });
  assert.equal(serverSide?.isPaused(), true, 'reading paused while two requests wait');
  // Read now, it would be a third waiting request and refused; unread, it is parsed once the queue has room.
  conn.write(pipelined(1, () => '/n/3'));
  releaseFirst();
  await waitFor(() => responsesIn(conn.received()).length === 4, { timeoutMs: 5000, message: 'four answers' });
  assert.deepEqual(responsesIn(conn.received()).map((r) => `${r.status} ${r.text}`), [0, 1, 2, 3].map((i) => `200 ok /n/${i}`));
});
