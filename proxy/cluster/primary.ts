/**
 * The cluster primary (docs/scaleout.md "Workers"): forks `workers` proxy
 * processes that share the client and control ports through node:cluster, and
 * is their one bus (primary-bus.ts): alone on the host it plays the part Redis
 * plays for several hosts; with `redisUrl` it is the host's member of the Redis
 * bus. It
 *
 * - puts control calls into one ordered entry stream and sends every worker
 *   each entry (publish, push notification, close, revoke) in that order;
 * - answers the workers' takes and requeues of per-connection queues, resync
 *   flags and tombstones (in its memory, or in Redis);
 * - sums `/stats` and `/metrics` over every worker;
 * - replaces a worker that dies (its clients re-poll with their cursors; the
 *   entries it missed died with its parked requests), and replays the
 *   revocations still in force to the new one;
 * - on SIGTERM/SIGINT tells every worker to answer its parked requests and
 *   exit, then exits 0.
 *
 * It serves no HTTP itself. If it dies, node:cluster exits its workers at once
 * (their clients' sockets close; a process manager restarts the whole).
 */
import cluster, { type Worker } from 'node:cluster';
import { createServer, type Server } from 'node:net';
import { AggregatorRegistry } from 'prom-client';
import type { Logger } from 'pino';
import type { ProxyOptions } from '../options.js';
import { IpcBatcher, unbatch, type Batch } from './ipc-batch.js';
import { LocalPrimaryBus } from './local-primary-bus.js';
import { fromWire, isMessage, toWire, WORKER_PORTS_ENV, type HelloReply, type PrimaryMessage, type WireError, type WorkerMessage, type WorkerStats } from './messages.js';
import type { PrimaryBus, Relay } from './primary-bus.js';
import { sumStats } from './stats-sum.js';

export { WORKER_PORTS_ENV } from './messages.js';
/** A worker that does not answer a gather in this long is left out of the sum, ms. */
const GATHER_TIMEOUT_MS = 1500;
/** More deaths than this within RESTART_WINDOW_MS is a crash loop: the primary gives up (exit 1). */
const MAX_RESTARTS = 10;
const RESTART_WINDOW_MS = 60_000;
/** SIGTERM: workers that have not exited after this are killed, ms. */
const SHUTDOWN_DEADLINE_MS = 30_000;

export interface PrimaryHandle {
  clientPort: number;
  controlPort: number;
  /** Resolves with the exit code the process should end with. */
  done: Promise<number>;
}

/** Picks a free port for each port option that is 0 (workers must all bind the same, known ports). */
async function concretePorts(options: ProxyOptions): Promise<[number, number]> {
  const held: Server[] = [];
  const pick = async (port: number, host: string): Promise<number> => {
    if (port !== 0) return port;
    const server = createServer();
    held.push(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, host, () => resolve());
    });
    return (server.address() as { port: number }).port;
  };
  try {
    // Both held open at once, so the two picks differ.
    return [await pick(options.clientPort, options.clientHost), await pick(options.controlPort, options.controlHost)];
  } finally {
    await Promise.all(held.map((s) => new Promise((resolve) => s.close(resolve))));
  }
}

export async function runPrimary(options: ProxyOptions): Promise<PrimaryHandle> {
  const log: Logger = options.logger;
  const [clientPort, controlPort] = await concretePorts(options);
  /** Revoke entries still in force, oldest first, for replacement workers. */
  const revocations: Array<{ atMs: number; d: string }> = [];
  const gathers = new Map<number, { replies: unknown[]; waiting: Set<number>; finish: () => void }>();
  let nextGather = 1;
  let shuttingDown = false;
  const deaths: number[] = [];
  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((resolve) => (resolveDone = resolve));

  /** Each worker's outgoing messages, one write per event-loop turn (ipc-batch.ts), in order. */
  const outboxes = new WeakMap<Worker, IpcBatcher<PrimaryMessage>>();
  const write = (worker: Worker, message: PrimaryMessage | Batch<PrimaryMessage>): void => {
    if (!worker.isConnected()) return;
    worker.send(message, undefined, undefined, (err: Error | null) => {
      if (err) log.debug({ err: err.message, workerPid: worker.process.pid }, 'message to a worker lost (it is exiting)');
    });
  };
  const send = (worker: Worker, message: PrimaryMessage): void => {
    if (!worker.isConnected()) return;
    let outbox = outboxes.get(worker);
    if (outbox === undefined) outboxes.set(worker, (outbox = new IpcBatcher((m) => write(worker, m))));
    outbox.send(message);
  };
  const live = (): Worker[] => Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && w.isConnected());
  const broadcast = (message: PrimaryMessage): void => {
    for (const worker of live()) send(worker, message);
  };
  const relay: Relay = {
    entry(t, d) {
      if (t === 'revoke') rememberRevocation(d);
      broadcast({ k: 'entry', t, d });
    },
    resync: (queuesLost) => broadcast({ k: 'resync', queuesLost }),
  };
  // The Redis bus (and its client library) is loaded only when configured: the primary of one host never needs it.
  const redis = options.redisUrl === undefined ? undefined : await Promise.all([import('./redis-primary-bus.js'), import('../bus/redis-bus.js')]);
  const bus: PrimaryBus =
    options.redisUrl === undefined || redis === undefined
      ? new LocalPrimaryBus(options, relay)
      : new redis[0].RedisPrimaryBus({ ...options, redisUrl: options.redisUrl }, relay);
  /** Without Redis no call fails for want of the bus: nothing to tell apart. */
  const busUnavailable = redis?.[1].BusUnavailableError;

  function rememberRevocation(d: string): void {
    const now = options.timers.now();
    revocations.push({ atMs: now, d });
    // A lease lives at most leaseMaxLifetimeMs: older revocations can refuse nothing still valid.
    while (revocations.length > 0 && (now - revocations[0]!.atMs >= options.leaseMaxLifetimeMs || revocations.length > options.maxRevocations)) {
      revocations.shift();
    }
  }

  function gather(from: Worker, id: number, what: 'stats' | 'metrics'): void {
    const workers = live();
    const gid = nextGather++;
    const replies: unknown[] = [];
    const waiting = new Set(workers.map((w) => w.id));
    const timer = setTimeout(() => finish(), GATHER_TIMEOUT_MS);
    const finish = (): void => {
      if (!gathers.delete(gid)) return;
      clearTimeout(timer);
      void (async () => {
        try {
          const values = replies.filter((r) => r !== null && r !== undefined);
          const value =
            what === 'stats'
              ? sumStats(values as WorkerStats[], bus.numbers())
              : await AggregatorRegistry.aggregate(values as Parameters<typeof AggregatorRegistry.aggregate>[0]).metrics();
          send(from, { k: 'reply', id, value });
        } catch (err) {
          send(from, { k: 'reply', id, error: { code: 'PROXY_ERR_BUS_UNAVAILABLE', message: `could not sum the workers' ${what}: ${(err as Error).message}` } });
        }
      })();
    };
    gathers.set(gid, { replies, waiting, finish });
    for (const worker of workers) send(worker, { k: 'collect', id: gid, what });
    if (workers.length === 0) finish();
  }

  function onMessage(worker: Worker, raw: unknown): void {
    if (!isMessage(raw)) return;
    const message = raw as WorkerMessage;
    switch (message.k) {
      case 'hello':
        for (const { d } of revocations) send(worker, { k: 'entry', t: 'revoke', d });
        send(worker, { k: 'reply', id: message.id, value: { announcesQueueChanges: bus.announcesQueueChanges } satisfies HelloReply });
        return;
      case 'ready':
        return onReady(worker);
      case 'call': {
        // Called now (not after a tick): the local bus orders calls by their arrival, the Redis bus by its XADDs.
        const { id, op } = message;
        bus.call(op, message.body).then(
          (value) => send(worker, { k: 'reply', id, value }),
          (err: unknown) => send(worker, { k: 'reply', id, error: wireError(err, `cluster primary could not apply a ${op}`) }),
        );
        return;
      }
      case 'take': {
        const { id, cid } = message;
        bus.take(cid, worker.id).then(
          (result) => send(worker, { k: 'reply', id, value: result.kind === 'item' ? { kind: 'item', item: toWire(result.item) } : result }),
          (err: unknown) => send(worker, { k: 'reply', id, error: wireError(err, 'cluster primary could not take from a connection queue') }),
        );
        return;
      }
      case 'seen':
        if (log.isLevelEnabled('debug')) log.debug({ workerPid: worker.process.pid, ids: message.cids.length }, 'polls parked without a take');
        return bus.seen(message.cids);
      case 'requeue':
        bus.requeue(message.cid, fromWire(message.item), worker.id).catch((err: unknown) => {
          log.error({ err, connectionId: message.cid }, 'cluster primary could not requeue an item');
        });
        return;
      case 'resync-again':
        // A resync its worker took but could not tell (the poll was answered meanwhile, or the take came late).
        if (log.isLevelEnabled('debug')) log.debug({ connectionId: message.cid, reason: message.reason }, 'resync set again');
        return bus.resyncAgain(message.cid, message.reason, worker.id);
      case 'delivered':
        return bus.delivered(message.cid, worker.id);
      case 'gather':
        return gather(worker, message.id, message.what);
      case 'gathered': {
        const g = gathers.get(message.id);
        if (g === undefined) return;
        g.replies.push(message.value);
        g.waiting.delete(worker.id);
        if (g.waiting.size === 0) g.finish();
        return;
      }
    }
  }

  /** A failure as the worker rebuilds it (worker-bus.ts): coded errors keep their code, others are a 503 bus error. */
  function wireError(err: unknown, what: string): WireError {
    const e = err as { code?: string; message?: string; retryAfterS?: number };
    // A bus failure (Redis away) is logged once, by the worker's control API or hold that gets the 503.
    if (typeof e.code !== 'string' && !(busUnavailable !== undefined && err instanceof busUnavailable)) log.error({ err }, what);
    return {
      code: typeof e.code === 'string' ? e.code : 'PROXY_ERR_BUS_UNAVAILABLE',
      message: e.message ?? String(err),
      ...(e.retryAfterS === undefined ? {} : { retryAfterS: e.retryAfterS }),
    };
  }

  const fork = (): Worker => {
    const worker = cluster.fork({ [WORKER_PORTS_ENV]: `${clientPort},${controlPort}` });
    worker.on('message', (raw: unknown) => unbatch(raw, (message) => onMessage(worker, message)));
    return worker;
  };

  // Startup: every worker listening, or the first failure ends it all.
  let starting = options.workers;
  let resolveStarted!: () => void;
  let rejectStarted!: (err: Error) => void;
  const started = new Promise<void>((resolve, reject) => {
    resolveStarted = resolve;
    rejectStarted = reject;
  });
  const ready = new WeakSet<Worker>();
  function onReady(worker: Worker): void {
    if (ready.has(worker)) return;
    ready.add(worker);
    if (starting > 0 && --starting === 0) resolveStarted();
    else if (starting === 0) log.info({ workerPid: worker.process.pid }, 'replacement worker listening');
  }

  cluster.on('exit', (worker, code, signal) => {
    bus.workerGone(worker.id);
    for (const g of gathers.values()) {
      if (g.waiting.delete(worker.id) && g.waiting.size === 0) g.finish();
    }
    if (shuttingDown) {
      if (live().length === 0 && Object.keys(cluster.workers ?? {}).length === 0) finishShutdown(0);
      return;
    }
    if (starting > 0) {
      rejectStarted(new Error(`worker ${worker.process.pid} exited (${code ?? signal}) before listening`));
      return;
    }
    const now = Date.now();
    deaths.push(now);
    while (deaths.length > 0 && now - deaths[0]! > RESTART_WINDOW_MS) deaths.shift();
    if (deaths.length > MAX_RESTARTS) {
      log.fatal({ deaths: deaths.length }, 'workers keep dying: giving up');
      void shutDown('crash-loop', 1);
      return;
    }
    log.warn({ workerPid: worker.process.pid, code, signal }, 'worker died; starting a replacement (its clients re-poll)');
    fork();
  });

  let exitCode = 0;
  let killTimer: NodeJS.Timeout | undefined;
  function finishShutdown(code: number): void {
    clearTimeout(killTimer);
    // Last: the workers needed the bus to answer their parked requests.
    void bus.stop().finally(() => resolveDone(Math.max(code, exitCode)));
  }
  async function shutDown(reason: string, code = 0): Promise<void> {
    if (shuttingDown) return;
    shuttingDown = true;
    exitCode = code;
    log.info({ reason, workers: live().length }, 'shutting down: every worker answers its parked requests');
    for (const worker of Object.values(cluster.workers ?? {})) if (worker !== undefined) send(worker, { k: 'shutdown' });
    killTimer = setTimeout(() => {
      log.error('workers still running after the shutdown deadline: killing them');
      exitCode = 1;
      for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGKILL');
    }, SHUTDOWN_DEADLINE_MS);
    if (Object.keys(cluster.workers ?? {}).length === 0) finishShutdown(code);
  }
  process.once('SIGTERM', () => void shutDown('SIGTERM'));
  process.once('SIGINT', () => void shutDown('SIGINT'));

  // The bus first: a worker's first poll may take from a connection queue.
  await bus.start();
  for (let i = 0; i < options.workers; i++) fork();
  try {
    await started;
  } catch (err) {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGKILL');
    await bus.stop();
    throw err;
  }
  return { clientPort, controlPort, done };
}
