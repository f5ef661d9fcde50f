/**
 * `GET /api/stream` through the real proxy (docs/protocol.md §10.2, §14): a stream's first bytes carry the
 * events past its cursors, then each event the relay publishes arrives as an SSE frame on the same response;
 * `Last-Event-ID` resumes; refusals are the poll's, as JSON, and open no stream; and a counting run across a
 * proxy restart (several clients, messages posted while no proxy runs) gets every event once, in order.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { createHoldProxy, type HoldProxy } from '../../proxy/proxy.js';
import { createChatServer } from '../../server/chat-server.js';
import { ChatClient, adaAndBob, waitFor } from '../helpers/chat-client.js';
import { committedEvents, expectedAfter, faultDataDir, TEST_CONTROL_SECRET, TEST_LEASE_KEY, TEST_SECRET } from '../helpers/fault-stack.js';
import { request } from '../helpers/proxy-harness.js';
import { parseSse, SseChatFollower } from '../helpers/sse-client.js';
import { startStack } from '../helpers/stack.js';

test('a stream gets the events past its cursors at once, then each new event as it is published, once and in order', async (t) => {
  const stack = await startStack(t);
  const { ada, bob } = await adaAndBob(stack.base);
  await bob.post('general', 'before the stream');
  const reader = new SseChatFollower(stack.base, `/api/stream?rooms=general:${ada.cursors.get('general')}`, ada.sessionCookie);
  t.after(() => reader.stop());
  reader.start();
  await waitFor(() => reader.received.length === 1, 'the event past the cursor, in the first bytes');
  await waitFor(async () => (await stack.stats()).streams === 1, 'the stream held by the proxy');
  const posted = [];
  for (let i = 0; i < 20; i++) posted.push((await bob.post('general', `live ${i}`)).id);
  await waitFor(() => reader.received.length === 21, 'every live event');
  assert.deepEqual(reader.received.slice(1).map((e) => e.id), posted);
  assert.deepEqual(reader.received.map((e) => e.text), ['before the stream', ...posted.map((_, i) => `live ${i}`)]);
  assert.equal(reader.frames[0]!.event, 'hello', 'the first frame names the connection ID');
  assert.match(JSON.parse(reader.frames[0]!.data).connectionId, /^[A-Za-z0-9_-]{21}$/);
  assert.equal(reader.connects, 1, 'one request carried them all');
  const stats = await stack.stats();
  assert.ok(stats.streamChunks >= 20, `live events were appended to the stream by publishes (${stats.streamChunks} chunks)`);
});

test('Last-Event-ID resumes after that event, whatever the URL\'s older cursors say; the stream is held with the rooms\' last ids', async (t) => {
  const stack = await startStack(t);
  const { ada, bob } = await adaAndBob(stack.base);
  const start = ada.cursors.get('general')!;
  const ids = [];
  for (let i = 0; i < 5; i++) ids.push((await bob.post('general', `m${i}`)).id);
  const controller = new AbortController();
  t.after(() => controller.abort());
  const res = await fetch(`${stack.base}/api/stream?rooms=general:${start}`, {
    headers: { cookie: ada.sessionCookie, 'last-event-id': String(ids[2]) },
    signal: controller.signal,
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type')!, /^text\/event-stream/);
  assert.equal(res.headers.get('grip-hold'), null, 'Grip-* headers stay in the proxy');
  const reader = res.body!.getReader();
  let text = '';
  // Bounded: the first bytes come in one write; a few reads at most.
  for (let i = 0; i < 10 && parseSse(text).frames.length < 3; i++) text += new TextDecoder().decode((await reader.read()).value);
  const frames = parseSse(text).frames;
  assert.deepEqual(frames.filter((f) => f.event === 'message').map((f) => Number(f.id)), ids.slice(3));
  await waitFor(async () => (await stack.stats()).streams === 1, 'held as a stream');
});

/** The first bytes of a stream (read until `until` is in them), then the request is dropped. */
async function firstBytes(url: string, cookie: string, until: string): Promise<{ res: Response; text: string }> {
  const controller = new AbortController();
  const res = await fetch(url, { headers: { cookie }, signal: controller.signal });
  const reader = res.body!.getReader();
  let text = '';
  const decoder = new TextDecoder();
  // Bounded: the first bytes come in one write, a few reads at most.
  for (let i = 0; i < 20 && !text.includes(until); i++) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  controller.abort();
  return { res, text };
}

test('format=xhr and format=iframe carry the same frames after their own first bytes; message text cannot become markup', async (t) => {
  const stack = await startStack(t);
  const { ada, bob } = await adaAndBob(stack.base);
  const start = ada.cursors.get('general')!;
  const markup = '</script><b>&amp;</b>\u2028 end';
  const posted = await bob.post('general', markup);
  const path = `${stack.base}/api/stream?rooms=general:${start}`;

  const sse = await firstBytes(path, ada.sessionCookie, `id: ${posted.id}`);
  assert.match(sse.res.headers.get('content-type')!, /^text\/event-stream/);
  assert.ok(sse.text.startsWith('event: hello\n'), 'SSE starts with the hello frame');
  const frame = sse.text.slice(sse.text.indexOf(`id: ${posted.id}\n`));
  assert.equal(JSON.parse(parseSse(frame).frames[0]!.data).text, markup, 'the escapes decode to the text');
  assert.ok(!frame.includes('<b>') && !frame.includes('&amp;') && !frame.includes('\u2028'), 'no markup, reference or separator, raw');

  const xhr = await firstBytes(`${path}&format=xhr`, ada.sessionCookie, `id: ${posted.id}`);
  assert.match(xhr.res.headers.get('content-type')!, /^text\/plain/);
  assert.ok(xhr.text.startsWith(`:${' '.repeat(2048)}\n\nevent: hello\n`), '2 KiB of SSE comment, then the frames');
  assert.ok(xhr.text.endsWith(frame), 'the same frames');

  const iframe = await firstBytes(`${path}&format=iframe`, ada.sessionCookie, `id: ${posted.id}`);
  assert.match(iframe.res.headers.get('content-type')!, /^text\/html/);
  assert.equal(iframe.res.headers.get('content-security-policy'), "frame-ancestors 'self'");
  assert.match(iframe.text, /^<!DOCTYPE html>.*<body><!-- {2048}-->\nevent: hello\n/s);
  assert.ok(iframe.text.endsWith(frame), 'the same frames, each ending in the script that hands it to the page');
  assert.equal(frame.match(/<script>/g)!.length, 1);
});

test('bad stream requests are refused like polls, with a JSON error, and open no stream', async (t) => {
  const stack = await startStack(t);
  const { ada, bob } = await adaAndBob(stack.base);
  const carol = new ChatClient(stack.base);
  await carol.login('carol');
  const other = await fetch(`${stack.base}/api/stream?rooms=general:0`, { headers: { cookie: bob.sessionCookie } });
  const bobsCid = other.headers.get('comet-connection-id')!;
  await other.body?.cancel();
  const cases: Array<{ what: string; path: string; cookie: string; headers?: Record<string, string>; status: number; code: string }> = [
    { what: 'no session', path: '/api/stream?rooms=general:0', cookie: '', status: 401, code: 'APP_ERR_NO_SESSION' },
    { what: 'no rooms', path: '/api/stream', cookie: ada.sessionCookie, status: 400, code: 'APP_ERR_BAD_CURSOR' },
    { what: 'a malformed cursor', path: '/api/stream?rooms=general:-1', cookie: ada.sessionCookie, status: 400, code: 'APP_ERR_BAD_CURSOR' },
    { what: 'a room it is not in', path: '/api/stream?rooms=general:0', cookie: carol.sessionCookie, status: 403, code: 'APP_ERR_NOT_MEMBER' },
    { what: 'an unknown room', path: '/api/stream?rooms=nowhere:0', cookie: ada.sessionCookie, status: 404, code: 'APP_ERR_ROOM_NOT_FOUND' },
    { what: 'a malformed Last-Event-ID', path: '/api/stream?rooms=general:0', cookie: ada.sessionCookie, headers: { 'last-event-id': '7x' }, status: 400, code: 'APP_ERR_BAD_CURSOR' },
    { what: 'an unknown format', path: '/api/stream?rooms=general:0&format=json', cookie: ada.sessionCookie, status: 400, code: 'APP_ERR_BAD_STREAM_FORMAT' },
    { what: 'the format given twice', path: '/api/stream?rooms=general:0&format=xhr&format=xhr', cookie: ada.sessionCookie, status: 400, code: 'APP_ERR_BAD_STREAM_FORMAT' },
    { what: 'a malformed cid', path: '/api/stream?rooms=general:0&cid=nope', cookie: ada.sessionCookie, status: 400, code: 'APP_ERR_BAD_CONNECTION_ID' },
    { what: 'another session\'s cid', path: `/api/stream?rooms=general:0&cid=${bobsCid}`, cookie: ada.sessionCookie, status: 403, code: 'APP_ERR_FOREIGN_CONNECTION_ID' },
  ];
  for (const c of cases) {
    const r = await request(`${stack.base}${c.path}`, { headers: { ...(c.cookie ? { cookie: c.cookie } : {}), ...c.headers } });
    assert.equal(r.status, c.status, c.what);
    assert.equal(JSON.parse(r.body.toString()).code, c.code, c.what);
  }
  assert.equal((await stack.stats()).streams, 0, 'no refused request left a stream open');
});

test('a session\'s streams end when it leaves a room or signs out, and reconnecting is refused: no event after the leave reaches it', async (t) => {
  const stack = await startStack(t);
  const { ada, bob } = await adaAndBob(stack.base);
  const path = `/api/stream?rooms=general:${ada.cursors.get('general')}`;
  const leaving = new SseChatFollower(stack.base, path, ada.sessionCookie, 3);
  t.after(() => leaving.stop());
  leaving.start();
  await waitFor(async () => (await stack.stats()).streams === 1, 'ada streaming');
  await bob.post('general', 'before the leave');
  await waitFor(() => leaving.received.length === 1, 'the message before the leave');
  assert.equal((await ada.call('POST', '/api/rooms/general/leave')).status, 200);
  await waitFor(() => leaving.statuses.includes(403), 'the stream to end and its reconnect to be refused (not a member)');
  await bob.post('general', 'after the leave');
  await stack.chat.relay.waitIdle(5000);
  assert.deepEqual(leaving.received.map((e) => [e.type, e.text ?? null]), [['message', 'before the leave'], ['leave', null]]);
  leaving.stop();

  const signingOut = new SseChatFollower(stack.base, path.replace(/general:\d+/, `general:${bob.cursors.get('general')}`), bob.sessionCookie, 3);
  t.after(() => signingOut.stop());
  signingOut.start();
  await waitFor(async () => (await stack.stats()).streams === 1, 'bob streaming');
  assert.equal((await bob.call('DELETE', '/api/session')).status, 204);
  await waitFor(() => signingOut.statuses.includes(401), 'the stream to end and its reconnect to be refused (session ended)');
  assert.equal((await stack.stats()).streams, 0);
});

test('a stream that falls out of order is ended with the resync frame; the client reconnects and misses nothing', async (t) => {
  const stack = await startStack(t);
  const { ada, bob } = await adaAndBob(stack.base);
  const reader = new SseChatFollower(stack.base, `/api/stream?rooms=general:${ada.cursors.get('general')}`, ada.sessionCookie);
  t.after(() => reader.stop());
  reader.start();
  await waitFor(async () => (await stack.stats()).streams === 1, 'streaming');
  const before = await bob.post('general', 'before the gap');
  await waitFor(() => reader.received.length === 1, 'the first message');
  // An item whose prev-id is not the stream's position: the proxy ends the stream with its resync data (§14.3).
  const gap = await stack.control('/publish/', { items: [{ channel: 'room:general', id: '999999', 'prev-id': '999998', formats: { 'http-stream': { content: 'never written' } } }] });
  assert.equal(gap.status, 200);
  await waitFor(() => reader.resyncs === 1 && reader.connects >= 2, 'the resync frame, then a reconnect');
  // The bogus id is now the channel's last id, so reconnects are re-asked (§14.2) until a real event follows it.
  const after = await bob.post('general', 'after the gap');
  await waitFor(() => reader.received.length === 2, 'the next message');
  await waitFor(async () => (await stack.stats()).streams === 1, 'streaming again');
  assert.deepEqual(reader.received.map((e) => e.id), [before.id, after.id]);
  assert.ok(!reader.frames.some((f) => f.data.includes('never written')));
  assert.equal((await stack.stats()).streamResyncs, 1);
});

async function startProxy(t: TestContext, appPort: number, clientPort = 0, controlPort = 0): Promise<{ proxy: HoldProxy; clientPort: number; controlPort: number }> {
  const proxy = createHoldProxy({
    secret: TEST_SECRET,
    controlSecret: TEST_CONTROL_SECRET,
    leaseKey: TEST_LEASE_KEY,
    upstreamUrl: `http://127.0.0.1:${appPort}`,
    clientHost: '127.0.0.1',
    clientPort,
    controlHost: '127.0.0.1',
    controlPort,
  });
  t.after(() => proxy.close());
  return { proxy, ...(await proxy.listen()) };
}

test('streaming clients across a proxy restart: events posted while no proxy runs arrive after they reconnect, each once, in order', { timeout: 60_000 }, async (t) => {
  const CLIENTS = 5;
  const ROOMS = ['red', 'blue'];
  const chat = createChatServer({
    secret: TEST_SECRET,
    controlSecret: TEST_CONTROL_SECRET,
    leaseKey: TEST_LEASE_KEY,
    host: '127.0.0.1',
    port: 0,
    dbPath: join(faultDataDir(t), 'chat.db'),
    relayRetryMinMs: 5,
    relayRetryMaxMs: 50,
    relayPublishTimeoutMs: 2000,
  });
  t.after(() => chat.close());
  const appPort = await chat.listen();
  const appUrl = `http://127.0.0.1:${appPort}`;
  const first = await startProxy(t, appPort);
  chat.connectProxy(`http://127.0.0.1:${first.controlPort}`);
  const base = `http://127.0.0.1:${first.clientPort}`;

  // Sessions and writes go to the app directly, so posting goes on while no proxy runs; streams go through it.
  const clients = Array.from({ length: CLIENTS }, () => new ChatClient(appUrl));
  for (const [i, c] of clients.entries()) await c.login(`user${i}`);
  for (const room of ROOMS) await clients[0]!.call('POST', '/api/rooms', { name: room });
  for (const c of clients) for (const room of ROOMS) await c.join(room);
  const start = committedEvents(chat.options.dbPath);
  const startCursor = new Map(ROOMS.map((r) => [r, start.get(r)!.at(-1)!]));
  const rooms = ROOMS.map((r) => `${r}:${startCursor.get(r)}`).join(',');
  const followers = clients.map((c) => new SseChatFollower(base, `/api/stream?rooms=${rooms}`, c.sessionCookie));
  t.after(() => followers.forEach((f) => f.stop()));
  followers.forEach((f) => f.start());
  await waitFor(() => first.proxy.stats().streams === CLIENTS, 'every client streaming');

  let n = 0;
  const postSome = async (count: number, phase: string) => {
    for (let k = 0; k < count; k++) await clients[n++ % CLIENTS]!.post(ROOMS[k % ROOMS.length]!, `${phase} ${k}`);
  };
  await postSome(20, 'before');
  await waitFor(() => followers.every((f) => f.received.length >= 20), 'the first 20 live');
  await first.proxy.close(); // every stream ends; followers reconnect and fail until a proxy is back
  await postSome(15, 'while down');
  assert.ok(chat.store.outbox.count() > 0, 'committed rows wait in the outbox while no proxy accepts them');
  const second = await startProxy(t, appPort, first.clientPort, first.controlPort);
  await waitFor(() => second.proxy.stats().streams === CLIENTS, 'every client streaming again', 15_000);
  // The relay re-publishes the rows left from the outage as the streams reopen; a stream opened past one of them
  // sees an item off its prev-id chain and ends with a resync (§14.5), then reopens from its cursor: lossless,
  // counted below. Once the relay is idle and every stream is open and caught up, new posts must come as chunks.
  await chat.relay.waitIdle(10_000);
  await waitFor(
    () => second.proxy.stats().streams === CLIENTS && followers.every((f) => f.received.length >= 35),
    'every client streaming and caught up after the outage',
    15_000,
  );
  const chunksBefore = second.proxy.stats().streamChunks;
  await postSome(20, 'after');
  await chat.relay.waitIdle(10_000);

  const committed = committedEvents(chat.options.dbPath);
  const expected = new Map(ROOMS.map((r) => [r, expectedAfter(committed, r, startCursor.get(r)!)]));
  const total = ROOMS.reduce((sum, r) => sum + expected.get(r)!.length, 0);
  assert.equal(total, 55, 'every post committed');
  await waitFor(() => followers.every((f) => f.received.length >= total), 'every client to receive every committed message', 20_000);
  for (const [i, f] of followers.entries()) {
    for (const r of ROOMS) {
      assert.deepEqual(f.received.filter((e) => e.room === r).map((e) => e.id), expected.get(r), `client ${i} in ${r}`);
    }
    assert.equal(f.received.length, total, `client ${i}: nothing twice`);
    assert.ok(f.connects >= 2, `client ${i} reconnected`);
    t.diagnostic(`client ${i}: ${f.connects} connects, ${f.resyncs} resync frames`);
  }
  assert.ok(second.proxy.stats().streamChunks - chunksBefore >= 20 * CLIENTS, 'events posted on the open streams came as their chunks');
});
