/**
 * The "nothing lost" proof across protocols: a browser-protocol client and a
 * CometD client post N messages each into one room at the same time, and
 * every receiver (two CometD clients, one with the ack extension, and two
 * browser-protocol clients) gets exactly the room's committed sequence: each
 * message once, in commit order.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ChatClient, waitFor, type ChatEvent } from '../helpers/chat-client.js';
import { startStack } from '../helpers/stack.js';
import { CometClient, waitConnected } from './bayeux-helpers.js';

const N = 40;
const ROOM = 'count';

function messageIds(events: readonly ChatEvent[]): number[] {
  return events.filter((e) => e.room === ROOM && e.type === 'message').map((e) => e.id);
}

/** Polls until `done()` or the deadline; every poll is bounded by the hold timeout. */
async function pollUntil(client: ChatClient, done: () => boolean, deadline: number): Promise<void> {
  while (!done() && Date.now() < deadline) {
    const r = await client.poll();
    if (r.status !== 200) throw new Error(`poll answered ${r.status}: ${JSON.stringify(r.body)}`);
  }
}

test('N messages each way between CometD and browser-protocol clients arrive exactly once and in order everywhere', async (t) => {
  const stack = await startStack(t, { app: { holdTimeoutS: 5 } });
  const bob = new ChatClient(stack.base);
  const carol = new ChatClient(stack.base);
  await bob.login('bob');
  await carol.login('carol');
  await bob.call('POST', '/api/rooms', { name: ROOM });
  await bob.join(ROOM);

  const ada = new CometClient(stack.base, { nick: 'ada' });
  const dan = new CometClient(stack.base, { nick: 'dan', ack: true });
  for (const c of [ada, dan]) {
    t.after(() => c.cometd.disconnect());
    assert.equal((await c.handshake()).successful, true);
    assert.equal((await c.subscribe(ROOM)).successful, true);
    await waitConnected(c);
  }
  // Carol joins last: her cursor and everyone's subscription start after every join.
  await carol.join(ROOM);
  await bob.join(ROOM); // already a member: no event, fresh cursor

  const deadline = Date.now() + 60_000;
  let expected: number[] | null = null;
  const hasAll = (ids: number[]) => expected !== null && ids.length >= expected.length;
  const receivers = [
    pollUntil(bob, () => hasAll(messageIds(bob.received)), deadline),
    pollUntil(carol, () => hasAll(messageIds(carol.received)), deadline),
  ];

  const fromBrowser = (async () => {
    for (let i = 0; i < N; i++) await bob.post(ROOM, `browser ${i}`);
  })();
  const fromCometd = (async () => {
    for (let i = 0; i < N; i++) {
      const reply = await ada.publish(ROOM, `cometd ${i}`);
      assert.equal(reply.successful, true, JSON.stringify(reply));
    }
  })();
  await Promise.all([fromBrowser, fromCometd]);

  // The committed sequence, from the room's history.
  const history = await bob.call('GET', `/api/rooms/${ROOM}/messages?limit=200`);
  assert.equal(history.status, 200);
  expected = messageIds(history.body.events as ChatEvent[]);
  assert.equal(expected.length, 2 * N);

  await waitFor(() => hasAll(messageIds(ada.received)) && hasAll(messageIds(dan.received)), 'both CometD clients to have every message', 30_000);
  await Promise.all(receivers);
  for (const [name, events] of [['ada', ada.received], ['dan (ack)', dan.received], ['bob', bob.received], ['carol', carol.received]] as const) {
    assert.deepEqual(messageIds(events), expected, `${name} got every message exactly once, in commit order`);
  }
  // Texts too: each side's messages reached the other protocol.
  assert.deepEqual(
    dan.texts(ROOM).filter((x) => x.startsWith('browser')),
    Array.from({ length: N }, (_, i) => `browser ${i}`),
  );
  assert.deepEqual(
    carol.received.filter((e) => e.type === 'message' && e.text!.startsWith('cometd')).map((e) => e.text),
    Array.from({ length: N }, (_, i) => `cometd ${i}`),
  );
});
