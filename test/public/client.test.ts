/**
 * CometChat.Client and its poller (public/js/comet.js, comet-poller.js) run in a
 * vm with a scripted transport and fake timers: cursors, de-duplication,
 * connection IDs per loop, re-issuing the multiplexed poll, backoff, resync,
 * refused rooms, session loss, and page hide/show.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeTimers, loadClient, plain, ScriptedTransport, type FakeBrowser, type ScriptedRequest } from '../helpers/browser-vm.js';

interface Harness {
  browser: FakeBrowser;
  client: any;
  transport: ScriptedTransport;
  timers: FakeTimers;
  /** [room, event id] per 'events' emission, in order. */
  events: Array<[string, number]>;
  resets: Array<[string, number[]]>;
  removed: string[];
  left: string[];
  lost: number;
}

function event(id: number, room: string, type = 'message') {
  return { id, room, type, user: { id: 2, nick: 'bob' }, text: `m${id}`, at: '2026-11-21T10:00:00.000Z' };
}

/** A started client (config and session answered) with `strategy`. */
function start(options: { strategy?: string; config?: unknown; host?: string } = {}): Harness {
  const browser = loadClient(options.host);
  const transport = new ScriptedTransport();
  const timers = new FakeTimers();
  // random() just below 1: each backoff delay is its ceiling minus one (floor), easy to assert.
  const client = browser.window.CometChat.createClient({ strategy: options.strategy, transport, timers, random: () => 0.999 });
  const h: Harness = { browser, client, transport, timers, events: [], resets: [], removed: [], left: [], lost: 0 };
  client.on('events', (room: string, events: Array<{ id: number }>) => events.forEach((e) => h.events.push([room, e.id])));
  client.on('reset', (room: string, page: { events: Array<{ id: number }> }) => h.resets.push([room, page.events.map((e) => e.id)]));
  client.on('room-removed', (room: string) => h.removed.push(room));
  client.on('room-left', (room: string) => h.left.push(room));
  client.on('session-lost', () => h.lost++);
  let started = false;
  client.start(() => {
    started = true;
  });
  const config = transport.next('/api/config');
  if (options.config === undefined) config.answer(404, { code: 'APP_ERR_NOT_FOUND', message: 'no route' });
  else config.answer(200, options.config);
  transport.next('/api/session').answer(200, { user: { id: 1, nick: 'ada' } });
  assert.ok(started);
  return h;
}

/** Joins rooms through the client, answering each join and history load with `cursor`. */
function join(h: Harness, rooms: Array<[string, number]>): void {
  let done = false;
  h.client.joinRooms(rooms.map(([name]) => name), () => {
    done = true;
  });
  for (const [room, cursor] of rooms) {
    h.transport.next(`/api/rooms/${room}/join`).answer(200, { room: { name: room, members: 1, lastEventId: cursor }, cursor });
    h.transport.next(`/api/rooms/${room}/messages`).answer(200, { events: [], cursor, hasMore: false });
  }
  assert.ok(done);
}

const poll = (h: Harness) => h.transport.next('/api/poll');
const polls = (h: Harness) => h.transport.pending('/api/poll');

test('multiplex polls all rooms in one request and re-issues it (aborting the old one) when a room is joined', () => {
  const h = start();
  join(h, [['lobby', 5]]);
  const first = poll(h);
  assert.equal(first.param('rooms'), 'lobby:5');
  assert.equal(first.param('cid'), null);

  join(h, [['r1', 9]]);
  assert.ok(first.aborted);
  assert.equal(poll(h).param('rooms'), 'lobby:5,r1:9');
  assert.equal(h.client.status().strategy, 'multiplex');
});

test('events advance the cursors; re-deliveries and events at or below a cursor are dropped; the next poll goes out at once with the connection ID', () => {
  const h = start();
  join(h, [['lobby', 5], ['r1', 9]]);
  poll(h).answer(200, { events: [event(6, 'lobby'), event(10, 'r1'), event(6, 'lobby'), event(4, 'lobby')], connectionId: 'CID-A' });
  let next = poll(h);
  assert.equal(next.param('rooms'), 'lobby:6,r1:10');
  assert.equal(next.param('cid'), 'CID-A');
  assert.deepEqual(h.timers.delays(), [75_000], 'no backoff after an answer, only the poll watchdog');

  // The relay may publish an event again after a reconnect; it is shown once.
  next.answer(200, { events: [event(10, 'r1'), event(11, 'r1')], connectionId: 'CID-A' });
  next = poll(h);
  assert.equal(next.param('rooms'), 'lobby:6,r1:11');
  // A timeout answer (no events) keeps everything and polls again.
  next.answer(200, { events: [], connectionId: 'CID-A' });
  assert.equal(poll(h).param('rooms'), 'lobby:6,r1:11');
  assert.deepEqual(h.events, [['lobby', 6], ['r1', 10], ['r1', 11]]);
});

test('a resync answer reloads the named rooms before polling again, and a reload never moves a cursor backwards', () => {
  const h = start();
  join(h, [['lobby', 5], ['r1', 9]]);
  poll(h).answer(200, { events: [event(7, 'lobby')], connectionId: 'CID-A' });
  poll(h).answer(200, { resync: { reason: 'queue-overflow', channels: ['room:r1', 'room:lobby'] } }, { 'comet-resync': 'queue-overflow' });

  assert.equal(polls(h).length, 0, 'no poll until the history is reloaded');
  h.transport.next('/api/rooms/r1/messages').answer(200, { events: [event(12, 'r1'), event(15, 'r1')], cursor: 15, hasMore: true });
  assert.equal(polls(h).length, 0);
  // A page older than what we have (say, a lagging replica) must not rewind the cursor.
  h.transport.next('/api/rooms/lobby/messages').answer(200, { events: [event(3, 'lobby')], cursor: 3, hasMore: false });

  const next = poll(h);
  assert.equal(next.param('rooms'), 'lobby:7,r1:15');
  assert.equal(next.param('cid'), 'CID-A');
  assert.deepEqual(plain(h.resets.slice(-2)), [['r1', [12, 15]], ['lobby', [3]]]);
});

test('network errors and 5xx back off exponentially with full jitter up to the cap; an answer resets the backoff', () => {
  const h = start();
  const states: string[] = [];
  h.client.on('poll-state', (info: { state: string }) => states.push(info.state));
  join(h, [['lobby', 5]]);

  const delays: number[] = [];
  for (let i = 0; i < 8; i++) {
    if (i % 2 === 0) poll(h).fail();
    else poll(h).answer(503, { code: 'PROXY_ERR_SHUTTING_DOWN', message: 'restarting' });
    assert.equal(polls(h).length, 0, 'nothing in flight while waiting');
    delays.push(...h.timers.delays());
    h.timers.fireNext();
  }
  // ceiling = min(10 000, 250 * 2^attempt), times random() = 0.999, floored.
  assert.deepEqual(delays, [249, 499, 999, 1998, 3996, 7992, 9990, 9990]);
  assert.ok(states.includes('waiting'));
  assert.equal(h.client.status().loops[0].attempt, 8);

  poll(h).answer(200, { events: [], connectionId: 'CID-A' });
  poll(h).fail();
  assert.deepEqual(h.timers.delays(), [249]);
});

test('a poll refused 503 or 429 with Retry-After waits at least that long before polling again, in seconds or as a date', () => {
  const h = start();
  join(h, [['lobby', 5]]);
  poll(h).answer(503, { code: 'PROXY_ERR_TOO_MANY_PARKED', message: 'full' }, { 'retry-after': '5' });
  assert.deepEqual(h.timers.delays(), [5000], 'Retry-After 5 beats the first backoff (249 ms)');
  h.timers.fireNext();
  poll(h).answer(429, { code: 'APP_ERR_RATE_LIMITED', message: 'slow down' }, { 'retry-after': '1' });
  assert.deepEqual(h.timers.delays(), [1000]);
  h.timers.fireNext();
  // A later backoff that is longer than Retry-After wins: the header is a floor, not a replacement.
  poll(h).answer(503, { code: 'PROXY_ERR_TOO_MANY_PARKED', message: 'full' }, { 'retry-after': '0' });
  assert.deepEqual(h.timers.delays(), [999]);
  h.timers.fireNext();
  const inTwoMinutes = new Date(Date.now() + 120_000).toUTCString();
  poll(h).answer(503, { code: 'APP_ERR_DB_BUSY', message: 'busy' }, { 'retry-after': inTwoMinutes });
  const [wait] = h.timers.delays();
  assert.ok(wait! > 115_000 && wait! <= 120_000, `an HTTP date is a wait until then, got ${wait}`);
  h.timers.fireNext();
  // An unreadable header is ignored: the backoff alone.
  poll(h).answer(503, { code: 'PROXY_ERR_TOO_MANY_PARKED', message: 'full' }, { 'retry-after': 'soon' });
  assert.deepEqual(h.timers.delays(), [3996]);
});

test('a post carries its Idempotency-Key header, and a refused post exposes its Retry-After to the caller', () => {
  const h = start();
  let result: { code?: string; retryAfterMs?: number } | null = null;
  h.client.post('lobby', 'hello', 'k-1', (err: { code: string; retryAfterMs?: number } | null) => {
    result = err;
  });
  const first = h.transport.next('/api/rooms/lobby/messages');
  assert.equal(first.headers['Idempotency-Key'], 'k-1');
  first.answer(429, { code: 'APP_ERR_RATE_LIMITED', message: 'slow down' }, { 'retry-after': '3' });
  assert.deepEqual({ ...result! }, { code: 'APP_ERR_RATE_LIMITED', retryAfterMs: 3000, status: 429 });
  // The old three-argument form still posts, without a key.
  h.client.post('lobby', 'again', () => undefined);
  assert.deepEqual(h.transport.next('/api/rooms/lobby/messages').headers, {});
});

test('per-room runs one loop per room, each with its own connection ID, and leaving a room aborts its poll', () => {
  const h = start({ strategy: 'per-room' });
  join(h, [['lobby', 5], ['r1', 9]]);
  assert.deepEqual(polls(h).map((p) => p.param('rooms')), ['lobby:5', 'r1:9']);
  h.transport.pending('/api/poll?rooms=lobby').at(0)!.answer(200, { events: [], connectionId: 'CID-LOBBY' });
  h.transport.pending('/api/poll?rooms=r1').at(0)!.answer(200, { events: [], connectionId: 'CID-R1' });
  assert.deepEqual(plain(polls(h).map((p) => [p.param('rooms'), p.param('cid')])), [['lobby:5', 'CID-LOBBY'], ['r1:9', 'CID-R1']]);

  const r1Poll = h.transport.pending('/api/poll?rooms=r1').at(0)!;
  let left = false;
  h.client.leaveRoom('r1', () => {
    left = true;
  });
  assert.ok(r1Poll.aborted, 'the poll stops before the leave is sent: polling a room we left is refused');
  h.transport.next('/api/rooms/r1/leave').answer(200, { room: { name: 'r1', members: 0, lastEventId: 10 } });
  assert.ok(left);
  assert.deepEqual(h.left, ['r1']);
  assert.deepEqual(polls(h).map((p) => p.param('rooms')), ['lobby:5']);
  assert.deepEqual(plain(h.client.status().rooms), [{ name: 'lobby', cursor: 5 }]);
});

test('a leave the server never heard of resumes the room\'s poll from its cursor', () => {
  const h = start();
  join(h, [['lobby', 5], ['r1', 9]]);
  h.client.leaveRoom('r1', () => {});
  assert.equal(poll(h).param('rooms'), 'lobby:5');
  h.transport.next('/api/rooms/r1/leave').fail();
  assert.equal(poll(h).param('rooms'), 'lobby:5,r1:9');
});

test('a multiplexed poll refused for one room finds that room, drops it and polls on without it', () => {
  const h = start();
  join(h, [['lobby', 5], ['r1', 9]]);
  poll(h).answer(403, { code: 'APP_ERR_NOT_MEMBER', message: 'you are not a member of "r1"' });
  h.transport.next('/api/rooms/lobby/members').answer(200, { members: [] });
  h.transport.next('/api/rooms/r1/members').answer(403, { code: 'APP_ERR_NOT_MEMBER', message: 'no' });
  assert.deepEqual(h.removed, ['r1']);
  h.timers.fireNext();
  assert.equal(poll(h).param('rooms'), 'lobby:5');
});

test('a poll answered 401 stops every loop and reports the lost session once', () => {
  const h = start({ strategy: 'per-room' });
  join(h, [['lobby', 5], ['r1', 9], ['r2', 3]]);
  const [lobby, r1, r2] = polls(h) as [ScriptedRequest, ScriptedRequest, ScriptedRequest];
  r1.answer(401, { code: 'APP_ERR_NO_SESSION', message: 'sign in' });
  assert.ok(lobby.aborted && r2.aborted);
  assert.equal(h.lost, 1);
  assert.deepEqual(plain(h.client.status().loops), []);
  assert.deepEqual(h.timers.delays(), []);
});

for (const code of ['APP_ERR_SESSION_EXPIRED', 'APP_ERR_SESSION_ENDED']) {
  test(`a poll answered 401 ${code} stops every loop like a lost session, and nothing retries it`, () => {
    const h = start({ strategy: 'per-room' });
    join(h, [['lobby', 5], ['r1', 9]]);
    const [lobby, r1] = polls(h) as [ScriptedRequest, ScriptedRequest];
    r1.answer(401, { code, message: 'sign in again' });
    assert.ok(lobby.aborted);
    assert.equal(h.lost, 1);
    assert.deepEqual(plain(h.client.status().loops), []);
    assert.deepEqual(h.timers.delays(), [], 'no backoff timer: a retry would only get the same 401');
    assert.deepEqual(polls(h), []);
  });
}

test('a page opened with an expired session cookie starts signed out, not failed', () => {
  const browser = loadClient();
  const transport = new ScriptedTransport();
  const client = browser.window.CometChat.createClient({ transport, timers: new FakeTimers() });
  let result: unknown[] = [];
  client.start((...args: unknown[]) => {
    result = args;
  });
  transport.next('/api/config').answer(404, { code: 'APP_ERR_NOT_FOUND', message: 'no route' });
  transport.next('/api/session').answer(401, { code: 'APP_ERR_SESSION_EXPIRED', message: 'sign in again' });
  assert.deepEqual(result, [null, null]);
});

test('pagehide aborts every poll and pageshow from the back/forward cache resumes from the cursors', () => {
  const h = start({ strategy: 'per-room' });
  join(h, [['lobby', 5], ['r1', 9]]);
  const before = polls(h);
  h.browser.fire('pagehide', { persisted: true });
  assert.ok(before.every((p) => p.aborted));
  assert.equal(polls(h).length, 0);
  h.browser.fire('pageshow', { persisted: true });
  assert.deepEqual(polls(h).map((p) => p.param('rooms')), ['lobby:5', 'r1:9']);
});

test('sharded falls back to multiplex, saying why, without a base domain or off it', () => {
  const none = start({ strategy: 'sharded' });
  assert.equal(none.client.status().strategy, 'multiplex');
  assert.match(none.client.status().strategyNote, /no shard hosts/);

  const elsewhere = start({ strategy: 'sharded', config: { baseDomain: 'chat.test', shards: 4 }, host: 'example.org' });
  assert.equal(elsewhere.client.status().strategy, 'multiplex');
  assert.match(elsewhere.client.status().strategyNote, /not served from chat\.test/);

  const unknown = start({ strategy: 'carrier-pigeon' });
  assert.equal(unknown.client.status().strategy, 'multiplex');
});
