/**
 * A load-generator process of the models lab, forked by load-workers.ts with
 * its config as argv[2] (JSON, worker-messages.ts). Three roles:
 * - subscriber: its share of the subscribers (global index i with
 *   i % workers === worker), every socket bound to its own loopback source
 *   address; setup, subscribe, snapshot, wait-received, finish;
 * - publisher: setup, run;
 * - soak: the soak scenario's churning clients in several rooms (bench/lab/soak/soak-role.ts): setup, soak-poll,
 *   soak-churn, soak-quiesce, soak-catch-up, soak-stop.
 * It answers each request once (by id), reports progress every ~250 ms, obeys
 * the deadline of every request (leaving a margin for the reply to travel),
 * and exits after its final report, when the orchestrator goes away, or at a
 * hard cap on its life.
 */
import { createSubscriber } from './clients/index.js';
import { LabPublisher } from './clients/publisher.js';
import { DeliverySink, sleep, type Subscriber } from './clients/subscriber.js';
import type { LoadProgress, TrafficSnapshot } from './load-api.js';
import { addVerdict, emptyVerdict, encodeLatency, verifyRecord } from './verify.js';
import { SoakRole } from './soak/soak-role.js';
import { roomOfClient } from './workload.js';
import {
  type Calls,
  type CallType,
  type FromWorker,
  PROGRESS_INTERVAL_MS,
  type PublisherWorkerConfig,
  type SubscriberWorkerConfig,
  type ToWorker,
  type WorkerConfig,
  type WorkerSubscriberTotals,
} from './worker-messages.js';

/** Whatever happens upstream, a worker does not run on forever. */
const MAX_LIFE_MS = 4 * 60 * 60 * 1000;
/** Sessions and joins in flight at once per worker (the soak's figure: enough to keep a server busy, not a stampede). */
const SETUP_CONCURRENCY = 32;
/** Subscribers started per step, and the pause between steps: ~5,000 new polls/s per worker, not all at once. */
const SUBSCRIBE_BATCH = 50;
const SUBSCRIBE_STEP_MS = 10;
/** How often wait-received looks at the records. */
const RECEIVED_CHECK_MS = 50;
/** Longest wait for the clients' loops to end after stop() (they end at once: their requests are aborted). */
const STOP_WAIT_MS = 5_000;

function send(message: FromWorker, then?: () => void): void {
  if (!process.connected) {
    then?.();
    return;
  }
  process.send!(message, undefined, {}, () => then?.());
}

/** The worker's own deadline for a request: the orchestrator's, less a margin for the reply. performance.now() ms. */
function deadlineOf(timeoutMs: number): number {
  return performance.now() + timeoutMs - Math.min(1_000, timeoutMs * 0.1);
}

/** Runs `fn` over `items`, at most `limit` at once; failures are collected, not thrown. */
async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<unknown[]> {
  const failures: unknown[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const item = items[next++]!;
        try {
          await fn(item);
        } catch (err) {
          failures.push(err);
        }
      }
    }),
  );
  return failures;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

type Handler = { [K in CallType]?: (request: Calls[K]['request']) => Promise<Calls[K]['reply']> };

class SubscriberRole {
  private readonly sink = new DeliverySink();
  private readonly clients: Subscriber[] = [];
  private readonly progressTimer: NodeJS.Timeout;

  constructor(config: SubscriberWorkerConfig) {
    for (let i = config.worker; i < config.clients; i += config.workers) {
      this.clients.push(
        createSubscriber(config.protocol, {
          index: i,
          room: roomOfClient(i, config.rooms),
          clientUrl: config.clientUrls === undefined || config.clientUrls.length === 0 ? config.clientUrl : config.clientUrls[i % config.clientUrls.length]!,
          localAddress: config.localAddress,
          requestTimeoutMs: config.requestTimeoutMs,
          shortPollIntervalMs: config.shortPollIntervalMs,
          ...(config.repollDelayMs === undefined ? {} : { repollDelayMs: config.repollDelayMs }),
          sink: this.sink,
        }),
      );
    }
    this.progressTimer = setInterval(() => send({ type: 'progress', progress: this.progress() }), PROGRESS_INTERVAL_MS);
  }

  readonly handlers: Handler = {
    setup: async ({ timeoutMs }) => {
      const deadline = deadlineOf(timeoutMs);
      const failures = await eachLimited(this.clients, SETUP_CONCURRENCY, (client) => client.setup(deadline));
      if (failures.length > 0) {
        throw new Error(`${failures.length} of ${this.clients.length} subscribers not ready after ${timeoutMs} ms; first: ${messageOf(failures[0])}`);
      }
      return {};
    },

    subscribe: async ({ timeoutMs, burst }) => {
      const deadline = deadlineOf(timeoutMs);
      await this.skipPastJoins(deadline);
      // A burst starts every client in this tick: the requests go out as fast as this process can write them.
      const batch = burst === true ? this.clients.length : SUBSCRIBE_BATCH;
      for (let i = 0; i < this.clients.length && performance.now() < deadline; i += batch) {
        for (const client of this.clients.slice(i, i + batch)) client.start();
        if (i + batch < this.clients.length) await sleep(SUBSCRIBE_STEP_MS);
      }
      await Promise.race([Promise.all(this.clients.map((c) => c.firstSent)), sleep(deadline - performance.now())]);
      const late = this.clients.filter((c) => !c.subscribed).length;
      if (late > 0) throw new Error(`${late} of ${this.clients.length} subscribers sent no first request within ${timeoutMs} ms`);
      return {};
    },

    snapshot: async () => ({ snapshot: this.snapshot() }),

    'wait-received': async ({ publishedPerRoom, timeoutMs }) => {
      const deadline = deadlineOf(timeoutMs);
      // Records only grow, so a subscriber found complete stays complete: scan from the first one that was not.
      let from = 0;
      for (;;) {
        while (from < this.clients.length) {
          const client = this.clients[from]!;
          if (client.record.contiguous < (publishedPerRoom[client.room] ?? 0)) break;
          from++;
        }
        if (from === this.clients.length) return { received: true };
        const left = deadline - performance.now();
        if (left <= 0) return { received: false };
        await sleep(Math.min(RECEIVED_CHECK_MS, left));
      }
    },

    finish: async ({ publishedPerRoom, timeoutMs }) => {
      const deadline = deadlineOf(timeoutMs);
      clearInterval(this.progressTimer);
      for (const client of this.clients) client.stop();
      await Promise.race([
        Promise.allSettled(this.clients.map((c) => c.finished())),
        sleep(Math.min(STOP_WAIT_MS, deadline - performance.now())),
      ]);
      const verdict = emptyVerdict();
      for (const client of this.clients) addVerdict(verdict, verifyRecord(client.record, publishedPerRoom[client.room] ?? 0));
      const traffic = this.snapshot();
      const totals: WorkerSubscriberTotals = {
        expectedDeliveries: verdict.expected,
        deliveries: verdict.deliveries,
        lost: verdict.lost,
        duplicated: verdict.duplicated,
        outOfOrder: verdict.outOfOrder,
        extra: verdict.extra,
        requests: traffic.requests,
        bytes: traffic.bytes,
        errors: this.sink.errors,
        badStatuses: { ...this.sink.badStatuses },
        errorKinds: { ...this.sink.errorKinds },
        resyncs: this.sink.resyncs,
        latencyHistogram: encodeLatency(this.sink.latency),
        commitLatencyHistogram: encodeLatency(this.sink.commitLatency),
        lastDeliveryMsBySeq: Object.fromEntries([...this.sink.lastDeliveryMsBySeq].map(([seq, ms]) => [String(seq), ms])),
      };
      return { totals };
    },
  };

  /**
   * Starts every subscriber from its room's last event id as of now (all joins
   * done, no message published yet), so none downloads the others' join
   * events. Not possible (Nchan) or failed: each keeps its own cursor, which
   * costs traffic before the window but loses nothing.
   */
  private async skipPastJoins(deadline: number): Promise<void> {
    const byRoom = new Map<string, Subscriber[]>();
    for (const client of this.clients) {
      const list = byRoom.get(client.room);
      if (list === undefined) byRoom.set(client.room, [client]);
      else list.push(client);
    }
    await eachLimited([...byRoom.values()], 8, async (members) => {
      const cursor = await members[0]!.roomCursor(deadline).catch(() => null);
      if (cursor !== null) for (const client of members) client.skipTo(cursor);
    });
  }

  private progress(): LoadProgress {
    let ready = 0;
    let subscribed = 0;
    let requests = 0;
    for (const client of this.clients) {
      if (client.ready) ready++;
      if (client.subscribed) subscribed++;
      requests += client.http.requests;
    }
    return { ready, subscribed, requests, deliveries: this.sink.deliveries, errors: this.sink.errors };
  }

  private snapshot(): TrafficSnapshot {
    let requests = 0;
    let bytes = 0;
    for (const client of this.clients) {
      requests += client.http.requests;
      bytes += client.http.bytes();
    }
    return { requests, bytes, deliveries: this.sink.deliveries, errors: this.sink.errors };
  }
}

class PublisherRole {
  private readonly publisher: LabPublisher;

  constructor(config: PublisherWorkerConfig) {
    this.publisher = new LabPublisher(config);
  }

  readonly handlers: Handler = {
    setup: async ({ timeoutMs }) => {
      await this.publisher.setup(deadlineOf(timeoutMs));
      return {};
    },
    run: async ({ durationMs, timeoutMs }) => {
      // `final: false` (keep running) only changes whether the worker exits after the reply: see isFinal.
      // Dropped and unsent counts travel in the totals (results.json, the report), not only to stderr.
      return { totals: await this.publisher.run(durationMs, deadlineOf(timeoutMs)) };
    },
  };
}

/** Replies after which the worker has nothing left to do: `finish`, `soak-stop`, and `run` unless told `final: false`. */
function isFinal(request: ToWorker): boolean {
  return request.type === 'finish' || request.type === 'soak-stop' || (request.type === 'run' && request.final !== false);
}

const config = JSON.parse(process.argv[2] ?? 'null') as WorkerConfig | null;
if (config === null || (config.role !== 'subscriber' && config.role !== 'publisher' && config.role !== 'soak')) {
  process.stderr.write('load-worker: argv[2] must be the worker config (JSON)\n');
  process.exit(2);
}
const role: { handlers: Handler } =
  config.role === 'subscriber'
    ? new SubscriberRole(config)
    : config.role === 'publisher'
      ? new PublisherRole(config)
      : new SoakRole(config, (progress) => send({ type: 'progress', progress }), PROGRESS_INTERVAL_MS);

async function handle(request: ToWorker): Promise<unknown> {
  const handler = role.handlers[request.type] as ((r: ToWorker) => Promise<unknown>) | undefined;
  if (handler === undefined) throw new Error(`a ${config!.role} worker has no "${request.type}"`);
  return handler(request);
}

process.on('message', (request: ToWorker) => {
  handle(request).then(
    (result) => send({ type: 'reply', id: request.id, ok: true, result }, () => {
      if (isFinal(request)) process.exit(0);
    }),
    (err: unknown) => send({ type: 'reply', id: request.id, ok: false, message: messageOf(err) }),
  );
});

function fatal(err: unknown): void {
  send({ type: 'fatal', message: err instanceof Error ? (err.stack ?? err.message) : String(err) }, () => process.exit(1));
}
process.on('uncaughtException', fatal);
process.on('unhandledRejection', fatal);
// The orchestrator went away: nobody to report to.
process.on('disconnect', () => process.exit(1));
setTimeout(() => fatal(new Error(`load worker alive for ${MAX_LIFE_MS} ms: giving up`)), MAX_LIFE_MS).unref();

send({ type: 'hello', pid: process.pid });
