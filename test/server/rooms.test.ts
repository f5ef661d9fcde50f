import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startApp, testClock } from '../helpers/app-harness.js';

test('a new database lists only the lobby room', async (t) => {
  const h = await startApp(t);
  const ada = await h.signIn('ada');
  const res = await ada.agent.get('/api/rooms').expect(200);
  assert.deepEqual(res.body, { rooms: [{ name: 'lobby', members: 1, lastEventId: 0, joined: true }] });
});

test('GET /api/rooms marks the rooms the session joined, from any tab, and no one else\'s', async (t) => {
  const h = await startApp(t);
  const ada = await h.signIn('ada');
  const bob = await h.signIn('bob');
  for (const name of ['general', 'random', 'zeta']) await ada.agent.post('/api/rooms').send({ name }).expect(201);
  await ada.agent.post('/api/rooms/general/join').expect(200);
  await ada.agent.post('/api/rooms/zeta/join').expect(200);
  await bob.agent.post('/api/rooms/random/join').expect(200);
  const joined = async (who: typeof ada) =>
    ((await who.agent.get('/api/rooms').expect(200)).body.rooms as Array<{ name: string; joined: boolean }>).filter((r) => r.joined).map((r) => r.name);
  assert.deepEqual(await joined(ada), ['general', 'lobby', 'zeta']);
  assert.deepEqual(await joined(bob), ['lobby', 'random']);
  await ada.agent.post('/api/rooms/zeta/leave').expect(200);
  assert.deepEqual(await joined(ada), ['general', 'lobby']);
});

test('creating a room answers 201 with an empty room and lists it by name', async (t) => {
  const h = await startApp(t);
  const ada = await h.signIn('ada');
  const res = await ada.agent.post('/api/rooms').send({ name: 'general' }).expect(201);
  assert.deepEqual(res.body, { room: { name: 'general', members: 0, lastEventId: 0 } });
  await ada.agent.post('/api/rooms').send({ name: 'a-team' }).expect(201);
  const list = await ada.agent.get('/api/rooms').expect(200);
  assert.deepEqual(list.body.rooms.map((r: { name: string }) => r.name), ['a-team', 'general', 'lobby']);
});

test('creating a room writes a room event in the lobby, published like any event, so every session learns of it by its poll', async (t) => {
  const h = await startApp(t);
  const ada = await h.signIn('ada');
  const bob = await h.signIn('bob');
  await bob.agent.post('/api/rooms').send({ name: 'design' }).expect(201);
  // ada never asked for the list: her lobby poll brings the room.
  const poll = await ada.agent.get('/api/poll?rooms=lobby:0').expect(200);
  assert.equal(poll.body.events.length, 1);
  const [event] = poll.body.events;
  assert.equal(event.type, 'room');
  assert.equal(event.room, 'lobby');
  assert.equal(event.createdRoom, 'design');
  assert.deepEqual(event.user, { id: bob.id, nick: 'bob' });
  assert.equal(event.text, undefined, 'the name is not message text');
  const rows = h.chat.store.outbox.all();
  assert.deepEqual(rows.map((r) => [r.channel, r.itemId, r.prevId]), [['room:lobby', String(event.id), '0']]);
  // History agrees with the push; a refused create writes nothing.
  const history = await ada.agent.get('/api/rooms/lobby/messages').expect(200);
  assert.deepEqual(history.body.events, poll.body.events);
  await ada.agent.post('/api/rooms').send({ name: 'design' }).expect(409);
  await ada.agent.post('/api/rooms').send({ name: 'Bad Name' }).expect(400);
  assert.equal(h.chat.store.outbox.all().length, 1);
  const list = await ada.agent.get('/api/rooms').expect(200);
  assert.deepEqual(list.body.rooms.map((r: { name: string; lastEventId: number }) => [r.name, r.lastEventId]), [['design', 0], ['lobby', event.id]]);
});

test('creating a room that exists is 409 APP_ERR_ROOM_EXISTS', async (t) => {
  const h = await startApp(t);
  const ada = await h.signIn('ada');
  await ada.agent.post('/api/rooms').send({ name: 'general' }).expect(201);
  const res = await ada.agent.post('/api/rooms').send({ name: 'general' }).expect(409);
  assert.equal(res.body.code, 'APP_ERR_ROOM_EXISTS');
  const lobby = await ada.agent.post('/api/rooms').send({ name: 'lobby' }).expect(409);
  assert.equal(lobby.body.code, 'APP_ERR_ROOM_EXISTS');
});

test('room names must be 1-32 of a-z 0-9 _ - starting with a letter or digit', async (t) => {
  const h = await startApp(t);
  const ada = await h.signIn('ada');
  for (const name of ['a', '0day', 'x'.repeat(32), 'dev_ops-2']) {
    await ada.agent.post('/api/rooms').send({ name }).expect(201);
  }
  for (const name of ['', '-dash', '_under', 'x'.repeat(33), 'General', 'with space', 'room:1', ' padded', 'é']) {
    const res = await ada.agent.post('/api/rooms').send({ name }).expect(400);
    assert.equal(res.body.code, 'APP_ERR_INVALID_ROOM_NAME', JSON.stringify(name));
  }
  const wrongType = await ada.agent.post('/api/rooms').send({ name: 42 }).expect(400);
  assert.equal(wrongType.body.code, 'APP_ERR_INVALID_BODY');
});

test('every rooms endpoint needs a session', async (t) => {
  const h = await startApp(t);
  const anon = h.anonymous();
  for (const [method, path] of [
    ['get', '/api/rooms'],
    ['post', '/api/rooms'],
    ['post', '/api/rooms/lobby/join'],
    ['post', '/api/rooms/lobby/leave'],
    ['get', '/api/rooms/lobby/members'],
    ['get', '/api/rooms/lobby/messages'],
    ['post', '/api/rooms/lobby/messages'],
    ['get', '/api/poll?rooms=lobby:0'],
  ] as const) {
    const res = await anon[method](path).expect(401);
    assert.equal(res.body.code, 'APP_ERR_NO_SESSION', `${method} ${path}`);
  }
});

test('joining a room posts a join event and answers the room with the cursor at its last event', async (t) => {
  const h = await startApp(t);
  const ada = await h.signIn('ada');
  await ada.agent.post('/api/rooms').send({ name: 'general' }).expect(201);
  const res = await ada.agent.post('/api/rooms/general/join').expect(200);
  assert.equal(res.body.room.name, 'general');
  assert.equal(res.body.room.members, 1);
  assert.equal(res.body.cursor, res.body.room.lastEventId);
  const history = await ada.agent.get('/api/rooms/general/messages').expect(200);
  assert.deepEqual(
    history.body.events.map((e: { id: number; type: string }) => [e.id, e.type]),
    [[res.body.cursor, 'join']],
  );
});

test('joining a room twice writes no second join event', async (t) => {
  const h = await startApp(t);
  const ada = await h.signIn('ada');
  await ada.agent.post('/api/rooms').send({ name: 'general' }).expect(201);
  const first = await ada.agent.post('/api/rooms/general/join').expect(200);
  const second = await ada.agent.post('/api/rooms/general/join').expect(200);
  assert.deepEqual(second.body, first.body);
  const history = await ada.agent.get('/api/rooms/general/messages').expect(200);
  assert.equal(history.body.events.length, 1);
});

test('joining, leaving or listing members of an unknown room is 404 APP_ERR_ROOM_NOT_FOUND', async (t) => {
  const h = await startApp(t);
  const ada = await h.signIn('ada');
  for (const [method, path] of [
    ['post', '/api/rooms/nope/join'],
    ['post', '/api/rooms/nope/leave'],
    ['get', '/api/rooms/nope/members'],
    ['get', '/api/rooms/nope/messages'],
    ['post', '/api/rooms/NOT%20A%20NAME/join'],
  ] as const) {
    const res = await ada.agent[method](path).expect(404);
    assert.equal(res.body.code, 'APP_ERR_ROOM_NOT_FOUND', `${method} ${path}`);
  }
});

test('leaving a room posts a leave event that the remaining members see', async (t) => {
  const h = await startApp(t);
  const ada = await h.signIn('ada');
  const bob = await h.signIn('bob');
  await ada.agent.post('/api/rooms').send({ name: 'general' }).expect(201);
  await ada.agent.post('/api/rooms/general/join').expect(200);
  await bob.agent.post('/api/rooms/general/join').expect(200);
  const res = await bob.agent.post('/api/rooms/general/leave').expect(200);
  assert.equal(res.body.room.members, 1);
  const history = await ada.agent.get('/api/rooms/general/messages').expect(200);
  assert.deepEqual(
    history.body.events.map((e: { type: string; user: { nick: string } }) => `${e.type}:${e.user.nick}`),
    ['join:ada', 'join:bob', 'leave:bob'],
  );
  assert.equal(res.body.room.lastEventId, history.body.cursor);
});

test('leaving a room one is not a member of is 403 APP_ERR_NOT_MEMBER', async (t) => {
  const h = await startApp(t);
  const ada = await h.signIn('ada');
  await ada.agent.post('/api/rooms').send({ name: 'general' }).expect(201);
  const res = await ada.agent.post('/api/rooms/general/leave').expect(403);
  assert.equal(res.body.code, 'APP_ERR_NOT_MEMBER');
});

test('members are listed by nick with online true for sessions that polled within the presence window', async (t) => {
  const clock = testClock();
  const h = await startApp(t, { clock, options: { presenceWindowMs: 70_000 } });
  const zoe = await h.signIn('zoe');
  clock.advance(60_000);
  const ada = await h.signIn('ada');
  // zoe's session was created 60 s ago, ada's now: both are online.
  let res = await ada.agent.get('/api/rooms/lobby/members').expect(200);
  assert.deepEqual(res.body, {
    members: [
      { id: ada.id, nick: 'ada', online: true },
      { id: zoe.id, nick: 'zoe', online: true },
    ],
  });

  clock.advance(20_000); // zoe: 80 s since she was last seen; ada: 20 s.
  res = await ada.agent.get('/api/rooms/lobby/members').expect(200);
  assert.deepEqual(res.body.members.map((m: { nick: string; online: boolean }) => [m.nick, m.online]), [
    ['ada', true],
    ['zoe', false],
  ]);

  await zoe.agent.get('/api/poll?rooms=lobby:999').expect(200);
  res = await ada.agent.get('/api/rooms/lobby/members').expect(200);
  assert.deepEqual(res.body.members.map((m: { nick: string; online: boolean }) => [m.nick, m.online]), [
    ['ada', true],
    ['zoe', true],
  ]);
});

test('members of a room one is not in is 403 APP_ERR_NOT_MEMBER', async (t) => {
  const h = await startApp(t);
  const ada = await h.signIn('ada');
  await ada.agent.post('/api/rooms').send({ name: 'general' }).expect(201);
  const res = await ada.agent.get('/api/rooms/general/members').expect(403);
  assert.equal(res.body.code, 'APP_ERR_NOT_MEMBER');
});
