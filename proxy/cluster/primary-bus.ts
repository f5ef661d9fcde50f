/**
 * Where the cluster primary keeps what its workers share (docs/scaleout.md
 * "Workers"): one interface, two implementations.
 *
 * - Alone on the host (local-primary-bus.ts): the primary plays Redis. It
 *   orders control calls itself and keeps the connection queues and tombstones
 *   in memory (connection-store.ts).
 * - With `redisUrl` (redis-primary-bus.ts): the primary is this host's one
 *   member of the Redis bus. Control calls go into Redis, the queues and
 *   tombstones live there, and the primary's one stream reader relays every
 *   entry to the workers.
 *
 * Either way the workers see one ordered entry stream over their IPC channels
 * (`Relay`), and know nothing of which bus is behind the primary.
 */
import type { TakeResult } from '../holds/shared-connections.js';
import type { ItemResponse } from '../http/response.js';
import type { ResyncReason } from '../../protocol/resync.js';
import type { CallOp, EntryType } from './messages.js';
import type { StoreNumbers } from './stats-sum.js';

/** How a primary bus reaches the workers: every live worker gets each message, in call order. */
export interface Relay {
  entry(type: EntryType, data: string): void;
  /** Entries may have been missed (Redis only): every worker re-asks its parked requests. */
  resync(queuesLost: boolean): void;
}

export interface PrimaryBus {
  /** Ready to take calls and relay entries (the Redis reader has checked its position, or gave up waiting). */
  start(): Promise<void>;
  /**
   * A control call a worker validated, as its raw JSON text. Resolves with the call's answer once its entry
   * is ordered (relayed to every worker, or in the Redis stream); rejects with coded errors
   * (`TooManyQueuesError`, `BusUnavailableError`).
   */
  call(op: CallOp, text: string): Promise<unknown>;
  /**
   * Worker `worker` deciding a hold for `connectionId` (docs/protocol.md §4 steps 1–2). An item taken is out
   * until that worker settles it (`delivered` or `requeue`); meanwhile other takes for the ID answer none.
   */
  take(connectionId: string, worker: number): Promise<TakeResult>;
  /** An item a worker took but could not deliver goes back to the head of the queue. */
  requeue(connectionId: string, item: ItemResponse, worker: number): Promise<void>;
  /** The worker wrote the item it took for `connectionId`. */
  delivered(connectionId: string, worker: number): void;
  /** A take answered after its worker's timeout carried a resync: it is set again (and announced). */
  resyncAgain(connectionId: string, reason: ResyncReason, worker: number): void;
  /** The worker died: its items out go back to their queues. */
  workerGone(worker: number): void;
  /**
   * Does every change that can fill a queue or close an ID (push, requeue, close) reach every worker as an entry
   * naming the ID? Then workers park polls under IDs they know are empty without a take (known-empty.ts).
   */
  readonly announcesQueueChanges: boolean;
  /** Polls parked under these IDs without a take: they count as known, as a take would have made them. */
  seen(connectionIds: readonly string[]): void;
  /** The shared store's part of `/stats`. */
  numbers(): StoreNumbers;
  stop(): Promise<void>;
}
