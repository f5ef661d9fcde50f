/**
 * The order a lab run visits its load points. Repeats are interleaved: run r
 * of every point comes before run r + 1 of any, so a slow drift of the
 * machine (another tenant, thermal state, a page cache filling) spreads over
 * every target instead of landing on whichever ran last. Pure, tested in
 * test/bench/lab/stats.test.ts.
 */
export interface PlanStep<T> {
  /** 1-based run of this point. */
  repeat: number;
  clients: number;
  /** Requested publish rate of this point. */
  ratePerS: number;
  target: T;
}

/** Repeat, then client count, then rate (ascending, a sweep), then target: targets side by side at each load. */
export function runPlan<T>(repeat: number, clients: readonly number[], targets: readonly T[], rates: readonly number[] = [0]): Array<PlanStep<T>> {
  const steps: Array<PlanStep<T>> = [];
  for (let r = 1; r <= repeat; r++) {
    for (const c of clients) {
      for (const ratePerS of rates) for (const target of targets) steps.push({ repeat: r, clients: c, ratePerS, target });
    }
  }
  return steps;
}
