/**
 * The two races of Suspend & Push, forced deterministically:
 * 1. a message is committed after the app decided to hold a poll but before the
 *    proxy parked it (a gate between proxy and app holds the app's answer back
 *    until the message was published);
 * 2. a push or a message arrives while the client is between two polls.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createChatServer } from '../../server/chat-server.js';
import { createHoldProxy } from '../../proxy/proxy.js';
import { startHoldGate } from '../helpers/hold-gate.js';
import { startStack, TEST_CONTROL_SECRET, TEST_SECRET } from '../helpers/stack.js';
import { adaAndBob, ChatClient, waitFor } from '../helpers/chat-client.js';

test('a message committed after the app decided to hold, before the proxy parked, is not lost: the proxy re-asks', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'comet-race-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const chat = createChatServer({ secret: TEST_SECRET, controlSecret: TEST_CONTROL_SECRET, port: 0, dbPath: join(dir, 'chat.db') });
  const appPort = await chat.listen();
  t.after(() => chat.close());
  const gate = startHoldGate(appPort, '/api/poll');
  const held = gate.armed();
  const gatePort = await gate.listen();
  t.after(() => gate.close());
  const proxy = createHoldProxy({
    secret: TEST_SECRET,
    controlSecret: TEST_CONTROL_SECRET,
    upstreamUrl: `http://127.0.0.1:${gatePort}`,
    clientPort: 0,
    controlPort: 0,
  });
  const { clientPort, controlPort } = await proxy.listen();
  t.after(() => proxy.close());
  chat.connectProxy(`http://127.0.0.1:${controlPort}`);
  const base = `http://127.0.0.1:${clientPort}`;

  const { ada, bob } = await adaAndBob(base);

  const heldAt = ada.cursors.get('general'); // she joined last: the room's last event, the hold's prev-id
  const pending = ada.poll();
  await held; // the app has answered "hold" with ada's cursor; the proxy has not seen it yet
  const posted = await bob.post('general', 'slipped in');
  await chat.relay.waitIdle(); // published to the proxy while ada's request is still in flight
  gate.release();
  const answer = await pending;

  assert.deepEqual(answer.body.events.map((e: { id: number }) => e.id), [posted.id]);
  const pollsSeenByApp = gate.seen.length;
  assert.equal(pollsSeenByApp, 2, 'the proxy re-sent the poll to the app once');
  // The prev-id the stale hold named (Pushpin's re-ask of a hold behind its channel sends the same), not posted.id.
  assert.equal(gate.seen[1]?.['grip-last'], `room:general; last-id=${heldAt}`);
  const stats = proxy.stats();
  assert.equal(stats.reasks, 1);
  assert.equal(stats.parked, 0);
});

test('a push while the client is between polls is queued and answers its next poll at once', async (t) => {
  const stack = await startStack(t);
  const ada = new ChatClient(stack.base);
  await ada.login('ada');
  await ada.call('POST', '/api/rooms', { name: 'general' });
  await ada.join('general');

  const item = (body: string) => ({
    'connection-id': ada.connectionId,
    formats: { 'http-response': { code: 200, headers: { 'Content-Type': 'application/json' }, body } },
  });

  // A first poll with news is answered at once and gives ada her connection ID.
  const bob = new ChatClient(stack.base);
  await bob.login('bob');
  await bob.join('general');
  await bob.post('general', 'so that ada has news');
  await ada.poll();
  assert.ok(ada.connectionId, 'connection ID issued with the first answer');

  const queued = await stack.control('/push/', { items: [item(JSON.stringify({ events: [], note: 'between polls' }))] });
  assert.equal(queued.status, 200);
  assert.deepEqual(
    { delivered: queued.body.delivered, queued: queued.body.queued, dropped: queued.body.dropped },
    { delivered: 0, queued: 1, dropped: 0 },
  );

  const second = await ada.poll();
  assert.equal(second.body.note, 'between polls');
  const stats = await stack.stats();
  assert.equal(stats.parked, 0);
  assert.equal(stats.queuedItems, 0);

  const third = ada.poll();
  await waitFor(async () => (await stack.stats()).parked === 1, 'the third poll to be parked');
  const direct = await stack.control('/push/', { items: [item(JSON.stringify({ events: [], note: 'while parked' }))] });
  assert.equal(direct.body.delivered, 1);
  assert.equal((await third).body.note, 'while parked');
});

test('a message posted while the client is between polls reaches it on its next poll, once', async (t) => {
  const stack = await startStack(t);
  const { ada, bob } = await adaAndBob(stack.base);

  const pending = ada.poll();
  await waitFor(async () => (await stack.stats()).parked === 1, 'the poll to be parked');
  const m1 = await bob.post('general', 'first');
  await pending;
  const m2 = await bob.post('general', 'second'); // ada is between polls now
  await stack.chat.relay.waitIdle();

  await ada.poll();
  assert.deepEqual(ada.received.map((e) => e.id), [m1.id, m2.id]);
});
