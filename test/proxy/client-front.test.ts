/**
 * The client front (proxy/http/front/, issue 15): leased re-polls and their parked answers are served without
 * node:http's per-request objects, and everything else reaches node:http unchanged, on the same connections,
 * in order. Raw sockets against the real stack (app + proxy), so the wire is what is checked.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { test, type TestContext } from 'node:test';
import { adaAndBob, ChatClient, waitFor } from '../helpers/chat-client.js';
import { startStack, type StackOverrides, type TestStack } from '../helpers/stack.js';

interface Leased {
  stack: TestStack;
  ada: ChatClient;
  bob: ChatClient;
  /** Requests other than POSTs (Bob's messages) node:http dispatched on the client port from now on. */
  nodeRequests: string[];
}

/** Ada and Bob in `general`; Ada has polled once through the app and holds a lease for her next polls. */
async function leased(t: TestContext, overrides: StackOverrides = {}): Promise<Leased> {
  const stack = await startStack(t, overrides);
  assert.ok(stack.proxy.clientFront !== null, 'the front is on by default');
  const { ada, bob } = await adaAndBob(stack.base);
  const first = ada.poll();
  await waitFor(async () => (await stack.stats()).parked === 1, 'the first poll parked by the app');
  await bob.post('general', 'first');
  assert.equal((await first).status, 200);
  assert.equal((await stack.stats()).leases, 1, 'the app granted a lease');
  const nodeRequests: string[] = [];
  stack.proxy.clientServer.on('request', (req) => {
    if (req.method !== 'POST') nodeRequests.push(`${req.method} ${req.url}`);
  });
  return { stack, ada, bob, nodeRequests };
}

interface RawResponse {
  head: string;
  status: number;
  headers: Map<string, string>;
  body: string;
}

interface RawClient {
  socket: Socket;
  /** Everything received so far (latin1). */
  text(): string;
  /** The next complete response (Content-Length framed), in order. */
  next(timeoutMs?: number): Promise<RawResponse>;
  closed: Promise<void>;
  isClosed(): boolean;
}

async function rawClient(t: TestContext, stack: TestStack, options: { read?: boolean } = {}): Promise<RawClient> {
  const socket = connect(stack.clientPort, '127.0.0.1');
  t.after(() => socket.destroy());
  let received = '';
  let taken = 0;
  let closed = false;
  if (options.read !== false) {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (received += chunk));
  }
  socket.on('error', () => undefined);
  const closedP = once(socket, 'close').then(() => {
    closed = true;
  });
  await once(socket, 'connect');
  const parse = (): RawResponse | null => {
    const rest = received.slice(taken);
    const end = rest.indexOf('\r\n\r\n');
    if (end === -1) return null;
    const head = rest.slice(0, end);
    const headers = new Map<string, string>();
    for (const line of head.split('\r\n').slice(1)) {
      const colon = line.indexOf(':');
      headers.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
    }
    const length = Number(headers.get('content-length') ?? 0);
    if (rest.length < end + 4 + length) return null;
    taken += end + 4 + length;
    return { head, status: Number(head.split(' ')[1]), headers, body: rest.slice(end + 4, end + 4 + length) };
  };
  return {
    socket,
    text: () => received,
    async next(timeoutMs = 5000) {
      let response: RawResponse | null = null;
      await waitFor(() => (response = parse()) !== null, 'a complete response', timeoutMs);
      return response!;
    },
    closed: closedP,
    isClosed: () => closed,
  };
}

/** Ada's next poll as raw bytes (her cookie, her cursor, her connection ID). */
function pollRequest(ada: ChatClient, extra = '', version = '1.1'): string {
  return `GET ${ada.pollPath()} HTTP/${version}\r\nHost: 127.0.0.1\r\nCookie: ${ada.sessionCookie}\r\n${extra}\r\n`;
}

function eventsOf(response: RawResponse): string[] {
  return (JSON.parse(response.body) as { events: Array<{ text: string }> }).events.map((e) => e.text);
}

test('a leased re-poll is parked and answered without node:http: no request event, and the answer framed byte for byte', { timeout: 30_000 }, async (t) => {
  const { stack, ada, bob, nodeRequests } = await leased(t);
  const c = await rawClient(t, stack);
  const parksBefore = (await stack.stats()).repollParks;
  c.socket.write(pollRequest(ada));
  await waitFor(async () => (await stack.stats()).parked === 1, 'the re-poll parked by the proxy');
  assert.equal((await stack.stats()).repollParks, parksBefore + 1);
  await bob.post('general', 'hello');
  const r = await c.next();
  assert.equal(r.status, 200);
  assert.deepEqual(eventsOf(r), ['hello']);
  const lines = r.head.split('\r\n');
  assert.equal(lines[0], 'HTTP/1.1 200 OK');
  // Node's order: the answer's own headers, then Date, Connection, Keep-Alive.
  assert.match(lines.at(-3)!, /^Date: \w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/);
  assert.deepEqual(lines.slice(-2), ['Connection: keep-alive', 'Keep-Alive: timeout=5']);
  assert.equal(Number(r.headers.get('content-length')), Buffer.byteLength(r.body, 'latin1'));
  assert.ok(r.headers.get('x-request-id'), 'a request id');
  assert.equal(c.text().length, r.head.length + 4 + r.body.length, 'nothing after the body');
  assert.deepEqual(nodeRequests, [], 'node:http never saw the re-poll');
  assert.equal(c.isClosed(), false, 'kept alive');
});

test('one connection keeps alive across fast and node:http requests, in both orders', { timeout: 30_000 }, async (t) => {
  const { stack, ada, bob, nodeRequests } = await leased(t);
  await bob.post('general', 'waiting');
  const c = await rawClient(t, stack);
  c.socket.write(pollRequest(ada));
  assert.deepEqual(eventsOf(await c.next()), ['waiting'], 'fast, from the buffer');
  c.socket.write(`GET /api/rooms HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: ${ada.sessionCookie}\r\n\r\n`);
  const rooms = await c.next();
  assert.equal(rooms.status, 200);
  assert.deepEqual(nodeRequests, ['GET /api/rooms']);
  c.socket.write(pollRequest(ada));
  assert.deepEqual(eventsOf(await c.next()), ['waiting'], 'fast again after node:http');
  assert.deepEqual(nodeRequests, ['GET /api/rooms']);
  assert.equal(c.isClosed(), false);
});

test('pipelined fast, node:http and fast requests in one write are answered in order', { timeout: 30_000 }, async (t) => {
  const { stack, ada, bob, nodeRequests } = await leased(t);
  await bob.post('general', 'queued');
  const c = await rawClient(t, stack);
  c.socket.write(pollRequest(ada) + `GET /api/rooms HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: ${ada.sessionCookie}\r\n\r\n` + pollRequest(ada));
  assert.deepEqual(eventsOf(await c.next()), ['queued']);
  const rooms = await c.next();
  assert.equal(rooms.status, 200);
  assert.ok(Array.isArray((JSON.parse(rooms.body) as { rooms: unknown[] }).rooms));
  assert.deepEqual(eventsOf(await c.next()), ['queued']);
  // The first went fast; node:http owed an answer when the third arrived, so it queued there (and the app answered).
  assert.deepEqual(nodeRequests, ['GET /api/rooms', `GET ${ada.pollPath()}`]);
});

test('a request pipelined behind a parked fast re-poll releases it with its timeout answer (outcome pipelined)', { timeout: 30_000 }, async (t) => {
  const { stack, ada, nodeRequests } = await leased(t);
  const c = await rawClient(t, stack);
  c.socket.write(pollRequest(ada));
  await waitFor(async () => (await stack.stats()).parked === 1, 'parked');
  c.socket.write(`GET /api/rooms HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: ${ada.sessionCookie}\r\n\r\n`);
  const released = await c.next();
  assert.equal(released.status, 200);
  assert.deepEqual(eventsOf(released), [], 'the held (timeout) answer');
  assert.equal((await c.next()).status, 200);
  assert.deepEqual(nodeRequests, ['GET /api/rooms']);
  assert.equal((await stack.stats()).parked, 0);
});

test('an HTTP/1.0 re-poll is answered with Connection: close and the connection closes', { timeout: 30_000 }, async (t) => {
  const { stack, ada, bob, nodeRequests } = await leased(t);
  await bob.post('general', 'old client');
  const c = await rawClient(t, stack);
  c.socket.write(pollRequest(ada, '', '1.0'));
  const r = await c.next();
  assert.deepEqual(eventsOf(r), ['old client']);
  assert.equal(r.headers.get('connection'), 'close');
  assert.equal(r.headers.get('keep-alive'), undefined);
  await c.closed;
  assert.deepEqual(nodeRequests, []);
});

test("a re-poll with Connection: close gets Connection: close and the connection closes", { timeout: 30_000 }, async (t) => {
  const { stack, ada, bob } = await leased(t);
  await bob.post('general', 'bye');
  const c = await rawClient(t, stack);
  c.socket.write(pollRequest(ada, 'Connection: close\r\n'));
  const r = await c.next();
  assert.deepEqual(eventsOf(r), ['bye']);
  assert.equal(r.headers.get('connection'), 'close');
  await c.closed;
});

test('HEAD goes to node:http and is answered with a head only; the connection stays usable', { timeout: 30_000 }, async (t) => {
  const { stack, ada, bob, nodeRequests } = await leased(t);
  const c = await rawClient(t, stack);
  c.socket.write('HEAD / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  await waitFor(() => c.text().includes('\r\n\r\n'), 'the HEAD answer');
  const head = c.text().split('\r\n\r\n')[0]!;
  assert.match(head, /^HTTP\/1\.1 200 /);
  assert.deepEqual(nodeRequests, ['HEAD /']);
  await bob.post('general', 'after head');
  const start = c.text().length;
  c.socket.write(pollRequest(ada));
  await waitFor(() => c.text().slice(start).includes('after head'), 'the fast answer after it');
  assert.equal(c.text().slice(start).split('\r\n')[0], 'HTTP/1.1 200 OK', 'no body was left between them');
});

test('a POST body split across many writes reaches node:http intact, and a fast re-poll follows on the connection', { timeout: 30_000 }, async (t) => {
  const { stack, ada, nodeRequests } = await leased(t);
  const c = await rawClient(t, stack);
  const body = JSON.stringify({ text: 'x'.repeat(300) + ' split' });
  const request = `POST /api/rooms/general/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: ${ada.sessionCookie}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  for (let i = 0; i < request.length; i += 37) {
    c.socket.write(request.slice(i, i + 37));
    await new Promise((resolve) => setImmediate(resolve));
  }
  const posted = await c.next();
  assert.equal(posted.status, 201, posted.body);
  assert.equal((JSON.parse(posted.body) as { event: { text: string } }).event.text, 'x'.repeat(300) + ' split');
  c.socket.write(pollRequest(ada));
  assert.deepEqual(eventsOf(await c.next()), ['x'.repeat(300) + ' split']);
  assert.deepEqual(nodeRequests, [], 'the re-poll after the POST went fast');
});

test('a chunked body and an Upgrade request go to node:http', { timeout: 30_000 }, async (t) => {
  const { stack, ada, nodeRequests } = await leased(t);
  const chunked = await rawClient(t, stack);
  const body = JSON.stringify({ text: 'chunked' });
  chunked.socket.write(
    `POST /api/rooms/general/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: ${ada.sessionCookie}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n` +
      `${Buffer.byteLength(body).toString(16)}\r\n${body}\r\n0\r\n\r\n`,
  );
  assert.equal((await chunked.next()).status, 201);
  const upgrade = await rawClient(t, stack);
  upgrade.socket.write(`GET ${ada.pollPath()} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: ${ada.sessionCookie}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`);
  const refused = await upgrade.next();
  assert.match(refused.body, /PROXY_ERR_UPGRADE_UNSUPPORTED/);
  assert.deepEqual(nodeRequests, [`GET ${ada.pollPath()}`], 'the upgrade (and the chunked POST) went to node:http');
});

test('a client that leaves while parked on the fast path releases its hold and its connection', { timeout: 30_000 }, async (t) => {
  const { stack, ada } = await leased(t);
  const c = await rawClient(t, stack);
  c.socket.write(pollRequest(ada));
  await waitFor(async () => (await stack.stats()).parked === 1, 'parked');
  const aborts = (await stack.stats()).clientAborts;
  c.socket.destroy();
  await waitFor(async () => (await stack.stats()).parked === 0, 'the hold released');
  assert.equal((await stack.stats()).clientAborts, aborts + 1);
  await waitFor(() => stack.proxy.clientFront!.connectionCount === 0, 'the connection forgotten');
});

test("a malformed request head gets node:http's 400 in JSON", { timeout: 30_000 }, async (t) => {
  const { stack } = await leased(t);
  const c = await rawClient(t, stack);
  c.socket.write('GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header: yes\r\n\r\n');
  const r = await c.next();
  assert.equal(r.status, 400);
  assert.match(r.body, /PROXY_ERR_BAD_REQUEST/);
  await c.closed;
});

test('a client pipelining re-polls without reading gets no more answers than its socket takes, then all of them once it reads', { timeout: 60_000 }, async (t) => {
  const { stack, ada, bob } = await leased(t);
  // Large answers: each re-poll is answered with the same ~20 KB batch from the buffer.
  for (let i = 0; i < 10; i++) await bob.post('general', `${i}`.padEnd(1900, '.'));
  const c = await rawClient(t, stack, { read: false });
  c.socket.pause();
  const count = 1500; // ~30 MB of answers: far beyond what loopback socket buffers hold
  const before = (await stack.stats()).repollAnswers;
  c.socket.write(pollRequest(ada).repeat(count));
  // Answers stop growing while nothing is read: the count holds still for 200 ms (polled, with a deadline).
  let last = -1;
  let changedAt = Date.now();
  await waitFor(
    async () => {
      const now = (await stack.stats()).repollAnswers - before;
      if (now !== last) {
        last = now;
        changedAt = Date.now();
        return false;
      }
      return now > 0 && Date.now() - changedAt >= 200;
    },
    'answers to stop growing while the client does not read',
    10_000,
  );
  assert.ok(last > 0 && last < count, `answers written while the client does not read: ${last} of ${count}`);
  let bytes = 0;
  c.socket.on('data', (chunk: Buffer) => (bytes += chunk.length));
  c.socket.resume();
  await waitFor(async () => (await stack.stats()).repollAnswers - before === count, 'every re-poll answered once the client reads', 30_000);
  assert.ok(bytes > 0);
});

test('closing the proxy answers a parked fast re-poll with Connection: close and closes its connection', { timeout: 30_000 }, async (t) => {
  const { stack, ada } = await leased(t);
  const c = await rawClient(t, stack);
  c.socket.write(pollRequest(ada));
  await waitFor(async () => (await stack.stats()).parked === 1, 'parked');
  const idle = await rawClient(t, stack); // a connection that never sent a request
  const closed = stack.proxy.close();
  const r = await c.next();
  assert.equal(r.status, 200);
  assert.deepEqual(eventsOf(r), [], 'the held (timeout) answer');
  assert.equal(r.headers.get('connection'), 'close');
  await c.closed;
  await idle.closed;
  await closed;
  assert.equal(stack.proxy.clientFront!.connectionCount, 0);
});

test('an idle connection is closed after keepAliveTimeoutMs, as node:http would', { timeout: 30_000 }, async (t) => {
  const { stack, ada, bob } = await leased(t, { proxy: { keepAliveTimeoutMs: 300 } });
  await bob.post('general', 'then idle');
  const c = await rawClient(t, stack);
  c.socket.write(pollRequest(ada));
  const r = await c.next();
  assert.equal(r.headers.get('keep-alive'), 'timeout=0', "node:http's rounding of 300 ms");
  const answeredAt = Date.now();
  await c.closed;
  // node:http (20.20+) closes 1 s after the advertised timeout, so a client reusing the connection just in time
  // is not reset (HTTP_SERVER_KEEP_ALIVE_TIMEOUT_BUFFER); the front does the same.
  assert.ok(Date.now() - answeredAt >= 1000, `not before the timeout plus 1 s (closed after ${Date.now() - answeredAt} ms)`);
});

// An idle period that starts while the last one's timer is still armed: test/proxy/front-idle.test.ts, on a clock
// the test drives.

test('a re-poll already received when the keep-alive timer fires (the proxy was busy) is answered, not reset', { timeout: 30_000 }, async (t) => {
  const { stack, ada, bob } = await leased(t, { proxy: { keepAliveTimeoutMs: 300 } });
  await bob.post('general', 'busy');
  const c = await rawClient(t, stack);
  c.socket.write(pollRequest(ada));
  assert.deepEqual(eventsOf(await c.next()), ['busy']); // the idle timer is armed from here
  // The re-poll reaches the proxy's socket (a loopback write is in the peer's receive buffer when it returns),
  // then this thread (the proxy's too) is blocked past the timeout, as a long fan-out would: the next loop turn
  // runs the expired timer before it reads the socket.
  c.socket.write(pollRequest(ada));
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1600); // past 300 ms + 1 s
  const closedFirst = c.closed.then(
    () => 'closed',
    (err: NodeJS.ErrnoException) => `reset (${err.code})`,
  );
  const first = await Promise.race([closedFirst, c.next()]);
  assert.equal(typeof first, 'object', `the connection with a request in its receive buffer was ${String(first)}`);
  assert.deepEqual(eventsOf(first as RawResponse), ['busy']);
  assert.equal(c.isClosed(), false);
});

test('a new connection gets headersTimeoutMs for its first request, not the keep-alive timeout, as node:http', { timeout: 30_000 }, async (t) => {
  // A load generator (or a slow client) may connect and write its first request seconds later: node:http
  // waits headersTimeoutMs for it; closing after the keep-alive timeout reset such requests in a 10,000-poll storm.
  const { stack, ada, bob } = await leased(t, { proxy: { keepAliveTimeoutMs: 300, headersTimeoutMs: 4000 } });
  await bob.post('general', 'late');
  const c = await rawClient(t, stack);
  const connectedAt = Date.now();
  // Open past the keep-alive timeout plus node:http's 1 s, with the proxy's loop free to run its timers: a close
  // before that deadline fails at once.
  let deadline: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    c.closed.then(() => `closed ${Date.now() - connectedAt} ms after connecting, before any request`),
    new Promise<'open'>((resolve) => (deadline = setTimeout(resolve, 1600, 'open'))),
  ]);
  clearTimeout(deadline);
  assert.equal(outcome, 'open');
  c.socket.write(pollRequest(ada));
  assert.deepEqual(eventsOf(await c.next()), ['late']);
});

test('a connection that never sends a request is answered 408 after headersTimeoutMs and closed', { timeout: 30_000 }, async (t) => {
  const { stack } = await leased(t, { proxy: { keepAliveTimeoutMs: 300, headersTimeoutMs: 1500 } });
  const c = await rawClient(t, stack);
  const connectedAt = Date.now();
  const r = await c.next(10_000);
  assert.equal(r.status, 408);
  assert.ok(Date.now() - connectedAt >= 1400, `not before headersTimeoutMs (answered after ${Date.now() - connectedAt} ms)`);
  await c.closed;
});
