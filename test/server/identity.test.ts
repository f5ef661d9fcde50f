/**
 * Identity (issue 18): nicks unique among live sessions (trimmed, NFKC, case-folded),
 * a nick change with `PATCH /api/session` told to the user's rooms as a `nick`
 * event, history that shows each event's nick at send time with the user id, a
 * nick freed by sign-out or expiry, and a quiet lobby (sign-in posts nothing).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { LATEST_SCHEMA_VERSION, migrate, MIGRATIONS } from '../../server/store/migrations.js';
import { nickKey } from '../../server/store/nick-key.js';
import { startApp, tempDir, testClock, type AppHarness } from '../helpers/app-harness.js';

const count = (h: AppHarness, sql: string, ...args: unknown[]): number => h.chat.db.prepare(sql).pluck().get(...args) as number;

interface WireEvent {
  id: number;
  type: string;
  room: string;
  user: { id: number; nick: string };
  text?: string;
  previousNick?: string;
}

test('a nick a live session has is refused with 409 APP_ERR_NICK_TAKEN, whatever its case, width or padding, and nothing is written', async (t) => {
  const h = await startApp(t);
  await h.signIn('Ada');
  const sessions = count(h, 'SELECT COUNT(*) FROM sessions');
  const events = count(h, 'SELECT COUNT(*) FROM events');
  // "ＡＤＡ" is full-width (NFKC folds it to "ADA"); "Straße" and "STRASSE" meet under case folding.
  for (const nick of ['Ada', 'ada', '  ADA ', 'ＡＤＡ']) {
    const res = await h.anonymous().post('/api/session').send({ nick }).expect(409);
    assert.equal(res.body.code, 'APP_ERR_NICK_TAKEN', nick);
    assert.match(res.body.message, /already in use; please choose another/);
    assert.equal(res.headers['set-cookie'], undefined, 'no cookie for a refused sign-in');
  }
  await h.signIn('Straße');
  assert.equal((await h.anonymous().post('/api/session').send({ nick: 'STRASSE' }).expect(409)).body.code, 'APP_ERR_NICK_TAKEN');
  assert.equal(count(h, 'SELECT COUNT(*) FROM sessions'), sessions + 1, 'only Straße was created');
  assert.equal(count(h, 'SELECT COUNT(*) FROM events'), events);
  // A different nick is fine, and the display form is NFKC but keeps its case.
  const res = await h.anonymous().post('/api/session').send({ nick: 'ＢＯＢ' }).expect(201);
  assert.equal(res.body.user.nick, 'BOB');
});

test('signing in is quiet: the user is a lobby member (the members panel shows them) but no event is written', async (t) => {
  const h = await startApp(t);
  const ada = await h.signIn('ada');
  const bob = await h.signIn('bob');
  assert.equal(count(h, 'SELECT COUNT(*) FROM events'), 0);
  assert.equal(count(h, 'SELECT COUNT(*) FROM outbox'), 0, 'nothing to publish: parked lobby polls stay parked');
  const history = await ada.agent.get('/api/rooms/lobby/messages').expect(200);
  assert.deepEqual(history.body.events, []);
  const members = (await ada.agent.get('/api/rooms/lobby/members').expect(200)).body.members as Array<{ id: number; nick: string; online: boolean }>;
  assert.deepEqual(members.map((m) => [m.id, m.nick, m.online]), [[ada.id, 'ada', true], [bob.id, 'bob', true]]);
  // Joining the lobby again (the client does it after sign-in) writes nothing either: already a member.
  const join = await bob.agent.post('/api/rooms/lobby/join').expect(200);
  assert.equal(join.body.cursor, 0);
  assert.equal(count(h, 'SELECT COUNT(*) FROM events'), 0);
  // Signing out leaves the lobby: a leave event (it carries the lease revocation) and one member fewer.
  await bob.agent.delete('/api/session').expect(204);
  const after = (await ada.agent.get('/api/rooms/lobby/messages').expect(200)).body.events as WireEvent[];
  assert.deepEqual(after.map((e) => [e.type, e.user.id]), [['leave', bob.id]]);
  assert.deepEqual((await ada.agent.get('/api/rooms/lobby/members').expect(200)).body.members.map((m: { nick: string }) => m.nick), ['ada']);
});

test('a nick freed by sign-out can be taken again, by a new session with its own id', async (t) => {
  const h = await startApp(t);
  const first = await h.signIn('ada');
  await first.agent.delete('/api/session').expect(204);
  const second = await h.signIn('ADA');
  assert.notEqual(second.id, first.id);
  assert.equal(second.nick, 'ADA');
});

test('a nick held by a session that expired but was not pruned yet is freed at sign-in: that session ends then', async (t) => {
  const clock = testClock();
  // The pruner never runs in this test (an hour apart); the sign-in itself ends the expired holder.
  const h = await startApp(t, { clock, options: { sessionIdleTimeoutS: 3600, pruneIntervalS: 3600 } });
  const old = await h.signIn('ada');
  const other = await h.signIn('bob');
  clock.advance(30 * 60_000);
  await other.agent.get('/api/session').expect(200); // bob stays active
  assert.equal((await h.anonymous().post('/api/session').send({ nick: 'ada' }).expect(409)).body.code, 'APP_ERR_NICK_TAKEN', 'not expired yet');
  clock.advance(31 * 60_000); // ada idle for 61 minutes
  assert.equal((await h.anonymous().post('/api/session').send({ nick: 'bob' }).expect(409)).body.code, 'APP_ERR_NICK_TAKEN', 'bob is still live');
  const taken = await h.signIn('ada');
  assert.notEqual(taken.id, old.id);
  const row = h.chat.db.prepare('SELECT ended_at AS endedAt, end_reason AS reason FROM sessions WHERE id = ?').get(old.id) as { endedAt: number; reason: string };
  assert.equal(row.reason, 'expired');
  assert.equal(row.endedAt, clock.now());
  assert.equal((await old.agent.get('/api/session').expect(401)).body.code, 'APP_ERR_SESSION_EXPIRED');
});

test('PATCH /api/session changes the nick: a nick event in each of the user\'s rooms, and history keeps each event\'s nick at send time', async (t) => {
  const h = await startApp(t);
  const ada = await h.signIn('ada');
  const bob = await h.signIn('bob');
  await ada.agent.post('/api/rooms').send({ name: 'general' }).expect(201);
  await ada.agent.post('/api/rooms/general/join').expect(200);
  await bob.agent.post('/api/rooms/general/join').expect(200);
  const before = (await ada.agent.post('/api/rooms/general/messages').send({ text: 'as ada' }).expect(201)).body.event as WireEvent;

  const res = await ada.agent.patch('/api/session').send({ nick: ' Ada Lovelace ' }).expect(200);
  assert.deepEqual(res.body, { user: { id: ada.id, nick: 'Ada Lovelace' } });
  assert.deepEqual((await ada.agent.get('/api/session').expect(200)).body.user, { id: ada.id, nick: 'Ada Lovelace' });
  const after = (await ada.agent.post('/api/rooms/general/messages').send({ text: 'as Ada Lovelace' }).expect(201)).body.event as WireEvent;
  assert.deepEqual(after.user, { id: ada.id, nick: 'Ada Lovelace' });

  // bob sees, in general: ada's join... then the old message under "ada", the nick event, the new message.
  const general = (await bob.agent.get('/api/rooms/general/messages').expect(200)).body.events as WireEvent[];
  const tail = general.filter((e) => e.id >= before.id).map((e) => [e.type, e.user.id, e.user.nick, e.text ?? e.previousNick]);
  assert.deepEqual(tail, [
    ['message', ada.id, 'ada', 'as ada'],
    ['nick', ada.id, 'Ada Lovelace', 'ada'],
    ['message', ada.id, 'Ada Lovelace', 'as Ada Lovelace'],
  ]);
  const nickEvent = general.find((e) => e.type === 'nick')!;
  assert.equal('text' in nickEvent, false, 'the previous nick is previousNick, not text');
  // ... and in the lobby, where ada is a member since sign-in.
  const lobby = (await bob.agent.get('/api/rooms/lobby/messages').expect(200)).body.events as WireEvent[];
  // (The room event announcing general keeps the nick ada created it under.)
  assert.deepEqual(lobby.map((e) => [e.type, e.user.nick, e.previousNick]), [['room', 'ada', undefined], ['nick', 'Ada Lovelace', 'ada']]);
  // The pushes say the same: each nick event has its outbox row with the same JSON.
  const outbox = h.chat.db.prepare('SELECT channel, payload FROM outbox ORDER BY id').all() as Array<{ channel: string; payload: string }>;
  const pushed = outbox.map((row) => ({ channel: row.channel, event: (JSON.parse(JSON.parse(row.payload).body) as { events: WireEvent[] }).events[0]! })).filter((p) => p.event.type === 'nick');
  assert.deepEqual(pushed.map((p) => [p.channel, p.event.user.nick, p.event.previousNick]), [['room:lobby', 'Ada Lovelace', 'ada'], ['room:general', 'Ada Lovelace', 'ada']]);
  // Members list the current nick; the old one is free for someone else.
  const members = (await bob.agent.get('/api/rooms/general/members').expect(200)).body.members as Array<{ nick: string }>;
  assert.deepEqual(members.map((m) => m.nick), ['Ada Lovelace', 'bob']);
  await h.signIn('ada');
});

test('PATCH /api/session refuses a taken nick with 409 and an invalid one with 400, changing nothing; its own nick is a no-op, a change of case is allowed', async (t) => {
  const h = await startApp(t);
  const ada = await h.signIn('ada');
  await h.signIn('bob');
  const events = count(h, 'SELECT COUNT(*) FROM events');
  for (const nick of ['bob', 'BOB ', 'ｂｏｂ']) {
    const res = await ada.agent.patch('/api/session').send({ nick }).expect(409);
    assert.equal(res.body.code, 'APP_ERR_NICK_TAKEN');
  }
  assert.equal((await ada.agent.patch('/api/session').send({ nick: '<b>' }).expect(400)).body.code, 'APP_ERR_INVALID_NICK');
  assert.equal((await ada.agent.patch('/api/session').send({ nick: 7 }).expect(400)).body.code, 'APP_ERR_INVALID_BODY');
  assert.equal((await ada.agent.patch('/api/session').send(['ada']).expect(400)).body.code, 'APP_ERR_INVALID_BODY');
  assert.equal((await h.anonymous().patch('/api/session').send({ nick: 'zed' }).expect(401)).body.code, 'APP_ERR_NO_SESSION');
  assert.equal(count(h, 'SELECT COUNT(*) FROM events'), events);
  assert.equal((await ada.agent.get('/api/session').expect(200)).body.user.nick, 'ada');

  await ada.agent.patch('/api/session').send({ nick: 'ada' }).expect(200);
  assert.equal(count(h, 'SELECT COUNT(*) FROM events'), events, 'the same nick writes nothing');
  const res = await ada.agent.patch('/api/session').send({ nick: 'Ada' }).expect(200);
  assert.equal(res.body.user.nick, 'Ada');
  assert.equal(count(h, "SELECT COUNT(*) FROM events WHERE type = 'nick'"), 1);

  // A signed-out cookie cannot rename.
  const cookie = ada.cookie;
  await ada.agent.delete('/api/session').expect(204);
  const ended = await h.anonymous().patch('/api/session').set('Cookie', cookie).send({ nick: 'zed' }).expect(401);
  assert.equal(ended.body.code, 'APP_ERR_SESSION_ENDED');
});

test('migration 9 renames duplicate live nicks deterministically, keeps old events\' nicks and ids, and never reuses an event id', async (t) => {
  const path = join(tempDir(t), 'old.db');
  const db = new Database(path);
  t.after(() => db.close());
  db.pragma('foreign_keys = ON');
  const now = Date.UTC(2026, 10, 1);
  // A database as schema 8 left it.
  for (const m of MIGRATIONS.filter((x) => x.version <= 8)) {
    m.up(db, now);
    db.pragma(`user_version = ${m.version}`);
  }
  const addSession = db.prepare('INSERT INTO sessions (token, nick, created_at, last_poll_at, seen_at, ended_at, end_reason) VALUES (?, ?, ?, NULL, ?, ?, ?)');
  const nicks: Array<[string, number | null]> = [
    ['ada', null], // 1 keeps "ada": the oldest live one
    ['Ada', null], // 2 -> "Ada-2" is someone's nick (5), so "Ada-2-2"
    ['ada', now], //  3 ended: not renamed, not counted
    ['ADA', null], // 4 -> "ADA-4"
    ['Ada-2', null], // 5 a real "Ada-2": keeps it
    ['x'.repeat(32), null], // 6
    ['X'.repeat(32), null], // 7 -> 30 x's + "-7"
  ];
  nicks.forEach(([nick, ended], i) => addSession.run(`token-${i}`, nick, now, now, ended, ended === null ? null : 'signed-out'));
  const addEvent = db.prepare("INSERT INTO events (room_id, type, user_id, text, created_at) VALUES (1, 'message', ?, ?, ?)");
  for (let id = 1; id <= 7; id++) addEvent.run(id, `from ${id}`, now);
  db.prepare('DELETE FROM events WHERE id = 7').run(); // the high-water mark stays 7

  assert.equal(migrate(db), LATEST_SCHEMA_VERSION);
  const rows = db.prepare('SELECT id, nick, nick_key AS key FROM sessions ORDER BY id').all() as Array<{ id: number; nick: string; key: string }>;
  assert.deepEqual(rows.map((r) => r.nick), ['ada', 'Ada-2-2', 'ada', 'ADA-4', 'Ada-2', 'x'.repeat(32), `${'X'.repeat(30)}-7`]);
  for (const r of rows) assert.equal(r.key, nickKey(r.nick));
  // Events keep the nick their author had: the name they were shown under.
  const events = db.prepare('SELECT id, nick, text FROM events ORDER BY id').all() as Array<{ id: number; nick: string }>;
  assert.deepEqual(events.map((e) => [e.id, e.nick]), [[1, 'ada'], [2, 'Ada'], [3, 'ada'], [4, 'ADA'], [5, 'Ada-2'], [6, 'x'.repeat(32)]]);
  const next = db.prepare("INSERT INTO events (room_id, type, user_id, nick, created_at) VALUES (1, 'nick', 1, 'ada', ?)").run(now);
  assert.equal(Number(next.lastInsertRowid), 8, 'AUTOINCREMENT carried over: id 7 is not reused');
  // The index now refuses a second live "ADA" written past the app, and allows an ended one.
  assert.throws(() => db.prepare("INSERT INTO sessions (token, nick, nick_key, created_at, seen_at) VALUES ('t9', 'ADA', 'ada', 0, 0)").run(), /UNIQUE/);
  db.prepare("INSERT INTO sessions (token, nick, nick_key, created_at, seen_at, ended_at, end_reason) VALUES ('t10', 'ADA', 'ada', 0, 0, 1, 'expired')").run();
  assert.equal(migrate(db), LATEST_SCHEMA_VERSION, 'a second run changes nothing');
});
