/**
 * The Redis bus reader applying the stream to a BusTarget other than a registry (bus/bus-target.ts), as a cluster
 * primary does to relay it to its workers; real redis-server started by the test.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RedisBus } from '../../proxy/bus/redis-bus.js';
import { memoryLogger } from '../hardening/raw-http.js';
import { startRedis } from '../helpers/redis-server.js';
import { until } from '../helpers/worker-cluster.js';

const LIMITS = { queueMaxItems: 100, queueMaxBytes: 1 << 20, queueTtlMs: 60_000, resyncTtlMs: 60_000, closedTtlMs: 60_000 };

function publishBody(n: number) {
  return { items: [{ channel: 'feed', id: String(n), 'prev-id': String(n - 1), formats: { 'http-response': { body: String(n) } } }] };
}

test('a bus started on a target gets every entry once, unparsed and in stream order, and a starting bus logs no failed read', async (t) => {
  const redis = await startRedis(t);
  const log = memoryLogger('info');
  const bus = new RedisBus({ ...LIMITS, redisUrl: redis.url, logger: log.logger, now: Date.now });
  t.after(() => bus.stop());
  const got: Array<[string, string]> = [];
  const pushes: Array<[number, number]> = [];
  // Started at once, as a primary does: before the command connection is up.
  await bus.startWith({
    apply: (type, data) => void got.push([type, data]),
    resyncAllParked: () => assert.fail('no gap here'),
    countPushes: (items, dropped) => void pushes.push([items, dropped]),
  });
  for (let n = 1; n <= 20; n++) await bus.publish(publishBody(n));
  const pushed = await bus.push({ items: [{ 'connection-id': 'c'.padEnd(21, '_'), formats: { 'http-response': { body: 'p' } } }] });
  assert.deepEqual(pushed, { delivered: 0, queued: 1, dropped: 0, reasked: 0 });
  await until(() => got.length === 21, '20 publishes and 1 push entry read back');
  assert.deepEqual(
    got.slice(0, 20).map(([type, data]) => [type, JSON.parse(data)]),
    Array.from({ length: 20 }, (_, i) => ['publish', publishBody(i + 1)]),
  );
  assert.deepEqual(got[20], ['push', JSON.stringify(['c'.padEnd(21, '_')])]);
  assert.deepEqual(pushes, [[1, 0]]);
  const failedReads = log.lines.filter((l) => (l as { msg?: string }).msg === 'bus read failed; will resume from the last applied entry');
  assert.equal(failedReads.length, 0, JSON.stringify(failedReads));
});
