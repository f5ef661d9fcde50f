import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { forceGc, GC_NODE_ARGS } from '../../../bench/lab/force-gc.js';
import { linearFit, memorySlopes } from '../../../bench/lab/memory-slope.js';
import type { LoadPointResult } from '../../../bench/lab/results.js';

/** A measured point whose parked memory is `fixed + perConnection × clients` above idle (proxy 3/4 of it, app 1/4). */
function point(target: string, clients: number, perConnection: number, fixed: number, over: Partial<LoadPointResult> = {}): LoadPointResult {
  const delta = fixed + perConnection * clients;
  return {
    target,
    title: target,
    kind: 'model',
    protocol: 'chat-long-poll',
    clients,
    rooms: 2,
    ratePerS: 20,
    durationS: 2,
    scenario: 'chat',
    status: 'ok',
    parkedReached: clients,
    phasesMs: {},
    subscribers: { expectedDeliveries: 1, deliveries: 1, lost: 0, duplicated: 0, outOfOrder: 0, requests: 1, bytes: 1, errors: 0, badStatuses: {}, latency: { p50: 1, p95: 1, p99: 1, max: 1, mean: 1, count: 1 }, latencyHistogram: '' },
    cost: {
      proxy: { cpuS: 0, rssIdleBytes: 1e8, rssParkedBytes: 1e8 + delta * 0.75 },
      app: { cpuS: 0, rssIdleBytes: 5e7, rssParkedBytes: 5e7 + delta * 0.25 },
      total: { cpuS: 0, rssIdleBytes: 1.5e8, rssParkedBytes: 1.5e8 + delta },
    },
    gc: { collected: 2, late: 0 },
    derived: { deliveriesPerS: 1, cpuSPer1000Deliveries: 1, memoryPerParkedBytes: delta / clients, requestsPerDelivery: 1, bytesPerDelivery: 1 },
    ...over,
  };
}

describe('memory per connection as a slope', () => {
  test('least squares: slope, intercept and r²', () => {
    assert.deepEqual(linearFit([1, 2, 3], [5, 7, 9]), { slope: 2, intercept: 3, r2: 1 });
    const noisy = linearFit([0, 1, 2, 3], [0, 2, 1, 3])!;
    assert.ok(Math.abs(noisy.slope - 0.8) < 1e-12);
    assert.ok(noisy.r2 > 0 && noisy.r2 < 1);
    assert.equal(linearFit([5, 5], [1, 2]), null, 'one client count: no slope');
    assert.equal(linearFit([1], [1]), null);
  });

  test('the slope separates the per-connection cost from a fixed cost a ratio would spread over the clients', () => {
    // 10 KB per connection plus 2 MB fixed: the per-point ratio says 210 KB at 10 clients, 12 KB at 1,000.
    const points = [point('a', 10, 10_240, 2e6), point('a', 1000, 10_240, 2e6), point('a', 100, 10_240, 2e6)];
    assert.ok(points[0]!.derived!.memoryPerParkedBytes > 200_000);
    const [slope] = memorySlopes(points);
    assert.ok(Math.abs(slope!.bytesPerConnection - 10_240) < 1e-6, String(slope!.bytesPerConnection));
    assert.ok(Math.abs(slope!.interceptBytes - 2e6) < 1e-3);
    assert.equal(slope!.r2, 1);
    assert.deepEqual(slope!.clients, [10, 100, 1000]);
    assert.ok(Math.abs(slope!.bytesPerConnectionByRole.proxy! - 7_680) < 1e-6);
    assert.ok(Math.abs(slope!.bytesPerConnectionByRole.app! - 2_560) < 1e-6);
    assert.equal(slope!.gcForced, true);
  });

  test('short polling, failed points and a single client count give no slope; no GC is said', () => {
    const slopes = memorySlopes([
      point('short', 10, 1, 0, { protocol: 'chat-short-poll' }),
      point('short', 100, 1, 0, { protocol: 'chat-short-poll' }),
      point('once', 10, 1, 0),
      point('broken', 10, 1, 0),
      point('broken', 100, 1, 0, { status: 'failed' }),
      point('nchan', 10, 4096, 0, { gc: { collected: 0, late: 0 } }),
      point('nchan', 100, 4096, 0, { gc: { collected: 0, late: 0 } }),
    ]);
    assert.deepEqual(slopes.map((s) => s.target), ['nchan']);
    assert.equal(slopes[0]!.gcForced, false);
  });
});

describe('forced GC in the lab targets', () => {
  /** A Node process that stays up until killed, and says when it runs (so its preload is loaded). */
  async function idleNode(args: readonly string[]): Promise<ChildProcess> {
    const child = spawn(process.execPath, [...args, '-e', 'process.stdout.write("up\\n"); setInterval(() => {}, 1000)'], { stdio: ['ignore', 'pipe', 'inherit'] });
    await once(child.stdout!, 'data');
    return child;
  }

  test('a target started with GC_NODE_ARGS collects and confirms; a Node process without the handler is not signalled', async (t) => {
    const withHandler = await idleNode(GC_NODE_ARGS);
    const without = await idleNode([]);
    t.after(() => {
      withHandler.kill('SIGKILL');
      without.kill('SIGKILL');
    });
    const result = await forceGc([withHandler.pid!, without.pid!], 10_000);
    assert.deepEqual(result, { collected: [withHandler.pid], late: [] });
    // A second collection is confirmed too (receipts do not carry over between calls).
    assert.deepEqual((await forceGc([withHandler.pid!], 10_000)).collected, [withHandler.pid]);
    // SIGUSR2 without a handler would have killed it (its exit seen by now, a confirmed round trip later): running.
    assert.equal(without.exitCode, null);
    assert.equal(without.signalCode, null);
  });
});
