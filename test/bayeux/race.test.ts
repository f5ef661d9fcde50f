/**
 * The Suspend & Push race for a Bayeux hold, forced deterministically: a
 * message is committed after the app decided to hold a `/meta/connect` but
 * before the proxy parked it. A gate between proxy and app holds the app's
 * hold instruction back until the message (and its hint item, carrying the
 * event id) was published; the proxy's prev-id check then re-asks, and the
 * connect is answered with the message instead of parking past it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createHoldProxy } from '../../proxy/proxy.js';
import { createChatServer } from '../../server/chat-server.js';
import { ChatClient } from '../helpers/chat-client.js';
import { startHoldGate } from '../helpers/hold-gate.js';
import { TEST_CONTROL_SECRET, TEST_SECRET } from '../helpers/stack.js';
import { connectReply, deliveredEvents, RawBayeux } from './bayeux-helpers.js';

test('a message committed while the proxy has not yet parked a held connect is delivered: the hint’s id makes the proxy re-ask', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'comet-bayeux-race-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const chat = createChatServer({ secret: TEST_SECRET, controlSecret: TEST_CONTROL_SECRET, port: 0, dbPath: join(dir, 'chat.db'), holdTimeoutS: 20 });
  const appPort = await chat.listen();
  t.after(() => chat.close());
  const gate = startHoldGate(appPort, '/cometd');
  const gatePort = await gate.listen();
  t.after(() => gate.close());
  const proxy = createHoldProxy({ secret: TEST_SECRET, controlSecret: TEST_CONTROL_SECRET, upstreamUrl: `http://127.0.0.1:${gatePort}`, clientPort: 0, controlPort: 0 });
  const { clientPort, controlPort } = await proxy.listen();
  t.after(() => proxy.close());
  chat.connectProxy(`http://127.0.0.1:${controlPort}`);
  const base = `http://127.0.0.1:${clientPort}`;

  const bob = new ChatClient(base);
  await bob.login('bob');
  await bob.call('POST', '/api/rooms', { name: 'general' });
  await bob.join('general');
  const ada = new RawBayeux(base);
  await ada.handshake('ada');
  assert.equal((await ada.subscribe('general')).successful, true);
  await ada.connect(); // the first connect is answered at once
  await chat.relay.waitIdle(5000); // the subscription's wake is published before the race starts

  const held = gate.armed();
  const pending = ada.connect();
  await held; // the app answered "hold" with the room's last id; the proxy has not seen it yet
  const before = gate.seen.length;
  const posted = await bob.post('general', 'slipped in');
  await chat.relay.waitIdle(5000); // room item + hint published while the connect is in flight
  gate.release();
  const answer = await pending;

  assert.deepEqual(deliveredEvents(answer.body).map((e) => e.id), [posted.id]);
  assert.equal(connectReply(answer.body).successful, true);
  assert.equal(gate.seen.length, before + 1, 'the proxy re-sent the connect to the app once');
  // The prev-id the stale hold named: the room's last event before the message (its only room), as Pushpin sends it.
  assert.match(String(gate.seen.at(-1)?.['grip-last']), new RegExp(`bayeux:room:general; last-id=${posted.id - 1}(,|$)`));
  const stats = proxy.stats();
  assert.equal(stats.reasks, 1);
  assert.equal(stats.parked, 0);
});
