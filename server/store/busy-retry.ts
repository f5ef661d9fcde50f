/**
 * Waiting for another connection's write lock without blocking the event loop.
 *
 * better-sqlite3 is synchronous, so SQLite's own `busy_timeout` sleeps inside
 * the call: with a 5 s timeout, one held lock would freeze every request of
 * the app for 5 s. Instead the database keeps a short synchronous slice
 * (`SYNC_BUSY_SLICE_MS`, enough for ordinary contention), and a write that
 * still finds the database busy is retried on timers, with backoff, until the
 * app's patience (`sqliteBusyTimeoutMs`) runs out; then the busy error goes up
 * and becomes `503 APP_ERR_DB_BUSY`. A busy write was rolled back whole (the
 * lock is taken at `BEGIN IMMEDIATE`, before anything is written), so running
 * it again is safe.
 */
import { performance } from 'node:perf_hooks';

/** SQLite's own busy wait per attempt, ms: short, since it blocks the event loop. */
export const SYNC_BUSY_SLICE_MS = 20;

const FIRST_DELAY_MS = 2;
const MAX_DELAY_MS = 50;

/** SQLITE_BUSY / SQLITE_LOCKED, with or without an extended code. */
export function isBusyError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^SQLITE_(BUSY|LOCKED)(_|$)/.test(code);
}

export class BusyRetry {
  /** Attempts that found the database busy and were retried (observability and tests). */
  retries = 0;

  /** `patienceMs`: how long, in all, a write may wait for the lock. Measured on the wall clock. */
  constructor(private readonly patienceMs: number) {}

  /** Runs `attempt` (synchronous, all-or-nothing) until it does not fail busy, or patience runs out. */
  async run<T>(attempt: () => T): Promise<T> {
    const start = performance.now();
    let delayMs = FIRST_DELAY_MS;
    for (;;) {
      try {
        return attempt();
      } catch (err) {
        if (!isBusyError(err) || performance.now() - start + delayMs > this.patienceMs) throw err;
        this.retries++;
        await new Promise((resolve) => setTimeout(resolve, delayMs));
        delayMs = Math.min(delayMs * 2, MAX_DELAY_MS);
      }
    }
  }
}
