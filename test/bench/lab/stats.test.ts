import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LabUsageError, parseLabOptions } from '../../../bench/lab/options.js';
import { runPlan } from '../../../bench/lab/plan.js';
import type { LoadPointResult } from '../../../bench/lab/results.js';
import { median, seededRandom, spreadOf, summarize } from '../../../bench/lab/stats.js';

function point(target: string, repeat: number, p99: number, status: LoadPointResult['status'] = 'ok'): LoadPointResult {
  return {
    target,
    title: target.toUpperCase(),
    kind: 'model',
    protocol: 'chat-long-poll',
    clients: 100,
    rooms: 10,
    ratePerS: 200,
    durationS: 30,
    scenario: 'chat',
    repeat,
    status,
    parkedReached: 100,
    phasesMs: {},
    ...(status !== 'ok'
      ? { error: 'broke' }
      : {
          subscribers: {
            expectedDeliveries: 6000,
            deliveries: 6000,
            lost: 0,
            duplicated: 0,
            outOfOrder: 0,
            requests: 6000,
            bytes: 1e6,
            errors: 0,
            badStatuses: {},
            latency: { p50: p99 / 10, p95: p99 / 2, p99, max: p99 * 2, mean: p99 / 10, count: 6000 },
            latencyHistogram: '',
          },
          windowS: 31,
          derived: { deliveriesPerS: 200, cpuSPer1000Deliveries: 0.05, memoryPerParkedBytes: 10_000, requestsPerDelivery: 1, bytesPerDelivery: 100 },
        }),
  };
}

describe('spread over repeated runs', () => {
  test('median of odd and even counts', () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.throws(() => median([]), /median of no values/);
  });

  test('the seeded generator is deterministic and uniform enough to resample', () => {
    const a = seededRandom(7);
    const b = seededRandom(7);
    const xs = Array.from({ length: 10_000 }, () => a());
    assert.deepEqual(xs.slice(0, 5), Array.from({ length: 5 }, () => b()));
    assert.ok(xs.every((x) => x >= 0 && x < 1));
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    assert.ok(Math.abs(mean - 0.5) < 0.02, `mean ${mean}`);
  });

  test('the bootstrap interval holds the median, stays within the values seen, and is the same on every call', () => {
    const values = [115, 1142, 180, 240, 130];
    const s = spreadOf(values)!;
    assert.equal(s.median, 180);
    assert.equal(s.n, 5);
    assert.ok(s.low <= s.median && s.median <= s.high, JSON.stringify(s));
    assert.ok(s.low >= 115 && s.high <= 1142, JSON.stringify(s));
    assert.deepEqual(spreadOf(values), s);
  });

  test('with enough runs one outlier stays outside the median\'s interval (with 5 it does not: the bootstrap is coarse)', () => {
    const eleven = [115, 1142, 120, 130, 118, 125, 122, 119, 128, 121, 117];
    const s = spreadOf(eleven)!;
    assert.equal(s.median, 121);
    assert.ok(s.high <= 130, JSON.stringify(s));
    // 5 runs: resamples with 3 copies of the outlier are more than 2.5 % of all, so the interval reaches it.
    assert.equal(spreadOf([115, 1142, 180, 240, 130])!.high, 1142);
  });

  test('a wider spread of runs gives a wider interval', () => {
    const tight = spreadOf([100, 101, 99, 100, 102, 98, 100])!;
    const loose = spreadOf([100, 150, 50, 100, 200, 20, 100])!;
    assert.ok(loose.high - loose.low > 10 * (tight.high - tight.low), `${JSON.stringify(tight)} ${JSON.stringify(loose)}`);
  });

  test('one run: the interval is the value itself; no finite value: no figure', () => {
    assert.deepEqual(spreadOf([42]), { median: 42, low: 42, high: 42, n: 1 });
    assert.equal(spreadOf([NaN, Infinity]), undefined);
    assert.deepEqual(spreadOf([NaN, 5]), { median: 5, low: 5, high: 5, n: 1 });
  });

  test('summaries group runs per load point, count failed runs and leave them out of the medians', () => {
    const points = [point('a', 1, 100), point('b', 1, 10), point('a', 2, 300), point('b', 2, 0, 'failed'), point('a', 3, 200), point('b', 3, 30)];
    const [a, b] = summarize(points);
    assert.equal(a!.target, 'a');
    assert.equal(a!.runs, 3);
    assert.equal(a!.measured, 3);
    assert.equal(a!.metrics.p99Ms!.median, 200);
    assert.equal(a!.metrics.p50Ms!.median, 20);
    assert.equal(b!.runs, 3);
    assert.equal(b!.measured, 2);
    assert.equal(b!.metrics.p99Ms!.median, 20);
    assert.equal(b!.metrics.p99Ms!.n, 2);
    assert.equal(a!.metrics.serverCoresBusy, undefined, 'no cost recorded: no figure, not NaN');
  });

  test("a run whose CPU reading went down (a target's process ended mid-window) gives no CPU figure; the others still count", () => {
    const withCost = (repeat: number, roleCpu: number, cpuPer1000: number): LoadPointResult => {
      const p = point('pushpin', repeat, 100);
      return { ...p, cost: { pushpin: { cpuS: roleCpu } as never, total: { cpuS: roleCpu + 5 } as never }, derived: { ...p.derived!, cpuSPer1000Deliveries: cpuPer1000 } };
    };
    const [one] = summarize([withCost(1, -7.5, -0.06), withCost(2, 3, 0.2), withCost(3, 4, 0.3)]);
    assert.equal(one!.metrics.cpuSPer1000Deliveries!.n, 2, 'the run with a negative reading is left out');
    assert.ok(one!.metrics.cpuSPer1000Deliveries!.low >= 0.2);
    assert.equal(one!.metrics.serverCoresBusy!.n, 2);
    const [none] = summarize([withCost(1, -7.5, -0.06)]);
    assert.equal(none!.metrics.cpuSPer1000Deliveries, undefined, 'no usable run: no figure');
  });

  test('--repeat runs are interleaved across targets: run r of every point before run r + 1 of any', () => {
    const plan = runPlan(2, [10, 20], ['x', 'y']);
    assert.deepEqual(
      plan.map((s) => `${s.repeat}:${s.clients}:${s.target}`),
      ['1:10:x', '1:10:y', '1:20:x', '1:20:y', '2:10:x', '2:10:y', '2:20:x', '2:20:y'],
    );
  });

  test('--repeat is parsed and bounded', () => {
    assert.equal(parseLabOptions([], false).repeat, 1);
    assert.equal(parseLabOptions(['--repeat', '5'], false).repeat, 5);
    assert.throws(() => parseLabOptions(['--repeat', '0'], false), LabUsageError);
    assert.throws(() => parseLabOptions(['--repeat', '21'], false), /--repeat must be at most 20/);
  });
});
