/**
 * The client front takes over a first poll the app held (FrontConnection.adopt, issue 15): node:http parsed it
 * and forwarded it, and once the app's hold instruction is read the parked request moves to the front, which then
 * answers it as node:http would have, in one write, and goes on serving the connection. Only where that is exact:
 * a request pipelined behind it keeps it with node:http. Raw sockets against the real stack (app + proxy).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { test, type TestContext } from 'node:test';
import { adaAndBob, waitFor, type ChatClient } from '../helpers/chat-client.js';
import { startStack, type StackOverrides, type TestStack } from '../helpers/stack.js';

interface RawResponse {
  /** Status line and header names in order, as written. */
  shape: string[];
  status: number;
  headers: Map<string, string>;
  body: string;
}

/** A keep-alive client connection that splits what it reads into Content-Length framed responses. */
async function rawClient(t: TestContext, stack: TestStack): Promise<{ socket: Socket; next(): Promise<RawResponse>; closed: Promise<unknown> }> {
  const socket = connect(stack.clientPort, '127.0.0.1');
  t.after(() => socket.destroy());
  let received = '';
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => (received += chunk));
  socket.on('error', () => undefined);
  const closed = once(socket, 'close');
  await once(socket, 'connect');
  const parse = (): RawResponse | null => {
    const end = received.indexOf('\r\n\r\n');
    if (end === -1) return null;
    const headers = new Map<string, string>();
    const lines = received.slice(0, end).split('\r\n');
    for (const line of lines.slice(1)) headers.set(line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim());
    const length = Number(headers.get('content-length') ?? 0);
    if (received.length < end + 4 + length) return null;
    const body = received.slice(end + 4, end + 4 + length);
    received = received.slice(end + 4 + length);
    const shape = [lines[0]!, ...lines.slice(1).map((line) => line.slice(0, line.indexOf(':')))];
    return { shape, status: Number(lines[0]!.split(' ')[1]), headers, body };
  };
  return {
    socket,
    closed,
    async next() {
      let response: RawResponse | null = null;
      await waitFor(() => (response = parse()) !== null, 'a complete response');
      return response!;
    },
  };
}

/** Ada's poll as raw bytes; without `cid` it is a first poll, which only the app can answer. */
function poll(ada: ChatClient, withId: boolean, requestId?: string): string {
  const path = withId ? ada.pollPath() : ada.pollPath().replace(/&cid=[^&]*/, '');
  const id = requestId === undefined ? '' : `X-Request-Id: ${requestId}\r\n`;
  return `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: ${ada.sessionCookie}\r\n${id}\r\n`;
}

function textsOf(response: RawResponse): string[] {
  return (JSON.parse(response.body) as { events: Array<{ text: string }> }).events.map((e) => e.text);
}

async function started(t: TestContext, overrides: StackOverrides = {}, front = true): Promise<{ stack: TestStack; ada: ChatClient; bob: ChatClient }> {
  const stack = await startStack(t, overrides);
  assert.equal(stack.proxy.clientFront !== null, front);
  const { ada, bob } = await adaAndBob(stack.base);
  return { stack, ada, bob };
}

test('a first poll the app held is taken over by the front: answered as node:http would, and the connection goes on to leased re-polls', { timeout: 30_000 }, async (t) => {
  const { stack, ada, bob } = await started(t);
  const c = await rawClient(t, stack);
  const before = await stack.stats();
  c.socket.write(poll(ada, false, 'takeover-1'));
  await waitFor(async () => (await stack.stats()).parked === before.parked + 1, 'the first poll parked');
  const parked = await stack.stats();
  assert.equal(parked.frontTakeovers, before.frontTakeovers + 1, 'the front took the held first poll over');
  assert.equal(parked.repollParks, before.repollParks, 'it was the app that held it');

  await bob.post('general', 'one');
  const first = await c.next();
  assert.equal(first.status, 200);
  assert.deepEqual(textsOf(first), ['one']);
  assert.equal(first.headers.get('x-request-id'), 'takeover-1', 'the request id node:http gave it');
  assert.equal(first.headers.get('connection'), 'keep-alive');
  assert.match(first.headers.get('keep-alive') ?? '', /^timeout=\d+$/);
  assert.equal(first.headers.get('content-type'), 'application/json; charset=utf-8');
  const cid = first.headers.get('comet-connection-id');
  assert.ok(cid, 'the app named the connection');

  // The same connection, now leased: the front parks the re-poll itself.
  ada.connectionId = cid;
  const leasedPath = `/api/poll?rooms=general:${(JSON.parse(first.body) as { events: Array<{ id: number }> }).events[0]!.id}&cid=${cid}`;
  c.socket.write(`GET ${leasedPath} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: ${ada.sessionCookie}\r\n\r\n`);
  await waitFor(async () => (await stack.stats()).repollParks === before.repollParks + 1, 'the re-poll parked by the proxy');
  await bob.post('general', 'two');
  const second = await c.next();
  assert.equal(second.status, 200);
  assert.deepEqual(textsOf(second), ['two']);
  assert.equal((await stack.stats()).frontTakeovers, before.frontTakeovers + 1, 'a re-poll is not a takeover');
});

test('the front writes a taken-over answer with the status line and headers node:http writes without the front', { timeout: 30_000 }, async (t) => {
  const answers: RawResponse[] = [];
  for (const clientFront of [true, false]) {
    const { stack, ada, bob } = await started(t, { proxy: { clientFront } }, clientFront);
    const c = await rawClient(t, stack);
    c.socket.write(poll(ada, false, 'same-bytes'));
    await waitFor(async () => (await stack.stats()).parked === 1, 'the first poll parked');
    assert.equal((await stack.stats()).frontTakeovers, clientFront ? 1 : 0);
    await bob.post('general', 'one');
    answers.push(await c.next());
  }
  assert.deepEqual(answers[0]!.shape, answers[1]!.shape);
  assert.deepEqual(textsOf(answers[0]!), textsOf(answers[1]!));
});

test('a taken-over poll whose client goes away is an abort: nothing stays parked', { timeout: 30_000 }, async (t) => {
  const { stack, ada } = await started(t);
  const c = await rawClient(t, stack);
  const before = await stack.stats();
  c.socket.write(poll(ada, false));
  await waitFor(async () => (await stack.stats()).frontTakeovers === before.frontTakeovers + 1, 'the first poll taken over');
  c.socket.destroy();
  await waitFor(async () => {
    const s = await stack.stats();
    return s.parked === before.parked && s.clientAborts === before.clientAborts + 1;
  }, 'the parked poll let go as an abort');
});

test('a taken-over poll is answered with its timeout response when the hold expires, and the connection stays usable', { timeout: 30_000 }, async (t) => {
  const { stack, ada } = await started(t, { app: { holdTimeoutS: 1 } });
  const c = await rawClient(t, stack);
  const before = await stack.stats();
  c.socket.write(poll(ada, false));
  await waitFor(async () => (await stack.stats()).frontTakeovers === before.frontTakeovers + 1, 'the first poll taken over');
  const timedOut = await c.next();
  assert.equal(timedOut.status, 200);
  assert.equal(timedOut.headers.get('connection'), 'keep-alive');
  assert.equal((await stack.stats()).timeouts, before.timeouts + 1);
  // node:http serves the connection's next request through a new bridge.
  c.socket.write(`GET /api/rooms HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: ${ada.sessionCookie}\r\n\r\n`);
  const rooms = await c.next();
  assert.equal(rooms.status, 200);
});

test('a first poll with a request pipelined behind it stays with node:http, which releases it', { timeout: 30_000 }, async (t) => {
  const { stack, ada } = await started(t);
  const c = await rawClient(t, stack);
  const before = await stack.stats();
  // Both in one write: node:http has the second before the app holds the first.
  c.socket.write(poll(ada, false) + `GET /api/rooms HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: ${ada.sessionCookie}\r\n\r\n`);
  const released = await c.next();
  assert.equal(released.status, 200, 'the poll answered at once (its timeout response)');
  const rooms = await c.next();
  assert.equal(rooms.status, 200);
  const after = await stack.stats();
  assert.equal(after.frontTakeovers, before.frontTakeovers, 'not taken over');
  assert.equal(after.pipelineReleases, before.pipelineReleases + 1);
});
