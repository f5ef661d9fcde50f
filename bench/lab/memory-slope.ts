/**
 * Memory per parked connection as a slope: over the points of one target at
 * several client counts (same scenario and rate), the least-squares line of
 * (RSS with every subscriber parked − RSS set up, not polling) against the
 * number parked. Its slope is the memory one more parked connection costs;
 * fixed costs (buffers, caches, a first allocation of a pool) go into the
 * intercept instead of being divided over the clients, which made small client
 * counts look expensive. Both readings follow a forced GC in Node targets
 * (force-gc.ts); Nchan and Pushpin are read as they are (their RSS slope).
 * Short polling parks nothing: no slope. Pure; tested in test/bench/lab/memory-slope.test.ts.
 */
import type { LoadPointResult } from './results.js';
import { measured } from './stats.js';

export interface LinearFit {
  slope: number;
  intercept: number;
  /** Coefficient of determination, 0..1 (1 when every point is on the line). */
  r2: number;
}

/** Ordinary least squares of y on x; null with fewer than 2 distinct x. */
export function linearFit(xs: readonly number[], ys: readonly number[]): LinearFit | null {
  const n = Math.min(xs.length, ys.length);
  if (n < 2 || new Set(xs.slice(0, n)).size < 2) return null;
  const mx = xs.slice(0, n).reduce((a, b) => a + b, 0) / n;
  const my = ys.slice(0, n).reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i]! - mx) * (ys[i]! - my);
    sxx += (xs[i]! - mx) ** 2;
    syy += (ys[i]! - my) ** 2;
  }
  const slope = sxy / sxx;
  return { slope, intercept: my - slope * mx, r2: syy === 0 ? 1 : (sxy * sxy) / (sxx * syy) };
}

export interface MemorySlope {
  scenario: string;
  target: string;
  title: string;
  ratePerS: number;
  /** Distinct client counts the fit is over, ascending, and the runs (points) used. */
  clients: number[];
  runs: number;
  /** Bytes per parked connection (the slope), the fixed part (intercept, bytes) and the fit's r². */
  bytesPerConnection: number;
  interceptBytes: number;
  r2: number;
  /** The same slope per role (`proxy`, `app`, `nginx`, ...). */
  bytesPerConnectionByRole: Record<string, number>;
  /** Node processes collected before both readings at every point (0: RSS read as it was, e.g. Nchan). */
  gcForced: boolean;
}

/** One slope per (scenario, target, rate) measured at 2 or more client counts; short polling excluded. */
export function memorySlopes(points: readonly LoadPointResult[]): MemorySlope[] {
  const groups = new Map<string, LoadPointResult[]>();
  for (const p of points) {
    if (!measured(p) || p.cost?.total === undefined || p.protocol === 'chat-short-poll') continue;
    const key = `${p.scenario ?? 'chat'}|${p.target}|${p.ratePerS}`;
    const list = groups.get(key);
    if (list === undefined) groups.set(key, [p]);
    else list.push(p);
  }
  const out: MemorySlope[] = [];
  for (const group of groups.values()) {
    const xs = group.map((p) => p.clients);
    const delta = (p: LoadPointResult, role: string): number => (p.cost![role]?.rssParkedBytes ?? 0) - (p.cost![role]?.rssIdleBytes ?? 0);
    const fit = linearFit(xs, group.map((p) => delta(p, 'total')));
    if (fit === null) continue;
    const roles = [...new Set(group.flatMap((p) => Object.keys(p.cost!)))].filter((r) => r !== 'total');
    const byRole: Record<string, number> = {};
    for (const role of roles) {
      const roleFit = linearFit(xs, group.map((p) => delta(p, role)));
      if (roleFit !== null) byRole[role] = roleFit.slope;
    }
    const first = group[0]!;
    out.push({
      scenario: first.scenario ?? 'chat',
      target: first.target,
      title: first.title,
      ratePerS: first.ratePerS,
      clients: [...new Set(xs)].sort((a, b) => a - b),
      runs: group.length,
      bytesPerConnection: fit.slope,
      interceptBytes: fit.intercept,
      r2: fit.r2,
      bytesPerConnectionByRole: byRole,
      gcForced: group.every((p) => (p.gc?.collected ?? 0) > 0),
    });
  }
  return out;
}
