import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { HttpResponseFormat } from '../../protocol/control-api.js';
import { toPublishItem } from '../../server/outbox/item-format.js';
import { startApp, type AppHarness } from '../helpers/app-harness.js';

function outbox(h: AppHarness) {
  return h.chat.store.outbox.all();
}

function eventCount(h: AppHarness): number {
  return (h.chat.db.prepare('SELECT COUNT(*) AS n FROM events').get() as { n: number }).n;
}

test('each write that others see adds exactly one outbox row; writes they do not see add none', async (t) => {
  const h = await startApp(t);
  const ada = await h.signIn('ada');
  assert.equal(outbox(h).length, 0, 'signing in is not an event (the lobby stays quiet)');
  await ada.agent.post('/api/rooms/lobby/messages').send({ text: 'hello' }).expect(201);
  assert.equal(outbox(h).length, 1);
  await ada.agent.post('/api/rooms').send({ name: 'general' }).expect(201);
  assert.equal(outbox(h).length, 2, 'creating a room is a room event in the lobby');
  await ada.agent.post('/api/rooms/general/join').expect(200);
  assert.equal(outbox(h).length, 3);
  await ada.agent.post('/api/rooms/general/join').expect(200);
  assert.equal(outbox(h).length, 3, 'joining again is not an event');
  await ada.agent.post('/api/rooms/general/messages').send({ text: 'hi' }).expect(201);
  assert.equal(outbox(h).length, 4);
  await ada.agent.post('/api/rooms/general/messages').send({ text: '' }).expect(400);
  assert.equal(outbox(h).length, 4, 'a refused write is not an event');
  await ada.agent.post('/api/rooms/general/leave').expect(200);
  // The leave event, and the end of the session's streams (docs/protocol.md §10.2), which is not an event.
  assert.deepEqual(outbox(h).slice(4).map((r) => r.channel), ['room:general', `streams:${ada.id}`]);
  await ada.agent.get('/api/poll?rooms=lobby:0').expect(200);
  assert.equal(outbox(h).length, 6, 'polling is not an event');
  assert.equal(eventCount(h), 5);
});

test('outbox rows name the room channel, the event id and the previous event id of the same room', async (t) => {
  const h = await startApp(t);
  const ada = await h.signIn('ada');
  await ada.agent.post('/api/rooms/lobby/messages').send({ text: 'l0' }).expect(201);
  await ada.agent.post('/api/rooms').send({ name: 'general' }).expect(201);
  await ada.agent.post('/api/rooms/general/join').expect(200);
  await ada.agent.post('/api/rooms/lobby/messages').send({ text: 'l1' }).expect(201);
  await ada.agent.post('/api/rooms/general/messages').send({ text: 'g1' }).expect(201);
  await ada.agent.post('/api/rooms/general/messages').send({ text: 'g2' }).expect(201);

  const events = h.chat.db.prepare('SELECT e.id, r.name AS room FROM events e JOIN rooms r ON r.id = e.room_id ORDER BY e.id').all() as Array<{ id: number; room: string }>;
  const rows = outbox(h);
  assert.deepEqual(
    rows.map((r) => [r.channel, r.itemId]),
    events.map((e) => [`room:${e.room}`, String(e.id)]),
    'one row per event, in event order',
  );
  // prev-id chains per channel: each row's prev-id is the id of the previous row on the same channel, '0' first.
  const lastOnChannel = new Map<string, string>();
  for (const row of rows) {
    assert.equal(row.prevId, lastOnChannel.get(row.channel) ?? '0', `prev-id of item ${row.itemId}`);
    lastOnChannel.set(row.channel, row.itemId);
  }
  assert.deepEqual(
    rows.map((r) => [r.channel, r.prevId, r.itemId]),
    [
      ['room:lobby', '0', '1'],
      ['room:lobby', '1', '2'], // the room event announcing general
      ['room:general', '0', '3'],
      ['room:lobby', '2', '4'],
      ['room:general', '3', '5'],
      ['room:general', '5', '6'],
    ],
  );
});

test('an outbox payload is the http-response a parked poll receives: the event as {events:[event]}', async (t) => {
  const h = await startApp(t);
  const ada = await h.signIn('ada');
  await ada.agent.post('/api/rooms/lobby/messages').send({ text: 'first' }).expect(201);
  const posted = await ada.agent.post('/api/rooms/lobby/messages').send({ text: 'hello "world"' }).expect(201);
  const row = outbox(h).at(-1)!;
  const item = toPublishItem(row);
  assert.equal(item.channel, 'room:lobby');
  assert.equal(item.id, String(posted.body.event.id));
  assert.equal(item['prev-id'], '1');
  const format = item.formats['http-response'] as HttpResponseFormat;
  assert.deepEqual(format.headers, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' });
  assert.equal(format.code, 200);
  assert.deepEqual(JSON.parse(format.body!), { events: [posted.body.event] });
});

test('an event and its outbox row commit together: if the outbox insert fails, the event is rolled back', async (t) => {
  const h = await startApp(t);
  const ada = await h.signIn('ada');
  const eventsBefore = eventCount(h);
  // A real failure inside the transaction, injected in the database itself.
  h.chat.db.exec("CREATE TRIGGER outbox_fails BEFORE INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'outbox unavailable'); END");
  const res = await ada.agent.post('/api/rooms/lobby/messages').send({ text: 'lost?' }).expect(500);
  assert.deepEqual(res.body, { code: 'APP_ERR_INTERNAL', message: 'internal error' });
  assert.equal(eventCount(h), eventsBefore, 'the event must not exist without its outbox row');
  h.chat.db.exec('DROP TRIGGER outbox_fails');
  await ada.agent.post('/api/rooms/lobby/messages').send({ text: 'kept' }).expect(201);
  assert.equal(eventCount(h), eventsBefore + 1);
  assert.equal(outbox(h).length, eventsBefore + 1);
});
