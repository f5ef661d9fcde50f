import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LabUsageError, parseLabOptions } from '../../../bench/lab/options.js';
import { pointLoads, runPlan } from '../../../bench/lab/plan.js';
import { committedAt } from '../../../bench/lab/clients/chat-subscriber.js';
import { DeliverySink } from '../../../bench/lab/clients/subscriber.js';
import { leasePairs, multicastCosts } from '../../../bench/lab/report/experiments.js';
import { SeqRecord, summarizeLatency } from '../../../bench/lab/verify.js';
import { formatStamp } from '../../../bench/lab/workload.js';
import { renderMarkdown } from '../../../bench/lab/report/markdown.js';
import type { LoadPointResult, PointSummary, RunResult } from '../../../bench/lab/results.js';
import { summarize } from '../../../bench/lab/stats.js';
import { sweepsOf } from '../../../bench/lab/sustain.js';

const spread = (median: number) => ({ median, low: median, high: median, n: 1 });

function summary(target: string, over: Partial<PointSummary> & { m?: Record<string, number> }): PointSummary {
  const { m = {}, ...rest } = over;
  return {
    scenario: 'multicast',
    target,
    title: target.toUpperCase(),
    kind: 'model',
    clients: 100,
    ratePerS: 10,
    runs: 1,
    measured: 1,
    lossy: 0,
    generatorSaturated: 0,
    unavailable: false,
    metrics: Object.fromEntries(Object.entries(m).map(([k, v]) => [k, spread(v)])),
    ...rest,
  };
}

/** A measured point with per-role CPU (the lease pair reads the app's share from it). */
function point(target: string, roles: Record<string, number>, over: Partial<LoadPointResult> = {}): LoadPointResult {
  const total = Object.values(roles).reduce((a, b) => a + b, 0);
  const cost = Object.fromEntries(Object.entries({ ...roles, total }).map(([r, cpuS]) => [r, { cpuS, rssIdleBytes: 0, rssParkedBytes: 0 }]));
  return {
    target, title: target, kind: 'model', protocol: 'chat-long-poll', clients: 100, rooms: 10, ratePerS: 20, durationS: 2, scenario: 'chat',
    status: 'ok', parkedReached: 100, phasesMs: {}, cost, windowS: 10,
    subscribers: { deliveries: 2000, lost: 0, duplicated: 0, latency: { p50: 5, p95: 8, p99: 9, max: 10 } } as LoadPointResult['subscribers'],
    derived: { deliveriesPerS: 200, cpuSPer1000Deliveries: total / 2, memoryPerParkedBytes: 0, requestsPerDelivery: 1, bytesPerDelivery: 100 },
    ...over,
  };
}

describe('multicast scenario', () => {
  test('room counts become loads at rate × rooms, so deliveries/s (clients × rate) stay fixed; each is its own point', () => {
    const options = parseLabOptions(['--scenario', 'multicast', '--rooms-list', '100,1,10', '--rate', '2', '--clients', '1000'], false);
    assert.deepEqual(options.roomsList, [1, 10, 100]);
    const loads = pointLoads(options);
    assert.deepEqual(loads, [{ rooms: 1, ratePerS: 2 }, { rooms: 10, ratePerS: 20 }, { rooms: 100, ratePerS: 200 }]);
    // Subscribers per room × messages per room per second is the same at every room count.
    assert.deepEqual(loads.map((l) => (1000 / l.rooms!) * (l.ratePerS / l.rooms!) * l.rooms!), [2000, 2000, 2000]);
    const plan = runPlan(1, [1000], ['x'], loads);
    assert.deepEqual(plan.map((s) => [s.rooms, s.ratePerS]), [[1, 2], [10, 20], [100, 200]]);
    // The chat scenario keeps its rate sweep and no room override.
    assert.deepEqual(pointLoads(parseLabOptions(['--rates', '100,50'], false)), [{ ratePerS: 50 }, { ratePerS: 100 }]);
  });

  test('bad flags are usage errors that name the problem', () => {
    const cases: Array<[string[], RegExp]> = [
      [['--rooms-list', '1,10'], /--rooms-list belongs to --scenario multicast/],
      [['--scenario', 'multicast', '--rooms', '10'], /give --rooms-list, not --rooms/],
      [['--scenario', 'multicast', '--rooms-list', '10,10'], /at least 2 distinct room counts/],
      [['--scenario', 'multicast', '--rooms-list', '1,x'], /--rooms-list must be an integer >= 1/],
      [['--scenario', 'multicast', '--rooms-list', '1,2000', '--clients', '5000'], /at most 1000/],
      [['--scenario', 'multicast', '--rooms-list', '1,100', '--clients', '50'], /every --clients value must be >= every room count/],
      [['--scenario', 'multicast', '--rates', '1,2'], /--rates sweeps the chat scenario only/],
    ];
    for (const [argv, message] of cases) assert.throws(() => parseLabOptions(argv, false), (err: Error) => err instanceof LabUsageError && message.test(err.message), argv.join(' '));
  });

  test('points of different room counts are summarised apart and are never read as a rate sweep', () => {
    const runs = [1, 10].map((rooms) => point('x', { server: 1 }, { scenario: 'multicast', rooms, ratePerS: 2 * rooms }));
    const summaries = summarize([...runs, point('x', { server: 1 }, { scenario: 'multicast', rooms: 10, ratePerS: 20, repeat: 2 })]);
    assert.deepEqual(summaries.map((s) => [s.rooms, s.runs]), [[1, 1], [10, 2]]);
    assert.deepEqual(sweepsOf(summaries, 1000), []);
  });

  test('CPU per message is the slope of cores busy against messages/s; a per-delivery target gets about 0', () => {
    const at = (target: string, rooms: number, busy: number) =>
      summary(target, { rooms, ratePerS: 2 * rooms, m: { publishedPerS: 2 * rooms, deliveriesPerS: 200, serverCoresBusy: busy, cpuSPer1000Deliveries: (busy / 200) * 1000, p99Ms: 10 } });
    // y: 0.1 cores + 1 ms per message (2, 20, 200 msg/s).
    const behind = summary('d', { rooms: 100, ratePerS: 200, m: { publishedPerS: 150, deliveriesPerS: 150, serverCoresBusy: 1, cpuSPer1000Deliveries: 6 } });
    const costs = multicastCosts([at('a', 1, 0.102), at('a', 10, 0.12), at('a', 100, 0.3), at('b', 1, 0.2), at('b', 100, 0.2), at('c', 1, 0.5), at('d', 1, 0.2), behind]);
    assert.deepEqual(costs.map((c) => c.target), ['a', 'b', 'd']); // c has one room count: no slope
    // d accepted 150 of 200 msg/s at 100 rooms: its deliveries were not fixed, so no per-message cost is claimed.
    assert.deepEqual([costs[2]!.fellBehind, costs[2]!.cpuMsPerMessage], [[100], null]);
    assert.deepEqual(costs[0]!.fellBehind, []);
    assert.ok(Math.abs(costs[0]!.cpuMsPerMessage! - 1) < 1e-9, String(costs[0]!.cpuMsPerMessage));
    assert.equal(costs[1]!.cpuMsPerMessage, 0);
    assert.deepEqual(costs[0]!.rooms.map((r) => r.rooms), [1, 10, 100]);
  });
});

describe('leases as their own row', () => {
  test('suspend-push and suspend-push-plain at one load are paired with the difference and the app share of CPU', () => {
    const points = [point('suspend-push', { proxy: 3, app: 1 }), point('suspend-push-plain', { proxy: 2, app: 6 }), point('nchan', { nginx: 1 })];
    const summaries = summarize(points).map((s) =>
      s.target === 'suspend-push' ? { ...s, metrics: { ...s.metrics, requestsPerDelivery: spread(0.1) } } : s,
    );
    const pairs = leasePairs(summaries, points);
    assert.equal(pairs.length, 1);
    assert.deepEqual(pairs[0]!.leased, { requestsPerDelivery: 0.1, cpuSPer1000Deliveries: 2, p99Ms: 9, appCpuShare: 0.25 });
    assert.deepEqual(pairs[0]!.plain, { requestsPerDelivery: 1, cpuSPer1000Deliveries: 4, p99Ms: 9, appCpuShare: 0.75 });
    const run: RunResult = { startedAt: 'T', command: 'c', machine: { cpus: 2, cpuModel: 'x', memoryGiB: 1, node: 'v20', os: 'L', hostname: 'h' }, options: {}, points, summaries };
    const md = renderMarkdown(run);
    assert.match(md, /## Suspend & Push: leases against no leases/);
    assert.match(md, /\| chat, 100 clients, 20 msg\/s, 10 rooms \| 0\.1 · 1 · -0\.9 \| 2 · 4 · -2 \| 9 · 9 \| 25 % · 75 % \|/);
    // Without the plain stack there is no pair and no section.
    assert.doesNotMatch(renderMarkdown({ ...run, points: points.slice(0, 1), summaries: summaries.slice(0, 1) }), /leases against/);
  });
});

describe('commit-to-push latency', () => {
  test("an event's commit time is read from its `at`; the sink records receipt minus it for first copies only", () => {
    assert.equal(committedAt('2026-12-06T22:00:00.123Z'), Date.parse('2026-12-06T22:00:00.123Z'));
    assert.equal(committedAt(undefined), undefined);
    assert.equal(committedAt('not a time'), undefined);
    const sink = new DeliverySink();
    const record = new SeqRecord();
    const committed = Date.now() - 250;
    sink.deliver(record, formatStamp({ seq: 1, sentAtMs: committed - 1000 }), committed);
    sink.deliver(record, formatStamp({ seq: 1, sentAtMs: committed - 1000 }), committed - 5000); // a duplicate: not counted
    sink.deliver(record, formatStamp({ seq: 2, sentAtMs: committed }), undefined); // Nchan: no commit time
    const commit = summarizeLatency(sink.commitLatency);
    assert.equal(commit.count, 1);
    assert.ok(commit.max >= 250 && commit.max < 250 + 5_000, String(commit.max));
    assert.equal(summarizeLatency(sink.latency).count, 2);
  });

  test('the report gives the commit-to-receipt medians beside due-to-receipt, and no section without them', () => {
    const p = point('suspend-push', { proxy: 1, app: 1 });
    const withCommit = { ...p, subscribers: { ...p.subscribers!, commitLatency: { p50: 3, p95: 4, p99: 7, max: 9, mean: 3, count: 2000 } } };
    const machine = { cpus: 2, cpuModel: 'x', memoryGiB: 1, node: 'v20', os: 'L', hostname: 'h' };
    const md = renderMarkdown({ startedAt: 'T', command: 'c', machine, options: {}, points: [withCommit] });
    assert.match(md, /## Commit-to-push latency/);
    assert.match(md, /\| suspend-push \| chat, 100 clients, 20 msg\/s, 10 rooms \| 3 \| 7 \| 5 \| 9 \|/);
    assert.doesNotMatch(renderMarkdown({ startedAt: 'T', command: 'c', machine, options: {}, points: [p] }), /Commit-to-push/);
  });
});
