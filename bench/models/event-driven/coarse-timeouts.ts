/**
 * Hold timeouts without a timer per request: deadlines are rounded up to a
 * tick and kept in one Set per tick ("bucket"); one interval sweeps the
 * buckets that are due. Parking is a Set insert, unparking a Set delete, and
 * the timer wheel of libuv never sees the parked requests. A hold lasts
 * between `timeoutMs` and `timeoutMs + tickMs`.
 */

export interface CoarseTimeoutsOptions {
  /** Time a member stays before it expires, ms. */
  timeoutMs: number;
  /** Bucket width and sweep period, ms. */
  tickMs: number;
  /** Monotonic clock, ms (injectable for tests). Default `performance.now`. */
  now?: () => number;
}

export class CoarseTimeouts<T> {
  /** Bucket key (deadline / tick, rounded up) -> members. */
  private readonly buckets = new Map<number, Set<T>>();
  private readonly timeoutMs: number;
  private readonly tickMs: number;
  private readonly now: () => number;

  constructor(options: CoarseTimeoutsOptions) {
    this.timeoutMs = options.timeoutMs;
    this.tickMs = options.tickMs;
    this.now = options.now ?? (() => performance.now());
  }

  /** Adds `item`; returns its bucket, which the caller keeps to `remove` it in O(1). */
  add(item: T): Set<T> {
    const key = Math.ceil((this.now() + this.timeoutMs) / this.tickMs);
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      bucket = new Set();
      this.buckets.set(key, bucket);
    }
    bucket.add(item);
    return bucket;
  }

  remove(item: T, bucket: Set<T>): void {
    bucket.delete(item);
  }

  /**
   * Takes every member whose deadline has passed out and hands it to
   * `onExpire`. Buckets are few (timeout / tick), so all are looked at rather
   * than trusting their order.
   */
  expire(onExpire: (item: T) => void): void {
    const dueKey = Math.floor(this.now() / this.tickMs);
    for (const [key, bucket] of this.buckets) {
      if (key > dueKey) continue;
      this.buckets.delete(key);
      for (const item of bucket) onExpire(item);
    }
    // Empty buckets (everyone answered early) are dropped when due, above; nothing else to tidy.
  }

  /** Takes every member out, due or not (shutdown). */
  drain(onItem: (item: T) => void): void {
    const buckets = [...this.buckets.values()];
    this.buckets.clear();
    for (const bucket of buckets) for (const item of bucket) onItem(item);
  }
}
