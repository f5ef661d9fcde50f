import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startApp, type AppHarness, type TestUser } from '../helpers/app-harness.js';

interface WireEvent {
  id: number;
  type: string;
  text?: string;
}

/** ada in `general` with `count` messages m1..mN after her join event. */
async function roomWithMessages(h: AppHarness, count: number): Promise<{ ada: TestUser; ids: number[] }> {
  const ada = await h.signIn('ada');
  await ada.agent.post('/api/rooms').send({ name: 'general' }).expect(201);
  const join = await ada.agent.post('/api/rooms/general/join').expect(200);
  const ids = [join.body.cursor as number];
  for (let i = 1; i <= count; i++) {
    const res = await ada.agent.post('/api/rooms/general/messages').send({ text: `m${i}` }).expect(201);
    ids.push(res.body.event.id);
  }
  return { ada, ids };
}

test('posting a message answers 201 with the event, text trimmed', async (t) => {
  const h = await startApp(t);
  const { ada } = await roomWithMessages(h, 0);
  const res = await ada.agent.post('/api/rooms/general/messages').send({ text: '  hello  ' }).expect(201);
  const { event } = res.body;
  assert.equal(event.type, 'message');
  assert.equal(event.room, 'general');
  assert.equal(event.text, 'hello');
  assert.deepEqual(event.user, { id: ada.id, nick: 'ada' });
  assert.equal(typeof event.id, 'number');
  assert.equal(typeof event.at, 'string');
});

test('event ids increase across rooms, so they increase within each room', async (t) => {
  const h = await startApp(t);
  const { ada } = await roomWithMessages(h, 0);
  const a = await ada.agent.post('/api/rooms/general/messages').send({ text: 'a' }).expect(201);
  const b = await ada.agent.post('/api/rooms/lobby/messages').send({ text: 'b' }).expect(201);
  const c = await ada.agent.post('/api/rooms/general/messages').send({ text: 'c' }).expect(201);
  assert.ok(a.body.event.id < b.body.event.id && b.body.event.id < c.body.event.id);
});

test('history without before returns the newest events oldest first, the room cursor and hasMore', async (t) => {
  const h = await startApp(t);
  const { ada, ids } = await roomWithMessages(h, 5);
  const res = await ada.agent.get('/api/rooms/general/messages?limit=3').expect(200);
  assert.deepEqual(res.body.events.map((e: WireEvent) => e.text), ['m3', 'm4', 'm5']);
  assert.equal(res.body.cursor, ids.at(-1));
  assert.equal(res.body.hasMore, true);
});

test('history pages backwards by id with before until hasMore is false', async (t) => {
  const h = await startApp(t);
  const { ada, ids } = await roomWithMessages(h, 5);
  const seen: number[] = [];
  let before: number | undefined;
  for (let page = 0; page < 10; page++) {
    const query = before === undefined ? '?limit=2' : `?limit=2&before=${before}`;
    const res = await ada.agent.get(`/api/rooms/general/messages${query}`).expect(200);
    assert.equal(res.body.cursor, ids.at(-1), 'the cursor is always the room last event id');
    const pageIds = res.body.events.map((e: WireEvent) => e.id);
    assert.deepEqual(pageIds, [...pageIds].sort((x, y) => x - y), 'oldest first');
    seen.unshift(...pageIds);
    if (!res.body.hasMore) break;
    before = pageIds[0];
  }
  assert.deepEqual(seen, ids, 'every event exactly once, join included');
});

test('history includes every event type and only the room asked for', async (t) => {
  const h = await startApp(t);
  const { ada } = await roomWithMessages(h, 1);
  const bob = await h.signIn('bob');
  await bob.agent.post('/api/rooms/general/join').expect(200);
  await bob.agent.post('/api/rooms/general/leave').expect(200);
  const res = await ada.agent.get('/api/rooms/general/messages').expect(200);
  assert.deepEqual(res.body.events.map((e: WireEvent) => e.type), ['join', 'message', 'join', 'leave']);
  assert.equal(res.body.hasMore, false);
});

test('history before the room\'s first event is empty and still carries the room cursor', async (t) => {
  const h = await startApp(t);
  const ada = await h.signIn('ada');
  await ada.agent.post('/api/rooms').send({ name: 'quiet' }).expect(201);
  const { cursor } = (await ada.agent.post('/api/rooms/quiet/join').expect(200)).body;
  const res = await ada.agent.get(`/api/rooms/quiet/messages?before=${cursor}`).expect(200);
  assert.deepEqual(res.body, { events: [], cursor, hasMore: false });
});

test('history with a malformed before or limit is 400 APP_ERR_BAD_CURSOR', async (t) => {
  const h = await startApp(t);
  const { ada } = await roomWithMessages(h, 1);
  for (const query of ['before=-1', 'before=abc', 'before=1.5', 'before=', 'limit=0', 'limit=201', 'limit=x', 'before=1&before=2', 'before=01']) {
    const res = await ada.agent.get(`/api/rooms/general/messages?${query}`).expect(400);
    assert.equal(res.body.code, 'APP_ERR_BAD_CURSOR', query);
  }
  await ada.agent.get('/api/rooms/general/messages?limit=200&before=0').expect(200);
});

test('history and posting in a room one is not a member of is 403 APP_ERR_NOT_MEMBER', async (t) => {
  const h = await startApp(t);
  await roomWithMessages(h, 1);
  const bob = await h.signIn('bob');
  const read = await bob.agent.get('/api/rooms/general/messages').expect(403);
  assert.equal(read.body.code, 'APP_ERR_NOT_MEMBER');
  const post = await bob.agent.post('/api/rooms/general/messages').send({ text: 'hi' }).expect(403);
  assert.equal(post.body.code, 'APP_ERR_NOT_MEMBER');
  const unknown = await bob.agent.post('/api/rooms/nope/messages').send({ text: 'hi' }).expect(404);
  assert.equal(unknown.body.code, 'APP_ERR_ROOM_NOT_FOUND');
});

test('an empty or blank message is 400 APP_ERR_EMPTY_MESSAGE', async (t) => {
  const h = await startApp(t);
  const { ada } = await roomWithMessages(h, 0);
  for (const text of ['', '   ', '\n\t ']) {
    const res = await ada.agent.post('/api/rooms/general/messages').send({ text }).expect(400);
    assert.equal(res.body.code, 'APP_ERR_EMPTY_MESSAGE');
  }
});

test('a message longer than messageMaxChars code points is 413 APP_ERR_MESSAGE_TOO_LONG', async (t) => {
  const h = await startApp(t, { options: { messageMaxChars: 10 } });
  const { ada } = await roomWithMessages(h, 0);
  await ada.agent.post('/api/rooms/general/messages').send({ text: '🙂'.repeat(10) }).expect(201);
  await ada.agent.post('/api/rooms/general/messages').send({ text: ` ${'x'.repeat(10)} ` }).expect(201);
  const res = await ada.agent.post('/api/rooms/general/messages').send({ text: 'x'.repeat(11) }).expect(413);
  assert.equal(res.body.code, 'APP_ERR_MESSAGE_TOO_LONG');
});

test('the default message limit is 2000 characters', async (t) => {
  const h = await startApp(t);
  const { ada } = await roomWithMessages(h, 0);
  await ada.agent.post('/api/rooms/general/messages').send({ text: 'x'.repeat(2000) }).expect(201);
  const res = await ada.agent.post('/api/rooms/general/messages').send({ text: 'x'.repeat(2001) }).expect(413);
  assert.equal(res.body.code, 'APP_ERR_MESSAGE_TOO_LONG');
});

test('a text of the wrong type is 400 APP_ERR_INVALID_BODY', async (t) => {
  const h = await startApp(t);
  const { ada } = await roomWithMessages(h, 0);
  for (const body of [{ text: 1 }, { text: ['hi'] }, { text: null }, {}, 'hello', 42]) {
    const res = await ada.agent
      .post('/api/rooms/general/messages')
      .set('Content-Type', 'application/json')
      .send(JSON.stringify(body))
      .expect(400);
    assert.equal(res.body.code, 'APP_ERR_INVALID_BODY', JSON.stringify(body));
  }
});

test('malformed JSON is 400 APP_ERR_BAD_JSON', async (t) => {
  const h = await startApp(t);
  const { ada } = await roomWithMessages(h, 0);
  const res = await ada.agent
    .post('/api/rooms/general/messages')
    .set('Content-Type', 'application/json')
    .send('{"text": "unterminated')
    .expect(400);
  assert.equal(res.body.code, 'APP_ERR_BAD_JSON');
});

test('a body that is not JSON is 415 APP_ERR_UNSUPPORTED_MEDIA_TYPE', async (t) => {
  const h = await startApp(t);
  const { ada } = await roomWithMessages(h, 0);
  const form = await ada.agent.post('/api/rooms/general/messages').type('form').send({ text: 'hi' }).expect(415);
  assert.equal(form.body.code, 'APP_ERR_UNSUPPORTED_MEDIA_TYPE');
  const plain = await ada.agent.post('/api/rooms/general/messages').set('Content-Type', 'text/plain').send('hi').expect(415);
  assert.equal(plain.body.code, 'APP_ERR_UNSUPPORTED_MEDIA_TYPE');
  const latin1 = await ada.agent
    .post('/api/rooms/general/messages')
    .set('Content-Type', 'application/json; charset=latin1')
    .send('{"text":"hi"}')
    .expect(415);
  assert.equal(latin1.body.code, 'APP_ERR_UNSUPPORTED_MEDIA_TYPE');
});

test('a body over bodyMaxBytes is 413 APP_ERR_BODY_TOO_LARGE and posts nothing', async (t) => {
  const h = await startApp(t);
  const { ada } = await roomWithMessages(h, 0);
  const res = await ada.agent
    .post('/api/rooms/general/messages')
    .send({ text: 'x'.repeat(16 * 1024) })
    .expect(413);
  assert.equal(res.body.code, 'APP_ERR_BODY_TOO_LARGE');
  const history = await ada.agent.get('/api/rooms/general/messages').expect(200);
  assert.deepEqual(history.body.events.map((e: WireEvent) => e.type), ['join']);
});

test('a post resent with the same Idempotency-Key returns the first message, marked as a replay, and writes nothing', async (t) => {
  const h = await startApp(t);
  const { ada } = await roomWithMessages(h, 0);
  const first = await ada.agent.post('/api/rooms/general/messages').set('Idempotency-Key', 'general:1').send({ text: 'once' }).expect(201);
  assert.equal(first.headers['idempotent-replayed'], undefined);
  const outboxBefore = h.chat.db.prepare('SELECT COUNT(*) AS n FROM outbox').get() as { n: number };
  const again = await ada.agent.post('/api/rooms/general/messages').set('Idempotency-Key', 'general:1').send({ text: 'once' }).expect(200);
  assert.equal(again.headers['idempotent-replayed'], 'true');
  assert.deepEqual(again.body.event, first.body.event);
  const history = await ada.agent.get('/api/rooms/general/messages').expect(200);
  assert.equal(history.body.events.filter((e: WireEvent) => e.text === 'once').length, 1, 'one message in the room');
  const outboxAfter = h.chat.db.prepare('SELECT COUNT(*) AS n FROM outbox').get() as { n: number };
  assert.equal(outboxAfter.n, outboxBefore.n, 'nothing new to publish');
});

test('an Idempotency-Key is per session: another session using the same key posts its own message', async (t) => {
  const h = await startApp(t);
  const { ada } = await roomWithMessages(h, 0);
  const bob = await h.signIn('bob');
  await bob.agent.post('/api/rooms/general/join').expect(200);
  const a = await ada.agent.post('/api/rooms/general/messages').set('Idempotency-Key', 'k1').send({ text: 'same' }).expect(201);
  const b = await bob.agent.post('/api/rooms/general/messages').set('Idempotency-Key', 'k1').send({ text: 'same' }).expect(201);
  assert.notEqual(a.body.event.id, b.body.event.id);
  assert.equal(b.body.event.user.nick, 'bob');
});

test('an Idempotency-Key reused for another text or room is 422 APP_ERR_IDEMPOTENCY_KEY_REUSED and writes nothing', async (t) => {
  const h = await startApp(t);
  const { ada } = await roomWithMessages(h, 0);
  await ada.agent.post('/api/rooms/general/messages').set('Idempotency-Key', 'k1').send({ text: 'first' }).expect(201);
  const count = () => (h.chat.db.prepare('SELECT COUNT(*) AS n FROM events').get() as { n: number }).n;
  const before = count();
  const otherText = await ada.agent.post('/api/rooms/general/messages').set('Idempotency-Key', 'k1').send({ text: 'second' }).expect(422);
  assert.equal(otherText.body.code, 'APP_ERR_IDEMPOTENCY_KEY_REUSED');
  const otherRoom = await ada.agent.post('/api/rooms/lobby/messages').set('Idempotency-Key', 'k1').send({ text: 'first' }).expect(422);
  assert.equal(otherRoom.body.code, 'APP_ERR_IDEMPOTENCY_KEY_REUSED');
  assert.equal(count(), before);
});

test('a malformed Idempotency-Key is 400 APP_ERR_BAD_IDEMPOTENCY_KEY and writes nothing', async (t) => {
  const h = await startApp(t);
  const { ada } = await roomWithMessages(h, 0);
  const count = () => (h.chat.db.prepare('SELECT COUNT(*) AS n FROM events').get() as { n: number }).n;
  const before = count();
  for (const key of ['', 'x'.repeat(65), 'has space', 'quote"', 'ünï']) {
    const res = await ada.agent.post('/api/rooms/general/messages').set('Idempotency-Key', key).send({ text: 'hi' });
    assert.equal(res.status, 400, `key ${JSON.stringify(key)}`);
    assert.equal(res.body.code, 'APP_ERR_BAD_IDEMPOTENCY_KEY');
  }
  assert.equal(count(), before);
});
