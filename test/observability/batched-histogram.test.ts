import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AggregatorRegistry, Histogram, Registry } from 'prom-client';
import { createBatchedHistogram } from '../../proxy/control/batched-histogram.js';
import { createProxyMetrics } from '../../proxy/control/metrics.js';
import type { ProxyStats } from '../../protocol/control-api.js';
import { parsePromText, sampleValue } from '../../bench/lab/soak/prom-text.js';

const BOUNDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const NAME = 'test_latency_seconds';

/** A batched histogram and a plain prom-client one with the same name and buckets, each in its own registry. */
function pair(): { batched: ReturnType<typeof createBatchedHistogram<'publish' | 'push'>>; plain: Histogram<string>; ours: Registry; theirs: Registry } {
  const ours = new Registry();
  const theirs = new Registry();
  const batched = createBatchedHistogram<'publish' | 'push'>({ name: NAME, help: 'h', labelName: 'kind', buckets: BOUNDS, registers: [ours] });
  const plain = new Histogram<string>({ name: NAME, help: 'h', labelNames: ['kind'], buckets: BOUNDS, registers: [theirs] });
  return { batched, plain, ours, theirs };
}

/** Values on, just under and just over bounds, zero, above the last bound, and sums that round in floating point. */
const VALUES: Array<['publish' | 'push', number]> = [
  ['push', 0.1],
  ['publish', 0.2],
  ['publish', 0.0005],
  ['publish', 0.00050000001],
  ['push', 0],
  ['publish', 2.5],
  ['publish', 2.5000001],
  ['push', 1e9],
  ['publish', 0.3],
  ['push', 0.0024999],
  ['publish', 1 / 3],
  ['push', 0.7],
];

describe('batched histogram (issue 15: no prom-client observe per delivery)', () => {
  test('its scrape text and JSON are identical to a prom-client Histogram fed the same values', async () => {
    const { batched, plain, ours, theirs } = pair();
    for (const [kind, v] of VALUES) {
      batched.observe(kind, v);
      plain.observe({ kind }, v);
    }
    assert.equal(await ours.metrics(), await theirs.metrics());
    assert.deepEqual(await ours.getMetricsAsJSON(), await theirs.getMetricsAsJSON());
  });

  test('known observations give exact buckets, sum and count', async () => {
    const { batched, ours } = pair();
    for (const v of [0.25, 0.5, 4, 0.001]) batched.observe('publish', v);
    const samples = parsePromText(await ours.metrics());
    assert.equal(sampleValue(samples, `${NAME}_count`, { kind: 'publish' }), 4);
    assert.equal(sampleValue(samples, `${NAME}_sum`, { kind: 'publish' }), 4.751);
    assert.equal(sampleValue(samples, `${NAME}_bucket`, { kind: 'publish', le: '0.0005' }), 0);
    assert.equal(sampleValue(samples, `${NAME}_bucket`, { kind: 'publish', le: '0.001' }), 1, 'a value equal to a bound is in that bound');
    assert.equal(sampleValue(samples, `${NAME}_bucket`, { kind: 'publish', le: '0.25' }), 2);
    assert.equal(sampleValue(samples, `${NAME}_bucket`, { kind: 'publish', le: '0.5' }), 3);
    assert.equal(sampleValue(samples, `${NAME}_bucket`, { kind: 'publish', le: '2.5' }), 3);
    assert.equal(sampleValue(samples, `${NAME}_bucket`, { kind: 'publish', le: '+Inf' }), 4, 'above every bound: only +Inf');
    assert.equal(sampleValue(samples, `${NAME}_count`, { kind: 'push' }), undefined, 'a label never observed is not exposed');
  });

  test('an observation made after a scrape is in the next scrape, and scraping twice counts nothing twice', async () => {
    const { batched, plain, ours, theirs } = pair();
    batched.observe('push', 0.01);
    plain.observe({ kind: 'push' }, 0.01);
    assert.equal(await ours.metrics(), await theirs.metrics());
    for (let round = 1; round <= 3; round++) {
      batched.observe('publish', 0.02 * round);
      plain.observe({ kind: 'publish' }, 0.02 * round);
      batched.observe('push', 0.003);
      plain.observe({ kind: 'push' }, 0.003);
      const text = await ours.metrics();
      assert.equal(text, await theirs.metrics(), `round ${round}`);
      assert.equal(sampleValue(parsePromText(text), `${NAME}_count`, { kind: 'publish' }), round);
      assert.equal(await ours.metrics(), text, 'a second read without observations is the same');
    }
  });

  test('non-finite values are ignored instead of throwing on the delivery path', async () => {
    const { batched, ours } = pair();
    batched.observe('push', Number.NaN);
    batched.observe('push', Number.POSITIVE_INFINITY);
    batched.observe('push', 0.5);
    const samples = parsePromText(await ours.metrics());
    assert.equal(sampleValue(samples, `${NAME}_count`, { kind: 'push' }), 1);
    assert.equal(sampleValue(samples, `${NAME}_sum`, { kind: 'push' }), 0.5);
  });

  test('a reset histogram is refilled from the totals at the next read', async () => {
    const { batched, ours } = pair();
    batched.observe('push', 0.5);
    await ours.metrics();
    batched.histogram.reset();
    batched.observe('push', 0.25);
    const samples = parsePromText(await ours.metrics());
    assert.equal(sampleValue(samples, `${NAME}_count`, { kind: 'push' }), 2);
    assert.equal(sampleValue(samples, `${NAME}_sum`, { kind: 'push' }), 0.75);
  });

  test('several workers summed by AggregatorRegistry (the cluster primary) give what plain histograms give', async () => {
    const batchedJson = [];
    const plainJson = [];
    for (let w = 0; w < 3; w++) {
      const { batched, plain, ours, theirs } = pair();
      for (const [kind, v] of VALUES.slice(w)) {
        batched.observe(kind, v * (w + 1));
        plain.observe({ kind }, v * (w + 1));
      }
      batchedJson.push(await ours.getMetricsAsJSON());
      plainJson.push(await theirs.getMetricsAsJSON());
    }
    const summed = await AggregatorRegistry.aggregate(batchedJson).metrics();
    assert.equal(summed, await AggregatorRegistry.aggregate(plainJson).metrics());
    assert.match(summed, new RegExp(`^${NAME}_count\\{kind="publish"\\} ${7 + 7 + 6}$`, 'm'));
  });
});

describe('createProxyMetrics: hold and write histograms', () => {
  const stats = (): ProxyStats => new Proxy({}, { get: () => 0 }) as ProxyStats;

  test('every holdEnded and itemWritten is in the next scrape, in seconds, exactly as prom-client would count it', async () => {
    const metrics = createProxyMetrics(stats);
    const reference = new Registry();
    const held = new Histogram<string>({
      name: 'comet_proxy_hold_duration_seconds',
      help: 'Time from parking a request to its answer, by outcome',
      labelNames: ['outcome'],
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
      registers: [reference],
    });
    const written = new Histogram<string>({
      name: 'comet_proxy_publish_to_write_seconds',
      help: "Time from a publish/push reaching the control API to the parked client's response being written, by kind",
      labelNames: ['kind'],
      buckets: BOUNDS,
      registers: [reference],
    });
    const section = (text: string, name: string): string =>
      text
        .split('\n')
        .filter((l) => l.includes(`${name}`))
        .join('\n');

    for (let round = 0; round < 3; round++) {
      for (const ms of [0, 3.2, 10, 49.999, 250, 300_000, 300_001 + round]) {
        metrics.holdEnded('delivered', ms);
        held.observe({ outcome: 'delivered' }, ms / 1000);
      }
      metrics.holdEnded('timeout', 30_000);
      held.observe({ outcome: 'timeout' }, 30);
      metrics.itemWritten('publish', 0.7 + round);
      written.observe({ kind: 'publish' }, (0.7 + round) / 1000);

      const ours = await metrics.registry.metrics();
      const theirs = await reference.metrics();
      for (const name of ['comet_proxy_hold_duration_seconds', 'comet_proxy_publish_to_write_seconds']) {
        assert.equal(section(ours, name), section(theirs, name), `${name}, round ${round}`);
      }
      const samples = parsePromText(ours);
      assert.equal(sampleValue(samples, 'comet_proxy_hold_duration_seconds_count', { outcome: 'delivered' }), 7 * (round + 1));
      assert.equal(sampleValue(samples, 'comet_proxy_publish_to_write_seconds_count', { kind: 'publish' }), round + 1);
    }
  });
});
