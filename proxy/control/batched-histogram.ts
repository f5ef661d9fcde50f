/**
 * A prom-client `Histogram` whose observations are counted in our own preallocated
 * arrays and folded into the histogram only when it is read (its `collect()`, which
 * prom-client runs before every `metrics()` and `getMetricsAsJSON()`, so scrapes and the
 * cluster primary's sum see every observation made before the read).
 *
 * Why (issue 15, CPU per delivery): `Histogram.observe(labels, v)` validates the label
 * object, hashes it into a string and looks the series up per call; with two observations
 * per delivery that was ~2% of a fan-out's profile. Here an observation is an array
 * index, a bucket scan, two additions and one increment.
 *
 * The result is the same as calling `observe` for each value: the same bucket rule
 * (first bound with `v <= bound`, else only `+Inf`), the sum added in the same order
 * (so the same float), series listed in the order they were first observed. The fold
 * writes prom-client's per-series entry (`{labels, bucketValues, sum, count}` in its
 * `hashMap`, created by the public `zero()`); test/observability/batched-histogram.test.ts
 * compares the output with a plain `Histogram` fed the same values, so an upgrade
 * that changes that entry fails there.
 */
import { Histogram, type Registry } from 'prom-client';

/** prom-client 15's per-series entry, as `zero()` creates it (lib/histogram.js createBaseValues). */
interface SeriesEntry {
  labels: Record<string, string>;
  bucketValues: Record<number, number>;
  sum: number;
  count: number;
}

/** One label value's counts, allocated at its first observation and kept. */
interface Series {
  readonly labels: Record<string, string>;
  /** Per bucket, not cumulative; the last slot is above every bound (`+Inf` only). */
  readonly buckets: Float64Array;
  sum: number;
  count: number;
  /** prom-client's entry last folded into, and the map it lives in (a `reset()` replaces the map). */
  entry: SeriesEntry | null;
  map: unknown;
}

export interface BatchedHistogramConfig<L extends string> {
  name: string;
  help: string;
  /** The one label's name. */
  labelName: string;
  /** Upper bounds, ascending. */
  buckets: readonly number[];
  registers: Registry[];
}

export interface BatchedHistogram<L extends string> {
  /** Counts `value` for `label`. Non-finite values are ignored (prom-client's `observe` throws on them). */
  observe(label: L, value: number): void;
  /** The prom-client histogram it folds into (registered in `registers`). */
  readonly histogram: Histogram<string>;
}

export function createBatchedHistogram<L extends string>(config: BatchedHistogramConfig<L>): BatchedHistogram<L> {
  const bounds = Float64Array.from(config.buckets);
  const nBounds = bounds.length;
  const series = new Map<string, Series>();
  /** Series in the order of their first observation: prom-client lists them that way. */
  const seen: Series[] = [];
  const add = (value: string): Series => {
    const s: Series = { labels: { [config.labelName]: value }, buckets: new Float64Array(nBounds + 1), sum: 0, count: 0, entry: null, map: null };
    series.set(value, s);
    seen.push(s);
    return s;
  };

  const histogram = new Histogram<string>({
    name: config.name,
    help: config.help,
    labelNames: [config.labelName],
    buckets: [...config.buckets],
    registers: config.registers,
    collect() {
      const self = this as unknown as { hashMap: Record<string, SeriesEntry> };
      for (const s of seen) {
        if (s.entry === null || s.map !== self.hashMap) {
          this.zero(s.labels);
          s.map = self.hashMap;
          s.entry = Object.values(self.hashMap).find((e) => e.labels === s.labels) ?? null;
          if (s.entry === null) throw new Error(`prom-client's histogram did not keep the series ${config.name}${JSON.stringify(s.labels)}`);
        }
        // Cumulative totals, assigned (not added): folding twice changes nothing.
        const e = s.entry;
        for (let i = 0; i < nBounds; i++) e.bucketValues[bounds[i]!] = s.buckets[i]!;
        e.sum = s.sum;
        e.count = s.count;
      }
    },
  });

  return {
    histogram,
    observe(label: L, value: number): void {
      if (!Number.isFinite(value)) return;
      const s = series.get(label) ?? add(label);
      let i = 0;
      while (i < nBounds && value > bounds[i]!) i++;
      s.buckets[i]!++;
      s.sum += value;
      s.count++;
    },
  };
}
