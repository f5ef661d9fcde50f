/**
 * The outbox relay: the single publisher of outbox rows to the proxy.
 *
 * One loop at a time (single flight) reads the oldest rows, publishes them in
 * id order and deletes them once the proxy accepted them. On failure it
 * retries the same batch, with exponential backoff and jitter, until it goes
 * through: rows are never skipped, reordered or dropped, so a proxy restart
 * costs latency, not messages. A re-published batch (the proxy accepted it but
 * the answer was lost) is harmless: the proxy skips items clients already have
 * (docs/protocol.md §7.1).
 */
import type { Logger } from 'pino';
import { toCloseItems, toPublishItems } from './item-format.js';
import type { Publisher } from './publisher.js';
import type { OutboxRepo, OutboxRow } from '../store/outbox.js';
import type { RelayLeaseRepo } from '../store/relay-lease.js';

/**
 * The cross-process lease (store/relay-lease.ts): with it, the relay publishes
 * only while it holds the lease, renewed before every batch and released when
 * the outbox is empty or the relay stops. While another relay holds it, this
 * one looks again after `retryMs` (the holder re-reads the outbox after each
 * batch, so it usually publishes this process's rows first).
 */
export interface RelayLeaseOptions {
  repo: RelayLeaseRepo;
  /** Unique per relay (process), e.g. a random id. */
  holder: string;
  /** Lease length, ms; must exceed the publish timeout so a live holder never loses it mid-publish. */
  leaseMs: number;
  /** How soon a relay that found the lease taken looks again, ms. */
  retryMs: number;
  /** Clock, ms since the epoch. */
  now: () => number;
}

export interface OutboxRelayOptions {
  /** Most rows per publish call. */
  batchSize: number;
  /** Byte budget of the payloads of one call; a single larger row still goes alone. */
  batchMaxBytes: number;
  /** First retry delay, ms. */
  retryMinMs: number;
  /** Longest retry delay, ms. */
  retryMaxMs: number;
  /** Safety sweep period, ms: catches rows whose nudge was missed (e.g. written by another process). */
  intervalMs: number;
  logger: Logger;
  /** Jitter source in [0, 1). Default `Math.random`. */
  random?: () => number;
  /** Publish only while holding this lease (several app processes on one database). Default: no lease. */
  lease?: RelayLeaseOptions;
  /**
   * A channel whose items should also be hinted on another channel (`action: "hint"`, same id
   * and prev-id), or null. Asked at each publish attempt, after the rows committed. Default: none.
   */
  hintChannel?: (channel: string) => string | null;
}

/** Counters since the relay was built. */
export interface RelayStats {
  /** Rows the proxy accepted (and that were then deleted). */
  published: number;
  /** Failed publish attempts (each is retried). */
  failures: number;
}

export class RelayStoppedError extends Error {
  override name = 'RelayStoppedError';
}

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
}

export class OutboxRelay {
  private publisher: Publisher | null = null;
  private running: Promise<void> | null = null;
  private interval: NodeJS.Timeout | null = null;
  private wakeFromBackoff: (() => void) | null = null;
  private leaseRetry: NodeJS.Timeout | null = null;
  private leaseWaitCount = 0;
  private stopping = false;
  private readonly idleWaiters = new Set<Waiter>();
  private readonly counters: RelayStats = { published: 0, failures: 0 };
  private readonly random: () => number;

  constructor(
    private readonly outbox: OutboxRepo,
    private readonly options: OutboxRelayOptions,
  ) {
    this.random = options.random ?? Math.random;
  }

  /** True between `start()` and `stop()`. */
  get started(): boolean {
    return this.publisher !== null && !this.stopping;
  }

  /** Times a run found another relay holding the lease (and looked again later). */
  get leaseWaits(): number {
    return this.leaseWaitCount;
  }

  get stats(): RelayStats {
    return { ...this.counters };
  }

  /** Starts relaying through `publisher`, which the relay now owns (closed by `stop()`). */
  start(publisher: Publisher): void {
    if (this.stopping) throw new RelayStoppedError('the relay was stopped');
    if (this.publisher) throw new Error('the relay is already started');
    this.publisher = publisher;
    this.interval = setInterval(() => this.nudge(), this.options.intervalMs);
    // The sweep alone must not keep the process alive.
    this.interval.unref();
    this.nudge();
  }

  /**
   * Publishes now if idle. While a run is in progress this is a no-op: the run
   * re-reads the outbox after each batch, so the new rows are picked up; while
   * it backs off after a failure, the retry will carry them.
   */
  nudge(): void {
    if (!this.started || this.running) return;
    this.running = this.run().finally(() => {
      this.running = null;
    });
  }

  /**
   * Resolves when the outbox is empty and nothing is in flight; rejects after
   * `timeoutMs` (if given) or when the relay stops first.
   */
  waitIdle(timeoutMs?: number): Promise<void> {
    if (!this.running && this.outbox.count() === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const waiter: Waiter = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          this.idleWaiters.delete(waiter);
          reject(new Error(`outbox not empty after ${timeoutMs} ms (${this.outbox.count()} rows left)`));
        }, timeoutMs);
      }
      this.idleWaiters.add(waiter);
      this.nudge();
    });
  }

  /** Stops the sweep and any backoff, waits for an in-flight publish to settle, closes the publisher. Idempotent. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.interval) clearInterval(this.interval);
    this.interval = null;
    if (this.leaseRetry) clearTimeout(this.leaseRetry);
    this.leaseRetry = null;
    this.wakeFromBackoff?.();
    await this.running;
    this.releaseLease();
    this.publisher?.close();
    for (const waiter of this.idleWaiters) waiter.reject(new RelayStoppedError('the relay stopped before the outbox was empty'));
    this.idleWaiters.clear();
  }

  private async run(): Promise<void> {
    let batch: OutboxRow[] | null = null;
    let attempt = 0;
    while (!this.stopping && this.publisher) {
      try {
        if (!this.holdLease()) return;
        batch ??= this.nextBatch();
        if (batch.length === 0) {
          this.releaseLease();
          this.settleIdle();
          return;
        }
        await this.send(this.publisher, batch);
        // Delete even if stop() was called meanwhile: the proxy has these rows.
        this.outbox.deleteRange(batch[0]!.id, batch[batch.length - 1]!.id);
        this.counters.published += batch.length;
        if (attempt > 0) this.options.logger.info({ attempts: attempt + 1 }, 'outbox relay recovered');
        batch = null;
        attempt = 0;
      } catch (err) {
        // Also covers database errors: the same batch (if read) is retried after the delay.
        this.counters.failures++;
        attempt++;
        if (this.stopping) return;
        const delayMs = this.retryDelayMs(attempt);
        this.options.logger.warn({ err, attempt, delayMs, rows: batch?.length ?? 0 }, 'outbox publish failed, will retry');
        await this.sleep(delayMs);
      }
    }
  }

  /** True without a lease; otherwise takes or renews it, or schedules another look and answers false. */
  private holdLease(): boolean {
    const lease = this.options.lease;
    if (lease === undefined) return true;
    if (lease.repo.acquire(lease.holder, lease.now(), lease.leaseMs)) return true;
    this.leaseWaitCount++;
    if (this.leaseRetry === null && !this.stopping) {
      this.leaseRetry = setTimeout(() => {
        this.leaseRetry = null;
        this.nudge();
      }, lease.retryMs);
      this.leaseRetry.unref();
    }
    return false;
  }

  private releaseLease(): void {
    const lease = this.options.lease;
    if (lease === undefined) return;
    try {
      lease.repo.release(lease.holder);
    } catch (err) {
      // It expires by itself; another relay only waits longer.
      this.options.logger.warn({ err }, 'could not release the relay lease');
    }
  }

  /** One batch of one kind: publish items, or `/close/` calls (dropped by a publisher that cannot close). */
  private async send(publisher: Publisher, batch: OutboxRow[]): Promise<void> {
    if (batch[0]!.kind === 'publish') {
      await publisher.publish(toPublishItems(batch, this.options.hintChannel));
      return;
    }
    if (publisher.closeConnections === undefined) {
      this.options.logger.debug({ rows: batch.length }, 'publisher cannot close connection IDs; close rows dropped');
      return;
    }
    await publisher.closeConnections(toCloseItems(batch));
  }

  /** The oldest rows of one kind (they go to different endpoints) within the count and byte budgets (at least one row if any). */
  private nextBatch(): OutboxRow[] {
    const rows = this.outbox.oldest(this.options.batchSize);
    let bytes = 0;
    for (let i = 0; i < rows.length; i++) {
      if (rows[i]!.kind !== rows[0]!.kind) return rows.slice(0, i);
      bytes += Buffer.byteLength(rows[i]!.payload);
      if (bytes > this.options.batchMaxBytes && i > 0) return rows.slice(0, i);
    }
    return rows;
  }

  /** Exponential from retryMinMs, capped at retryMaxMs, with "equal jitter" (half fixed, half random) so restarts do not align. */
  private retryDelayMs(attempt: number): number {
    const { retryMinMs, retryMaxMs } = this.options;
    const base = Math.min(retryMaxMs, retryMinMs * 2 ** Math.min(attempt - 1, 30));
    return Math.max(retryMinMs, Math.round(base / 2 + (this.random() * base) / 2));
  }

  /** Waits `ms`, or less if `stop()` wakes it. */
  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.wakeFromBackoff = null;
        resolve();
      };
      const timer = setTimeout(wake, ms);
      timer.unref();
      this.wakeFromBackoff = wake;
    });
  }

  private settleIdle(): void {
    for (const waiter of this.idleWaiters) waiter.resolve();
    this.idleWaiters.clear();
  }
}
