/**
 * What the lab's orchestrator side (load-workers.ts) and its load-generator
 * processes (load-worker.ts) tell each other over the `child_process.fork` IPC
 * channel. Every request carries an id and gets exactly one reply with that id,
 * so a reply that comes after its caller gave up is recognised and dropped.
 */
import type { ClientProtocol } from '../models/target.js';
import type { LoadProgress, TrafficSnapshot } from './load-api.js';
import type { PublisherTotals } from './results.js';
import type { SoakCalls, SoakWorkerConfig } from './soak/soak-messages.js';

/** A subscriber worker's share: subscribers i with i % workers === worker. Passed as argv[2] (JSON). */
export interface SubscriberWorkerConfig {
  role: 'subscriber';
  /** 0-based worker index. */
  worker: number;
  workers: number;
  /** All subscribers of the load point (this worker runs its share). */
  clients: number;
  protocol: ClientProtocol;
  clientUrl: string;
  /** Several front doors: subscriber i uses `clientUrls[i % length]` (else `clientUrl`). */
  clientUrls?: string[];
  rooms: string[];
  shortPollIntervalMs: number;
  /** Long polling: pause after an answer with messages, ms (load-api.ts). */
  repollDelayMs?: number;
  requestTimeoutMs: number;
  /** Source address of every client socket (`127.0.0.(10+worker)`), or none when the target is not on IPv4 loopback. */
  localAddress: string | undefined;
}

export interface PublisherWorkerConfig {
  role: 'publisher';
  protocol: ClientProtocol;
  publishUrl: string;
  rooms: string[];
  ratePerS: number;
  localAddress: string | undefined;
}

/** A soak worker (`--scenario soak`) runs the soak's churning, multi-room clients (bench/lab/soak/). */
export type WorkerConfig = SubscriberWorkerConfig | PublisherWorkerConfig | SoakWorkerConfig;

/** A subscriber worker's totals at `finish`, before the orchestrator sums workers and takes window deltas. */
export interface WorkerSubscriberTotals {
  expectedDeliveries: number;
  /** Distinct expected (subscriber, seq) pairs received. */
  deliveries: number;
  lost: number;
  duplicated: number;
  outOfOrder: number;
  /** Distinct seqs above the published count (see verify.ts `Verdict.extra`). */
  extra: number;
  /** Since the worker started (the orchestrator subtracts the window start). */
  requests: number;
  bytes: number;
  errors: number;
  badStatuses: Record<string, number>;
  /** Failed requests without an answer, by kind (socket error code or error name). */
  errorKinds: Record<string, number>;
  /** Streams ended by a resync frame (`chat-sse`). */
  resyncs?: number;
  /** hdr-histogram-js, compressed base64, microseconds; first copies only. */
  latencyHistogram: string;
  /** The same for commit-to-receipt (events that carry their commit time `at`; empty for Nchan). */
  commitLatencyHistogram?: string;
  /** Per seq (over all rooms): the latest first-copy due-to-receipt, ms: when its last subscriber had it. */
  lastDeliveryMsBySeq: Record<string, number>;
}

/** Requests and what each one's reply carries; the soak role's come on top (`setup` is shared, `soak-stop` final). */
export interface Calls extends SoakCalls {
  /** Subscribers: sessions and joins. Publisher: session, rooms created and joined. */
  setup: { request: { timeoutMs: number }; reply: Record<string, never> };
  /**
   * Subscribers: every poll loop or stream started; replies once every first request was sent. `burst`: all at
   * once, in one tick (the connection-storm scenario), instead of ramping a batch per few ms.
   */
  subscribe: { request: { timeoutMs: number; burst?: boolean }; reply: Record<string, never> };
  snapshot: { request: Record<string, never>; reply: { snapshot: TrafficSnapshot } };
  'wait-received': { request: { publishedPerRoom: Record<string, number>; timeoutMs: number }; reply: { received: boolean } };
  /** Subscribers: stop, verify, report. The worker exits after this reply. */
  finish: { request: { publishedPerRoom: Record<string, number>; timeoutMs: number }; reply: { totals: WorkerSubscriberTotals } };
  /**
   * Publisher: publish for `durationMs`, drain. The worker exits after this reply unless `final` is false (the
   * fan-out scenario publishes round after round; seqs continue across runs).
   */
  run: { request: { durationMs: number; timeoutMs: number; final?: boolean }; reply: { totals: PublisherTotals } };
}

export type CallType = keyof Calls;

export type ToWorker = { [K in CallType]: { type: K; id: number } & Calls[K]['request'] }[CallType];

export type FromWorker =
  /** The worker loaded and listens for requests (sent once, first). */
  | { type: 'hello'; pid: number }
  /** Counters, every ~250 ms. */
  | { type: 'progress'; progress: LoadProgress }
  | { type: 'reply'; id: number; ok: true; result: unknown }
  | { type: 'reply'; id: number; ok: false; message: string }
  /** Something broke outside any request; the worker exits right after. */
  | { type: 'fatal'; message: string };

/** How often workers report progress, ms. */
export const PROGRESS_INTERVAL_MS = 250;
