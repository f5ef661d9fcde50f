/**
 * Fault: the app restarts in the middle of traffic. Clients keep long-polling
 * through the proxy and posting; the app is closed and a new one started on
 * the same port and SQLite file; rows the old app committed but never
 * published are published by the new app's outbox relay. Every client must
 * receive every committed message exactly once, in order: the counting check
 * of test/integration/counting.test.ts, at a smaller scale, against the
 * database as the truth (a post retried after a lost answer may commit twice,
 * and then both copies must arrive).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ChatClient, waitFor } from '../helpers/chat-client.js';
import {
  committedEvents,
  expectedAfter,
  outboxRows,
  pollUntilStopped,
  postWithRetry,
  startRestartableStack,
  type PollLoopReport,
} from '../helpers/fault-stack.js';

const CLIENTS = 8;
const ROOMS = ['red', 'blue'];
const POSTERS = 4;

test('an app restarted on the same port and database mid-traffic loses no message and shows none twice', async (t) => {
  // Holds of 1 s, so some polls time out and re-poll while the app is down.
  const stack = await startRestartableStack(t, { app: { holdTimeoutS: 1 } });
  const clients = Array.from({ length: CLIENTS }, () => new ChatClient(stack.base));
  for (const [i, c] of clients.entries()) await c.login(`user${i}`);
  for (const room of ROOMS) await clients[0]!.call('POST', '/api/rooms', { name: room });
  for (const c of clients) for (const room of ROOMS) await c.join(room);
  // Everyone starts at the rooms' current end: what follows is exactly what they must receive.
  const start = committedEvents(stack.dbPath);
  const startCursor = new Map(ROOMS.map((r) => [r, start.get(r)!.at(-1)!]));
  for (const c of clients) for (const room of ROOMS) c.cursors.set(room, startCursor.get(room)!);

  const stop = new AbortController();
  const loops = clients.map((c) => pollUntilStopped(c, stop.signal));
  let reports: PollLoopReport[] = [];
  try {
    const deadline = Date.now() + 30_000;
    let n = 0;
    const postSome = (count: number, phase: string) =>
      Promise.all(
        Array.from({ length: POSTERS }, async (_, p) => {
          for (let k = p; k < count; k += POSTERS) {
            const who = clients[(n++ * 7) % CLIENTS]!;
            await postWithRetry(who, ROOMS[k % ROOMS.length]!, `${phase} ${k}`, deadline);
          }
        }),
      );

    await waitFor(() => stack.proxy.stats().parked === CLIENTS, 'every client to be parked', 15_000);
    await postSome(20, 'before');

    // Committed but not published: the old relay is stopped before these posts.
    await stack.chat.relay.stop();
    for (let k = 0; k < 3; k++) await postWithRetry(clients[k]!, ROOMS[k % 2]!, `unpublished ${k}`, deadline);
    const during = postSome(20, 'during'); // runs across the restart, retrying while the app is down
    await stack.stopApp();
    assert.ok(outboxRows(stack.dbPath) >= 3, 'the old app left committed rows unpublished');
    const down = await clients[0]!.call('GET', '/api/rooms');
    assert.equal(down.status, 502, 'the app is down');
    assert.equal(down.body.code, 'PROXY_ERR_UPSTREAM_UNAVAILABLE');

    const fresh = await stack.startApp();
    await during;
    await postSome(20, 'after');
    await fresh.relay.waitIdle(10_000);
    assert.ok(fresh.relay.stats.published >= 3, 'the new app published what the old one left in the outbox');

    const committed = committedEvents(stack.dbPath);
    const expected = new Map(ROOMS.map((r) => [r, expectedAfter(committed, r, startCursor.get(r)!)]));
    const total = ROOMS.reduce((sum, r) => sum + expected.get(r)!.length, 0);
    assert.ok(total >= 63, `every post committed (${total})`);
    const complete = () =>
      clients.every((c) => ROOMS.every((r) => c.received.filter((e) => e.room === r).length >= expected.get(r)!.length));
    await waitFor(complete, 'every client to receive every committed message', 20_000);
    stop.abort();
    reports = await Promise.all(loops);

    for (const [i, c] of clients.entries()) {
      for (const r of ROOMS) {
        assert.deepEqual(c.received.filter((e) => e.room === r).map((e) => e.id), expected.get(r), `client ${i} in ${r}`);
      }
      assert.equal(c.resyncs, 0, `client ${i} needed no resync`);
    }
  } finally {
    stop.abort();
    await Promise.allSettled(loops);
  }
  const refused = reports.reduce((sum, r) => sum + (r.statuses[502] ?? 0) + r.networkErrors, 0);
  t.diagnostic(`polls refused while the app was down: ${refused}; proxy: ${JSON.stringify(stack.proxy.stats())}`);
  await waitFor(() => stack.proxy.stats().parked === 0, 'the aborted polls to be released', 15_000);
});
