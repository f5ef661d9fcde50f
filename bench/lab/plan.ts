/**
 * The order a lab run visits its load points. Repeats are interleaved: run r
 * of every point comes before run r + 1 of any, so a slow drift of the
 * machine (another tenant, thermal state, a page cache filling) spreads over
 * every target instead of landing on whichever ran last. Pure, tested in
 * test/bench/lab/stats.test.ts and test/bench/lab/multicast.test.ts.
 */
import type { LabOptions } from './options.js';

/** What one load point offers: its room count (undefined: `--rooms`) and publish rate over all rooms. */
export interface PointLoad {
  rooms?: number;
  ratePerS: number;
}

export interface PlanStep<T> {
  /** 1-based run of this point. */
  repeat: number;
  clients: number;
  /** Requested publish rate of this point. */
  ratePerS: number;
  /** Room count of this point; undefined: the run's `--rooms`. */
  rooms?: number;
  target: T;
}

/**
 * The loads of a run. Chat: one per requested rate (a sweep). Multicast: one per room count, at `rate × rooms`
 * messages/s over all rooms, so each room (and so each subscriber) gets `rate` messages/s and the delivery rate,
 * clients × rate, is the same at every room count: only the fan-out per message (clients / rooms) changes.
 */
export function pointLoads(options: Pick<LabOptions, 'scenario' | 'rates' | 'ratePerS' | 'roomsList'>): PointLoad[] {
  if (options.scenario === 'multicast') return options.roomsList.map((rooms) => ({ rooms, ratePerS: options.ratePerS * rooms }));
  return options.rates.map((ratePerS) => ({ ratePerS }));
}

/**
 * Repeat, then client count, then load (ascending rates of a sweep, or the multicast room counts), then target:
 * targets side by side at each load. A load given as a number is a rate at the run's `--rooms`.
 */
export function runPlan<T>(
  repeat: number,
  clients: readonly number[],
  targets: readonly T[],
  loads: ReadonlyArray<number | PointLoad> = [0],
): Array<PlanStep<T>> {
  const steps: Array<PlanStep<T>> = [];
  for (let r = 1; r <= repeat; r++) {
    for (const c of clients) {
      for (const load of loads) {
        const { ratePerS, rooms } = typeof load === 'number' ? { ratePerS: load, rooms: undefined } : load;
        for (const target of targets) steps.push({ repeat: r, clients: c, ratePerS, ...(rooms === undefined ? {} : { rooms }), target });
      }
    }
  }
  return steps;
}
