/**
 * Nothing lost, nothing twice: 50 clients in 5 rooms long-poll through the real
 * proxy while 2,000 messages are posted concurrently at random moments. Every
 * client must receive exactly its rooms' committed sequence, in order.
 */
import { setMaxListeners } from 'node:events';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startStack } from '../helpers/stack.js';
import { ChatClient, waitFor } from '../helpers/chat-client.js';
import { prng } from '../../bench/lib/prng.js';

const CLIENTS = 50;
const ROOMS = 5;
const MESSAGES = 2000;
const POSTERS = 16;

test('50 clients in 5 rooms receive exactly their rooms\' committed messages: no gap, no duplicate, in order', async (t) => {
  const seed = Number(process.env.COUNTING_SEED ?? Date.now() % 100000);
  const random = prng(seed);
  t.diagnostic(`seed ${seed}`);
  const stack = await startStack(t);
  const rooms = Array.from({ length: ROOMS }, (_, i) => `room-${i}`);

  const clients: ChatClient[] = [];
  const membership: string[][] = [];
  for (let i = 0; i < CLIENTS; i++) {
    const c = new ChatClient(stack.base);
    await c.login(`user${i}`);
    clients.push(c);
  }
  for (const name of rooms) await clients[0]!.call('POST', '/api/rooms', { name });
  for (let i = 0; i < CLIENTS; i++) {
    const a = i % ROOMS;
    const b = (a + 1 + (Math.floor(i / ROOMS) % (ROOMS - 1))) % ROOMS;
    membership.push([rooms[a]!, rooms[b]!]);
    for (const r of membership[i]!) await clients[i]!.join(r);
  }
  // Start every client at its rooms' current end (read by a member), so the expected sequence is exactly the
  // messages posted below.
  const start = new Map<string, number>();
  for (const r of rooms) {
    const member = clients[membership.findIndex((m) => m.includes(r))]!;
    start.set(r, (await member.call('GET', `/api/rooms/${r}/messages?limit=1`)).body.cursor);
  }
  clients.forEach((c, i) => membership[i]!.forEach((r) => c.cursors.set(r, start.get(r)!)));

  const stop = new AbortController();
  // Every client's poll in flight listens on this one signal at once: more than the default 10 is expected here.
  setMaxListeners(0, stop.signal);
  const loops = clients.map(async (c) => {
    // Bounded: each iteration receives at least one answer; the deadline below aborts it otherwise.
    for (let n = 0; n < MESSAGES * 4 && !stop.signal.aborted; n++) {
      try {
        const r = await c.poll(stop.signal);
        if (r.status !== 200) throw new Error(`poll answered ${r.status}: ${JSON.stringify(r.body)}`);
      } catch (err) {
        if (stop.signal.aborted) return;
        throw err;
      }
    }
  });

  const committed = new Map<string, number[]>(rooms.map((r) => [r, []]));
  let next = 0;
  const posters = Array.from({ length: POSTERS }, async () => {
    while (next < MESSAGES) {
      const k = next++;
      const who = Math.floor(random() * CLIENTS);
      const room = membership[who]![Math.floor(random() * 2)]!;
      await new Promise((r) => setTimeout(r, Math.floor(random() * 16)));
      const ev = await clients[who]!.post(room, `message ${k}`);
      committed.get(room)!.push(ev.id);
    }
  });
  await Promise.all(posters);
  for (const ids of committed.values()) ids.sort((x, y) => x - y);

  const complete = () =>
    clients.every((c, i) => membership[i]!.every((r) => c.received.filter((e) => e.room === r).length >= committed.get(r)!.length));
  try {
    await waitFor(complete, 'every client to receive its rooms\' messages', 60_000);
  } finally {
    stop.abort();
    await Promise.allSettled(loops);
  }
  await Promise.all(loops); // surfaces any non-200 poll answer

  for (let i = 0; i < CLIENTS; i++) {
    for (const r of membership[i]!) {
      const got = clients[i]!.received.filter((e) => e.room === r).map((e) => e.id);
      assert.deepEqual(got, committed.get(r), `client ${i} in ${r}`);
    }
    assert.equal(clients[i]!.resyncs, 0);
  }
  const total = [...committed.values()].reduce((n, ids) => n + ids.length, 0);
  assert.equal(total, MESSAGES);
  await waitFor(async () => (await stack.stats()).parked === 0, 'parked count to return to 0');
  const stats = await stack.stats();
  t.diagnostic(`proxy: ${stats.holds} holds, ${stats.deliveries} deliveries by publish, ${stats.reasks} re-asks`);
  assert.ok(stats.deliveries > 0, 'some messages reached parked clients through the proxy, not only from history');
  assert.equal(stats.resyncs, 0);
});
