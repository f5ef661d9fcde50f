/**
 * The primary with `redisUrl` (docs/scaleout.md "Workers on several hosts"):
 * the host's one member of the Redis bus. Its workers' control calls go into
 * Redis through one RedisBus (bus/redis-bus.ts); the queues and tombstones are
 * the Redis ones every host shares; its one stream reader relays each entry, as
 * read (unparsed, in stream order), to every worker, and a gap it detects
 * makes every worker re-ask its parked requests.
 *
 * One reader per host rather than one per worker: the stream is read and
 * decoded once per host, and the workers get the same ordered IPC stream as
 * without Redis, so every guarantee of the workers (cursors, tombstones,
 * revocations replayed to a replacement) holds unchanged.
 */
import { RedisBus } from '../bus/redis-bus.js';
import type { TakeResult } from '../holds/shared-connections.js';
import type { ItemResponse } from '../http/response.js';
import type { ResyncReason } from '../../protocol/resync.js';
import type { ProxyOptions } from '../options.js';
import type { CallOp, EntryType } from './messages.js';
import type { PrimaryBus, Relay } from './primary-bus.js';
import type { StoreNumbers } from './stats-sum.js';

const ENTRY_TYPES: ReadonlySet<string> = new Set<EntryType>(['publish', 'push', 'close', 'revoke']);

export class RedisPrimaryBus implements PrimaryBus {
  private readonly bus: RedisBus;
  /** Items the pushes made through this host dropped (overflow, closed IDs): summed into `/stats` `dropped`. */
  private dropped = 0;

  constructor(
    private readonly options: ProxyOptions & { redisUrl: string },
    private readonly relay: Relay,
  ) {
    this.bus = new RedisBus({ ...options, now: options.timers.now });
  }

  async start(): Promise<void> {
    await this.bus.startWith({
      apply: (type, data) => {
        // Entries of a type no worker knows are dropped here rather than sent N times to be ignored.
        if (ENTRY_TYPES.has(type)) this.relay.entry(type as EntryType, data);
      },
      resyncAllParked: (queuesLost) => this.relay.resync(queuesLost),
      // The worker that took the call counts its pushes; the drops are known here.
      countPushes: (_items, dropped) => (this.dropped += dropped),
    });
  }

  call(op: CallOp, text: string): Promise<unknown> {
    const body: unknown = JSON.parse(text);
    if (op === 'publish') return this.bus.publish(body);
    if (op === 'push') return this.bus.push(body);
    if (op === 'close') return this.bus.close(body);
    return this.bus.revoke(body);
  }

  /** The IDs each worker has an item out for, to give back if it dies (Redis would only at OUT_MAX_MS). */
  private readonly outs = new Map<number, Set<string>>();

  private owner(worker: number): string {
    return `${this.bus.connections.owner}:${worker}`;
  }

  async take(connectionId: string, worker: number): Promise<TakeResult> {
    const result = await this.bus.connections.take(connectionId, this.owner(worker));
    if (result.kind === 'item' || result.kind === 'resync') {
      let ids = this.outs.get(worker);
      if (ids === undefined) this.outs.set(worker, (ids = new Set()));
      ids.add(connectionId);
    }
    return result;
  }

  requeue(connectionId: string, item: ItemResponse, worker: number): Promise<void> {
    this.outs.get(worker)?.delete(connectionId);
    return this.bus.connections.requeue(connectionId, item, this.owner(worker));
  }

  delivered(connectionId: string, worker: number): void {
    this.outs.get(worker)?.delete(connectionId);
    this.bus.connections.delivered(connectionId, this.owner(worker));
  }

  resyncAgain(connectionId: string, reason: ResyncReason, worker: number): void {
    this.outs.get(worker)?.delete(connectionId);
    this.bus.connections.resyncAgain(connectionId, reason, this.owner(worker)).catch((err: unknown) => {
      this.options.logger.error({ err, connectionId, reason }, 'could not set a resync again: Redis away; the client misses it');
    });
  }

  workerGone(worker: number): void {
    const ids = this.outs.get(worker);
    this.outs.delete(worker);
    // The item is the one Redis kept: requeue ignores its argument.
    for (const id of ids ?? []) void this.bus.connections.requeue(id, { headers: [], body: Buffer.alloc(0) }, this.owner(worker)).catch(() => {});
  }

  /** Other hosts requeue into Redis unannounced: every poll takes. */
  readonly announcesQueueChanges = false;

  seen(): void {
    // Never sent: workers take on every poll when queue changes are not announced.
  }

  numbers(): StoreNumbers {
    // The queues live in Redis, shared by every host: no host's `/stats` can say they are its own.
    return { items: 0, bytes: 0, connections: 0, dropped: this.dropped };
  }

  stop(): Promise<void> {
    return this.bus.stop();
  }
}
