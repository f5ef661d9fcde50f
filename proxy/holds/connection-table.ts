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
 *
 * A known ID's entry rests between polls instead of being deleted (issue 15): a delivery and the client's re-poll
 * would otherwise delete and re-insert the ID in two 10,000-entry hash tables plus a recently-parked map on every
 * cycle (the table's `forget` was the registry's heaviest function in the delivery window). A resting entry holds
 * no state in the sense above (`get` does not return it, `size` does not count it); it only remembers when its
 * request left. Resting entries are kept in leaving order on a list through the entries, at most `maxParked` of
 * them and none older than `queueTtlMs`: the bound the recently-parked map had.
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

/** What the table keeps per ID: the connection, and its place on the resting list while its ID rests. */
class Entry<P> implements Connection<P> {
  parked: P | null = null;
  queue: ConnectionQueue<ItemResponse> | null = null;
  /** On the resting list: nothing parked, nothing queued, known; `leftAt` says since when. */
  resting = false;
  /** When its last parked request left (ms, from `now`); meaningful while resting. */
  leftAt = 0;
  /** Neighbours on the resting list (older, newer). */
  older: Entry<P> | null = null;
  newer: Entry<P> | null = null;

  constructor(
    readonly id: string,
    public unknown: boolean,
  ) {}
}

export class ConnectionTable<P> {
  /** Every entry: with state, and resting (known IDs between polls). */
  private readonly live = new Map<string, Entry<P>>();
  /** Shared by every queue. */
  private readonly queueLimits: QueueLimits;
  /** Closed IDs -> close time, ms; kept in close-time order so the sweep stops at the first live one. */
  private readonly closed = new Map<string, number>();
  /** The resting entries, the one that left longest ago first. */
  private oldestResting: Entry<P> | null = null;
  private newestResting: Entry<P> | null = null;
  private restingCount = 0;
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
    return this.live.size - this.restingCount + this.closed.size;
  }

  /** IDs remembered as known between polls (left within `queueTtlMs`, at most `maxParked`): they hold no state. */
  get remembered(): number {
    return this.restingCount;
  }

  /** The ID's state, if it has any (a resting ID has none). */
  get(id: string): Connection<P> | undefined {
    const entry = this.live.get(id);
    return entry === undefined || entry.resting ? undefined : entry;
  }

  /** Queues kept now for IDs that are not known here. */
  get unknownQueues(): number {
    return this.unknownCount;
  }

  /** The state of an ID a request parks under, created (empty) if it had none; the ID is known from now on. */
  open(id: string): Connection<P> {
    let conn = this.live.get(id);
    if (conn === undefined) conn = this.create(id, false);
    else if (conn.resting) this.wake(conn);
    if (conn.unknown) {
      conn.unknown = false;
      this.unknownCount--;
    }
    return conn;
  }

  /** The state a push to `id` queues in, with its queue, created if it had none (unknown unless the ID parked here lately). */
  openForPush(id: string): QueuedConnection<P> {
    let conn = this.live.get(id);
    if (conn === undefined) {
      conn = this.create(id, true);
    } else if (conn.resting) {
      const known = this.isRecent(conn);
      this.wake(conn);
      if (!known) {
        conn.unknown = true; // left longer than queueTtlMs ago (the sweep has not run yet): a stranger again
        this.unknownCount++;
      }
    }
    this.unsettled.add(id); // its queue is about to hold an item
    return this.withQueue(conn);
  }

  /** `conn` (an ID's state, from `get`, `open` or `openForPush`) with its queue, made now if it had none. */
  withQueue(conn: Connection<P>): QueuedConnection<P> {
    if (conn.queue === null) {
      conn.queue = new ConnectionQueue<ItemResponse>(this.queueLimits, this.now, this.onDrop);
      this.unsettled.add((conn as Entry<P>).id); // a queue the sweep must expire
    }
    return conn as QueuedConnection<P>;
  }

  /** How many new unknown queues pushes to `ids` would open (closed IDs open none). Opens nothing. */
  unknownAmong(ids: Iterable<string>): number {
    let n = 0;
    for (const id of new Set(ids)) {
      const entry = this.live.get(id);
      const known = entry !== undefined && (!entry.resting || this.isRecent(entry));
      if (!known && !this.isClosed(id)) n++;
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
    if (conn === undefined || conn.resting) return;
    if (conn.parked === null && isIdle(conn)) this.forget(id, conn);
    else this.unsettled.add(id);
  }

  /**
   * `parked` left `conn` (what `open` returned when it parked), if it still is the one parked there: the ID's
   * state is dropped if idle. No lookup by ID: the parked index keeps `conn` on the held request (issue 15).
   */
  leave(conn: Connection<P>, parked: P): void {
    if (conn.parked !== parked) return;
    const entry = conn as Entry<P>;
    entry.parked = null;
    if (isIdle(entry)) this.forget(entry.id, entry);
    else this.unsettled.add(entry.id);
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
    if (conn !== undefined) {
      if (conn.resting) this.wake(conn);
      this.forget(id, conn, false);
    }
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
    for (let entry = this.oldestResting; entry !== null && now - entry.leftAt >= this.limits.queueTtlMs; entry = this.oldestResting) {
      this.wake(entry);
      this.live.delete(entry.id);
    }
    for (const id of this.unsettled) {
      const conn = this.live.get(id);
      if (conn === undefined || conn.resting) {
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

  private create(id: string, unknown: boolean): Entry<P> {
    const conn = new Entry<P>(id, unknown);
    this.live.set(id, conn);
    this.unsettled.add(id);
    if (unknown) this.unknownCount++;
    return conn;
  }

  /**
   * The one way an ID's state ends: an unknown or closed one's entry is deleted, a known one's rests (kept
   * for `queueTtlMs`, at most `maxParked` of them) so the ID's next poll reuses it.
   */
  private forget(id: string, conn: Entry<P>, remember = true): void {
    this.unsettled.delete(id);
    if (conn.unknown) {
      this.unknownCount--;
      this.live.delete(id);
      return;
    }
    if (!remember) {
      this.live.delete(id);
      return;
    }
    conn.queue = null;
    conn.resting = true;
    conn.leftAt = this.now();
    conn.older = this.newestResting;
    conn.newer = null;
    if (this.newestResting !== null) this.newestResting.newer = conn;
    else this.oldestResting = conn;
    this.newestResting = conn;
    if (++this.restingCount > this.limits.maxParked) {
      const oldest = this.oldestResting!;
      this.wake(oldest);
      this.live.delete(oldest.id);
    }
  }

  /** Takes a resting entry off the resting list (it gets state again, or is deleted by the caller). */
  private wake(conn: Entry<P>): void {
    if (conn.older !== null) conn.older.newer = conn.newer;
    else this.oldestResting = conn.newer;
    if (conn.newer !== null) conn.newer.older = conn.older;
    else this.newestResting = conn.older;
    conn.older = null;
    conn.newer = null;
    conn.resting = false;
    this.restingCount--;
  }

  /** Did a resting entry's request leave within `queueTtlMs`? */
  private isRecent(conn: Entry<P>): boolean {
    return this.now() - conn.leftAt < this.limits.queueTtlMs;
  }
}

/** Nothing queued and no resync pending (an absent queue is idle). */
function isIdle(conn: Connection<unknown>): boolean {
  return conn.queue === null || conn.queue.isIdle;
}
