/**
 * What a subscriber received, checked against what the publisher says was
 * accepted, and the due-to-receipt latency figures (the stamp carries the
 * message's due time). Pure: no I/O, no clock, so it is tested on its own
 * (test/bench/lab/verify.test.ts).
 *
 * Each subscriber keeps a `SeqRecord`: a bitset of the seqs seen plus a few
 * counters, never a growing list, because a load point holds 10,000
 * subscribers × thousands of messages in a few worker processes.
 */
import { build, decodeFromCompressedBase64, encodeIntoCompressedBase64, type Histogram } from 'hdr-histogram-js';
import type { LatencySummary } from './results.js';

/**
 * Highest seq a record tracks (a bitset of 2 MiB at most). A stamp above it is
 * corrupt or from another run: counted in `ignored`, never allocated for.
 */
export const MAX_TRACKED_SEQ = 1 << 24;

/** The seqs one subscriber received, in arrival order, compactly. */
export class SeqRecord {
  /** Bit `seq` is set once `seq` arrived (bit 0 unused). Grows by doubling. */
  private bits = new Uint8Array(8);
  /** Highest seq received so far. */
  highest = 0;
  /** Every seq 1..contiguous has arrived. */
  contiguous = 0;
  /** Distinct seqs received. */
  distinct = 0;
  /** Extra copies of a seq already received (each counts one). */
  duplicated = 0;
  /** First copies that arrived after a higher seq. */
  outOfOrder = 0;
  /** Seqs outside 1..MAX_TRACKED_SEQ. */
  ignored = 0;

  /** Records one arrival; true when it is the first copy of `seq` (the one latency counts). */
  receive(seq: number): boolean {
    if (!Number.isInteger(seq) || seq < 1 || seq > MAX_TRACKED_SEQ) {
      this.ignored++;
      return false;
    }
    const byte = seq >>> 3;
    const bit = 1 << (seq & 7);
    if (byte >= this.bits.length) this.grow(byte + 1);
    if ((this.bits[byte]! & bit) !== 0) {
      this.duplicated++;
      return false;
    }
    this.bits[byte]! |= bit;
    this.distinct++;
    if (seq < this.highest) this.outOfOrder++;
    else this.highest = seq;
    // Amortised O(1): `contiguous` only moves forward, at most to MAX_TRACKED_SEQ.
    while (this.contiguous < MAX_TRACKED_SEQ && this.has(this.contiguous + 1)) this.contiguous++;
    return true;
  }

  has(seq: number): boolean {
    if (seq < 1 || seq > MAX_TRACKED_SEQ) return false;
    const byte = seq >>> 3;
    return byte < this.bits.length && (this.bits[byte]! & (1 << (seq & 7))) !== 0;
  }

  /** Distinct seqs received within 1..n. */
  countUpTo(n: number): number {
    const last = Math.min(Math.floor(n), this.highest);
    if (last >= this.highest) return this.distinct;
    if (last <= this.contiguous) return Math.max(0, last);
    let count = this.contiguous;
    for (let seq = this.contiguous + 1; seq <= last; seq++) if (this.has(seq)) count++;
    return count;
  }

  private grow(minBytes: number): void {
    let size = this.bits.length;
    while (size < minBytes) size *= 2;
    const bigger = new Uint8Array(Math.min(size, (MAX_TRACKED_SEQ >>> 3) + 1));
    bigger.set(this.bits);
    this.bits = bigger;
  }
}

/** One subscriber (or a sum of them) against the published counts. */
export interface Verdict {
  /** Seqs that had to arrive: 1..published. */
  expected: number;
  /** Distinct expected seqs that arrived. */
  deliveries: number;
  lost: number;
  duplicated: number;
  outOfOrder: number;
  /**
   * Distinct seqs above `published`: a publish the server committed but whose
   * answer the publisher never got (aborted at its deadline). Not a loss, not a
   * delivery.
   */
  extra: number;
}

export function emptyVerdict(): Verdict {
  return { expected: 0, deliveries: 0, lost: 0, duplicated: 0, outOfOrder: 0, extra: 0 };
}

/** Checks `record` against a room whose publisher had `published` messages accepted (seqs 1..published). */
export function verifyRecord(record: SeqRecord, published: number): Verdict {
  const expected = Math.max(0, Math.floor(published));
  const deliveries = record.countUpTo(expected);
  return {
    expected,
    deliveries,
    lost: expected - deliveries,
    duplicated: record.duplicated,
    outOfOrder: record.outOfOrder,
    extra: record.distinct - deliveries,
  };
}

/** Adds `b` into `a`, returns `a`. */
export function addVerdict(a: Verdict, b: Verdict): Verdict {
  a.expected += b.expected;
  a.deliveries += b.deliveries;
  a.lost += b.lost;
  a.duplicated += b.duplicated;
  a.outOfOrder += b.outOfOrder;
  a.extra += b.extra;
  return a;
}

// ---- Latency: one hdr histogram per worker, in microseconds, merged by the orchestrator.

/** An empty latency histogram (values in integer microseconds). */
export function newLatencyHistogram(): Histogram {
  // Pure JS: WebAssembly would need an async init in every worker for no gain at these rates.
  return build({ useWebAssembly: false, numberOfSignificantValueDigits: 3 });
}

/** Records one latency given in ms. Negative values (clock jitter between processes) count as 0. */
export function recordLatencyMs(histogram: Histogram, ms: number): void {
  if (!Number.isFinite(ms)) return;
  histogram.recordValue(Math.max(0, Math.round(ms * 1000)));
}

export function encodeLatency(histogram: Histogram): string {
  return encodeIntoCompressedBase64(histogram);
}

/** Merges encoded histograms (from the workers) into one. */
export function mergeLatency(encoded: readonly string[]): Histogram {
  const merged = newLatencyHistogram();
  for (const text of encoded) merged.add(decodeFromCompressedBase64(text, 32, false));
  return merged;
}

/** p50/p95/p99/max/mean in ms (3 decimals); all zeros over no values. */
export function summarizeLatency(histogram: Histogram): LatencySummary {
  const count = histogram.totalCount;
  if (count === 0) return { p50: 0, p95: 0, p99: 0, max: 0, mean: 0, count: 0 };
  const ms = (us: number): number => Math.round(us) / 1000;
  return {
    p50: ms(histogram.getValueAtPercentile(50)),
    p95: ms(histogram.getValueAtPercentile(95)),
    p99: ms(histogram.getValueAtPercentile(99)),
    max: ms(histogram.maxValue),
    mean: ms(histogram.mean),
    count,
  };
}
