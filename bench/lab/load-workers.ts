/**
 * The load generator seen from the orchestrator (bench/lab/load-api.ts): the
 * clients run in forked worker processes (load-worker.ts), never in the
 * orchestrator's or the server's process. Subscriber i runs in worker
 * i % workers, which binds its sockets to 127.0.0.(10+w), so each worker has
 * its own ~28k ephemeral ports; the publisher is one more worker.
 *
 * Every call has a deadline; a worker that exits while a call waits on it
 * makes that call reject with a message naming the worker and the call.
 */
import os from 'node:os';
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ClientProtocol } from '../models/target.js';
import type {
  LoadGenerator,
  LoadProgress,
  Publisher,
  PublisherSpec,
  Subscribers,
  SubscriberSpec,
  TrafficSnapshot,
} from './load-api.js';
import type { PublisherTotals, SubscriberTotals } from './results.js';
import { encodeLatency, mergeLatency, summarizeLatency } from './verify.js';
import type { Calls, CallType, FromWorker, ToWorker, WorkerConfig, WorkerSubscriberTotals } from './worker-messages.js';

/** Run from source (tsx) or compiled (dist/): the worker is this module's sibling either way. */
const OWN_EXTENSION = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
const WORKER_SCRIPT = fileURLToPath(new URL(`./load-worker${OWN_EXTENSION}`, import.meta.url));
/** Longest wait for a forked worker to load (tsx compiles it on 2 busy cores). */
const HELLO_TIMEOUT_MS = 60_000;
/** Longest wait for a killed worker to exit. */
const KILL_WAIT_MS = 5_000;
/** Subscriber worker w binds to 127.0.0.(FIRST_SUBSCRIBER_HOST + w); the publisher to PUBLISHER_HOST. */
export const FIRST_SUBSCRIBER_HOST = 10;
const PUBLISHER_HOST = 9;
export const MAX_WORKERS = 254 - FIRST_SUBSCRIBER_HOST + 1;
/** Calls after whose reply the worker exits (load-worker.ts); `run` only when not told `final: false`. */
function isFinalCall(type: CallType, request: unknown): boolean {
  return type === 'finish' || type === 'soak-stop' || (type === 'run' && (request as { final?: boolean }).final !== false);
}
const PROTOCOLS: readonly ClientProtocol[] = ['chat-long-poll', 'chat-short-poll', 'chat-sse', 'sse', 'forever-iframe', 'nchan-long-poll'];

interface Pending {
  type: CallType;
  final: boolean;
  resolve: (result: unknown) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/** One forked worker: request/reply by id over IPC, latest progress, exit detection (also the soak's, bench/lab/soak/). */
export class WorkerProcess {
  latest: LoadProgress | null = null;
  private readonly child: ChildProcess;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  /** Why the worker is gone (set once it exited); calls after that reject with it. */
  private gone: string | null = null;
  private killed = false;
  /** The worker sent its final report (finish, run) and exits after it: not a failure. */
  private finalReplied = false;
  private fatal: string | null = null;
  private helloWaiter: { resolve: () => void; reject: (err: Error) => void } | null = null;
  private helloSeen = false;
  private readonly exited: Promise<void>;

  /** The worker's process id (for the harness's CPU reading of the load generator). */
  get pid(): number {
    return this.child.pid ?? 0;
  }

  constructor(
    readonly label: string,
    root: string,
    config: WorkerConfig,
  ) {
    this.child = fork(WORKER_SCRIPT, [JSON.stringify(config)], {
      cwd: root,
      execArgv: OWN_EXTENSION === '.ts' ? ['--import', 'tsx'] : [],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.onGone(
          this.killed
            ? `load worker ${this.label} was killed`
            : this.finalReplied && code === 0
              ? `load worker ${this.label} has finished (it exits after its final report)`
              : `load worker ${this.label} exited unexpectedly (${signal ?? `code ${code}`})${this.fatal === null ? '' : `: ${this.fatal}`}`,
        );
        resolve();
      });
    });
    this.child.on('error', (err) => this.onGone(`load worker ${this.label} failed: ${err.message}`));
    this.child.on('message', (message: FromWorker) => this.onMessage(message));
  }

  /** Resolves once the worker loaded and listens. */
  hello(timeoutMs: number): Promise<void> {
    if (this.helloSeen) return Promise.resolve();
    if (this.gone !== null) return Promise.reject(new Error(this.gone));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.helloWaiter = null;
        reject(new Error(`load worker ${this.label} did not start within ${timeoutMs} ms`));
      }, timeoutMs);
      this.helloWaiter = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
    });
  }

  /**
   * Sends a request and waits for its reply until `timeoutMs`. At the deadline
   * it rejects, or resolves with `onTimeout()` when given (a "false at the
   * deadline" answer); a late reply is dropped.
   */
  call<K extends CallType>(type: K, request: Calls[K]['request'], timeoutMs: number, onTimeout?: () => Calls[K]['reply']): Promise<Calls[K]['reply']> {
    if (this.gone !== null) return Promise.reject(new Error(`${this.gone} (before "${type}")`));
    const id = this.nextId++;
    return new Promise<Calls[K]['reply']>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        if (onTimeout !== undefined) resolve(onTimeout());
        else reject(new Error(`load worker ${this.label} did not answer "${type}" within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { type, final: isFinalCall(type, request), resolve: resolve as (result: unknown) => void, reject, timer });
      this.child.send({ ...request, type, id } as ToWorker, (err) => {
        if (err) this.settle(id, new Error(`load worker ${this.label}: cannot send "${type}": ${err.message}`));
      });
    });
  }

  /** SIGKILL unless already gone; resolves when it exited (or after a bounded wait). Idempotent. */
  async kill(): Promise<void> {
    if (this.gone === null) {
      this.killed = true;
      this.child.kill('SIGKILL');
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.exited, new Promise<void>((resolve) => (timer = setTimeout(resolve, KILL_WAIT_MS)))]);
    clearTimeout(timer);
  }

  private onMessage(message: FromWorker): void {
    switch (message.type) {
      case 'hello':
        this.helloSeen = true;
        this.helloWaiter?.resolve();
        this.helloWaiter = null;
        return;
      case 'progress':
        this.latest = message.progress;
        return;
      case 'reply':
        this.settle(message.id, message.ok ? null : new Error(`load worker ${this.label}: ${message.message}`), message.ok ? message.result : undefined);
        return;
      case 'fatal':
        // The exit follows; keep the reason for the message of the calls it fails.
        this.fatal = message.message;
        return;
    }
  }

  private settle(id: number, err: Error | null, result?: unknown): void {
    const pending = this.pending.get(id);
    if (pending === undefined) return; // its caller gave up already
    this.pending.delete(id);
    clearTimeout(pending.timer);
    if (err === null && pending.final) this.finalReplied = true;
    if (err !== null) pending.reject(err);
    else pending.resolve(result);
  }

  private onGone(reason: string): void {
    if (this.gone !== null) return;
    this.gone = reason;
    this.helloWaiter?.reject(new Error(reason));
    this.helloWaiter = null;
    for (const [id, pending] of [...this.pending]) this.settle(id, new Error(`${reason} while waiting for "${pending.type}"`));
  }
}

/** `127.0.0.N` when the target is on IPv4 loopback (the whole 127/8 is), else no binding. */
export function loopbackSource(url: string, host: number): string | undefined {
  const hostname = new URL(url).hostname;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname) ? `127.0.0.${host}` : undefined;
}

function check(condition: boolean, message: string): void {
  if (!condition) throw new Error(`load generator: ${message}`);
}

function checkCommon(protocol: ClientProtocol, url: string, rooms: readonly string[]): void {
  check(PROTOCOLS.includes(protocol), `unknown protocol ${JSON.stringify(protocol)}`);
  let parsed: URL | null = null;
  try {
    parsed = new URL(url);
  } catch {
    /* reported below */
  }
  check(parsed !== null && parsed.protocol === 'http:', `the target URL must be an absolute http URL, got ${JSON.stringify(url)}`);
  check(rooms.length > 0, 'at least one room is needed');
}

/** Waits for every worker's hello; kills them all if one fails to start. */
export async function startAll(workers: WorkerProcess[]): Promise<void> {
  try {
    await Promise.all(workers.map((w) => w.hello(HELLO_TIMEOUT_MS)));
  } catch (err) {
    await Promise.all(workers.map((w) => w.kill()));
    throw err;
  }
}

function sumProgress(workers: readonly WorkerProcess[]): LoadProgress {
  const sum: LoadProgress = { ready: 0, subscribed: 0, requests: 0, deliveries: 0, errors: 0 };
  for (const w of workers) {
    if (w.latest === null) continue;
    sum.ready += w.latest.ready;
    sum.subscribed += w.latest.subscribed;
    sum.requests += w.latest.requests;
    sum.deliveries += w.latest.deliveries;
    sum.errors += w.latest.errors;
  }
  return sum;
}

/** Sums the workers' finish reports; traffic since `windowStart`. */
export function sumSubscriberTotals(parts: readonly WorkerSubscriberTotals[], windowStart: TrafficSnapshot): SubscriberTotals {
  const badStatuses: Record<string, number> = {};
  const errorKinds: Record<string, number> = {};
  let expectedDeliveries = 0;
  let deliveries = 0;
  let lost = 0;
  let duplicated = 0;
  let outOfOrder = 0;
  let requests = 0;
  let bytes = 0;
  let errors = 0;
  let resyncs = 0;
  const lastDeliveryMsBySeq: Record<string, number> = {};
  for (const p of parts) {
    for (const [seq, ms] of Object.entries(p.lastDeliveryMsBySeq ?? {})) {
      lastDeliveryMsBySeq[seq] = Math.max(lastDeliveryMsBySeq[seq] ?? 0, ms);
    }
    expectedDeliveries += p.expectedDeliveries;
    deliveries += p.deliveries;
    lost += p.lost;
    duplicated += p.duplicated;
    outOfOrder += p.outOfOrder;
    requests += p.requests;
    bytes += p.bytes;
    errors += p.errors;
    resyncs += p.resyncs ?? 0;
    for (const [status, count] of Object.entries(p.badStatuses)) badStatuses[status] = (badStatuses[status] ?? 0) + count;
    for (const [kind, count] of Object.entries(p.errorKinds ?? {})) errorKinds[kind] = (errorKinds[kind] ?? 0) + count;
  }
  const histogram = mergeLatency(parts.map((p) => p.latencyHistogram));
  const commitHistogram = mergeLatency(parts.flatMap((p) => (p.commitLatencyHistogram === undefined ? [] : [p.commitLatencyHistogram])));
  return {
    expectedDeliveries,
    deliveries,
    lost,
    duplicated,
    outOfOrder,
    requests: Math.max(0, requests - windowStart.requests),
    bytes: Math.max(0, bytes - windowStart.bytes),
    errors,
    badStatuses,
    errorKinds,
    ...(resyncs > 0 ? { resyncs } : {}),
    latency: summarizeLatency(histogram),
    latencyHistogram: encodeLatency(histogram),
    // Only when some event carried its commit time: Nchan's and the SSE/iframe streams' absence stays absent.
    ...(commitHistogram.totalCount > 0 ? { commitLatency: summarizeLatency(commitHistogram) } : {}),
    lastDeliveryMsBySeq,
  };
}

class LabSubscribers implements Subscribers {
  constructor(private readonly workers: WorkerProcess[]) {}

  pids(): number[] {
    return this.workers.map((w) => w.pid);
  }

  async setup(timeoutMs: number): Promise<void> {
    await Promise.all(this.workers.map((w) => w.call('setup', { timeoutMs }, timeoutMs)));
  }

  async subscribe(timeoutMs: number, burst = false): Promise<void> {
    await Promise.all(this.workers.map((w) => w.call('subscribe', { timeoutMs, burst }, timeoutMs)));
  }

  progress(): LoadProgress {
    return sumProgress(this.workers);
  }

  async snapshot(timeoutMs: number): Promise<TrafficSnapshot> {
    const parts = await Promise.all(this.workers.map((w) => w.call('snapshot', {}, timeoutMs)));
    const sum: TrafficSnapshot = { requests: 0, bytes: 0, deliveries: 0, errors: 0 };
    for (const { snapshot } of parts) {
      sum.requests += snapshot.requests;
      sum.bytes += snapshot.bytes;
      sum.deliveries += snapshot.deliveries;
      sum.errors += snapshot.errors;
    }
    return sum;
  }

  async waitAllReceived(publishedPerRoom: Record<string, number>, timeoutMs: number): Promise<boolean> {
    const answers = await Promise.all(
      this.workers.map((w) => w.call('wait-received', { publishedPerRoom, timeoutMs }, timeoutMs, () => ({ received: false }))),
    );
    return answers.every((a) => a.received);
  }

  async finish(publishedPerRoom: Record<string, number>, windowStart: TrafficSnapshot, timeoutMs: number): Promise<SubscriberTotals> {
    const answers = await Promise.all(this.workers.map((w) => w.call('finish', { publishedPerRoom, timeoutMs }, timeoutMs)));
    return sumSubscriberTotals(
      answers.map((a) => a.totals),
      windowStart,
    );
  }

  async kill(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.kill()));
  }
}

class LabPublisherHandle implements Publisher {
  constructor(private readonly worker: WorkerProcess) {}

  pids(): number[] {
    return [this.worker.pid];
  }

  async setup(timeoutMs: number): Promise<void> {
    await this.worker.call('setup', { timeoutMs }, timeoutMs);
  }

  async run(durationMs: number, timeoutMs: number, final = true): Promise<PublisherTotals> {
    const { totals } = await this.worker.call('run', { durationMs, timeoutMs, final }, timeoutMs);
    return totals;
  }

  kill(): Promise<void> {
    return this.worker.kill();
  }
}

/**
 * The publisher is the workload's clock: starved of CPU by the subscriber
 * processes on a saturated machine, it would offer the target fewer messages
 * and the run would measure the generator. A higher scheduling priority keeps
 * its offered rate steady (root may raise it; otherwise it runs as it is).
 */
const PUBLISHER_NICE = -10;

function raisePriority(pid: number): void {
  try {
    os.setPriority(pid, PUBLISHER_NICE);
  } catch {
    process.stderr.write(`lab: could not raise the publisher's priority (nice ${PUBLISHER_NICE}); it runs at normal priority\n`);
  }
}

/** The lab's load generator; `root` is the repository root (the workers' cwd, where `node_modules/tsx` is). */
export function createLoadGenerator(root: string): LoadGenerator {
  return {
    async startSubscribers(spec: SubscriberSpec): Promise<Subscribers> {
      checkCommon(spec.protocol, spec.clientUrl, spec.rooms);
      check(Number.isInteger(spec.clients) && spec.clients >= 1, `clients must be an integer >= 1, got ${spec.clients}`);
      check(
        Number.isInteger(spec.workers) && spec.workers >= 1 && spec.workers <= MAX_WORKERS,
        `workers must be an integer from 1 to ${MAX_WORKERS} (one loopback address each), got ${spec.workers}`,
      );
      check(spec.requestTimeoutMs > 0, `requestTimeoutMs must be > 0, got ${spec.requestTimeoutMs}`);
      check(spec.shortPollIntervalMs >= 0, `shortPollIntervalMs must be >= 0, got ${spec.shortPollIntervalMs}`);
      // No idle worker: fewer subscribers than workers means fewer workers.
      const workers = Math.min(spec.workers, spec.clients);
      const handles = Array.from({ length: workers }, (_, w) => {
        const localAddress = loopbackSource(spec.clientUrl, FIRST_SUBSCRIBER_HOST + w);
        return new WorkerProcess(`subscriber ${w}${localAddress === undefined ? '' : ` (${localAddress})`}`, root, {
          role: 'subscriber',
          worker: w,
          workers,
          clients: spec.clients,
          protocol: spec.protocol,
          clientUrl: spec.clientUrl,
          ...(spec.clientUrls === undefined ? {} : { clientUrls: [...spec.clientUrls] }),
          rooms: [...spec.rooms],
          shortPollIntervalMs: spec.shortPollIntervalMs,
          ...(spec.repollDelayMs === undefined ? {} : { repollDelayMs: spec.repollDelayMs }),
          requestTimeoutMs: spec.requestTimeoutMs,
          localAddress,
        });
      });
      await startAll(handles);
      return new LabSubscribers(handles);
    },

    async startPublisher(spec: PublisherSpec): Promise<Publisher> {
      checkCommon(spec.protocol, spec.publishUrl, spec.rooms);
      check(Number.isFinite(spec.ratePerS) && spec.ratePerS > 0, `ratePerS must be > 0, got ${spec.ratePerS}`);
      const localAddress = loopbackSource(spec.publishUrl, PUBLISHER_HOST);
      const handle = new WorkerProcess('publisher', root, {
        role: 'publisher',
        protocol: spec.protocol,
        publishUrl: spec.publishUrl,
        rooms: [...spec.rooms],
        ratePerS: spec.ratePerS,
        localAddress,
      });
      await startAll([handle]);
      raisePriority(handle.pid);
      return new LabPublisherHandle(handle);
    },
  };
}
