import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  addVerdict,
  emptyVerdict,
  encodeLatency,
  MAX_TRACKED_SEQ,
  mergeLatency,
  newLatencyHistogram,
  recordLatencyMs,
  SeqRecord,
  summarizeLatency,
  verifyRecord,
} from '../../../bench/lab/verify.js';

function recordOf(seqs: number[]): SeqRecord {
  const record = new SeqRecord();
  for (const seq of seqs) record.receive(seq);
  return record;
}

describe('lab verification', () => {
  test('every seq 1..N once and in order: nothing lost, duplicated or out of order', () => {
    const verdict = verifyRecord(recordOf([1, 2, 3, 4, 5]), 5);
    assert.deepEqual(verdict, { expected: 5, deliveries: 5, lost: 0, duplicated: 0, outOfOrder: 0, extra: 0 });
  });

  test('seqs never received are lost, including the last ones', () => {
    const verdict = verifyRecord(recordOf([1, 2, 4]), 6);
    assert.equal(verdict.deliveries, 3);
    assert.equal(verdict.lost, 3);
  });

  test('nothing received: every published seq is lost', () => {
    assert.deepEqual(verifyRecord(new SeqRecord(), 4), { expected: 4, deliveries: 0, lost: 4, duplicated: 0, outOfOrder: 0, extra: 0 });
  });

  test('each extra copy of a seq counts one duplicate and no delivery', () => {
    const verdict = verifyRecord(recordOf([1, 2, 2, 3, 3, 3]), 3);
    assert.equal(verdict.deliveries, 3);
    assert.equal(verdict.duplicated, 3);
    assert.equal(verdict.lost, 0);
  });

  test('a first copy arriving after a higher seq is out of order; a late duplicate is not', () => {
    assert.equal(verifyRecord(recordOf([1, 3, 2, 5, 4]), 5).outOfOrder, 2);
    const verdict = verifyRecord(recordOf([1, 3, 3, 1]), 3);
    assert.equal(verdict.outOfOrder, 0);
    assert.equal(verdict.duplicated, 2);
    assert.equal(verdict.lost, 1);
  });

  test('the first copy is reported as such, later copies are not', () => {
    const record = new SeqRecord();
    assert.equal(record.receive(2), true);
    assert.equal(record.receive(2), false);
    assert.equal(record.receive(1), true);
  });

  test('contiguous tracks the longest complete prefix, filling gaps as they close', () => {
    const record = recordOf([2, 3, 5]);
    assert.equal(record.contiguous, 0);
    record.receive(1);
    assert.equal(record.contiguous, 3);
    record.receive(4);
    assert.equal(record.contiguous, 5);
  });

  test('seqs above the published count are extra, not deliveries or losses', () => {
    const verdict = verifyRecord(recordOf([1, 2, 3, 4, 5]), 3);
    assert.deepEqual(verdict, { expected: 3, deliveries: 3, lost: 0, duplicated: 0, outOfOrder: 0, extra: 2 });
    const gappy = verifyRecord(recordOf([1, 3, 7]), 4);
    assert.equal(gappy.deliveries, 2);
    assert.equal(gappy.lost, 2);
    assert.equal(gappy.extra, 1);
  });

  test('large seqs grow the bitset; out-of-range seqs are ignored', () => {
    const record = recordOf([100_000, 0, -1, 1.5, MAX_TRACKED_SEQ + 1]);
    assert.equal(record.has(100_000), true);
    assert.equal(record.has(99_999), false);
    assert.equal(record.distinct, 1);
    assert.equal(record.ignored, 4);
    assert.equal(verifyRecord(record, 100_000).lost, 99_999);
  });

  test('verdicts add up', () => {
    const sum = addVerdict(addVerdict(emptyVerdict(), verifyRecord(recordOf([1, 1]), 2)), verifyRecord(recordOf([2, 1]), 2));
    assert.deepEqual(sum, { expected: 4, deliveries: 3, lost: 1, duplicated: 1, outOfOrder: 1, extra: 0 });
  });
});

describe('lab latency', () => {
  test('histograms merged from their encodings give percentiles in ms over every value', () => {
    const a = newLatencyHistogram();
    const b = newLatencyHistogram();
    for (let ms = 1; ms <= 50; ms++) recordLatencyMs(a, ms);
    for (let ms = 51; ms <= 100; ms++) recordLatencyMs(b, ms);
    const merged = mergeLatency([encodeLatency(a), encodeLatency(b), encodeLatency(newLatencyHistogram())]);
    const summary = summarizeLatency(merged);
    assert.equal(summary.count, 100);
    assert.ok(Math.abs(summary.p50 - 50) < 0.1, `p50 ${summary.p50}`);
    assert.ok(Math.abs(summary.p99 - 99) < 0.1, `p99 ${summary.p99}`);
    assert.ok(Math.abs(summary.max - 100) < 0.1, `max ${summary.max}`);
    assert.ok(Math.abs(summary.mean - 50.5) < 0.1, `mean ${summary.mean}`);
  });

  test('negative latencies (clock jitter) count as zero; no values give zeros', () => {
    const h = newLatencyHistogram();
    recordLatencyMs(h, -0.2);
    assert.equal(summarizeLatency(h).max, 0);
    assert.equal(summarizeLatency(h).count, 1);
    assert.deepEqual(summarizeLatency(newLatencyHistogram()), { p50: 0, p95: 0, p99: 0, max: 0, mean: 0, count: 0 });
  });
});
