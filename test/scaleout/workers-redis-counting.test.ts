/**
 * Two hosts' proxies with 2 workers each on one real Redis (test/helpers/worker-redis-hosts.ts): every message
 * published through either host reaches every client, spread over every worker of both hosts, once and in order;
 * also while a worker of one host is SIGKILLed.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { countingRun } from '../helpers/worker-redis-hosts.js';
import { until } from '../helpers/worker-cluster.js';

describe('two hosts, each PROXY_WORKERS=2, on one Redis bus: counting', { timeout: 120_000 }, () => {
  test('publishes through either host reach every client on every worker of both hosts once and in order', async (t) => {
    const hosts = await countingRun(t);
    // Every worker of both hosts answered polls: the stream reached all four, not one per host.
    for (const [h, host] of hosts.entries()) {
      const stats = await host.stats();
      assert.equal(stats.workers.length, 2, `host ${h} has 2 workers`);
      for (const w of stats.workers) assert.ok(w.deliveries > 0, `host ${h} worker ${w.pid} delivered (${JSON.stringify(stats.workers)})`);
      assert.equal(stats.deliveries, stats.workers.reduce((n, w) => n + w.deliveries, 0), `host ${h} sums its workers`);
    }
  });

  test('a worker SIGKILLed mid-traffic on one host is replaced and every client on both hosts still gets every message once, in order', async (t) => {
    let victim = 0;
    const hosts = await countingRun(t, async ({ hosts: [a] }) => {
      victim = (await a.stats()).workers[0]!.pid;
      process.kill(victim, 'SIGKILL');
    });
    await until(async () => {
      const stats = await hosts[0].stats();
      return stats.workers.length === 2 && !stats.workers.some((w) => w.pid === victim);
    }, 'a replacement worker on the host that lost one');
  });


});
