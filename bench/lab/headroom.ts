/**
 * The load generator's headroom: each subscriber worker's CPU over the
 * measured window as a share of one core. A worker near a full core is
 * queueing its own clients' reads, so latency and delivery rate then measure
 * the generator as much as the target (a second worker once moved one target's
 * p50 from 133 to 12 ms). Such a point is flagged in results.json and the report.
 */

/** A worker above this share of one core makes the point's figures suspect. */
export const GENERATOR_SATURATED_SHARE = 0.9;

/**
 * CPU seconds per worker over a window of `windowS` seconds, as shares of one core. A negative delta (the worker
 * exited during the window and its /proc entry went with it) has no reading: NaN.
 */
export function coreShares(cpuSecondsPerWorker: readonly number[], windowS: number): number[] {
  if (!(windowS > 0)) return cpuSecondsPerWorker.map(() => NaN);
  return cpuSecondsPerWorker.map((s) => (s >= 0 ? s / windowS : NaN));
}

/** True when any worker passed GENERATOR_SATURATED_SHARE of a core. */
export function generatorSaturated(shares: readonly number[]): boolean {
  return shares.some((s) => Number.isFinite(s) && s > GENERATOR_SATURATED_SHARE);
}
