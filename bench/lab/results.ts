/**
 * The raw JSON a lab run writes (`bench/results/<timestamp>/results.json`);
 * the report (bench/lab/report/*) reads only this, so it can be regenerated.
 */
import type { AcceptQueueSummary } from './accept-queue.js';
import type { ClientProtocol, TargetKind } from '../models/target.js';
import type { Provenance } from './provenance.js';
import type { MemorySlope } from './memory-slope.js';
import type { ScaleoutFigures } from './scaleout.js';
import type { SweepResult } from './sustain.js';

export interface LatencySummary {
  /**
   * Due-to-receipt, ms: from the message's due time on the publisher's open-loop schedule (not when its request
   * left: a queue wait counts) to the subscriber reading it.
   */
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
  /** Deliveries the figures are over. */
  count: number;
}

export interface SubscriberTotals {
  /** Σ over subscribers of their room's published count: what must arrive. */
  expectedDeliveries: number;
  /** Distinct (subscriber, seq) pairs received. */
  deliveries: number;
  /** Expected but never received. */
  lost: number;
  /** Received more than once (each extra copy counts one). */
  duplicated: number;
  /** Received after a higher seq of the same room. */
  outOfOrder: number;
  /** HTTP requests the subscribers sent during the measured window (polls; one per stream (re)connection). */
  requests: number;
  /** Bytes on the subscribers' sockets, both directions, headers included, during the measured window. */
  bytes: number;
  /** Failed requests or broken streams (each retried by the client). */
  errors: number;
  /** HTTP status codes seen other than 200, with counts (e.g. `{"502": 3}`). */
  badStatuses: Record<string, number>;
  /** Failed requests without an answer, by kind (socket error code such as `ECONNRESET`, or the error's name). */
  errorKinds?: Record<string, number>;
  /** Streams the server ended with a resync frame (`chat-sse`; each reopened from the cursor); absent when none. */
  resyncs?: number;
  latency: LatencySummary;
  /**
   * Commit-to-receipt latency: from the event's commit time as the app stamped it (`at`, chat-api.md; wall clock,
   * whole ms) to the subscriber's receipt, first copies only. The DB-change-triggered push's own delay (for our app,
   * SQLite commit, outbox relay, proxy, client), without the publisher's queue and request. Absent when no event
   * carried `at` (Nchan).
   */
  commitLatency?: LatencySummary;
  /** The merged latency histogram (hdr-histogram-js, compressed base64, microseconds). */
  latencyHistogram: string;
  /** Per seq (over all rooms): publish to the receipt of its last subscriber, ms (the fan-out scenario's figure). */
  lastDeliveryMsBySeq?: Record<string, number>;
}

export interface PublisherTotals {
  /** Messages the server accepted, per room. */
  publishedPerRoom: Record<string, number>;
  published: number;
  /**
   * Messages that fell due on the open-loop schedule (duration × rate): `published + dropped + unsent`, less any
   * accepted only after their room gave up. Absent in runs made before the open-loop publisher.
   */
  offered?: number;
  /** Due messages never sent because their room's queue was full (the target fell behind). */
  dropped?: number;
  /** Due messages queued or in flight when the publisher's deadline passed (never accepted). */
  unsent?: number;
  /** Publish requests that failed (and were retried). */
  errors: number;
  /** `errors` by cause: `HTTP <status>`, or the error's code or name (`RequestTimeoutError`, `ECONNRESET`). */
  errorKinds?: Record<string, number>;
  requests: number;
  bytes: number;
  /** Achieved publish rate over the window, messages/s. */
  ratePerS: number;
}

export interface ProcessCost {
  /** CPU seconds (user + system, descendants included) during the measured window. */
  cpuS: number;
  /** Resident memory, bytes, with every subscriber set up but no poll open yet. */
  rssIdleBytes: number;
  /** Resident memory, bytes, with every subscriber parked. */
  rssParkedBytes: number;
}

/**
 * One reading of the measured window, taken every second (the last one at its end), cumulative since the window
 * started. Subscriber counts come from the workers' progress reports (every 250 ms), so they lag by up to that.
 */
export interface TimeSample {
  /** Seconds since the window started. */
  t: number;
  deliveries: number;
  requests: number;
  errors: number;
  /** CPU seconds of the target's processes / of the subscriber workers since the window started. */
  serverCpuS: number;
  generatorCpuS: number;
  /** The target's resident memory at the reading. */
  serverRssBytes: number;
}

export interface LoadPointResult {
  target: string;
  title: string;
  kind: TargetKind;
  protocol: ClientProtocol;
  clients: number;
  rooms: number;
  /** Requested publish rate, messages/s over all rooms. */
  ratePerS: number;
  durationS: number;
  /** What the point measured (bench/lab/options.ts `Scenario`); absent in runs made before scenarios: `chat`. */
  scenario?: 'chat' | 'park' | 'fanout' | 'multicast' | 'scaleout';
  /** Which of the `--repeat` runs this is, from 1 (absent in runs made before `--repeat`: 1). */
  repeat?: number;
  /** The park phase: its wall time (first poll sent to all parked), and errors and requests during it. */
  /** `listenOverflows`: connections the kernel dropped machine-wide because a listen queue was full (Linux). */
  /** `acceptQueue`: the target's own client port(s): longest accept queue, its size, time full (accept-queue.ts). */
  park?: { ms: number; errors: number; requests: number; listenOverflows?: number; acceptQueue?: AcceptQueueSummary };
  /** `ok`: measured; `failed`: the run broke (see `error`); `unavailable`: the target cannot run here. */
  status: 'ok' | 'failed' | 'unavailable';
  error?: string;
  /** Parked polls / open streams the target reported before publishing (`null`: it cannot tell). */
  parkedReached: number | null;
  subscribers?: SubscriberTotals;
  publisher?: PublisherTotals;
  /** Per role (`proxy`, `app`, `server`, `nginx`, ...) and `total`. */
  cost?: Record<string, ProcessCost>;
  /**
   * CPU seconds of the load generator's subscriber processes in the same window (the publisher is light). On a
   * machine where client and server share the cores, a generator near `cores × window` seconds means the
   * figures measure the generator as much as the target.
   */
  loadGeneratorCpuS?: number;
  /**
   * Each load-generator worker's CPU in the window as a share of one core (bench/lab/headroom.ts). A share near 1
   * means that worker, not the target, may set the pace.
   */
  loadGeneratorWorkers?: { publisherCoreShare: number; subscriberCoreShares: number[] };
  /** Some generator worker passed 90% of a core in the window: the point's figures are suspect (flagged in the report). */
  generatorSaturated?: boolean;
  /** Share of all CPU time the hypervisor stole during the window (/proc/stat `steal`), 0..1. */
  stealShare?: number;
  /**
   * Forced GC before each memory reading (bench/lab/force-gc.ts): Node processes that collected before both the idle
   * and the parked reading, and confirmations that did not come in time. 0 collected: no Node process (Nchan).
   */
  gc?: { collected: number; late: number };
  /** `--pin`: the CPUs of the generator and of the target, and any process taskset could not move. */
  pinned?: { generator: number[]; target: number[]; errors?: string[] };
  /** False when the drain deadline passed before every subscriber held every published message. */
  drainedAll?: boolean;
  /** Length of the measured window (publishing plus drain: CPU, traffic and delivery rates are over it), seconds. */
  windowS?: number;
  /** Per-second readings over the measured window (exported as timeseries.csv). */
  timeSeries?: TimeSample[];
  /** Derived figures, the report's columns. */
  derived?: {
    deliveriesPerS: number;
    cpuSPer1000Deliveries: number;
    memoryPerParkedBytes: number;
    /** The same per role (`proxy`, `app`, `nginx`, ...): (RSS parked - RSS idle) / clients. */
    memoryPerParkedByRole?: Record<string, number>;
    /**
     * Fan-out: `cpuSPer1000Deliveries` of each round alone, from its publish to the next round's, so each round's
     * re-polls count with it. The last runs to the window's end, its last receipt: like the whole window's figure it
     * has no re-polls, so it is the write side alone. A JIT-compiled target (Node) spends its first rounds
     * compiling and running unoptimized code; a native one (nginx) does not: the rounds show how much of the mean
     * is warm-up (docs/performance.md).
     */
    cpuSPer1000DeliveriesByRound?: number[];
    requestsPerDelivery: number;
    bytesPerDelivery: number;
  };
  /** The scale-out scenario's figures (bench/lab/scaleout.ts). */
  scaleout?: ScaleoutFigures;
  /** Wall time of each phase, ms. */
  phasesMs: Record<string, number>;
}

export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  os: string;
  hostname: string;
}

/** A metric over the repeated runs of one load point (bench/lab/stats.ts). */
export interface MetricSpread {
  median: number;
  /** 95% confidence interval of the median, percentile bootstrap; equal to the median when `n` is 1. */
  low: number;
  high: number;
  /** Measured runs the figure is over. */
  n: number;
}

/** One load point (scenario × target × clients × rate) over its `--repeat` runs. */
export interface PointSummary {
  scenario: 'chat' | 'park' | 'fanout' | 'multicast' | 'scaleout';
  target: string;
  title: string;
  kind: TargetKind;
  /** Absent in summaries written before it was recorded. */
  protocol?: ClientProtocol;
  clients: number;
  ratePerS: number;
  /** Room count of the point (absent in summaries written before the multicast scenario). */
  rooms?: number;
  /** Runs of the point, and how many were measured (status ok, something delivered). */
  runs: number;
  measured: number;
  /** Measured runs that lost or duplicated deliveries. */
  lossy: number;
  /** Measured runs whose load generator passed 90% of a core (`generatorSaturated`). */
  generatorSaturated: number;
  unavailable: boolean;
  /** Keyed by bench/lab/stats.ts `METRICS`; a metric no run could read is absent. */
  metrics: Partial<Record<string, MetricSpread>>;
}

export interface RunResult {
  /** ISO time the run started. */
  startedAt: string;
  /** ISO time its last point ended (absent in runs made before it was recorded, or interrupted). */
  finishedAt?: string;
  /** The command line, as typed. */
  command: string;
  machine: MachineInfo;
  options: Record<string, unknown>;
  points: LoadPointResult[];
  /** Commit, versions, CPU model, and the steal time over the whole run (absent in runs made before it). */
  provenance?: Provenance & { stealShare?: number; pin?: { generator: number[]; target: number[] } | null };
  /** Medians and intervals per load point over the repeated runs (absent in runs made before `--repeat`). */
  summaries?: PointSummary[];
  /** `--rates`: per target and client count, which rates held and the maximum sustainable one (bench/lab/sustain.ts). */
  sweeps?: SweepResult[];
  /** Memory per parked connection as the slope over the run's client counts (bench/lab/memory-slope.ts). */
  memorySlopes?: MemorySlope[];
}
