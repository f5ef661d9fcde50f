/**
 * Two hosts' proxies with 2 workers each on one real Redis (test/helpers/worker-redis-hosts.ts): Redis restarting
 * without persistence mid-traffic. Each host's primary notices the new epoch and relays a resync to its workers,
 * which re-ask their parked requests: nothing is lost, and `/stats` counts the resync once per host.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { countingRun } from '../helpers/worker-redis-hosts.js';

describe('two hosts, each PROXY_WORKERS=2, on one Redis bus: Redis restarting', { timeout: 120_000 }, () => {
  test('Redis restarting (losing every key) mid-traffic loses no message on either host: each primary makes its workers re-ask, counted once per host', async (t) => {
    const hosts = await countingRun(t, async ({ redis }) => {
      await redis.restart();
    });
    for (const [h, host] of hosts.entries()) {
      const stats = (await host.stats()) as unknown as { busResyncs: number; workers: Array<{ busResyncs: number }> };
      assert.ok(stats.busResyncs >= 1, `host ${h} noticed the lost stream (busResyncs ${stats.busResyncs})`);
      assert.equal(stats.busResyncs, Math.max(...stats.workers.map((w) => w.busResyncs)), `host ${h}: the largest worker's count, not the sum`);
    }
  });
});
