import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { openDatabase } from '../../server/store/database.js';
import { LATEST_SCHEMA_VERSION, migrate, SchemaVersionError } from '../../server/store/migrations.js';
import { startControlRecorder } from '../helpers/app-control-recorder.js';
import { startApp, tempDir } from '../helpers/app-harness.js';

test('opening a database creates its directory, migrates it and sets the pragmas', (t) => {
  const dir = tempDir(t);
  const db = openDatabase(join(dir, 'nested', 'deeper', 'chat.db'), { busyTimeoutMs: 1234 });
  t.after(() => db.close());
  assert.equal(db.pragma('user_version', { simple: true }), LATEST_SCHEMA_VERSION);
  assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
  assert.equal(db.pragma('busy_timeout', { simple: true }), 1234);
  assert.equal(db.pragma('foreign_keys', { simple: true }), 1);
  assert.equal(db.pragma('synchronous', { simple: true }), 1); // NORMAL
  assert.deepEqual(db.prepare('SELECT name FROM rooms').all(), [{ name: 'lobby' }]);
});

test('migrations are idempotent: running them again changes nothing and keeps one lobby', (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'chat.db');
  openDatabase(path, { busyTimeoutMs: 100 }).close();
  const db = openDatabase(path, { busyTimeoutMs: 100 });
  t.after(() => db.close());
  const schema = db.prepare('SELECT sql FROM sqlite_master ORDER BY name').all();
  assert.equal(migrate(db), LATEST_SCHEMA_VERSION);
  assert.equal(migrate(db), LATEST_SCHEMA_VERSION);
  assert.deepEqual(db.prepare('SELECT sql FROM sqlite_master ORDER BY name').all(), schema);
  assert.deepEqual(db.prepare('SELECT name FROM rooms').all(), [{ name: 'lobby' }]);
});

test('the events index on (room_id, id) serves per-room cursor reads', (t) => {
  const db = openDatabase(join(tempDir(t), 'chat.db'), { busyTimeoutMs: 100 });
  t.after(() => db.close());
  const plan = db.prepare('EXPLAIN QUERY PLAN SELECT id FROM events WHERE room_id = 1 AND id > 5 ORDER BY id').all() as Array<{ detail: string }>;
  assert.match(plan.map((p) => p.detail).join('\n'), /events_by_room/);
});

test('a database from a newer schema version is refused', (t) => {
  const path = join(tempDir(t), 'chat.db');
  const raw = new Database(path);
  raw.pragma(`user_version = ${LATEST_SCHEMA_VERSION + 1}`);
  raw.close();
  assert.throws(() => openDatabase(path, { busyTimeoutMs: 100 }), SchemaVersionError);
});

test('a restart on the same database file keeps sessions, rooms, events and the unpublished outbox', async (t) => {
  const dir = tempDir(t);
  const first = await startApp(t, { dir });
  const ada = await first.signIn('ada');
  await ada.agent.post('/api/rooms').send({ name: 'general' }).expect(201);
  await ada.agent.post('/api/rooms/general/join').expect(200);
  await ada.agent.post('/api/rooms/general/messages').send({ text: 'before restart' }).expect(201);
  const outboxBefore = first.chat.store.outbox.all();
  assert.equal(outboxBefore.length, 3); // the lobby's room event, the join, the message
  await first.chat.close();

  const second = await startApp(t, { dir });
  // The same cookie still names ada.
  const again = await second.anonymous().get('/api/session').set('Cookie', ada.cookie).expect(200);
  assert.deepEqual(again.body.user, { id: ada.id, nick: 'ada' });
  const history = await second.anonymous().get('/api/rooms/general/messages').set('Cookie', ada.cookie).expect(200);
  assert.deepEqual(history.body.events.map((e: { type: string }) => e.type), ['join', 'message']);
  assert.deepEqual(second.chat.store.outbox.all(), outboxBefore);

  // ...and the kept outbox is published once a proxy is connected, continuing the id sequence.
  const control = await startControlRecorder(t);
  const bob = await second.signIn('bob');
  await bob.agent.post('/api/rooms/lobby/messages').send({ text: 'after restart' }).expect(201);
  second.chat.connectProxy(control.url);
  await second.chat.relay.waitIdle(5000);
  const ids = control.items().map((i) => Number(i.id));
  assert.equal(ids.length, 4);
  assert.deepEqual(ids.slice(0, 3), outboxBefore.map((r) => Number(r.itemId)));
  assert.ok(ids[3]! > ids[2]!, 'new events continue the id sequence');
  assert.ok(bob.id > ada.id);
});
