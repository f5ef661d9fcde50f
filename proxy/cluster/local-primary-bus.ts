/**
 * The primary alone on its host (no `redisUrl`): it plays Redis for its workers
 * (docs/scaleout.md "Workers"). Calls are handled one at a time, synchronously,
 * and each call's entry goes to every worker before the call is answered; the
 * queues, resync flags and tombstones live in connection-store.ts.
 */
import type { Logger } from 'pino';
import { parseCloseBody, parsePushBody, parseRevokeBody } from '../control/control-validation.js';
import type { TakeResult } from '../holds/shared-connections.js';
import type { ItemResponse } from '../http/response.js';
import type { ResyncReason } from '../../protocol/resync.js';
import type { ProxyOptions } from '../options.js';
import { ConnectionStore } from './connection-store.js';
import type { CallOp } from './messages.js';
import type { PrimaryBus, Relay } from './primary-bus.js';
import type { StoreNumbers } from './stats-sum.js';

export class LocalPrimaryBus implements PrimaryBus {
  private readonly store: ConnectionStore;
  private readonly log: Logger;
  private sweeper: NodeJS.Timeout | undefined;

  constructor(
    private readonly options: ProxyOptions,
    private readonly relay: Relay,
  ) {
    this.log = options.logger;
    this.store = new ConnectionStore(options, options.timers.now);
  }

  async start(): Promise<void> {
    this.sweeper = setInterval(() => this.sweep(), this.options.sweepIntervalMs);
    this.sweeper.unref();
  }

  // Async only for the interface: the body runs synchronously, so calls keep their arrival order.
  async call(op: CallOp, text: string): Promise<unknown> {
    const body: unknown = JSON.parse(text);
    if (op === 'publish') {
      this.relay.entry('publish', text);
      return { delivered: 0, queued: 0, dropped: 0, reasked: 0 };
    }
    if (op === 'push') {
      const { result, notify } = this.store.push(parsePushBody(body, this.options.controlMaxIdsPerCall));
      if (result.dropped > 0) this.log.warn({ dropped: result.dropped }, 'pushes dropped (overflow or closed connection IDs)');
      if (notify.length > 0) this.relay.entry('push', JSON.stringify(notify));
      return result;
    }
    if (op === 'close') {
      let dropped = 0;
      for (const command of parseCloseBody(body, this.options.controlMaxIdsPerCall)) dropped += this.store.close(command.connectionId);
      this.relay.entry('close', text);
      return { delivered: 0, queued: 0, dropped, reasked: 0 };
    }
    // revoke: `issued-before` fixed here, once, so every worker (and every later one) applies the same revocation.
    const items = parseRevokeBody(body).map((c) => ({
      ...(c.subject === undefined ? {} : { subject: c.subject }),
      ...(c.connectionId === undefined ? {} : { 'connection-id': c.connectionId }),
      'issued-before': c.issuedBeforeMs,
    }));
    this.relay.entry('revoke', JSON.stringify({ items }));
    return { revoked: 0 };
  }

  async take(connectionId: string, worker: number): Promise<TakeResult> {
    return this.store.take(connectionId, worker);
  }

  /**
   * Every push, requeue and close reaches the workers as an entry (their known-empty marks rely on it), and so
   * does the end of an item out that a take waited for.
   */
  readonly announcesQueueChanges = true;

  async requeue(connectionId: string, item: ItemResponse, worker: number): Promise<void> {
    // Announced like a push: a worker that knows the ID as empty forgets it, and a poll parked under it takes the item.
    if (this.store.requeue(connectionId, item, worker)) this.announce([connectionId]);
  }

  delivered(connectionId: string, worker: number): void {
    if (this.store.delivered(connectionId, worker)) this.announce([connectionId]);
  }

  resyncAgain(connectionId: string, reason: ResyncReason, _worker: number): void {
    if (this.store.resyncAgain(connectionId, reason)) this.announce([connectionId]);
  }

  workerGone(worker: number): void {
    const ids = this.store.workerGone(worker);
    if (ids.length > 0) {
      this.log.warn({ worker, items: ids.length }, 'a dead worker\'s items out went back to their queues');
      this.announce(ids);
    }
  }

  /** Expiry, and items out of a hung worker given back (connection-store.ts). Public for tests; runs on a timer. */
  sweep(): void {
    const ids = this.store.sweep();
    if (ids.length > 0) {
      this.log.warn({ items: ids.length }, 'items out longer than a worker can take went back to their queues');
      this.announce(ids);
    }
  }

  private announce(ids: string[]): void {
    this.relay.entry('push', JSON.stringify(ids));
  }

  seen(connectionIds: readonly string[]): void {
    for (const id of connectionIds) this.store.seen(id);
  }

  numbers(): StoreNumbers {
    return { ...this.store.queued(), dropped: this.store.dropped };
  }

  async stop(): Promise<void> {
    clearInterval(this.sweeper);
  }
}
