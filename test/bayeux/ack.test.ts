/**
 * The ack extension (CometD's AckExtension): with ack negotiated, a client's
 * cursors advance only when it acknowledges a batch, so a connect response
 * that never reached it is sent again. Raw HTTP plays the client that loses
 * responses; the real CometD client with AckExtension shows the negotiation.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ChatClient, waitFor } from '../helpers/chat-client.js';
import { startStack } from '../helpers/stack.js';
import { CometClient, connectReply, deliveredEvents, RawBayeux, waitConnected } from './bayeux-helpers.js';

async function roomWithBob(base: string, room: string): Promise<ChatClient> {
  const bob = new ChatClient(base);
  await bob.login('bob');
  await bob.call('POST', '/api/rooms', { name: room });
  await bob.join(room);
  return bob;
}

test('with ack, a batch whose response was lost is sent again, and an acked batch never is', async (t) => {
  const stack = await startStack(t, { app: { holdTimeoutS: 20 } });
  const bob = await roomWithBob(stack.base, 'general');
  const ada = new RawBayeux(stack.base);
  const hs = await ada.handshake('ada', { ack: true });
  assert.equal(hs.ext.ack, true, 'the server announces ack support');
  assert.equal((await ada.subscribe('general')).successful, true);

  const first = await ada.connect({ ack: 0 });
  assert.equal(connectReply(first.body).ext.ack, 0, 'no batch yet');
  assert.deepEqual(deliveredEvents(first.body), []);

  const m1 = await bob.post('general', 'one');
  const lost = await ada.connect({ ack: 0 });
  assert.deepEqual(deliveredEvents(lost.body).map((e) => e.id), [m1.id]);
  assert.equal(connectReply(lost.body).ext.ack, 1);
  // The client never saw batch 1 (the response was lost): it still acks 0.
  const m2 = await bob.post('general', 'two');
  const again = await ada.connect({ ack: 0 });
  assert.deepEqual(deliveredEvents(again.body).map((e) => e.id), [m1.id, m2.id], 'batch 1 is sent again, with what came after');
  assert.equal(connectReply(again.body).ext.ack, 2);

  // A lost response of a *held* connect: parked, answered by a re-ask, and lost on the way.
  const acked = ada.connect({ ack: 2 });
  await waitFor(async () => (await stack.stats()).parked === 1, 'the connect acking batch 2 to be parked');
  const m3 = await bob.post('general', 'three');
  const heldAnswer = await acked;
  assert.deepEqual(deliveredEvents(heldAnswer.body).map((e) => e.id), [m3.id], 'acked events are never sent again');
  assert.equal(connectReply(heldAnswer.body).ext.ack, 3);
  // Pretend batch 3 was lost: ack 2 again. Re-asks and retries are idempotent on ack 2.
  const resent = await ada.connect({ ack: 2 });
  assert.deepEqual(deliveredEvents(resent.body).map((e) => e.id), [m3.id]);
  assert.equal(connectReply(resent.body).ext.ack, 4);

  // Acking batch 4 commits it: the next connect holds, with nothing to re-send.
  const done = ada.connect({ ack: 4 });
  await waitFor(async () => (await stack.stats()).parked === 1, 'the connect acking batch 4 to be parked');
  const m4 = await bob.post('general', 'four');
  assert.deepEqual(deliveredEvents((await done).body).map((e) => e.id), [m4.id]);
});

test('without ack, cursors advance when a batch is sent: a lost response is not sent again', async (t) => {
  const stack = await startStack(t, { app: { holdTimeoutS: 20 } });
  const bob = await roomWithBob(stack.base, 'general');
  const ada = new RawBayeux(stack.base);
  const hs = await ada.handshake('ada');
  assert.equal(hs.ext.ack, undefined, 'no ack unless the client asks');
  await ada.subscribe('general');
  await ada.connect();

  const m1 = await bob.post('general', 'one');
  const lost = await ada.connect();
  assert.deepEqual(deliveredEvents(lost.body).map((e) => e.id), [m1.id]);
  assert.equal(connectReply(lost.body).ext, undefined);
  const m2 = await bob.post('general', 'two');
  const next = await ada.connect();
  assert.deepEqual(deliveredEvents(next.body).map((e) => e.id), [m2.id]);
});

test('the real CometD client with AckExtension negotiates ack and acknowledges every batch it gets', async (t) => {
  const stack = await startStack(t, { app: { holdTimeoutS: 20 } });
  const bob = await roomWithBob(stack.base, 'general');
  const ada = new CometClient(stack.base, { nick: 'ada', ack: true });
  t.after(() => ada.cometd.disconnect());
  const batches: number[] = [];
  ada.cometd.addListener('/meta/connect', (m) => {
    const ack = (m.ext as { ack?: unknown } | undefined)?.ack;
    if (m.successful && typeof ack === 'number') batches.push(ack);
  });
  const hs = await ada.handshake();
  assert.equal((hs.ext as { ack?: unknown }).ack, true);
  await ada.subscribe('general');
  await waitConnected(ada);

  for (const text of ['a', 'b', 'c']) {
    await bob.post('general', text);
    await waitFor(() => ada.texts('general').includes(text), `ada to receive ${text}`);
  }
  assert.deepEqual(ada.texts('general'), ['a', 'b', 'c'], 'each once, in order');
  // Batches only grow: every batch was acked by the next connect, none was re-sent.
  assert.ok(batches.length >= 3);
  for (let i = 1; i < batches.length; i++) assert.ok(batches[i]! >= batches[i - 1]!, `batches ${batches.join(',')}`);
  assert.ok(batches[batches.length - 1]! >= 3);
});
