/**
 * The cluster primary's per-connection state (docs/scaleout.md "Workers"): the
 * queue, resync flag and tombstone of docs/protocol.md §7.2–§7.3 that every
 * worker shares, as the Redis scripts keep them for several hosts
 * (bus/redis-connections.ts). Synchronous, in one process: each operation is
 * atomic by construction. Built on the embedded ConnectionTable, so caps,
 * expiry and the `maxUnknownQueues` limit behave exactly as with one process;
 * an ID a worker took for (a client polled) counts as known.
 */
import type { ControlResult } from '../../protocol/control-api.js';
import type { PushCommand } from '../control/commands.js';
import { TooManyQueuesError } from '../holds/hold-delivery.js';
import { ConnectionTable, type ConnectionLimits } from '../holds/connection-table.js';
import type { EnqueueResult, TakeResult } from '../holds/shared-connections.js';
import type { ItemResponse } from '../http/response.js';

export interface ConnectionStoreLimits extends ConnectionLimits {
  unknownQueuesRetryAfterS: number;
}

export class ConnectionStore {
  private readonly table: ConnectionTable<never>;
  /** Items discarded here (overflow, expiry, close): summed into `/stats` `dropped`. */
  dropped = 0;

  constructor(
    private readonly limits: ConnectionStoreLimits,
    now: () => number,
  ) {
    this.table = new ConnectionTable<never>(limits, now, (n) => (this.dropped += n));
  }

  /** A worker is deciding a hold for `id` (docs §4 steps 1–2): closed, resync, the oldest item, or none. */
  take(id: string): TakeResult {
    if (this.table.isClosed(id)) return { kind: 'closed' };
    const queue = this.table.open(id).queue; // a client polls under it: known from now on
    try {
      if (queue === null) return { kind: 'none' };
      const resync = queue.takeResync();
      if (resync !== null) return { kind: 'resync', ...resync };
      const item = queue.shift();
      return item === undefined ? { kind: 'none' } : { kind: 'item', item };
    } finally {
      this.table.forgetIfIdle(id);
    }
  }

  /** Puts `item` back at the head of `id`'s queue; false if the ID is closed (the item is dropped). */
  requeue(id: string, item: ItemResponse): boolean {
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

  /** Starts the tombstone and drops the queue; answers how many items were dropped. */
  close(id: string): number {
    return this.table.close(id);
  }

  sweep(): void {
    this.table.sweep();
  }

  queued(): { items: number; bytes: number; connections: number } {
    return { ...this.table.queued(), connections: this.table.size };
  }
}
