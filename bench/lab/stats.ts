/**
 * Spread over repeated runs (`--repeat N`): per load point (scenario × target
 * × clients × rate), the median of each metric over its measured runs and a
 * 95% confidence interval for that median by the **percentile bootstrap**
 * (resample the runs with replacement, take each resample's median, read the
 * 2.5th and 97.5th percentiles). Pure and deterministic: the resampling uses
 * a seeded PRNG, so the report rebuilt from results.json is byte for byte the
 * same. With few runs the interval is coarse: for N ≤ 3 it is nearly the
 * min-max range (docs/models.md says so).
 */
import type { LoadPointResult, MetricSpread, PointSummary } from './results.js';

export const BOOTSTRAP_RESAMPLES = 2_000;
export const CONFIDENCE = 0.95;
const SEED = 0x5eed;

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Median of a non-empty list (mean of the two middle values for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error('median of no values');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The p-quantile (0..1) of sorted values, linear between order statistics. */
function quantile(sorted: readonly number[], p: number): number {
  const at = p * (sorted.length - 1);
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (at - lo);
}

/**
 * Median and its percentile-bootstrap confidence interval. One value: the interval is that value (no spread can
 * be known). Non-finite values are left out; none left: undefined.
 */
export function spreadOf(values: readonly number[], resamples = BOOTSTRAP_RESAMPLES, seed = SEED): MetricSpread | undefined {
  const finite = values.filter((v) => Number.isFinite(v));
  if (finite.length === 0) return undefined;
  const m = median(finite);
  if (finite.length === 1) return { median: m, low: m, high: m, n: 1 };
  const random = seededRandom(seed);
  const medians = new Array<number>(resamples);
  const sample = new Array<number>(finite.length);
  for (let r = 0; r < resamples; r++) {
    for (let i = 0; i < finite.length; i++) sample[i] = finite[Math.floor(random() * finite.length)]!;
    medians[r] = median(sample);
  }
  medians.sort((a, b) => a - b);
  const tail = (1 - CONFIDENCE) / 2;
  return { median: m, low: quantile(medians, tail), high: quantile(medians, 1 - tail), n: finite.length };
}

/**
 * Whether a point's CPU readings can be used: no process role's CPU went down over the window. A live process's
 * CPU time only grows; a reading that fell means one of the target's processes ended mid-window (Pushpin's, seen in
 * the lab) and took its CPU time with it, so the sum is not the window's work.
 */
export function cpuUsable(p: LoadPointResult): boolean {
  return Object.values(p.cost ?? {}).every((c) => c === undefined || !(c.cpuS < 0));
}

/** The metrics summarised, and how each is read from a measured point. */
export const METRICS = {
  publishedPerS: (p) => p.publisher?.ratePerS,
  dropped: (p) => p.publisher?.dropped,
  deliveriesPerS: (p) => p.derived?.deliveriesPerS,
  p50Ms: (p) => p.subscribers?.latency.p50,
  p95Ms: (p) => p.subscribers?.latency.p95,
  p99Ms: (p) => p.subscribers?.latency.p99,
  maxMs: (p) => p.subscribers?.latency.max,
  commitP50Ms: (p) => p.subscribers?.commitLatency?.p50,
  commitP99Ms: (p) => p.subscribers?.commitLatency?.p99,
  cpuSPer1000Deliveries: (p) => (cpuUsable(p) ? p.derived?.cpuSPer1000Deliveries : undefined),
  serverCoresBusy: (p) => (p.windowS && cpuUsable(p) ? (p.cost?.total?.cpuS ?? NaN) / p.windowS : undefined),
  generatorCoresBusy: (p) => (p.windowS ? (p.loadGeneratorCpuS ?? NaN) / p.windowS : undefined),
  // Short polling parks nothing: a "per parked connection" figure would be per-session noise.
  memoryPerParkedBytes: (p) => (p.protocol === 'chat-short-poll' ? undefined : p.derived?.memoryPerParkedBytes),
  requestsPerDelivery: (p) => p.derived?.requestsPerDelivery,
  bytesPerDelivery: (p) => p.derived?.bytesPerDelivery,
  // The scale-out scenario's own (bench/lab/scaleout.ts): each run's park rate and its median over fan-out rounds.
  scaleoutParkedPerS: (p) => p.scaleout?.parkedPerS,
  scaleoutFanoutMs: (p) => p.scaleout?.fanoutMsMedian,
} satisfies Record<string, (p: LoadPointResult) => number | undefined>;

export type MetricName = keyof typeof METRICS;

/** The key runs of one load point share; the room count too, which the multicast scenario varies. */
export function pointKey(p: Pick<LoadPointResult, 'scenario' | 'target' | 'clients' | 'ratePerS'> & { rooms?: number }): string {
  return `${p.scenario ?? 'chat'}|${p.target}|${p.clients}|${p.ratePerS}|${p.rooms ?? ''}`;
}

/** A run that counts toward the medians: it ran and delivered (or, a connection storm, ran). */
export function measured(p: LoadPointResult): boolean {
  if (p.status !== 'ok' || p.derived === undefined) return false;
  return p.scenario === 'park' || (p.subscribers?.deliveries ?? 0) > 0;
}

/** One summary per load point, in order of first appearance. */
export function summarize(points: readonly LoadPointResult[]): PointSummary[] {
  const groups = new Map<string, LoadPointResult[]>();
  for (const p of points) {
    const key = pointKey(p);
    const list = groups.get(key);
    if (list === undefined) groups.set(key, [p]);
    else list.push(p);
  }
  return [...groups.values()].map((runs) => {
    const first = runs[0]!;
    const ok = runs.filter(measured);
    const metrics: Partial<Record<MetricName, MetricSpread>> = {};
    for (const [name, read] of Object.entries(METRICS) as Array<[MetricName, (p: LoadPointResult) => number | undefined]>) {
      const spread = spreadOf(ok.map(read).filter((v): v is number => v !== undefined));
      if (spread !== undefined) metrics[name] = spread;
    }
    return {
      scenario: first.scenario ?? 'chat',
      target: first.target,
      title: first.title,
      kind: first.kind,
      protocol: first.protocol,
      clients: first.clients,
      ratePerS: first.ratePerS,
      rooms: first.rooms,
      runs: runs.length,
      measured: ok.length,
      lossy: ok.filter((p) => (p.subscribers?.lost ?? 0) > 0 || (p.subscribers?.duplicated ?? 0) > 0).length,
      generatorSaturated: ok.filter((p) => p.generatorSaturated === true).length,
      unavailable: runs.some((p) => p.status === 'unavailable'),
      metrics,
    };
  });
}
