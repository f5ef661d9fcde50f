/**
 * What every lab subscriber shares, whatever its protocol: its HTTP client,
 * its `SeqRecord`, the worker's delivery sink (counters, latency histogram),
 * the stop signal, the "first request sent" promise and a bounded back-off.
 * One subclass per protocol (chat-long-poll.ts, sse.ts, ...).
 */
import type { Histogram } from 'hdr-histogram-js';
import { HttpClient, RequestAbortedError } from '../http-client.js';
import { nowMs, parseStamp } from '../workload.js';
import { newLatencyHistogram, recordLatencyMs, SeqRecord } from '../verify.js';

/** The worker's counters, shared by its subscribers. */
export class DeliverySink {
  /** Stamped deliveries, duplicates included. */
  deliveries = 0;
  /** Failed requests and broken streams (each retried). */
  errors = 0;
  /** Streams the server ended with a resync frame (`chat-sse`: fell behind or out of order; reopened from the cursor). */
  resyncs = 0;
  readonly badStatuses: Record<string, number> = {};
  /** Failed requests by kind: the socket error's code (`ECONNRESET`), else the error's name or message. */
  readonly errorKinds: Record<string, number> = {};
  readonly latency: Histogram = newLatencyHistogram();
  /**
   * Commit-to-receipt latency of first copies whose event carries the app's commit time (`at`, chat-api.md): the
   * DB-triggered push's own delay, from the SQLite write to the subscriber. Wall clock (`Date.now()`) on both
   * sides, as the app stamps `at` with it; `at` has whole milliseconds.
   */
  readonly commitLatency: Histogram = newLatencyHistogram();
  /** Per seq (over all rooms): the latest first-copy latency, ms: when this worker's last subscriber had it. */
  readonly lastDeliveryMsBySeq = new Map<number, number>();

  /**
   * A message text as parsed off the wire: counted if it carries a stamp; latency for a seq's first copy only.
   * `committedAtMs`: the event's commit time (epoch ms), when the protocol carries one.
   */
  deliver(record: SeqRecord, text: unknown, committedAtMs?: number): void {
    const stamp = parseStamp(text);
    if (stamp === null) return;
    const at = nowMs();
    this.deliveries++;
    if (record.receive(stamp.seq)) {
      const ms = at - stamp.sentAtMs;
      recordLatencyMs(this.latency, ms);
      if (committedAtMs !== undefined) recordLatencyMs(this.commitLatency, Date.now() - committedAtMs);
      if (ms > (this.lastDeliveryMsBySeq.get(stamp.seq) ?? -Infinity)) this.lastDeliveryMsBySeq.set(stamp.seq, ms);
    }
  }

  /** A resync frame: the stream ends after it and the client reopens it from its cursor (not an error). */
  resync(): void {
    this.resyncs++;
  }

  /** A request that failed without an answer: an error, counted by kind. */
  failure(err: unknown): void {
    this.errors++;
    const e = err as { code?: unknown; name?: unknown; message?: unknown } | null;
    const kind = typeof e?.code === 'string' ? e.code : typeof e?.name === 'string' && e.name !== 'Error' ? e.name : String(e?.message ?? err).slice(0, 60);
    this.errorKinds[kind] = (this.errorKinds[kind] ?? 0) + 1;
  }

  /** An answer with a status the protocol did not expect: an error, and its status counted. */
  badStatus(status: number): void {
    this.errors++;
    this.badStatuses[String(status)] = (this.badStatuses[String(status)] ?? 0) + 1;
  }
}

export interface SubscriberOptions {
  /** Global index, across workers (nick `s<index>`). */
  index: number;
  room: string;
  clientUrl: string;
  localAddress: string | undefined;
  requestTimeoutMs: number;
  shortPollIntervalMs: number;
  /**
   * Long polling: wait this long after an answer that carried messages before polling again (0: at once). The
   * fan-out scenario sets it so a subscriber's receipt time is the server's doing, not held up by the generator
   * re-polling for the subscribers that got the message first.
   */
  repollDelayMs?: number;
  sink: DeliverySink;
}

/** Back-off after a failed request: 100 ms doubling to 2 s, with jitter so clients do not retry in lockstep. */
export const RETRY_MIN_MS = 100;
export const RETRY_MAX_MS = 2_000;

export function backoffMs(attempt: number): number {
  const base = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** Math.min(attempt, 10));
  return base * (0.5 + Math.random() / 2);
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, Math.max(0, ms));
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Longest a subscriber's loop may run: far beyond any load point, so a lost `stop` cannot leave it running forever. */
const MAX_LOOP_MS = 4 * 60 * 60 * 1000;
/** Most iterations of a subscriber's loop (a second bound next to time). */
const MAX_LOOP_ROUNDS = 10_000_000;

export abstract class Subscriber {
  readonly record = new SeqRecord();
  readonly http: HttpClient;
  readonly room: string;
  /** Session and join done (chat), or nothing to do (Nchan). */
  ready = false;
  /** A first poll or stream request was written. */
  subscribed = false;
  protected readonly sink: DeliverySink;
  protected readonly stopController = new AbortController();
  private attempt = 0;
  private loop: Promise<void> | null = null;
  private markFirst: () => void = () => undefined;
  /** Resolves once the first poll or stream request was written. */
  readonly firstSent: Promise<void>;

  constructor(protected readonly options: SubscriberOptions) {
    this.firstSent = new Promise<void>((resolve) => {
      this.markFirst = resolve;
    });
    this.room = options.room;
    this.sink = options.sink;
    this.http = new HttpClient({ baseUrl: options.clientUrl, localAddress: options.localAddress, requestTimeoutMs: options.requestTimeoutMs });
  }

  get stopped(): boolean {
    return this.stopController.signal.aborted;
  }

  /** Gets ready to subscribe (sessions, joins); retries until `deadline` (performance.now() ms). */
  abstract setup(deadline: number): Promise<void>;

  /** The room's current cursor (chat: asked of the server), to start past events nobody needs; null when not applicable. */
  async roomCursor(_deadline: number): Promise<number | null> {
    return null;
  }

  /** Starts from `cursor` if it is past the own one (chat protocols). */
  skipTo(_cursor: number): void {}

  /** Starts the poll loop or stream; the loop runs until `stop()`. */
  start(): void {
    if (this.loop !== null || this.stopped) return;
    // The first poll is a new poll on a new connection: the setup's socket has sat idle, maybe past the
    // server's keep-alive timeout, while the other subscribers were set up.
    this.http.dropIdleSockets();
    const started = performance.now();
    this.loop = (async () => {
      for (let round = 0; round < MAX_LOOP_ROUNDS && !this.stopped && performance.now() - started < MAX_LOOP_MS; round++) {
        await this.round();
      }
    })().catch((err: unknown) => {
      // A bug in a client must not take the worker down; it shows as an error count.
      if (!(err instanceof RequestAbortedError)) this.sink.errors++;
    });
  }

  /** Aborts the open request and ends the loop. Idempotent. */
  stop(): void {
    this.stopController.abort();
    this.http.stop();
  }

  /** Resolves when the loop has ended (after `stop()`). */
  finished(): Promise<void> {
    return this.loop ?? Promise.resolve();
  }

  /** One poll, or one stream connection from open to end; handles its own errors (`failed()`). */
  protected abstract round(): Promise<void>;

  /** Pass as `onSent` of poll and stream requests. */
  protected readonly sent = (): void => {
    if (this.subscribed) return;
    this.subscribed = true;
    this.markFirst();
  };

  /** A request failed: count it (unless stopping) and back off before the next attempt. */
  protected async failed(err: unknown): Promise<void> {
    if (this.stopped || err instanceof RequestAbortedError) return;
    this.sink.failure(err);
    await this.backOff();
  }

  /** An answer with an unexpected status: count it and back off. */
  protected async badStatus(status: number): Promise<void> {
    if (this.stopped) return;
    this.sink.badStatus(status);
    await this.backOff();
  }

  /** After an answer that carried messages: the fan-out scenario's pause before the next poll (repollDelayMs). */
  protected async afterMessages(): Promise<void> {
    const delay = this.options.repollDelayMs ?? 0;
    if (delay > 0) await this.pause(delay);
  }

  /** Waits `ms`, or less if the client stops. */
  protected pause(ms: number): Promise<void> {
    return sleep(ms, this.stopController.signal);
  }

  protected async backOff(): Promise<void> {
    await sleep(backoffMs(this.attempt++), this.stopController.signal);
  }

  /** A request succeeded: the next failure starts the back-off from its minimum. */
  protected succeeded(): void {
    this.attempt = 0;
  }
}
