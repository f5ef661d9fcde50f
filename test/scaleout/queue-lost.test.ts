/**
 * Redis restarting loses the pushes queued in it (docs/scaleout.md): for the queue TTL after the proxies
 * see the new epoch, a connection ID with no state in Redis gets the `queue-lost` resync answer once,
 * on whichever proxy it polls, and then parks normally.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { ChatClient, waitFor } from '../helpers/chat-client.js';
import { controlClient, faultDataDir, within } from '../helpers/fault-stack.js';
import { startBusApp, startRedis, startRedisProxy } from '../helpers/redis-server.js';

test('a push queued in Redis when it restarts is not lost silently: the next poll, on any proxy, gets queue-lost once', async (t) => {
  const redis = await startRedis(t);
  const { app, url: appUrl } = await startBusApp(t, redis.url, join(faultDataDir(t), 'chat.db'));
  const bases: string[] = [];
  const controls: ReturnType<typeof controlClient>[] = [];
  for (let i = 0; i < 2; i++) {
    const { base, control } = await startRedisProxy(t, appUrl, redis.url);
    bases.push(base);
    controls.push(control);
  }
  const at = (c: ChatClient, i: number) => ((c as { base: string }).base = bases[i]!);

  const c = new ChatClient(bases[0]!);
  await c.login('alice');
  await c.join('lobby');
  // Learn the connection ID: park, then post, so the poll answers at once.
  const first = c.poll();
  await waitFor(async () => (await controls[0]!.stats()).parked === 1, 'the first poll to park');
  await c.post('lobby', 'hello');
  assert.equal((await within(first, 10_000, 'the first poll')).status, 200);
  assert.ok(c.connectionId, 'the poll named the connection ID');
  assert.equal(c.received.length, 1);

  // Not parked: the push is queued in Redis only.
  const queued = await controls[1]!.call('/push/', {
    items: [{ 'connection-id': c.connectionId, formats: { 'http-response': { body: 'queued before the restart' } } }],
  });
  assert.equal(queued.body.queued, 1);

  await redis.restart();
  await waitFor(async () => (await Promise.all(controls.map((k) => k.stats()))).every((s) => s.busResyncs >= 1), 'both proxies to see the new epoch', 10_000);

  // The next poll, on the other proxy: the queue-lost resync answer.
  at(c, 1);
  const lost = await within(c.poll(), 10_000, 'the poll after the restart');
  assert.equal(lost.status, 200);
  assert.equal(lost.headers.get('comet-resync'), 'queue-lost');
  assert.deepEqual(lost.body, { resync: { reason: 'queue-lost', channels: ['room:lobby'] } });
  assert.equal(c.resyncs, 1);

  // Told once: the following poll (on the first proxy) parks and gets the next message normally.
  at(c, 0);
  const next = c.poll();
  await waitFor(async () => (await controls[0]!.stats()).parked === 1, 'the following poll to park');
  await c.post('lobby', 'after the restart');
  const r = await within(next, 10_000, 'the following poll');
  assert.equal(r.status, 200);
  assert.equal(c.resyncs, 1, 'the queue-lost resync came exactly once');
  assert.deepEqual(c.received.map((e) => e.text), ['hello', 'after the restart']);
  const stats = await Promise.all(controls.map((k) => k.stats()));
  assert.equal(stats.reduce((n, s) => n + s.resyncs, 0), 1, 'counted as one resync answer');
});
