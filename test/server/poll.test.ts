import assert from 'node:assert/strict';
import { test } from 'node:test';
import { signGripSig } from '../../protocol/grip-sig.js';
import { startApp, testClock, type AppHarness, type TestUser } from '../helpers/app-harness.js';

interface WireEvent {
  id: number;
  room: string;
  type: string;
  text?: string;
}

const GRIP_HEADERS = ['grip-hold', 'grip-channel', 'grip-timeout', 'grip-connection-id'];

/** ada, member of lobby, general and random; returns each room's last event id. */
async function adaInThreeRooms(h: AppHarness): Promise<{ ada: TestUser; last: Record<string, number> }> {
  const ada = await h.signIn('ada');
  const last: Record<string, number> = {};
  for (const name of ['general', 'random']) {
    await ada.agent.post('/api/rooms').send({ name }).expect(201);
    last[name] = (await ada.agent.post(`/api/rooms/${name}/join`).expect(200)).body.cursor;
  }
  last.lobby = (await ada.agent.get('/api/rooms/lobby/messages').expect(200)).body.cursor;
  return { ada, last };
}

async function say(user: TestUser, room: string, text: string): Promise<number> {
  return (await user.agent.post(`/api/rooms/${room}/messages`).send({ text }).expect(201)).body.event.id;
}

function countConnections(h: AppHarness): number {
  return (h.chat.db.prepare('SELECT COUNT(*) AS n FROM connections').get() as { n: number }).n;
}

function lastPollAt(h: AppHarness, userId: number): number | null {
  return (h.chat.db.prepare('SELECT last_poll_at AS t FROM sessions WHERE id = ?').get(userId) as { t: number | null }).t;
}

test('a poll\'s t= (the client\'s per-tab tag making first polls distinct) is ignored: the same hold with or without it', async (t) => {
  const h = await startApp(t, { options: { holdTimeoutS: 30 } });
  const { ada, last } = await adaInThreeRooms(h);
  const rooms = `general:${last.general},lobby:${last.lobby}`;
  for (const tag of ['', '&t=lx3k9a2b7qf', '&t=', '&t=a&t=b', '&t=%3Cscript%3E']) {
    const res = await ada.agent.get(`/api/poll?rooms=${rooms}${tag}`).set('Grip-Sig', await h.gripSig()).expect(200);
    assert.equal(res.headers['grip-hold'], 'response', tag);
    assert.equal(res.headers['grip-channel'], `room:general; prev-id=${last.general}, room:lobby; prev-id=${last.lobby}`, tag);
    assert.equal(res.text, JSON.stringify({ events: [], connectionId: res.body.connectionId }), tag);
  }
});

test('a poll with news past any cursor is answered at once with those events, oldest first, across rooms', async (t) => {
  const h = await startApp(t);
  const { ada, last } = await adaInThreeRooms(h);
  const g1 = await say(ada, 'general', 'g1');
  const r1 = await say(ada, 'random', 'r1');
  const g2 = await say(ada, 'general', 'g2');

  // Cursors: general has seen g1, random is up to date before r1, lobby is up to date.
  const res = await ada.agent
    .get(`/api/poll?rooms=general:${g1},random:${last.random},lobby:${last.lobby}`)
    .set('Grip-Sig', await h.gripSig())
    .expect(200);
  assert.deepEqual(res.body.events.map((e: WireEvent) => [e.id, e.room, e.text]), [
    [r1, 'random', 'r1'],
    [g2, 'general', 'g2'],
  ]);
  assert.equal(typeof res.body.connectionId, 'string');
  assert.equal(res.headers['comet-connection-id'], res.body.connectionId);
  assert.equal(res.headers['cache-control'], 'no-store');
  assert.match(res.headers['content-type'] ?? '', /^application\/json; charset=utf-8/);
  for (const name of GRIP_HEADERS) assert.equal(res.headers[name], undefined, `${name} must not be set on an answer`);
});

test('a poll answers at most pollBatchMax events and the next poll continues from the cursors', async (t) => {
  const h = await startApp(t, { options: { pollBatchMax: 3 } });
  const { ada, last } = await adaInThreeRooms(h);
  const ids: number[] = [];
  for (let i = 0; i < 5; i++) ids.push(await say(ada, i % 2 === 0 ? 'general' : 'random', `m${i}`));

  const first = await ada.agent.get(`/api/poll?rooms=general:${last.general},random:${last.random}`).expect(200);
  assert.deepEqual(first.body.events.map((e: WireEvent) => e.id), ids.slice(0, 3));

  const cursor = (room: string, events: WireEvent[], fallback: number): number =>
    Math.max(fallback, ...events.filter((e) => e.room === room).map((e) => e.id));
  const g = cursor('general', first.body.events, last.general!);
  const r = cursor('random', first.body.events, last.random!);
  const second = await ada.agent.get(`/api/poll?rooms=general:${g},random:${r}&cid=${first.body.connectionId}`).expect(200);
  assert.deepEqual(second.body.events.map((e: WireEvent) => e.id), ids.slice(3));
});

test('a poll without news through the proxy is a hold on each room with its last event id as prev-id', async (t) => {
  const h = await startApp(t, { options: { holdTimeoutS: 30 } });
  const { ada, last } = await adaInThreeRooms(h);
  const res = await ada.agent
    .get(`/api/poll?rooms=random:${last.random},lobby:${last.lobby},general:${last.general}`)
    .set('Grip-Sig', await h.gripSig())
    .expect(200);
  const cid = res.body.connectionId as string;
  assert.equal(res.headers['grip-hold'], 'response');
  assert.equal(
    res.headers['grip-channel'],
    `room:random; prev-id=${last.random}, room:lobby; prev-id=${last.lobby}, room:general; prev-id=${last.general}`,
  );
  assert.equal(res.headers['grip-timeout'], '30');
  assert.equal(res.headers['grip-connection-id'], cid);
  assert.equal(res.headers['comet-connection-id'], cid);
  assert.equal(res.headers['cache-control'], 'no-store');
  assert.match(res.headers['content-type'] ?? '', /^application\/json; charset=utf-8/);
  assert.equal(res.headers.etag, undefined, 'a held response must not carry an ETag for a body it will not have');
  assert.equal(res.text, JSON.stringify({ events: [], connectionId: cid }));
});

test('the hold prev-id is the room last event id even when the cursor is ahead of it', async (t) => {
  const h = await startApp(t);
  const { ada, last } = await adaInThreeRooms(h);
  const res = await ada.agent.get('/api/poll?rooms=lobby:9999').set('Grip-Sig', await h.gripSig()).expect(200);
  assert.equal(res.headers['grip-channel'], `room:lobby; prev-id=${last.lobby}`);
  assert.equal(res.headers['grip-timeout'], '55');
});

test('a poll without news and without Grip-Sig is answered at once with no events', async (t) => {
  const h = await startApp(t);
  const { ada, last } = await adaInThreeRooms(h);
  const res = await ada.agent.get(`/api/poll?rooms=general:${last.general}`).expect(200);
  assert.deepEqual(res.body, { events: [], connectionId: res.headers['comet-connection-id'] });
  for (const name of GRIP_HEADERS) assert.equal(res.headers[name], undefined);
});

test('a poll with an invalid Grip-Sig is 401 APP_ERR_BAD_GRIP_SIG and changes nothing', async (t) => {
  const h = await startApp(t);
  const { ada, last } = await adaInThreeRooms(h);
  const before = countConnections(h);
  const expired = await signGripSig(h.chat.options.secret, Date.now() - 7_200_000);
  for (const sig of [await signGripSig('another-secret-0123456789'), expired, 'garbage', '']) {
    const res = await ada.agent.get(`/api/poll?rooms=general:${last.general}`).set('Grip-Sig', sig).expect(401);
    assert.equal(res.body.code, 'APP_ERR_BAD_GRIP_SIG', sig);
  }
  assert.equal(countConnections(h), before);
});

test('a poll without cid is issued a new connection ID bound to the session', async (t) => {
  const h = await startApp(t);
  const ada = await h.signIn('ada');
  const res = await ada.agent.get('/api/poll?rooms=lobby:0').expect(200);
  assert.match(res.body.connectionId, /^[A-Za-z0-9_-]{21}$/);
  // The row is written with the next batch of the liveness log (server/liveness-log.ts).
  h.chat.liveness.flush();
  const row = h.chat.db.prepare('SELECT session_id AS s FROM connections WHERE id = ?').get(res.body.connectionId) as { s: number };
  assert.equal(row.s, ada.id);
  const again = await ada.agent.get('/api/poll?rooms=lobby:0&cid=').expect(200);
  assert.notEqual(again.body.connectionId, res.body.connectionId, 'an empty cid counts as none');
});

test('a poll with its own cid reuses it and records when it was seen', async (t) => {
  const clock = testClock();
  const h = await startApp(t, { clock });
  const ada = await h.signIn('ada');
  const first = await ada.agent.get('/api/poll?rooms=lobby:0').expect(200);
  const cid = first.body.connectionId as string;
  clock.advance(11_000); // past the presence refresh (10 s for the default 70 s window)
  const res = await ada.agent.get(`/api/poll?rooms=lobby:1&cid=${cid}`).set('Grip-Sig', await h.gripSig()).expect(200);
  assert.equal(res.headers['comet-connection-id'], cid);
  assert.equal(res.headers['grip-connection-id'], cid);
  assert.equal(res.body.connectionId, cid);
  const row = h.chat.db.prepare('SELECT last_seen_at AS t FROM connections WHERE id = ?').get(cid) as { t: number };
  assert.equal(row.t, clock.now());
  assert.equal(lastPollAt(h, ada.id), clock.now());
});

test('a re-poll within the presence refresh only reads: same answer and cid, presence and liveness left as they were', async (t) => {
  const clock = testClock();
  const h = await startApp(t, { clock });
  const ada = await h.signIn('ada');
  const first = await ada.agent.get('/api/poll?rooms=lobby:0').expect(200);
  const cid = first.body.connectionId as string;
  const seenAt = clock.now();
  h.chat.liveness.flush();
  const changesBefore = h.chat.db.prepare('SELECT total_changes() AS n').get() as { n: number };
  clock.advance(5000);
  const res = await ada.agent.get(`/api/poll?rooms=lobby:0&cid=${cid}`).expect(200);
  assert.equal(res.body.connectionId, cid);
  assert.deepEqual(res.body.events, first.body.events);
  const row = h.chat.db.prepare('SELECT last_seen_at AS t FROM connections WHERE id = ?').get(cid) as { t: number };
  assert.equal(row.t, seenAt);
  assert.equal(lastPollAt(h, ada.id), seenAt);
  assert.deepEqual(h.chat.db.prepare('SELECT total_changes() AS n').get(), changesBefore, 'the poll wrote nothing');
});

test("a poll naming another session's cid is 403 APP_ERR_FOREIGN_CONNECTION_ID and changes nothing", async (t) => {
  const clock = testClock();
  const h = await startApp(t, { clock });
  const ada = await h.signIn('ada');
  const bob = await h.signIn('bob');
  const adaCid = (await ada.agent.get('/api/poll?rooms=lobby:0').expect(200)).body.connectionId as string;
  h.chat.liveness.flush();
  const bobPolledAt = lastPollAt(h, bob.id);
  clock.advance(1000);
  const res = await bob.agent.get(`/api/poll?rooms=lobby:0&cid=${adaCid}`).set('Grip-Sig', await h.gripSig()).expect(403);
  assert.equal(res.body.code, 'APP_ERR_FOREIGN_CONNECTION_ID');
  assert.equal(res.headers['grip-hold'], undefined);
  h.chat.liveness.flush();
  assert.equal(countConnections(h), 1);
  assert.equal(lastPollAt(h, bob.id), bobPolledAt);
});

test('a poll with a malformed cid is 400 APP_ERR_BAD_CONNECTION_ID', async (t) => {
  const h = await startApp(t);
  const ada = await h.signIn('ada');
  for (const cid of ['short', 'x'.repeat(22), 'has space in it 12345', 'abcdefghij%2Bklmnopqrs', 'V1StGXR8_Z5jdHi6B-myT&cid=V1StGXR8_Z5jdHi6B-myT']) {
    const res = await ada.agent.get(`/api/poll?rooms=lobby:0&cid=${cid}`).expect(400);
    assert.equal(res.body.code, 'APP_ERR_BAD_CONNECTION_ID', cid);
  }
  assert.equal(countConnections(h), 0);
});

test('a poll with a well-formed cid this app never issued is 400 APP_ERR_BAD_CONNECTION_ID and changes nothing', async (t) => {
  const h = await startApp(t);
  const ada = await h.signIn('ada');
  const made = 'V1StGXR8_Z5jdHi6B-myT';
  const res = await ada.agent.get(`/api/poll?rooms=lobby:0&cid=${made}`).set('Grip-Sig', await h.gripSig()).expect(400);
  assert.equal(res.body.code, 'APP_ERR_BAD_CONNECTION_ID');
  assert.match(res.body.message, /not a connection ID this app issued/);
  assert.equal(res.headers['grip-hold'], undefined);
  h.chat.liveness.flush();
  assert.equal(countConnections(h), 0);
});

test('malformed rooms cursors are 400 APP_ERR_BAD_CURSOR and change nothing', async (t) => {
  const clock = testClock();
  const h = await startApp(t, { clock });
  const ada = await h.signIn('ada');
  await ada.agent.post('/api/rooms').send({ name: 'general' }).expect(201);
  await ada.agent.post('/api/rooms/general/join').expect(200);
  const polledAt = lastPollAt(h, ada.id);
  clock.advance(1000);
  const fiftyOne = Array.from({ length: 51 }, (_, i) => `r${i}:0`).join(',');
  const cases = [
    '', 'rooms=', 'rooms=general', 'rooms=general:', 'rooms=general:-1', 'rooms=general:%2B1', 'rooms=general:1.5',
    'rooms=general:abc', 'rooms=general:1e3', 'rooms=general:01', 'rooms=general:0x1', 'rooms=general:%201',
    'rooms=general:9007199254740992', 'rooms=:3', 'rooms=general:1:2', 'rooms=general:1,', 'rooms=,general:1',
    'rooms=general:1,general:2', 'rooms=General:1', `rooms=${fiftyOne}`, 'rooms=general:1&rooms=lobby:1',
  ];
  for (const query of cases) {
    const res = await ada.agent.get(`/api/poll?${query}`).set('Grip-Sig', await h.gripSig()).expect(400);
    assert.equal(res.body.code, 'APP_ERR_BAD_CURSOR', query);
    assert.equal(res.headers['comet-connection-id'], undefined);
  }
  assert.equal(countConnections(h), 0);
  assert.equal(lastPollAt(h, ada.id), polledAt);
});

test('fifty rooms in one poll are accepted', async (t) => {
  const h = await startApp(t);
  const ada = await h.signIn('ada');
  const names = Array.from({ length: 50 }, (_, i) => `r${i}`);
  for (const name of names) {
    await ada.agent.post('/api/rooms').send({ name }).expect(201);
    await ada.agent.post(`/api/rooms/${name}/join`).expect(200);
  }
  const res = await ada.agent.get(`/api/poll?rooms=${names.map((n) => `${n}:999999`).join(',')}`).set('Grip-Sig', await h.gripSig()).expect(200);
  assert.equal(res.headers['grip-channel']?.split(',').length, 50);
});

test('a poll naming an unknown room is 404 and one not joined is 403, changing nothing', async (t) => {
  const clock = testClock();
  const h = await startApp(t, { clock });
  const ada = await h.signIn('ada');
  await ada.agent.post('/api/rooms').send({ name: 'general' }).expect(201);
  const polledAt = lastPollAt(h, ada.id);
  clock.advance(1000);
  const unknown = await ada.agent.get('/api/poll?rooms=lobby:0,nope:0').expect(404);
  assert.equal(unknown.body.code, 'APP_ERR_ROOM_NOT_FOUND');
  const notJoined = await ada.agent.get('/api/poll?rooms=lobby:0,general:0').expect(403);
  assert.equal(notJoined.body.code, 'APP_ERR_NOT_MEMBER');
  assert.equal(countConnections(h), 0);
  assert.equal(lastPollAt(h, ada.id), polledAt);
});
