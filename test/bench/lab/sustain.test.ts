import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LabUsageError, parseLabOptions } from '../../../bench/lab/options.js';
import { runPlan } from '../../../bench/lab/plan.js';
import type { PointSummary } from '../../../bench/lab/results.js';
import { rateVerdict, sweepsOf } from '../../../bench/lab/sustain.js';

const spread = (median: number) => ({ median, low: median, high: median, n: 3 });

function summary(target: string, ratePerS: number, over: { p99?: number; dropped?: number; published?: number; lossy?: number; saturated?: number; measured?: number } = {}): PointSummary {
  return {
    scenario: 'chat',
    target,
    title: target.toUpperCase(),
    kind: 'model',
    clients: 1000,
    ratePerS,
    runs: 3,
    measured: over.measured ?? 3,
    lossy: over.lossy ?? 0,
    generatorSaturated: over.saturated ?? 0,
    unavailable: false,
    metrics: {
      publishedPerS: spread(over.published ?? ratePerS),
      dropped: spread(over.dropped ?? 0),
      deliveriesPerS: spread(ratePerS * 100),
      p99Ms: spread(over.p99 ?? 50),
      cpuSPer1000Deliveries: spread(0.05),
    },
  };
}

describe('rate sweeps', () => {
  test('a rate is sustained only with nothing dropped or lost, the rate accepted, p99 within the yardstick and headroom', () => {
    assert.deepEqual(rateVerdict(summary('a', 100), 1000).reasons, []);
    assert.equal(rateVerdict(summary('a', 100), 1000).sustained, true);
    const cases: Array<[Parameters<typeof summary>[2], RegExp]> = [
      [{ dropped: 4 }, /dropped 4 due messages/],
      [{ published: 90 }, /accepted 90 of 100 msg\/s/],
      [{ p99: 1500 }, /p99 1500 ms > 1000 ms/],
      [{ lossy: 1 }, /lost or duplicated deliveries in 1 runs/],
      [{ saturated: 2 }, /load generator past 90% of a core in 2 runs/],
      [{ measured: 2 }, /1 of 3 runs failed/],
    ];
    for (const [over, reason] of cases) {
      const v = rateVerdict(summary('a', 100, over), 1000);
      assert.equal(v.sustained, false, JSON.stringify(over));
      assert.match(v.reasons.join('; '), reason);
    }
    // 95 % of the rate accepted is enough; the yardstick is inclusive.
    assert.equal(rateVerdict(summary('a', 100, { published: 95, p99: 1000 }), 1000).sustained, true);
  });

  test('the maximum sustainable rate is the highest with every lower rate held; its bound says whether it was reached', () => {
    const sweeps = sweepsOf(
      [
        summary('a', 100), summary('a', 400), summary('a', 1600, { p99: 2000 }), summary('a', 800, { p99: 400 }),
        summary('b', 100), summary('b', 400, { dropped: 3 }), summary('b', 800), // b recovered at 800: not counted
        summary('c', 100, { p99: 5000 }), summary('c', 400, { p99: 5000 }),
        summary('d', 100), summary('d', 400),
        summary('single', 100),
      ],
      1000,
    );
    const by = Object.fromEntries(sweeps.map((x) => [x.target, x]));
    assert.equal(by.single, undefined, 'one rate is not a sweep');
    assert.deepEqual(by.a!.rates.map((r) => r.ratePerS), [100, 400, 800, 1600]);
    assert.deepEqual([by.a!.maxSustainedRatePerS, by.a!.maxSustainedDeliveriesPerS, by.a!.bound], [800, 80_000, 'within']);
    assert.deepEqual([by.b!.maxSustainedRatePerS, by.b!.bound], [100, 'within']);
    assert.deepEqual([by.c!.maxSustainedRatePerS, by.c!.maxSustainedDeliveriesPerS, by.c!.bound], [null, null, 'below-lowest']);
    assert.deepEqual([by.d!.maxSustainedRatePerS, by.d!.bound], [400, 'above-highest']);
  });

  test('--rates sorts and dedupes the sweep, is exclusive with --rate, and the plan runs every target at each rate', () => {
    const o = parseLabOptions(['--rates', '400,100,400,1600', '--sustain-p99-ms', '500'], false);
    assert.deepEqual(o.rates, [100, 400, 1600]);
    assert.equal(o.ratePerS, 100);
    assert.equal(o.sustainP99Ms, 500);
    assert.deepEqual(parseLabOptions(['--rate', '50'], false).rates, [50]);
    assert.equal(parseLabOptions([], false).sustainP99Ms, 1000);
    assert.throws(() => parseLabOptions(['--rate', '5', '--rates', '1,2'], false), /give --rate or --rates, not both/);
    assert.throws(() => parseLabOptions(['--rates', '1,x'], false), LabUsageError);
    assert.throws(() => parseLabOptions(['--scenario', 'park', '--rates', '1,2'], false), /sweeps the chat scenario only/);
    const plan = runPlan(1, [10], ['x', 'y'], [100, 400]);
    assert.deepEqual(plan.map((s) => `${s.ratePerS}:${s.target}`), ['100:x', '100:y', '400:x', '400:y']);
  });
});
