/**
 * What the proxy knows per connection ID (docs/protocol.md §5, §7.2, §7.3):
 * the request parked under it, its queue, and, once closed, a tombstone that
 * refuses holds for `closedTtlMs`. An ID with nothing parked, nothing queued
 * and no resync pending holds no state. Pure data structure; time comes from
 * the injected `now`.
 *
 * Queues for IDs that never parked here are capped (`maxUnknownQueues`): a
 * publisher pushing to made-up IDs would otherwise grow state without bound.
 * An ID counts as known while a request is parked under it and for `queueTtlMs`
 * after the last one left, so a real client between two polls is never capped.
 *
 * A queue is made only when a push needs one (issue 15: a parked ID with nothing
 * queued keeps no queue, and the queues share one limits object).
 */
import { ConnectionQueue, type QueueLimits } from './connection-queue.js';
import type { ItemResponse } from '../http/response.js';

export interface ConnectionLimits {
  queueMaxItems: number;
  queueMaxBytes: number;
  queueTtlMs: number;
  /** A connection with a resync pending and nothing parked is forgotten after this, ms. */
  resyncTtlMs: number;
  /** A closed ID refuses holds for this long, ms. */
  closedTtlMs: number;
  /** Most queues kept for IDs that are not known (never parked here, or not within `queueTtlMs`). */
  maxUnknownQueues: number;
  /** Most IDs remembered as recently parked; past it the one that left longest ago is forgotten first. */
  maxParked: number;
}

export interface Connection<P> {
  /** The request parked under this ID, if any (at most one, docs §4 step 4). */
  parked: P | null;
  /** Its pushed items and resync flag; null until a push queues (an absent queue is an idle one). */
  queue: ConnectionQueue<ItemResponse> | null;
  /** Opened by a push for an ID not known here: counts toward `maxUnknownQueues` until a request parks under it. */
  unknown: boolean;
}

/** A connection with its queue made. */
export type QueuedConnection<P> = Connection<P> & { queue: ConnectionQueue<ItemResponse> };

export class ConnectionTable<P> {
  private readonly live = new Map<string, Connection<P>>();
  /** Shared by every queue. */
  private readonly queueLimits: QueueLimits;
  /** Closed IDs -> close time, ms; kept in close-time order so the sweep stops at the first live one. */
  private readonly closed = new Map<string, number>();
  /** IDs whose last parked request left within `queueTtlMs` -> when it left, ms; in that order. */
  private readonly recentlyParked = new Map<string, number>();
  /**
   * IDs the sweep must look at: every live one that is not parked with an idle queue (the sweep would do
   * nothing for those). Added when a conn is created, when a push queues for it, and when its parked request
   * leaves; the sweep drops the settled ones. So a sweep costs the IDs that changed, not every parked one.
   */
  private readonly unsettled = new Set<string>();
  private unknownCount = 0;

  /** `onDrop(n)`: queued items were discarded (see ConnectionQueue). */
  constructor(
    private readonly limits: ConnectionLimits,
    private readonly now: () => number,
    private readonly onDrop: (count: number) => void = () => {},
  ) {
    this.queueLimits = { maxItems: limits.queueMaxItems, maxBytes: limits.queueMaxBytes, ttlMs: limits.queueTtlMs };
  }

  /** IDs the proxy keeps state for: parked, queued, resync pending, or closed. */
  get size(): number {
    return this.live.size + this.closed.size;
  }

  get(id: string): Connection<P> | undefined {
    return this.live.get(id);
  }

  /** Queues kept now for IDs that are not known here. */
  get unknownQueues(): number {
    return this.unknownCount;
  }

  /** The state of an ID a request parks under, created (empty) if it had none; the ID is known from now on. */
  open(id: string): Connection<P> {
    const conn = this.live.get(id) ?? this.create(id, false);
    if (conn.unknown) {
      conn.unknown = false;
      this.unknownCount--;
    }
    return conn;
  }

  /** The state a push to `id` queues in, with its queue, created if it had none (unknown unless the ID parked here lately). */
  openForPush(id: string): QueuedConnection<P> {
    const conn = this.live.get(id) ?? this.create(id, !this.isRecentlyParked(id));
    this.unsettled.add(id); // its queue is about to hold an item
    return this.withQueue(conn);
  }

  /** `conn` (an ID's live state) with its queue, made now if it had none. */
  withQueue(conn: Connection<P>): QueuedConnection<P> {
    conn.queue ??= new ConnectionQueue<ItemResponse>(this.queueLimits, this.now, this.onDrop);
    return conn as QueuedConnection<P>;
  }

  /** How many new unknown queues pushes to `ids` would open (closed IDs open none). Opens nothing. */
  unknownAmong(ids: Iterable<string>): number {
    let n = 0;
    for (const id of new Set(ids)) {
      if (!this.live.has(id) && !this.isClosed(id) && !this.isRecentlyParked(id)) n++;
    }
    return n;
  }

  /** How many more unknown queues fit under `maxUnknownQueues`. */
  get unknownRoom(): number {
    return Math.max(0, this.limits.maxUnknownQueues - this.unknownCount);
  }

  /** Drops the state of an ID that no longer needs any (else the next sweep looks at it). */
  forgetIfIdle(id: string): void {
    const conn = this.live.get(id);
    if (conn === undefined) return;
    if (conn.parked === null && isIdle(conn)) this.forget(id, conn);
    else this.unsettled.add(id);
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
    const conn = this.live.get(id);
    const dropped = conn?.queue?.clear() ?? 0;
    if (conn !== undefined) this.forget(id, conn, false);
    this.closed.delete(id); // re-insert to keep close-time order
    this.closed.set(id, this.now());
    return dropped;
  }

  /** Total queued items and bytes, for stats. */
  queued(): { items: number; bytes: number } {
    let items = 0;
    let bytes = 0;
    for (const conn of this.live.values()) {
      if (conn.queue === null) continue;
      items += conn.queue.size;
      bytes += conn.queue.bytes;
    }
    return { items, bytes };
  }

  /**
   * Expires old queue items (flagging resyncs), forgets connections whose resync
   * has waited `resyncTtlMs` with nothing parked, and old tombstones. Looks only at
   * the unsettled IDs: 10,000 quiet parked requests cost a sweep nothing (idle CPU, issue 15).
   */
  sweep(): void {
    const now = this.now();
    for (const [id, closedAt] of this.closed) {
      if (now - closedAt < this.limits.closedTtlMs) break;
      this.closed.delete(id);
    }
    for (const [id, leftAt] of this.recentlyParked) {
      if (now - leftAt < this.limits.queueTtlMs) break;
      this.recentlyParked.delete(id);
    }
    for (const id of this.unsettled) {
      const conn = this.live.get(id);
      if (conn === undefined) {
        this.unsettled.delete(id);
        continue;
      }
      const queue = conn.queue;
      if (queue !== null) {
        queue.expire();
        if (queue.isIdle) conn.queue = null; // emptied: a later push makes a new one
      }
      if (conn.parked === null && queue !== null && queue.resyncPending !== null && now - queue.resyncSinceMs >= this.limits.resyncTtlMs) {
        queue.clear();
        this.forget(id, conn);
      } else if (conn.parked === null && isIdle(conn)) {
        this.forget(id, conn);
      } else if (conn.parked !== null && isIdle(conn)) {
        this.unsettled.delete(id); // parked with nothing queued: nothing to expire until a push or its leaving
      }
    }
  }

  private create(id: string, unknown: boolean): Connection<P> {
    const conn: Connection<P> = { parked: null, queue: null, unknown };
    this.live.set(id, conn);
    this.unsettled.add(id);
    if (unknown) this.unknownCount++;
    return conn;
  }

  /** The one way state leaves `live`; a known ID is remembered for `queueTtlMs` (unless closed). */
  private forget(id: string, conn: Connection<P>, remember = true): void {
    this.live.delete(id);
    this.unsettled.delete(id);
    if (conn.unknown) {
      this.unknownCount--;
      return;
    }
    if (!remember) return;
    this.recentlyParked.delete(id); // re-insert: the map stays in leaving order
    this.recentlyParked.set(id, this.now());
    if (this.recentlyParked.size > this.limits.maxParked) this.recentlyParked.delete(this.recentlyParked.keys().next().value!);
  }

  private isRecentlyParked(id: string): boolean {
    const leftAt = this.recentlyParked.get(id);
    if (leftAt === undefined) return false;
    if (this.now() - leftAt < this.limits.queueTtlMs) return true;
    this.recentlyParked.delete(id);
    return false;
  }
}

/** Nothing queued and no resync pending (an absent queue is idle). */
function isIdle(conn: Connection<unknown>): boolean {
  return conn.queue === null || conn.queue.isIdle;
}
