/**
 * What the proxy knows per connection ID (docs/protocol.md §5, §7.2, §7.3):
 * the request parked under it, its queue, and, once closed, a tombstone that
 * refuses holds for `closedTtlMs`. An ID with nothing parked, nothing queued
 * and no resync pending holds no state. Pure data structure; time comes from
 * the injected `now`.
 */
import { ConnectionQueue } from './connection-queue.js';
import type { ItemResponse } from '../http/response.js';

export interface ConnectionLimits {
  queueMaxItems: number;
  queueMaxBytes: number;
  queueTtlMs: number;
  /** A connection with a resync pending and nothing parked is forgotten after this, ms. */
  resyncTtlMs: number;
  /** A closed ID refuses holds for this long, ms. */
  closedTtlMs: number;
}

export interface Connection<P> {
  /** The request parked under this ID, if any (at most one, docs §4 step 4). */
  parked: P | null;
  queue: ConnectionQueue<ItemResponse>;
}

export class ConnectionTable<P> {
  private readonly live = new Map<string, Connection<P>>();
  /** Closed IDs -> close time, ms; kept in close-time order so the sweep stops at the first live one. */
  private readonly closed = new Map<string, number>();

  /** `onDrop(n)`: queued items were discarded (see ConnectionQueue). */
  constructor(
    private readonly limits: ConnectionLimits,
    private readonly now: () => number,
    private readonly onDrop: (count: number) => void = () => {},
  ) {}

  /** IDs the proxy keeps state for: parked, queued, resync pending, or closed. */
  get size(): number {
    return this.live.size + this.closed.size;
  }

  get(id: string): Connection<P> | undefined {
    return this.live.get(id);
  }

  /** The connection's state, created (empty) if it had none. */
  open(id: string): Connection<P> {
    let conn = this.live.get(id);
    if (conn === undefined) {
      const { queueMaxItems: maxItems, queueMaxBytes: maxBytes, queueTtlMs: ttlMs } = this.limits;
      conn = { parked: null, queue: new ConnectionQueue<ItemResponse>({ maxItems, maxBytes, ttlMs }, this.now, this.onDrop) };
      this.live.set(id, conn);
    }
    return conn;
  }

  /** Drops the state of an ID that no longer needs any. */
  forgetIfIdle(id: string): void {
    const conn = this.live.get(id);
    if (conn !== undefined && conn.parked === null && conn.queue.isIdle) this.live.delete(id);
  }

  /** Was the ID closed within `closedTtlMs`? */
  isClosed(id: string): boolean {
    const closedAt = this.closed.get(id);
    if (closedAt === undefined) return false;
    if (this.now() - closedAt < this.limits.closedTtlMs) return true;
    this.closed.delete(id);
    return false;
  }

  /**
   * Closes the ID: forgets its state (the caller answers its parked request
   * first) and starts its tombstone. Returns how many queued items were discarded.
   */
  close(id: string): number {
    const dropped = this.live.get(id)?.queue.clear() ?? 0;
    this.live.delete(id);
    this.closed.delete(id); // re-insert to keep close-time order
    this.closed.set(id, this.now());
    return dropped;
  }

  /** Total queued items and bytes, for stats. */
  queued(): { items: number; bytes: number } {
    let items = 0;
    let bytes = 0;
    for (const conn of this.live.values()) {
      items += conn.queue.size;
      bytes += conn.queue.bytes;
    }
    return { items, bytes };
  }

  /**
   * Expires old queue items (flagging resyncs), forgets connections whose resync
   * has waited `resyncTtlMs` with nothing parked, and old tombstones.
   */
  sweep(): void {
    const now = this.now();
    for (const [id, closedAt] of this.closed) {
      if (now - closedAt < this.limits.closedTtlMs) break;
      this.closed.delete(id);
    }
    for (const [id, conn] of this.live) {
      conn.queue.expire();
      const { resyncPending, resyncSinceMs } = conn.queue;
      if (conn.parked === null && resyncPending !== null && now - resyncSinceMs >= this.limits.resyncTtlMs) {
        conn.queue.clear();
        this.live.delete(id);
      } else {
        this.forgetIfIdle(id);
      }
    }
  }
}
