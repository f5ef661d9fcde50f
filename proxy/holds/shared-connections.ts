/**
 * Per-connection state shared by several hold proxies (docs/scaleout.md): the
 * bounded queue, the resync-pending flag and the closed-ID tombstone of docs
 * §7.2–§7.3, kept outside any one proxy so that a client's next poll may reach
 * any proxy. The Redis implementation is bus/redis-connections.ts; without one the
 * hold registry keeps this state itself (connection-table.ts).
 */
import type { ResyncReason } from '../../protocol/resync.js';
import type { ItemResponse } from '../http/response.js';

/** What a hold for a connection ID finds (docs §4 steps 1–2), decided atomically. */
export type TakeResult =
  | { kind: 'closed' }
  | { kind: 'resync'; reason: ResyncReason; dropped: number }
  | { kind: 'item'; item: ItemResponse }
  | { kind: 'none' };

export type EnqueueResult = { kind: 'queued' } | { kind: 'closed' } | { kind: 'overflow'; dropped: number };

export interface SharedConnections {
  /**
   * Closed? Resync pending (then the queue is emptied)? Else the oldest item, removed. An item taken is *out*
   * until the taker settles it with `delivered` or `requeue`; meanwhile every other take for the ID answers
   * none (the next item must not overtake it), and a take refused so is told of the end as a push.
   */
  take(connectionId: string): Promise<TakeResult>;
  /** Puts an item taken but not written back at the head of its queue; it is no longer out. */
  requeue(connectionId: string, item: ItemResponse): Promise<void>;
  /** The item (or resync) taken for `connectionId` was written: it is no longer out. Fire and forget. */
  delivered(connectionId: string): void;
  /**
   * A resync a take answered could not be told (its request was answered meanwhile, or the answer came late):
   * the flag is set again (unless the ID is closed) and announced, so the next poll under the ID answers it.
   */
  resyncAgain(connectionId: string, reason: ResyncReason): Promise<void>;
  /** Appends within the caps; an item that does not fit empties the queue and flags `queue-overflow`. */
  enqueue(connectionId: string, item: ItemResponse): Promise<EnqueueResult>;
  /** Starts the tombstone and drops the queue; answers how many items were dropped. */
  close(connectionId: string): Promise<number>;
}
