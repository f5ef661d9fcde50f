/**
 * Report sections for two claims of the talk that need points read side by
 * side (docs/models.md, "One experiment per claim"):
 * - multicast: the multicast scenario's room counts at one delivery rate, and
 *   per target the CPU a message costs on top of its deliveries (the slope of
 *   server cores busy against messages/s, deliveries/s being fixed);
 * - leases: `suspend-push` (re-poll leases) beside `suspend-push-plain` (every
 *   re-poll reaches the app), with the differences;
 * - access control: each model beside the same model with a costlier per-poll
 *   check, and whether both kept up with the load (matched delivery rates).
 * Pure: from summaries and points only, tested in test/bench/lab/experiments.test.ts.
 */
import type { LoadPointResult, MetricSpread, PointSummary } from '../results.js';
import { measured, median, spreadOf } from '../stats.js';
import { SUSTAINED_PUBLISH_SHARE } from '../sustain.js';

/** The CPU a target spends per message beyond its deliveries, from the multicast scenario's room counts. */
export interface MulticastCost {
  target: string;
  title: string;
  clients: number;
  /** Per room count, ascending: the medians the fit used. */
  rooms: Array<{ rooms: number; requestedPerS: number; publishedPerS: number; deliveriesPerS: number; serverCoresBusy: number; cpuSPer1000Deliveries: number; p99Ms: number | undefined }>;
  /**
   * Least-squares slope of server cores busy against published messages/s, in CPU ms per message: what one more
   * message costs when the deliveries stay the same (the fixed per-message part of fan-out). Null: fewer than 2
   * measured room counts, no spread in messages/s, or a room count that fell behind (below).
   */
  cpuMsPerMessage: number | null;
  /**
   * Room counts whose target accepted less than 95% of the requested rate: their deliveries/s were not the fixed
   * rate the comparison needs, so no slope is claimed.
   */
  fellBehind: number[];
}

/** One multicast cost per (target, clients) with measured points at 2 or more room counts; in order of first appearance. */
export function multicastCosts(summaries: readonly PointSummary[]): MulticastCost[] {
  const groups = new Map<string, PointSummary[]>();
  for (const s of summaries) {
    if (s.scenario !== 'multicast' || s.measured === 0 || s.rooms === undefined) continue;
    const key = `${s.target}|${s.clients}`;
    const list = groups.get(key);
    if (list === undefined) groups.set(key, [s]);
    else list.push(s);
  }
  const out: MulticastCost[] = [];
  for (const list of groups.values()) {
    const rooms = [...list]
      .sort((a, b) => a.rooms! - b.rooms!)
      .flatMap((s) => {
        const m = s.metrics;
        if (m.publishedPerS === undefined || m.serverCoresBusy === undefined || m.deliveriesPerS === undefined || m.cpuSPer1000Deliveries === undefined) return [];
        return [
          {
            rooms: s.rooms!,
            requestedPerS: s.ratePerS,
            publishedPerS: m.publishedPerS.median,
            deliveriesPerS: m.deliveriesPerS.median,
            serverCoresBusy: m.serverCoresBusy.median,
            cpuSPer1000Deliveries: m.cpuSPer1000Deliveries.median,
            p99Ms: m.p99Ms?.median,
          },
        ];
      });
    const first = list[0]!;
    const fellBehind = rooms.filter((r) => r.publishedPerS < SUSTAINED_PUBLISH_SHARE * r.requestedPerS).map((r) => r.rooms);
    const fit = fellBehind.length === 0 ? slope(rooms.map((r) => [r.publishedPerS, r.serverCoresBusy])) : null;
    out.push({ target: first.target, title: first.title, clients: first.clients, rooms, cpuMsPerMessage: fit, fellBehind });
  }
  return out.filter((c) => c.rooms.length >= 2);
}

/** Least-squares slope of y on x, × 1000 (cores per msg/s = CPU s per message → ms); null without spread in x. */
function slope(xy: ReadonlyArray<readonly [number, number]>): number | null {
  if (xy.length < 2) return null;
  const mx = xy.reduce((a, [x]) => a + x, 0) / xy.length;
  const my = xy.reduce((a, [, y]) => a + y, 0) / xy.length;
  let sxx = 0;
  let sxy = 0;
  for (const [x, y] of xy) {
    sxx += (x - mx) ** 2;
    sxy += (x - mx) * (y - my);
  }
  return sxx === 0 ? null : (sxy / sxx) * 1000;
}

/** The leased and the plain Suspend & Push stack at one load, side by side. */
export interface LeasePair {
  scenario: string;
  clients: number;
  ratePerS: number;
  rooms: number | undefined;
  /** Medians over measured runs; undefined when the side has no measured run. */
  leased: LeaseSide;
  plain: LeaseSide;
}

export interface LeaseSide {
  requestsPerDelivery?: number;
  cpuSPer1000Deliveries?: number;
  p99Ms?: number;
  /** The app process's share of the stack's CPU in the window (median over measured runs), 0..1. */
  appCpuShare?: number;
}

export const LEASED_TARGET = 'suspend-push';
export const PLAIN_TARGET = 'suspend-push-plain';

function side(summary: PointSummary | undefined, points: readonly LoadPointResult[]): LeaseSide {
  if (summary === undefined || summary.measured === 0) return {};
  const shares = points
    .filter((p) => measured(p) && p.cost?.app !== undefined && (p.cost.total?.cpuS ?? 0) > 0)
    .map((p) => p.cost!.app!.cpuS / p.cost!.total!.cpuS);
  const m = summary.metrics;
  return {
    ...(m.requestsPerDelivery ? { requestsPerDelivery: m.requestsPerDelivery.median } : {}),
    ...(m.cpuSPer1000Deliveries ? { cpuSPer1000Deliveries: m.cpuSPer1000Deliveries.median } : {}),
    ...(m.p99Ms ? { p99Ms: m.p99Ms.median } : {}),
    ...(shares.length > 0 ? { appCpuShare: median(shares) } : {}),
  };
}

/** Every load (scenario, clients, rate, rooms) at which both Suspend & Push targets ran, in order of first appearance. */
export function leasePairs(summaries: readonly PointSummary[], points: readonly LoadPointResult[]): LeasePair[] {
  const loadKey = (x: { scenario?: string; clients: number; ratePerS: number; rooms?: number }): string =>
    `${x.scenario ?? 'chat'}|${x.clients}|${x.ratePerS}|${x.rooms ?? ''}`;
  const out: LeasePair[] = [];
  const seen = new Set<string>();
  for (const s of summaries) {
    const key = loadKey(s);
    if (seen.has(key)) continue;
    const leased = summaries.find((x) => x.target === LEASED_TARGET && loadKey(x) === key);
    const plain = summaries.find((x) => x.target === PLAIN_TARGET && loadKey(x) === key);
    if (leased === undefined || plain === undefined) continue;
    seen.add(key);
    const pointsOf = (target: string): LoadPointResult[] => points.filter((p) => p.target === target && loadKey(p) === key);
    out.push({
      scenario: s.scenario,
      clients: s.clients,
      ratePerS: s.ratePerS,
      rooms: s.rooms,
      leased: side(leased, pointsOf(LEASED_TARGET)),
      plain: side(plain, pointsOf(PLAIN_TARGET)),
    });
  }
  return out;
}

/** leased − plain, or undefined when either side lacks the figure. */
export function difference(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined || b === undefined ? undefined : a - b;
}

/** Kept up with its offered load: measured, no lossy run, no due message dropped and ≥ 95% of the rate accepted (medians). */
export function keptUp(s: PointSummary | undefined): boolean {
  if (s === undefined || s.measured === 0 || s.lossy > 0) return false;
  const m = s.metrics;
  return (m.dropped?.median ?? 0) === 0 && (m.publishedPerS?.median ?? 0) >= SUSTAINED_PUBLISH_SHARE * s.ratePerS;
}

/**
 * The access-control experiment's pairs (docs/models.md, "Access control"): the same model with a costlier
 * per-poll check (`checked`) beside the one without (`unchecked`), at one load. `mailbox-checked` − `mailbox` is a
 * per-poll SQLite session read on its own; `suspend-push-plain` − `suspend-push` is the app's per-poll check plus
 * everything else a re-poll through the app costs, against the lease's HMAC in the proxy.
 */
export const ACCESS_CONTROL_PAIRS = [
  { checked: 'mailbox-checked', unchecked: 'mailbox', what: 'a SQLite session read per poll, in the mailbox tier' },
  { checked: PLAIN_TARGET, unchecked: LEASED_TARGET, what: "the app's check per re-poll (with its Express hop and presence write), against the lease's HMAC in the proxy" },
] as const;

export interface AccessControlPair {
  checked: PointSummary;
  unchecked: PointSummary;
  what: string;
  /** Both kept up with the offered load, so their CPU per delivery compares the same delivery rate. */
  matched: boolean;
}

/** Every pair of ACCESS_CONTROL_PAIRS that ran at one load (scenario, clients, rate, rooms), in order of first appearance. */
export function accessControlPairs(summaries: readonly PointSummary[]): AccessControlPair[] {
  const loadKey = (x: PointSummary): string => `${x.scenario}|${x.clients}|${x.ratePerS}|${x.rooms ?? ''}`;
  const out: AccessControlPair[] = [];
  for (const s of summaries) {
    const pair = ACCESS_CONTROL_PAIRS.find((p) => p.unchecked === s.target);
    const checked = pair && summaries.find((x) => x.target === pair.checked && loadKey(x) === loadKey(s));
    if (pair === undefined || checked === undefined) continue;
    out.push({ checked, unchecked: s, what: pair.what, matched: keptUp(checked) && keptUp(s) });
  }
  return out;
}

/**
 * The multicast slope with its spread: one slope per repeat r over the room counts' r-th runs (interleaved, so
 * they ran side by side), then their median and bootstrap interval. Undefined with fewer than 2 usable repeats.
 */
export function multicastSlopeSpread(points: readonly LoadPointResult[], target: string, clients: number): MetricSpread | undefined {
  const byRepeat = new Map<number, Array<readonly [number, number]>>();
  for (const p of points) {
    if (p.scenario !== 'multicast' || p.target !== target || p.clients !== clients || !measured(p)) continue;
    const cores = p.windowS ? (p.cost?.total?.cpuS ?? NaN) / p.windowS : NaN;
    const published = p.publisher?.ratePerS;
    if (published === undefined || !Number.isFinite(cores)) continue;
    const list = byRepeat.get(p.repeat ?? 1) ?? [];
    list.push([published, cores]);
    byRepeat.set(p.repeat ?? 1, list);
  }
  const slopes = [...byRepeat.values()].map(slope).filter((v): v is number => v !== null);
  return slopes.length < 2 ? undefined : spreadOf(slopes);
}
