/**
 * A slow Redis (docs/scaleout.md): two apps on one SQLite file and two
 * in-process hold proxies on this test's own redis-server; clients switch
 * proxy between polls. Redis is SIGSTOPped for a bounded ~1.5 s while messages
 * are posted (they are committed to SQLite; the relays' XADDs time out and are
 * retried), then SIGCONTed. Every client must still receive every committed
 * message of its rooms exactly once, in order, counted against the database,
 * and nothing may stay parked beyond the clients' current polls.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import type { ChatServer } from '../../server/chat-server.js';
import { ChatClient, waitFor } from '../helpers/chat-client.js';
import { backoff, committedEvents, controlClient, expectedAfter, faultDataDir } from '../helpers/fault-stack.js';
import { startBusApp, startRedis, startRedisProxy } from '../helpers/redis-server.js';
import { pollRotating, postSpread } from '../helpers/rotating-poller.js';

const ROOMS = ['red', 'blue'];
const CLIENTS = 6;

function post(posters: ChatClient[], count: number, phase: string): Promise<void> {
  return postSpread(posters, ROOMS, count, phase);
}

/** Posts before, during and after stopping Redis for `pauseMs`; every client must get every message once, in order. */
async function stallScenario(t: TestContext, pauseMs: number): Promise<void> {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  t.after(() => process.off('unhandledRejection', onUnhandled));

  const redis = await startRedis(t);
  const dbPath = join(faultDataDir(t), 'chat.db');
  const apps: ChatServer[] = [];
  const appUrls: string[] = [];
  for (let i = 0; i < 2; i++) {
    // relayPublishTimeoutMs shorter than the pause: XADDs time out while Redis is stopped.
    const { app, url } = await startBusApp(t, redis.url, dbPath, { relayIntervalMs: 200, relayPublishTimeoutMs: 500, relayLeaseMs: 3000 });
    appUrls.push(url);
    apps.push(app);
  }
  const bases: string[] = [];
  const controls: ReturnType<typeof controlClient>[] = [];
  for (let i = 0; i < 2; i++) {
    const { base, control } = await startRedisProxy(t, appUrls[i]!, redis.url);
    bases.push(base);
    controls.push(control);
  }
  // Belt and braces: the pause below resumes in a finally, and the helper's kill() resumes before SIGKILL.
  t.after(() => redis.resume());

  const clients: ChatClient[] = [];
  for (let i = 0; i < CLIENTS; i++) {
    const c = new ChatClient(bases[i % bases.length]!);
    await c.login(`user${i}`);
    clients.push(c);
  }
  for (const room of ROOMS) await clients[0]!.call('POST', '/api/rooms', { name: room });
  for (const c of clients) for (const room of ROOMS) await c.join(room);
  const posters = appUrls.map((url) => new ChatClient(url));
  for (const [i, p] of posters.entries()) {
    await p.login(`poster${i}`);
    for (const room of ROOMS) await p.join(room);
  }
  const start = new Map(ROOMS.map((r) => [r, committedEvents(dbPath).get(r)!.at(-1)!]));
  for (const c of clients) for (const room of ROOMS) c.cursors.set(room, start.get(room)!);

  const parkedTotal = async () => (await Promise.all(controls.map((c) => c.stats()))).reduce((n, s) => n + s.parked, 0);
  const stop = new AbortController();
  const loops = clients.map((c, i) => pollRotating(c, bases, i, stop.signal));
  try {
    await waitFor(async () => (await parkedTotal()) === CLIENTS, 'every client parked', 10_000);
    await post(posters, 20, 'before');

    const pausedAt = Date.now();
    redis.pause();
    let pausedPosts: number;
    try {
      await post(posters, 20, 'while Redis is stopped'); // 201 = committed to SQLite
      pausedPosts = Date.now() - pausedAt;
      const rest = pauseMs - pausedPosts;
      if (rest > 0) await backoff(rest); // the bounded fault duration, not a wait for an outcome
    } finally {
      redis.resume();
    }
    t.diagnostic(`Redis stopped for ${Date.now() - pausedAt} ms (posts during it took ${pausedPosts} ms)`);

    await post(posters, 20, 'after');

    await Promise.all(apps.map((a) => a.relay.waitIdle(10_000)));
    const committed = committedEvents(dbPath);
    const expected = new Map(ROOMS.map((r) => [r, expectedAfter(committed, r, start.get(r)!)]));
    assert.equal(
      ROOMS.reduce((n, r) => n + expected.get(r)!.length, 0),
      60,
      'all 60 posts are committed after the start cursors',
    );
    const complete = () => clients.every((c) => ROOMS.every((r) => c.received.filter((e) => e.room === r).length >= expected.get(r)!.length));
    await waitFor(complete, 'every client to receive every committed message', 15_000);
    for (const [i, c] of clients.entries()) {
      for (const r of ROOMS) {
        assert.deepEqual(c.received.filter((e) => e.room === r).map((e) => e.id), expected.get(r), `client ${i} in ${r}`);
      }
    }
    // Nothing left parked beyond the clients' current polls (each client has at most one request out).
    await waitFor(async () => (await parkedTotal()) === CLIENTS, 'every client parked again, and nothing else', 10_000);
    const stats = await Promise.all(controls.map((c) => c.stats()));
    assert.ok(stats.every((s) => s.reasking === 0), 'no re-ask left in flight');
    t.diagnostic(`client resync answers: ${clients.reduce((n, c) => n + c.resyncs, 0)}; busResyncs ${stats.map((s) => s.busResyncs).join('/')}`);
    t.diagnostic(`relay failures ${apps.map((a) => a.relay.stats.failures).join('/')}; poll network errors ${loops.reduce((n, l) => n + l.networkErrors, 0)}`);
    t.diagnostic(`proxies: ${stats.map((s) => `${s.holds} holds/${s.deliveries} deliveries/${s.reasks} reasks/${s.timeouts} timeouts`).join(', ')}`);
    assert.deepEqual(unhandled, [], 'no unhandled rejection');
  } finally {
    stop.abort();
    await Promise.allSettled(loops.map((l) => l.done));
  }
  for (const l of loops) await l.done; // surfaces an unexpected answer
}

test('a slow Redis delays but loses nothing: clients switching proxy get every committed message once, in order', { timeout: 30_000 }, (t) =>
  stallScenario(t, 1500),
);

// Longer than the bus reader's read timeout (1 s block + 2 s), so its blocked read may time out and reconnect.
test('a Redis stalled for 4.5 s, past the bus reader\'s read timeout, loses nothing either', { timeout: 40_000 }, (t) =>
  stallScenario(t, 4500),
);
