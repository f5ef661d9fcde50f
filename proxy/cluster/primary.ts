/**
 * The cluster primary (docs/scaleout.md "Workers"): forks `workers` proxy
 * processes that share the client and control ports through node:cluster, and
 * plays the part Redis plays for several hosts. It
 *
 * - numbers control calls into one ordered entry stream and sends every worker
 *   each entry (publish, push notification, close, revoke) in that order;
 * - keeps the per-connection queues, resync flags and tombstones
 *   (connection-store.ts) behind request/response messages;
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
import { parsePushBody, parseRevokeBody, parseCloseBody } from '../control/control-validation.js';
import type { ProxyOptions } from '../options.js';
import { ConnectionStore } from './connection-store.js';
import { fromWire, isMessage, toWire, type EntryType, type PrimaryMessage, type WireError, type WorkerMessage, type WorkerStats } from './messages.js';
import { sumStats } from './stats-sum.js';

/** The env variable that hands a worker the ports the primary chose (read by proxy/main.ts). */
export const WORKER_PORTS_ENV = 'COMET_PROXY_WORKER_PORTS';
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
  const store = new ConnectionStore(options, options.timers.now);
  const sweep = setInterval(() => store.sweep(), options.sweepIntervalMs);
  sweep.unref();
  /** Revoke entries still in force, oldest first, for replacement workers. */
  const revocations: Array<{ atMs: number; d: string }> = [];
  const gathers = new Map<number, { replies: unknown[]; waiting: Set<number>; finish: () => void }>();
  let nextGather = 1;
  let shuttingDown = false;
  const deaths: number[] = [];
  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((resolve) => (resolveDone = resolve));

  const send = (worker: Worker, message: PrimaryMessage): void => {
    if (!worker.isConnected()) return;
    worker.send(message, undefined, undefined, (err: Error | null) => {
      if (err) log.debug({ err: err.message, workerPid: worker.process.pid }, 'message to a worker lost (it is exiting)');
    });
  };
  const live = (): Worker[] => Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && w.isConnected());
  const broadcast = (t: EntryType, d: string): void => {
    const message: PrimaryMessage = { k: 'entry', t, d };
    for (const worker of live()) send(worker, message);
  };

  function act(op: string, text: string): unknown {
    const body: unknown = JSON.parse(text);
    if (op === 'publish') {
      broadcast('publish', text);
      return { delivered: 0, queued: 0, dropped: 0, reasked: 0 };
    }
    if (op === 'push') {
      const { result, notify } = store.push(parsePushBody(body, options.controlMaxIdsPerCall));
      if (result.dropped > 0) log.warn({ dropped: result.dropped }, 'pushes dropped (overflow or closed connection IDs)');
      if (notify.length > 0) broadcast('push', JSON.stringify(notify));
      return result;
    }
    if (op === 'close') {
      let dropped = 0;
      for (const command of parseCloseBody(body, options.controlMaxIdsPerCall)) dropped += store.close(command.connectionId);
      broadcast('close', text);
      return { delivered: 0, queued: 0, dropped, reasked: 0 };
    }
    // revoke: `issued-before` fixed here, once, so every worker (and every later one) applies the same revocation.
    const items = parseRevokeBody(body).map((c) => ({
      ...(c.subject === undefined ? {} : { subject: c.subject }),
      ...(c.connectionId === undefined ? {} : { 'connection-id': c.connectionId }),
      'issued-before': c.issuedBeforeMs,
    }));
    const d = JSON.stringify({ items });
    rememberRevocation(d);
    broadcast('revoke', d);
    return { revoked: 0 };
  }

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
              ? sumStats(values as WorkerStats[], { ...store.queued(), dropped: store.dropped })
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
        send(worker, { k: 'reply', id: message.id, value: null });
        return;
      case 'ready':
        return onReady(worker);
      case 'call': {
        let value: unknown;
        let error: WireError | undefined;
        try {
          value = act(message.op, message.body);
        } catch (err) {
          const e = err as { code?: string; message: string; retryAfterS?: number };
          error = { code: e.code ?? 'PROXY_ERR_BUS_UNAVAILABLE', message: e.message, ...(e.retryAfterS === undefined ? {} : { retryAfterS: e.retryAfterS }) };
          if (e.code === undefined) log.error({ err, op: message.op }, 'cluster primary could not apply a control call');
        }
        send(worker, error === undefined ? { k: 'reply', id: message.id, value } : { k: 'reply', id: message.id, error });
        return;
      }
      case 'take': {
        const result = store.take(message.cid);
        send(worker, { k: 'reply', id: message.id, value: result.kind === 'item' ? { kind: 'item', item: toWire(result.item) } : result });
        return;
      }
      case 'requeue':
        store.requeue(message.cid, fromWire(message.item));
        return;
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

  const fork = (): Worker => {
    const worker = cluster.fork({ [WORKER_PORTS_ENV]: `${clientPort},${controlPort}` });
    worker.on('message', (message: unknown) => onMessage(worker, message));
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
    clearInterval(sweep);
    resolveDone(Math.max(code, exitCode));
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

  for (let i = 0; i < options.workers; i++) fork();
  try {
    await started;
  } catch (err) {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGKILL');
    clearInterval(sweep);
    throw err;
  }
  return { clientPort, controlPort, done };
}
