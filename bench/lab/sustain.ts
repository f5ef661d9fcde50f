/**
 * Rate sweeps (`--rates a,b,c`): which requested rates a target sustained at
 * a client count, and its maximum sustainable delivery rate. Pure, over the
 * per-point summaries (bench/lab/stats.ts); tested in test/bench/lab/sustain.test.ts.
 *
 * A requested rate R is **sustained** when every run of the point was measured
 * and, in the median run: no due message was dropped, the target accepted at
 * least SUSTAINED_PUBLISH_SHARE of R, the p99 due-to-receipt latency stayed at
 * or under the yardstick (`--sustain-p99-ms`, default 1 s); and no run lost or
 * duplicated a delivery or had its load generator past 90% of a core (such a
 * run says nothing about the target, so the rate is not claimed). The
 * **maximum sustainable rate** is the highest R such that R and every lower
 * rate of the sweep were sustained; its delivery rate is that point's median
 * deliveries/s.
 */
import type { MetricSpread, PointSummary } from './results.js';

/** Accepted publishes of at least this share of the requested rate. */
export const SUSTAINED_PUBLISH_SHARE = 0.95;

export interface RateVerdict {
  ratePerS: number;
  sustained: boolean;
  /** Why not (empty when sustained). */
  reasons: string[];
  deliveriesPerS?: number;
  p99Ms?: number;
  cpuSPer1000Deliveries?: MetricSpread;
}

export interface SweepResult {
  scenario: PointSummary['scenario'];
  target: string;
  title: string;
  clients: number;
  /** Ascending. */
  rates: RateVerdict[];
  /** The maximum sustainable requested rate, msg/s, and its median deliveries/s; null when the lowest failed. */
  maxSustainedRatePerS: number | null;
  maxSustainedDeliveriesPerS: number | null;
  /** `within`: a higher rate of the sweep failed; `above-highest`: every rate held (the maximum is higher); `below-lowest`. */
  bound: 'within' | 'above-highest' | 'below-lowest';
}

const fmt = (n: number): string => String(Math.round(n * 100) / 100);

export function rateVerdict(s: PointSummary, p99LimitMs: number): RateVerdict {
  const m = s.metrics;
  const reasons: string[] = [];
  if (s.measured < s.runs) reasons.push(`${s.runs - s.measured} of ${s.runs} runs failed`);
  if (s.measured > 0) {
    if (s.lossy > 0) reasons.push(`lost or duplicated deliveries in ${s.lossy} runs`);
    if ((s.generatorSaturated ?? 0) > 0) reasons.push(`load generator past 90% of a core in ${s.generatorSaturated} runs`);
    if ((m.dropped?.median ?? 0) > 0) reasons.push(`dropped ${fmt(m.dropped!.median)} due messages`);
    const published = m.publishedPerS?.median ?? 0;
    if (published < SUSTAINED_PUBLISH_SHARE * s.ratePerS) reasons.push(`accepted ${fmt(published)} of ${fmt(s.ratePerS)} msg/s`);
    if (m.p99Ms === undefined || m.p99Ms.median > p99LimitMs) reasons.push(`p99 ${m.p99Ms === undefined ? 'unknown' : `${fmt(m.p99Ms.median)} ms`} > ${fmt(p99LimitMs)} ms`);
  }
  return {
    ratePerS: s.ratePerS,
    sustained: reasons.length === 0,
    reasons,
    ...(m.deliveriesPerS === undefined ? {} : { deliveriesPerS: m.deliveriesPerS.median }),
    ...(m.p99Ms === undefined ? {} : { p99Ms: m.p99Ms.median }),
    ...(m.cpuSPer1000Deliveries === undefined ? {} : { cpuSPer1000Deliveries: m.cpuSPer1000Deliveries }),
  };
}

/** One sweep per (scenario, target, clients) measured at more than one rate, in order of first appearance. */
export function sweepsOf(summaries: readonly PointSummary[], p99LimitMs: number): SweepResult[] {
  const groups = new Map<string, PointSummary[]>();
  for (const s of summaries) {
    // Multicast points differ in rate because their room count differs: that is no sweep.
    if (s.scenario === 'multicast') continue;
    const key = `${s.scenario}|${s.target}|${s.clients}`;
    const list = groups.get(key);
    if (list === undefined) groups.set(key, [s]);
    else list.push(s);
  }
  const out: SweepResult[] = [];
  for (const points of groups.values()) {
    if (points.length < 2) continue;
    const rates = [...points].sort((a, b) => a.ratePerS - b.ratePerS).map((s) => rateVerdict(s, p99LimitMs));
    let held = 0;
    while (held < rates.length && rates[held]!.sustained) held++;
    const top = held > 0 ? rates[held - 1]! : null;
    const first = points[0]!;
    out.push({
      scenario: first.scenario,
      target: first.target,
      title: first.title,
      clients: first.clients,
      rates,
      maxSustainedRatePerS: top?.ratePerS ?? null,
      maxSustainedDeliveriesPerS: top?.deliveriesPerS ?? null,
      bound: held === 0 ? 'below-lowest' : held === rates.length ? 'above-highest' : 'within',
    });
  }
  return out;
}
