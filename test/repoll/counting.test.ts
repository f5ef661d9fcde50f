/**
 * Batches keep order under concurrent publishes: clients that pause between
 * polls come back behind by several messages in two rooms and are answered by
 * the proxy from its buffer, several events per answer. Every client must
 * still receive exactly its rooms' committed sequence: no gap, no duplicate,
 * in order, counted against the database.
 */
import { setMaxListeners } from 'node:events';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { prng } from '../../bench/lib/prng.js';
import { ChatClient, waitFor } from '../helpers/chat-client.js';
import { committedEvents, expectedAfter } from '../helpers/fault-stack.js';
import { startStack } from '../helpers/stack.js';

const CLIENTS = 12;
const ROOMS = ['red', 'blue'];
const MESSAGES = 400;
const POSTERS = 6;

test('clients answered from the buffer in batches get every message of their rooms once, in order', async (t) => {
  const seed = Number(process.env.COUNTING_SEED ?? Date.now() % 100000);
  const random = prng(seed);
  t.diagnostic(`seed ${seed}`);
  const stack = await startStack(t);
  let appPolls = 0;
  stack.chat.server.on('request', (req) => {
    if (req.url?.startsWith('/api/poll')) appPolls++;
  });
  const clients: ChatClient[] = [];
  for (let i = 0; i < CLIENTS; i++) {
    const c = new ChatClient(stack.base);
    await c.login(`user${i}`);
    clients.push(c);
  }
  for (const room of ROOMS) await clients[0]!.call('POST', '/api/rooms', { name: room });
  for (const c of clients) for (const room of ROOMS) await c.join(room);
  const start = new Map(ROOMS.map((r) => [r, committedEvents(stack.dbPath).get(r)!.at(-1)!]));
  for (const c of clients) for (const room of ROOMS) c.cursors.set(room, start.get(room)!);

  let largestBatch = 0;
  const stop = new AbortController();
  // Every client's poll in flight listens on this one signal at once: more than the default 10 is expected here.
  setMaxListeners(0, stop.signal);
  const loops = clients.map(async (c, i) => {
    for (let n = 0; n < MESSAGES * 4 && !stop.signal.aborted; n++) {
      try {
        const r = await c.poll(stop.signal);
        if (r.status !== 200) throw new Error(`poll answered ${r.status}: ${JSON.stringify(r.body)}`);
        largestBatch = Math.max(largestBatch, r.body.events?.length ?? 0);
      } catch (err) {
        if (stop.signal.aborted) return;
        throw err;
      }
      // Half the clients dawdle between polls, so messages pile up in the buffer for them.
      if (i % 2 === 0) await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 40)));
    }
  });

  let next = 0;
  const posters = Array.from({ length: POSTERS }, async (_, p) => {
    const poster = clients[p]!;
    while (next < MESSAGES) {
      const k = next++;
      await poster.post(ROOMS[k % ROOMS.length]!, `message ${k}`);
    }
  });
  await Promise.all(posters);
  const committed = committedEvents(stack.dbPath);
  const expected = new Map(ROOMS.map((r) => [r, expectedAfter(committed, r, start.get(r)!)]));
  const complete = () => clients.every((c) => ROOMS.every((r) => c.received.filter((e) => e.room === r).length >= expected.get(r)!.length));
  try {
    await waitFor(complete, "every client to receive its rooms' messages", 60_000);
  } finally {
    stop.abort();
    await Promise.allSettled(loops);
  }
  for (const [i, c] of clients.entries()) {
    for (const room of ROOMS) {
      const got = c.received.filter((e) => e.room === room).map((e) => e.id);
      assert.deepEqual(got, expected.get(room), `client ${i}, room ${room}: exactly the committed sequence`);
    }
  }
  const stats = await stack.stats();
  t.diagnostic(`app polls ${appPolls}; proxy: ${stats.repollParks} parked, ${stats.repollAnswers} answered from the buffer, ${stats.repollToApp} to the app; largest batch ${largestBatch}`);
  assert.ok(stats.repollAnswers > 0, 'some re-polls were answered from the buffer');
  assert.ok(largestBatch > 1, 'some answers carried several events');
});
