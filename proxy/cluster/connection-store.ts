/**
 * The cluster primary's per-connection state (docs/scaleout.md "Workers"): the
 * queue, resync flag and tombstone of docs/protocol.md §7.2–§7.3 that every
 * worker shares, as the Redis scripts keep them for several hosts
 * (bus/redis-connections.ts). Synchronous, in one process: each operation is
 * atomic by construction. Built on the embedded ConnectionTable, so caps,
 * expiry and the `maxUnknownQueues` limit behave exactly as with one process;
 * an ID a worker took for (a client polled) counts as known.
 *
 * An item a worker took is *out* until that worker says it wrote it
 * (`delivered`) or gives it back (`requeue`). While one is out, other takes for
 * the ID answer `none`: a client's next poll may land on another worker before
 * the first gives its item back (a publish answered the poll it was taken for),
 * and must not take the item behind it. A take refused that way is told when
 * the out ends (the ID is returned for an announcement, as a push). A dead
 * worker's items out, and any out past `itemOutMaxMs`, go back to the head of
 * their queues: at least once rather than lost.
 */
import type { ControlResult } from '../../protocol/control-api.js';
import type { PushCommand } from '../control/commands.js';
import { TooManyQueuesError } from '../holds/hold-delivery.js';
import { ConnectionTable, type ConnectionLimits } from '../holds/connection-table.js';
import type { EnqueueResult, TakeResult } from '../holds/shared-connections.js';
import type { ItemResponse } from '../http/response.js';
import type { ResyncReason } from '../../protocol/resync.js';
import { itemOutMaxMs } from './messages.js';

/** An item a worker took and has not settled. */
interface Out {
  worker: number;
  item: ItemResponse;
  atMs: number;
  /** A take was refused while it was out: the end is announced. */
  waited: boolean;
}

export interface ConnectionStoreLimits extends ConnectionLimits {
  unknownQueuesRetryAfterS: number;
  /** The client request timeout (0: none): the workers' IPC timeout, and so how long an item may stay out. */
  requestTimeoutMs: number;
}

export class ConnectionStore {
  private readonly table: ConnectionTable<never>;
  /** Items taken and not yet settled, by connection ID (at most one per ID), in taking order. */
  private readonly out = new Map<string, Out>();
  /** An item out longer is its hung worker's: given back at the sweep (messages.ts `itemOutMaxMs`). */
  private readonly outMaxMs: number;
  /** Items discarded here (overflow, expiry, close): summed into `/stats` `dropped`. */
  dropped = 0;

  constructor(
    private readonly limits: ConnectionStoreLimits,
    private readonly now: () => number,
  ) {
    this.table = new ConnectionTable<never>(limits, now, (n) => (this.dropped += n));
    this.outMaxMs = itemOutMaxMs(limits.requestTimeoutMs);
  }

  /**
   * `worker` is deciding a hold for `id` (docs §4 steps 1–2): closed, resync, the oldest item, or none.
   * An item taken is out until `worker` settles it; meanwhile every take for `id` answers none.
   */
  take(id: string, worker: number): TakeResult {
    if (this.table.isClosed(id)) return { kind: 'closed' };
    const queue = this.table.open(id).queue; // a client polls under it: known from now on
    try {
      const out = this.out.get(id);
      if (out !== undefined) {
        out.waited = true;
        return { kind: 'none' };
      }
      if (queue === null) return { kind: 'none' };
      const resync = queue.takeResync();
      if (resync !== null) return { kind: 'resync', ...resync };
      const item = queue.shift();
      if (item === undefined) return { kind: 'none' };
      this.out.set(id, { worker, item, atMs: this.now(), waited: false });
      return { kind: 'item', item };
    } finally {
      this.table.forgetIfIdle(id);
    }
  }

  /** `worker` wrote its item out for `id`. True if a take waited for it (announce the ID, as a push). */
  delivered(id: string, worker: number): boolean {
    const out = this.out.get(id);
    if (out === undefined || out.worker !== worker) return false; // given back already (sweep, close)
    this.out.delete(id);
    return out.waited;
  }

  /**
   * `worker` gives back its item out for `id`: to the head of the queue. False if there is nothing to announce:
   * it was given back already (a dead or hung worker's, at the sweep) or the ID is closed (the item is dropped).
   */
  requeue(id: string, item: ItemResponse, worker: number): boolean {
    const out = this.out.get(id);
    if (out === undefined || out.worker !== worker) return false;
    this.out.delete(id);
    return this.giveBack(id, item);
  }

  /**
   * A take that timed out at its worker had taken `id`'s resync (and emptied the queue): the flag is set again,
   * so the client still hears it. False if the ID is closed (nothing to tell).
   */
  resyncAgain(id: string, reason: ResyncReason): boolean {
    if (this.table.isClosed(id)) return false;
    this.table.withQueue(this.table.open(id)).queue.flag(reason);
    return true;
  }

  /** A worker is gone: its items out go back to their queues. Answers the IDs to announce. */
  workerGone(worker: number): string[] {
    const ids: string[] = [];
    for (const [id, out] of this.out) {
      if (out.worker !== worker) continue;
      this.out.delete(id);
      if (this.giveBack(id, out.item)) ids.push(id);
    }
    return ids;
  }

  private giveBack(id: string, item: ItemResponse): boolean {
    if (this.table.isClosed(id)) return false;
    this.table.withQueue(this.table.open(id)).queue.requeue(item, item.body.length);
    return true;
  }

  /** A worker parked a poll under `id` without a take (it knew the queue empty): known, as a take makes it. */
  seen(id: string): void {
    if (this.table.isClosed(id)) return;
    this.table.open(id);
    this.table.forgetIfIdle(id);
  }

  enqueue(id: string, item: ItemResponse): EnqueueResult {
    if (this.table.isClosed(id)) return { kind: 'closed' };
    const outcome = this.table.openForPush(id).queue.push(item, item.body.length);
    return outcome.queued ? { kind: 'queued' } : { kind: 'overflow', dropped: outcome.dropped };
  }

  /**
   * `/push/` as one call: refused whole past `maxUnknownQueues` (as embedded), else each item queued.
   * Returns the result and the IDs workers must look at (their parked request takes the item).
   */
  push(commands: readonly PushCommand[]): { result: ControlResult; notify: string[] } {
    const needed = this.table.unknownAmong(commands.map((c) => c.connectionId));
    if (needed > this.table.unknownRoom) {
      throw new TooManyQueuesError(
        `this push would open ${needed} queues for connection IDs not polled lately; ${this.table.unknownRoom} more fit (maxUnknownQueues)`,
        this.limits.unknownQueuesRetryAfterS,
      );
    }
    const result: ControlResult = { delivered: 0, queued: 0, dropped: 0, reasked: 0 };
    const notify = new Set<string>();
    for (const { connectionId, response } of commands) {
      const outcome = this.enqueue(connectionId, response);
      if (outcome.kind === 'closed') {
        result.dropped++;
        this.dropped++;
        continue;
      }
      if (outcome.kind === 'queued') result.queued++;
      else result.dropped += outcome.dropped;
      notify.add(connectionId);
    }
    return { result, notify: [...notify] };
  }

  /** Starts the tombstone and drops the queue; answers how many items were dropped (an item out is its worker's). */
  close(id: string): number {
    this.out.delete(id);
    return this.table.close(id);
  }

  /** Expiry, and items out past `itemOutMaxMs` given back. Answers the IDs to announce. */
  sweep(): string[] {
    this.table.sweep();
    const ids: string[] = [];
    if (this.out.size === 0) return ids;
    const before = this.now() - this.outMaxMs;
    for (const [id, out] of this.out) {
      if (out.atMs >= before) break; // the map is in taking order
      this.out.delete(id);
      if (this.giveBack(id, out.item)) ids.push(id);
    }
    return ids;
  }

  queued(): { items: number; bytes: number; connections: number } {
    return { ...this.table.queued(), connections: this.table.size };
  }
}
