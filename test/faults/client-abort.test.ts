/**
 * Fault: the client goes away, at each stage of its request's life: right
 * after its headers, while it waits for an upstream socket, while the app
 * answers, while parked, and while a large pushed answer is being written.
 * After each, the proxy holds nothing for it (no parked entry, no timer, no
 * socket), still serves, and news for that client is not lost: a push to its
 * connection ID is queued for its next poll, a channel item comes back through
 * its cursor.
 */
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { test, type TestContext } from 'node:test';
import { adaAndBob, ChatClient, waitFor as waitForChat } from '../helpers/chat-client.js';
import { connectionCount, countingTimers, rawGet, within, type CountingTimers } from '../helpers/fault-stack.js';
import { jsonFormat, startHarness, waitFor, type Harness } from '../helpers/proxy-harness.js';
import type { ProxyOptions } from '../../proxy/options.js';
import { writeHold } from '../helpers/scripted-app.js';
import { startStack } from '../helpers/stack.js';

const CID = 'abortedClient00000001';

interface FaultHarness extends Harness {
  timers: CountingTimers;
  port: number;
}

async function start(t: TestContext, options: Partial<ProxyOptions> = {}): Promise<FaultHarness> {
  const timers = countingTimers();
  const h = await startHarness(t, { timers, ...options });
  return { ...h, timers, port: Number(new URL(h.clientUrl).port) };
}

/** Nothing is left for the aborted client: no socket, no parked or re-asking entry, no timer but the registry's sweep. */
async function assertNothingLeft(h: FaultHarness): Promise<void> {
  await waitFor(async () => (await connectionCount(h.proxy.clientFront?.listener ?? h.proxy.clientServer)) === 0, { timeoutMs: 5000, message: 'the client socket to be released' });
  const stats = h.proxy.stats();
  assert.equal(stats.parked, 0, 'parked');
  assert.equal(stats.reasking, 0, 'reasking');
  // The write-stall watch has a timer only while a socket's buffer is full (issue 15).
  assert.equal(h.timers.live(), 1, "only the registry's sweep timer is pending");
}

/** A push to CID while nothing is parked under it is queued, and the next poll under CID gets it at once. */
async function assertPushQueuedForNextPoll(h: FaultHarness, note: string): Promise<void> {
  const pushed = await h.control('/push/', { items: [{ 'connection-id': CID, formats: jsonFormat({ note }) }] });
  assert.deepEqual(pushed.json(), { delivered: 0, queued: 1, dropped: 0, reasked: 0 });
  h.app.handle = (_req, res) => writeHold(res, { connectionId: CID, body: '{"timeout":true}' });
  const next = await h.get('/poll-again');
  assert.equal(next.status, 200);
  assert.deepEqual(next.json(), { note });
  assert.equal(h.proxy.stats().queuedItems, 0);
}

test('a client that disconnects right after its request headers leaves nothing behind, and the proxy still serves', async (t) => {
  const h = await start(t);
  h.app.handle = (_req, res) => writeHold(res, { channel: 'room:a', connectionId: CID });
  const client = await rawGet(h.port, '/poll');
  client.socket.destroy();
  await within(client.closed, 2000, 'the socket close');

  await assertNothingLeft(h);
  // Whether or not the request reached the app before the proxy saw the close, nothing was parked.
  assert.equal(h.proxy.stats().holds, h.proxy.stats().clientAborts);
  await assertPushQueuedForNextPoll(h, 'after an abort before forwarding');
});

test('a client that disconnects while waiting for an upstream socket is never forwarded, and the socket is not lost', async (t) => {
  const h = await start(t, { upstreamMaxSockets: 1 });
  let releaseBusy!: () => void;
  const busyMayAnswer = new Promise<void>((resolve) => (releaseBusy = resolve));
  h.app.handle = async (req, res) => {
    if (req.url === '/busy') await busyMayAnswer;
    res.end(`answer to ${req.url}`);
  };
  // The only upstream socket is taken by a request the app holds back.
  const busy = h.get('/busy');
  await h.app.waitForRequest(1);

  const arrived = new Promise<void>((resolve) =>
    h.proxy.clientServer.on('request', (req) => {
      if (req.url === '/never-forwarded') resolve();
    }),
  );
  const client = await rawGet(h.port, '/never-forwarded');
  await within(arrived, 2000, 'the request at the proxy'); // queued behind /busy
  client.socket.destroy();
  await waitFor(async () => (await connectionCount(h.proxy.clientFront?.listener ?? h.proxy.clientServer)) === 1, { timeoutMs: 5000, message: 'the proxy to see the close' });

  releaseBusy();
  assert.equal((await busy).text, 'answer to /busy');
  // With one upstream socket, a leaked slot would hang this request.
  assert.equal((await h.get('/after')).text, 'answer to /after');
  assert.deepEqual(h.app.requests.map((r) => r.url), ['/busy', '/after'], 'the abandoned request never reached the app');
  await assertNothingLeft(h);
});

test('a client that disconnects while the app is answering cancels the app request; a push to its ID waits for its next poll', async (t) => {
  const h = await start(t, { upstreamMaxSockets: 1 });
  let releaseApp!: () => void;
  const appMayAnswer = new Promise<void>((resolve) => (releaseApp = resolve));
  let appSideClosed!: Promise<void>;
  h.app.handle = async (_req, res: ServerResponse) => {
    appSideClosed = new Promise<void>((resolve) => res.once('close', () => resolve()));
    await appMayAnswer;
    // The proxy cancelled this request: there is nobody to answer.
    if (!res.destroyed) writeHold(res, { channel: 'room:a', connectionId: CID });
  };
  const client = await rawGet(h.port, '/poll');
  await h.app.waitForRequest(1);
  client.socket.destroy();
  // The proxy dropped the app request instead of waiting for the hold.
  await within(appSideClosed, 2000, 'the app request to be cancelled');
  releaseApp();

  await assertNothingLeft(h);
  assert.equal(h.proxy.stats().holds, 0, 'nothing was parked');
  await assertPushQueuedForNextPoll(h, 'after an abort while the app answered');
});

test('a client that disconnects while parked is removed at once; a push to its ID waits for its next poll', async (t) => {
  const h = await start(t);
  h.app.handle = (_req, res) => writeHold(res, { channel: 'room:a', connectionId: CID, timeoutS: 55 });
  const client = await rawGet(h.port, '/poll');
  await h.waitParked(1);
  assert.equal(h.timers.live(), 2, "the hold timer and the registry's sweep (the write-stall watch keeps none while no buffer is full)");
  client.socket.destroy();
  await waitFor(() => h.proxy.stats().clientAborts === 1, { timeoutMs: 5000, message: 'the abort to be seen' });

  await assertNothingLeft(h);
  assert.equal(h.proxy.stats().connections, 0, 'no state kept for the connection ID');
  const published = await h.control('/publish/', { items: [{ channel: 'room:a', formats: jsonFormat({ events: [] }) }] });
  assert.equal((published.json() as { delivered: number }).delivered, 0, 'nobody to deliver a channel item to');
  await assertPushQueuedForNextPoll(h, 'after an abort while parked');
});

test('a client that stops reading, then disconnects, while a large push is written to it leaves nothing behind', async (t) => {
  const BODY_BYTES = 16 * 1024 * 1024; // far beyond the socket buffers, so the write is still going on
  const h = await start(t, { controlBodyMaxBytes: 2 * BODY_BYTES });
  h.app.handle = (req, res) => {
    if (req.url === '/other') res.end('still serving');
    else writeHold(res, { connectionId: CID, body: '{"timeout":true}' });
  };
  const client = await rawGet(h.port, '/poll');
  await h.waitParked(1);

  const pushed = await h.control('/push/', {
    items: [{ 'connection-id': CID, formats: { 'http-response': { body: 'x'.repeat(BODY_BYTES) } } }],
  });
  assert.deepEqual(pushed.json(), { delivered: 1, queued: 0, dropped: 0, reasked: 0 });
  await within(client.firstData, 2000, 'the first bytes of the pushed answer');
  client.socket.pause(); // stops reading: the proxy's writes back up
  assert.ok(client.received() < BODY_BYTES, `the answer is still being written (${client.received()} bytes read)`);
  assert.equal(h.proxy.stats().parked, 0, 'the registry let go of the request once the answer was handed to the socket');
  // A stalled reader does not stall anybody else.
  assert.equal((await h.get('/other')).text, 'still serving');

  client.socket.destroy();
  await assertNothingLeft(h);
  await assertPushQueuedForNextPoll(h, 'after an abort mid-write');
});

test('a chat client that disconnects while parked gets the message posted meanwhile on its next poll, once', async (t) => {
  const stack = await startStack(t);
  const { ada, bob } = await adaAndBob(stack.base);

  const leave = new AbortController();
  const abandoned = ada.poll(leave.signal).catch((err: unknown) => err);
  await waitForChat(async () => (await stack.stats()).parked === 1, 'the poll to be parked');
  leave.abort();
  assert.equal(((await abandoned) as Error).name, 'AbortError');
  await waitForChat(async () => (await stack.stats()).clientAborts === 1, 'the proxy to see the abort');

  const posted = await bob.post('general', 'while ada was away');
  await stack.chat.relay.waitIdle(5000);
  assert.equal((await stack.stats()).deliveries, 0, 'published while nobody was parked');
  const answer = await ada.poll();
  assert.equal(answer.status, 200);
  assert.deepEqual(ada.received.map((e) => e.id), [posted.id]);
  assert.equal((await stack.stats()).parked, 0);
});
