/**
 * The bounded queue of pushed items for one connection ID while it is not
 * parked (docs/protocol.md §7.2). When it cannot keep its promise (an item does
 * not fit, or items grow too old) it does not silently lose items: it empties
 * itself and flags a resync, which the next hold answers (§8). Pure data
 * structure; time comes from the injected `now`.
 */
import type { ResyncReason } from '../../protocol/resync.js';

export interface QueueLimits {
  /** Most items kept. */
  maxItems: number;
  /** Most bytes of bodies kept. */
  maxBytes: number;
  /** Items older than this (since enqueue) expire, ms. */
  ttlMs: number;
}

interface Entry<T> {
  item: T;
  bytes: number;
  enqueuedAtMs: number;
}

/** Outcome of `push`: kept, or the queue overflowed and `dropped` items (the new one included) were discarded. */
export type PushOutcome = { queued: true } | { queued: false; dropped: number };

export class ConnectionQueue<T> {
  private entries: Entry<T>[] = [];
  private totalBytes = 0;
  private resync: ResyncReason | null = null;
  private resyncAtMs = 0;

  /**
   * `onDrop(n)` is called whenever items are discarded (overflow, expiry,
   * clear, resync), so the owner keeps one count of lost items.
   */
  constructor(
    private readonly limits: QueueLimits,
    private readonly now: () => number,
    private readonly onDrop: (count: number) => void = () => {},
  ) {}

  /** Items kept now. */
  get size(): number {
    return this.entries.length;
  }

  /** Bytes of bodies kept now. */
  get bytes(): number {
    return this.totalBytes;
  }

  /** The pending resync reason, or null. */
  get resyncPending(): ResyncReason | null {
    return this.resync;
  }

  /** When the pending resync was flagged (ms, from `now`); meaningful only while one is pending. */
  get resyncSinceMs(): number {
    return this.resyncAtMs;
  }

  /** Nothing queued and no resync pending: the queue can be forgotten. */
  get isIdle(): boolean {
    return this.size === 0 && this.resync === null;
  }

  /**
   * Appends `item` (`bytes` of body). If it does not fit the limits, the queue is
   * emptied, a `queue-overflow` resync is flagged, and the item is dropped with
   * everything that was queued.
   */
  push(item: T, bytes: number): PushOutcome {
    this.expire();
    if (this.size + 1 > this.limits.maxItems || this.totalBytes + bytes > this.limits.maxBytes) {
      const dropped = this.clear() + 1;
      this.onDrop(1);
      this.flag('queue-overflow');
      return { queued: false, dropped };
    }
    this.entries.push({ item, bytes, enqueuedAtMs: this.now() });
    this.totalBytes += bytes;
    return { queued: true };
  }

  /** Puts an item taken but not written back at the head (shared store, proxy/cluster/): it counts as new. */
  requeue(item: T, bytes: number): void {
    this.entries.unshift({ item, bytes, enqueuedAtMs: this.now() });
    this.totalBytes += bytes;
  }

  /** Removes and returns the oldest unexpired item, or undefined. */
  shift(): T | undefined {
    this.expire();
    const entry = this.entries.shift();
    if (entry === undefined) return undefined;
    this.totalBytes -= entry.bytes;
    return entry.item;
  }

  /**
   * Drops items older than the TTL and, if any, flags a `queue-expired` resync:
   * the client missed them. Returns how many were dropped.
   */
  expire(): number {
    const cutoff = this.now() - this.limits.ttlMs;
    // Entries are in enqueue order, so the expired ones are a prefix.
    let dropped = 0;
    while (dropped < this.entries.length && this.entries[dropped]!.enqueuedAtMs <= cutoff) {
      this.totalBytes -= this.entries[dropped]!.bytes;
      dropped++;
    }
    if (dropped > 0) {
      this.entries.splice(0, dropped);
      this.onDrop(dropped);
      this.flag('queue-expired');
    }
    return dropped;
  }

  /**
   * Takes the pending resync (after expiring old items, which may flag one):
   * clears the flag and empties the queue (the client reloads its state
   * instead). Returns the reason and how many items were discarded.
   */
  takeResync(): { reason: ResyncReason; dropped: number } | null {
    this.expire();
    if (this.resync === null) return null;
    const reason = this.resync;
    this.resync = null;
    return { reason, dropped: this.clear() };
  }

  /** Empties the queue (keeps any resync flag); returns how many items were discarded. */
  clear(): number {
    const dropped = this.size;
    this.entries = [];
    this.totalBytes = 0;
    if (dropped > 0) this.onDrop(dropped);
    return dropped;
  }

  /** The first reason stays: an overflow followed by an expiry is still an overflow to the client. */
  flag(reason: ResyncReason): void {
    if (this.resync !== null) return;
    this.resync = reason;
    this.resyncAtMs = this.now();
  }
}
