/**
 * The proxy's Prometheus metrics (prom-client), served at `GET /metrics` on the
 * control port (docs/operations.md lists every name). Each proxy has its own
 * `Registry`, never prom-client's global one, so several proxies in one process
 * (tests, the launcher) do not collide.
 *
 * Gauges and counters mirror the hold registry's `/stats` numbers, read when
 * scraped (one `stats()` call per scrape), so the registry keeps one set of
 * counters. Histograms and the error counter are fed by events: the registry
 * reports each hold's end and each item written (HoldObserver), and the proxy
 * counts every `{code, message}` error answer. The two histograms count in their own
 * arrays and fold into prom-client when scraped (batched-histogram.ts, issue 15).
 */
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { ProxyStats } from '../../protocol/control-api.js';
import { PROXY_ERROR_STATUS } from '../errors.js';
import { createBatchedHistogram } from './batched-histogram.js';
import type { HoldObserver, HoldOutcome } from '../holds/hold-registry.js';

/** Prefix of every metric name, default process metrics included. */
export const METRIC_PREFIX = 'comet_proxy_';

/** Seconds from park to answer: from instant deliveries to the longest holds (300 s). */
const HOLD_BUCKETS_S = [0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
/** Seconds from a publish/push reaching the control API to the client's response being written. */
const WRITE_BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

type CounterKey = Exclude<
  keyof ProxyStats,
  'parked' | 'parkedBytes' | 'reasking' | 'connections' | 'queuedItems' | 'queuedBytes' | 'channels' | 'leases' | 'bufferedItems' | 'streams'
>;
type GaugeKey = Exclude<keyof ProxyStats, CounterKey>;

const GAUGES: ReadonlyArray<[GaugeKey, string, string]> = [
  ['parked', 'parked', 'Requests parked now'],
  ['parkedBytes', 'parked_bytes', 'Bytes the parked requests keep: request heads, bodies and held responses'],
  ['reasking', 'reasking', 'Requests being re-asked to the app now'],
  ['connections', 'connections', 'Connection IDs the proxy keeps state for (parked, queued, resync pending or closed)'],
  ['queuedItems', 'queue_items', 'Items queued for connection IDs that are not parked'],
  ['queuedBytes', 'queue_bytes', 'Body bytes of the queued items'],
  ['channels', 'channels', 'Channels with a known last id'],
  ['leases', 'leases', 'Re-poll leases held'],
  ['bufferedItems', 'buffered_items', 'Items in the channel buffer'],
  ['streams', 'streams', 'Stream holds open now'],
];

const COUNTERS: ReadonlyArray<[CounterKey, string, string]> = [
  ['holds', 'holds_total', 'Hold instructions received from the app (first answers and re-asks)'],
  ['publishes', 'publishes_total', 'Items received on /publish/'],
  ['pushes', 'pushes_total', 'Items received on /push/'],
  ['deliveries', 'deliveries_total', 'Items written to parked clients (publish, push, queue, close)'],
  ['timeouts', 'timeouts_total', 'Parked requests answered with their timeout response'],
  ['reasks', 'reasks_total', 'Requests re-asked to the app (race check, prev-id mismatch, hint)'],
  ['resyncs', 'resyncs_total', 'Resync answers sent'],
  ['dropped', 'dropped_total', 'Queued or pushed items discarded (overflow, expiry, closed connection ID)'],
  ['clientAborts', 'client_aborts_total', 'Held requests whose client went away before the answer'],
  ['pipelineReleases', 'pipeline_releases_total', 'Held requests answered early because a request was pipelined behind them'],
  ['frontTakeovers', 'front_takeovers_total', 'Held first polls the client front took over from node:http before parking them'],
  ['busResyncs', 'bus_resyncs_total', 'Times the proxy may have missed Redis bus entries and re-asked every request parked on channels'],
  ['repollAnswers', 'repoll_answers_total', 'Re-polls answered by the proxy from its channel buffer'],
  ['repollParks', 'repoll_parks_total', 'Re-polls parked by the proxy without asking the app'],
  ['repollToApp', 'repoll_to_app_total', 'Requests of a leased shape the proxy could not decide alone and sent to the app'],
  ['streamChunks', 'stream_chunks_total', 'http-stream items written to open streams'],
  ['streamKeepAlives', 'stream_keep_alives_total', 'Grip-Keep-Alive data written to idle streams'],
  ['streamResyncs', 'stream_resyncs_total', 'Streams ended because their client would miss items (slow reader, prev-id gap)'],
];

export interface ProxyMetrics extends HoldObserver {
  /** This proxy's registry (for in-process reads, e.g. `getSingleMetricAsString`). */
  readonly registry: Registry;
  /** Counts one `{code, message}` error answer (client or control side). */
  countError(code: string): void;
  /** The text exposition format; the first call also starts the default process metrics. */
  scrape(): Promise<string>;
  /** `Content-Type` of `scrape()`'s text. */
  readonly contentType: string;
}

/** Builds the metrics of one proxy over its registry's `stats()`. */
export function createProxyMetrics(stats: () => ProxyStats): ProxyMetrics {
  const registry = new Registry();
  const registers = [registry];

  // One stats() per scrape: prom-client calls every collect() synchronously in one go.
  let snapshot: ProxyStats | null = null;
  const current = (): ProxyStats => {
    if (snapshot === null) {
      snapshot = stats();
      queueMicrotask(() => {
        snapshot = null;
      });
    }
    return snapshot;
  };

  for (const [key, name, help] of GAUGES) {
    new Gauge({
      name: METRIC_PREFIX + name,
      help,
      registers,
      collect() {
        this.set(current()[key]);
      },
    });
  }
  for (const [key, name, help] of COUNTERS) {
    // prom-client counters only go up: add what the registry counted since the last scrape.
    let seen = 0;
    new Counter({
      name: METRIC_PREFIX + name,
      help,
      registers,
      collect() {
        const value = current()[key];
        if (value > seen) this.inc(value - seen);
        seen = value;
      },
    });
  }

  // Observed once or twice per delivery: counted in our own arrays, folded in when read (batched-histogram.ts).
  const holdDuration = createBatchedHistogram<HoldOutcome>({
    name: `${METRIC_PREFIX}hold_duration_seconds`,
    help: 'Time from parking a request to its answer, by outcome',
    labelName: 'outcome',
    buckets: HOLD_BUCKETS_S,
    registers,
  });
  const publishToWrite = createBatchedHistogram<'publish' | 'push'>({
    name: `${METRIC_PREFIX}publish_to_write_seconds`,
    help: 'Time from a publish/push reaching the control API to the parked client\'s response being written, by kind',
    labelName: 'kind',
    buckets: WRITE_BUCKETS_S,
    registers,
  });
  const errors = new Counter({
    name: `${METRIC_PREFIX}errors_total`,
    help: 'Error answers ({code, message}) sent to clients and control API callers, by code',
    labelNames: ['code'],
    registers,
  });
  // Every known code starts at 0, so a rate() over a code that has not happened yet is 0, not absent.
  for (const code of Object.keys(PROXY_ERROR_STATUS)) if (code !== 'PROXY_ERR_BAD_OPTION') errors.inc({ code }, 0);

  let defaultsStarted = false;
  return {
    registry,
    contentType: registry.contentType,
    holdEnded(outcome: HoldOutcome, heldMs: number) {
      holdDuration.observe(outcome, heldMs / 1000);
    },
    itemWritten(kind: 'publish' | 'push', latencyMs: number) {
      publishToWrite.observe(kind, latencyMs / 1000);
    },
    countError(code: string) {
      errors.inc({ code });
    },
    scrape() {
      // Started on the first scrape, not at build: they keep an event-loop monitor and a GC
      // observer for the life of the process, which a proxy nobody scrapes (tests) does not need.
      if (!defaultsStarted) {
        defaultsStarted = true;
        collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });
      }
      return registry.metrics();
    },
  };
}
