/**
 * The retention job: every `intervalMs` it ends expired sessions
 * (session-end.ts), deletes connection rows not seen within the liveness window
 * (with their Bayeux clients), and deletes expired Bayeux clients. Each step
 * works in transactions of at most `batchSize` sessions or rows and yields to
 * the event loop between them, so requests wait for one small batch at most,
 * never for the whole clean-up; a run stops after `maxBatchesPerRun` and the
 * next one goes on. Runs never overlap (the next is scheduled when one ends).
 *
 * Connection rows matter only while they are counted (the liveness window) or
 * name a live Bayeux client; a client that never sends its `cid` back creates
 * one per poll (up to `maxConnectionsPerSession` per window), and this is what
 * bounds them.
 */
import type { Logger } from 'pino';
import type { SessionEnder } from './session-end.js';
import type { BayeuxClientsRepo } from './store/bayeux-clients.js';
import { isBusyError, type BusyRetry } from './store/busy-retry.js';
import type { Store } from './store/store.js';

/** The timer the pruner schedules its runs with (injected by tests). */
export interface PrunerTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface SessionPrunerOptions {
  /** Clock, ms since the epoch. */
  now: () => number;
  intervalMs: number;
  /** Most sessions ended, or rows deleted, per transaction. */
  batchSize: number;
  /** Connection rows not seen for this long are deleted, ms. */
  connectionRetentionMs: number;
  /** Bayeux clients not seen for this long are deleted, ms (as a handshake would). */
  bayeuxClientTtlMs: number;
  /** Transactions one run makes at most. Default 100. */
  maxBatchesPerRun?: number;
  busy: BusyRetry;
  logger: Logger;
  /** Default: Node's timers, unref'd (the pruner never keeps a process alive). */
  timers?: PrunerTimers;
}

export interface PruneResult {
  sessionsEnded: number;
  connectionsDeleted: number;
  bayeuxClientsDeleted: number;
  /** Transactions made. */
  batches: number;
  /** The longest of them, ms: how long the write lock was held at most. */
  longestBatchMs: number;
}

const NODE_TIMERS: PrunerTimers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export class SessionPruner {
  private timer: unknown = null;
  private running: Promise<PruneResult> | null = null;
  private stopped = false;
  private readonly timers: PrunerTimers;

  constructor(
    private readonly store: Store,
    private readonly ender: SessionEnder,
    private readonly bayeuxClients: BayeuxClientsRepo,
    private readonly options: SessionPrunerOptions,
  ) {
    this.timers = options.timers ?? NODE_TIMERS;
  }

  /** Schedules the first run one interval from now. */
  start(): void {
    if (this.stopped || this.timer !== null) return;
    this.schedule();
  }

  /** Cancels the next run and waits for one in progress. Idempotent. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
    await this.running?.catch(() => undefined);
  }

  /** One run now (or the one in progress). Rejects only for errors other than a busy database. */
  runOnce(): Promise<PruneResult> {
    this.running ??= this.run().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private schedule(): void {
    this.timer = this.timers.setTimeout(() => {
      this.timer = null;
      this.runOnce()
        .catch((err: unknown) => this.options.logger.error({ err }, 'pruning failed'))
        .finally(() => {
          if (!this.stopped) this.schedule();
        });
    }, this.options.intervalMs);
  }

  private async run(): Promise<PruneResult> {
    const { batchSize, busy } = this.options;
    const result: PruneResult = { sessionsEnded: 0, connectionsDeleted: 0, bayeuxClientsDeleted: 0, batches: 0, longestBatchMs: 0 };
    const maxBatches = this.options.maxBatchesPerRun ?? 100;
    const write = (fn: () => number) => busy.run(() => this.store.db.transaction(fn).immediate());
    // Each step repeats while its batches come back full; the time of each is the write lock's.
    const steps: Array<[keyof Omit<PruneResult, 'batches' | 'longestBatchMs'>, () => Promise<number>]> = [
      ['sessionsEnded', () => this.ender.endExpired(batchSize)],
      ['connectionsDeleted', () => write(() => this.store.connections.deleteSeenBefore(this.options.now() - this.options.connectionRetentionMs, batchSize))],
      ['bayeuxClientsDeleted', () => write(() => this.bayeuxClients.purgeExpired(this.options.now() - this.options.bayeuxClientTtlMs, batchSize))],
    ];
    try {
      for (const [field, step] of steps) {
        for (let n = batchSize; n === batchSize && result.batches < maxBatches && !this.stopped; ) {
          const started = performance.now();
          n = await step();
          result.longestBatchMs = Math.max(result.longestBatchMs, performance.now() - started);
          result.batches++;
          result[field] += n;
          // Let requests in between two batches.
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
      }
    } catch (err) {
      // A busy database (another process writing for longer than the busy timeout): the next run goes on.
      if (!isBusyError(err)) throw err;
      this.options.logger.warn({ err, ...result }, 'pruning stopped: the database is busy');
      return result;
    }
    if (result.sessionsEnded + result.connectionsDeleted + result.bayeuxClientsDeleted > 0) {
      this.options.logger.info({ ...result, longestBatchMs: Math.round(result.longestBatchMs * 10) / 10 }, 'pruned');
    }
    return result;
  }
}
