/**
 * The lab's publisher, open loop: message k (k = 0, 1, 2, ...) is due at
 * t0 + k/rate, round robin over the rooms (schedule.ts), its text the stamp
 * `{seq, sentAtMs}` (workload.ts) with seq counted per room and `sentAtMs` the
 * message's DUE time, so latency includes any wait in the queue (no
 * coordinated omission). At most one publish is in flight per room, the
 * others wait in that room's queue, so a room commits in seq order. A failed
 * publish is sent again, same text, until accepted or the deadline.
 *
 * Falling behind (a slow server) does not turn into an unbounded burst: a
 * room's queue holds at most MAX_QUEUE_PER_ROOM messages; messages due while it
 * is full are dropped (never sent, no seq used) and counted in the totals'
 * `dropped`, which results.json and the report carry.
 */
import { setMaxListeners } from 'node:events';
import type { ClientProtocol } from '../../models/target.js';
import { HttpClient, RequestAbortedError, type RequestInit } from '../http-client.js';
import type { PublisherTotals } from '../results.js';
import { OpenLoopSchedule } from '../schedule.js';
import { formatStamp, nowMs } from '../workload.js';
import { type CallContext, createRoom, joinRoom, signIn } from './chat-session.js';
import { backoffMs, sleep } from './subscriber.js';

export interface PublisherOptions {
  protocol: ClientProtocol;
  /** Target's `publishUrl`. */
  publishUrl: string;
  rooms: string[];
  /** Messages/s over all rooms. */
  ratePerS: number;
  localAddress: string | undefined;
}

/** Messages waiting per room (behind the one in flight) before due messages are dropped. */
export const MAX_QUEUE_PER_ROOM = 100;
/** Longest wait for one publish answer, ms (also capped by the deadline). */
const PUBLISH_TIMEOUT_MS = 10_000;
/** Setup requests at once (rooms are created and joined in parallel). */
const SETUP_CONCURRENCY = 8;
/** Publish retries are quicker than a subscriber's: the room's queue waits on them. */
const PUBLISH_RETRY_MAX_MS = 1_000;
/** Latest messages read to learn whether a publish with an unknown outcome was committed (one is in flight per room). */
const HISTORY_CHECK_LIMIT = 20;
/** Bound on attempts of one publish next to the deadline. */
const MAX_ATTEMPTS = 10_000;
/** Check interval while draining the queues, ms. */
const DRAIN_CHECK_MS = 10;

interface RoomQueue {
  room: string;
  /** Index in the schedule's rooms. */
  index: number;
  /** Seq of the next message to send. */
  nextSeq: number;
  busy: boolean;
  /** Gave up at the deadline: sends nothing more (a later seq would leave a gap). */
  closed: boolean;
  accepted: number;
}

export class LabPublisher {
  private readonly http: HttpClient;
  private readonly stopController = new AbortController();
  private readonly chat: boolean;
  /** Next seq per room, kept across runs (the fan-out scenario publishes one message per run). */
  private readonly nextSeq = new Map<string, number>();

  constructor(private readonly options: PublisherOptions) {
    if (options.rooms.length === 0) throw new Error('the publisher needs at least one room');
    if (!(options.ratePerS > 0) || !Number.isFinite(options.ratePerS)) throw new Error(`ratePerS must be > 0, got ${options.ratePerS}`);
    this.chat = options.protocol !== 'nchan-long-poll';
    // Every room's queue waits on the stop signal at once: more than Node's default 10 listeners is expected, not a leak.
    setMaxListeners(options.rooms.length + 10, this.stopController.signal);
    this.http = new HttpClient({
      baseUrl: options.publishUrl,
      localAddress: options.localAddress,
      requestTimeoutMs: PUBLISH_TIMEOUT_MS,
      // One socket per room: a room has at most one publish in flight.
      maxSockets: options.rooms.length,
    });
  }

  /** Chat protocols: a session, each room created (409 is fine) and joined. Nchan: nothing. */
  async setup(deadline: number): Promise<void> {
    if (!this.chat) return;
    const ctx: CallContext = { http: this.http, deadline, signal: this.stopController.signal, requestTimeoutMs: PUBLISH_TIMEOUT_MS };
    await signIn(ctx, 'publisher');
    let next = 0;
    const rooms = this.options.rooms;
    await Promise.all(
      Array.from({ length: Math.min(SETUP_CONCURRENCY, rooms.length) }, async () => {
        while (next < rooms.length) {
          const room = rooms[next++]!;
          await createRoom(ctx, room);
          await joinRoom(ctx, room);
        }
      }),
    );
  }

  /**
   * Publishes for `durationMs`, then lets the queues drain; resolves at the
   * latest at `deadline` (performance.now() ms), aborting what is in flight.
   */
  async run(durationMs: number, deadline: number): Promise<PublisherTotals> {
    const { rooms, ratePerS } = this.options;
    const startRequests = this.http.requests;
    const startBytes = this.http.bytes();
    const queues: RoomQueue[] = rooms.map((room, index) => ({ room, index, nextSeq: this.nextSeq.get(room) ?? 1, busy: false, closed: false, accepted: 0 }));
    let errors = 0;
    const errorKinds: Record<string, number> = {};
    const failed = (kind: string): void => {
      errors++;
      errorKinds[kind] = (errorKinds[kind] ?? 0) + 1;
    };
    let lastAcceptedAt = 0;
    let unsent = 0;
    const t0 = performance.now();
    // Wall-clock due times (nowMs), comparable with the subscribers' receipt times in other processes.
    const schedule = new OpenLoopSchedule({
      ratePerS,
      total: Math.ceil((durationMs * ratePerS) / 1000),
      rooms: rooms.length,
      maxQueuePerRoom: MAX_QUEUE_PER_ROOM,
      startMs: nowMs(),
    });

    const publish = async (room: string, seq: number, dueAtMs: number): Promise<boolean> => {
      const text = formatStamp({ seq, sentAtMs: dueAtMs });
      for (let attempt = 0; attempt < MAX_ATTEMPTS && !this.stopped; attempt++) {
        const left = deadline - performance.now();
        if (left <= 0) return false;
        let outcomeUnknown = false;
        try {
          const answer = await this.http.request(this.publishPath(room), { ...this.publishBody(text, room, seq), timeoutMs: Math.min(PUBLISH_TIMEOUT_MS, left) });
          if (answer.status >= 200 && answer.status < 300) return true;
          // A 5xx from a proxy in front of the app (Pushpin's 502) may come after the app committed.
          outcomeUnknown = answer.status >= 500;
          failed(`HTTP ${answer.status}`);
        } catch (err) {
          if (err instanceof RequestAbortedError) return false;
          outcomeUnknown = true; // timed out or cut off: the post may have been committed
          const e = err as { code?: unknown; name?: unknown } | null;
          failed(typeof e?.code === 'string' ? e.code : typeof e?.name === 'string' ? e.name : 'Error');
        }
        // Retrying a post that was committed would publish the seq twice, and every subscriber would count a
        // duplicate the target never made: first look for the stamp in the room's latest messages.
        if (outcomeUnknown && this.chat && (await this.committed(room, text, deadline))) return true;
        await sleep(Math.min(PUBLISH_RETRY_MAX_MS, backoffMs(attempt), deadline - performance.now()), this.stopController.signal);
      }
      return false;
    };

    const pump = (queue: RoomQueue): void => {
      if (queue.busy || queue.closed || this.stopped || performance.now() >= deadline) return;
      const dueAtMs = schedule.take(queue.index);
      if (dueAtMs === null) return;
      queue.busy = true;
      const seq = queue.nextSeq++;
      void publish(queue.room, seq, dueAtMs).then((accepted) => {
        queue.busy = false;
        if (accepted) {
          queue.accepted++;
          lastAcceptedAt = performance.now();
          pump(queue);
        } else {
          // Not accepted by the deadline: this room sends nothing more (a later seq would leave a gap).
          if (!queue.closed) unsent += 1 + schedule.clear(queue.index);
          queue.closed = true;
        }
      });
    };

    // Bounded by time (deadline) and by the schedule's total: every pass queues all messages due by now, each
    // stamped with its own due time however late this loop wakes.
    while (!schedule.done && !this.stopped && performance.now() < deadline) {
      for (const room of schedule.advance(nowMs())) pump(queues[room]!);
      const next = schedule.nextDueMs();
      if (next !== null) await sleep(Math.max(1, next - nowMs()), this.stopController.signal);
    }
    // Stopped by the deadline before the schedule ended: what fell due meanwhile is queued (or dropped), so the
    // accounting below counts it as unsent rather than forgetting it.
    if (!this.stopped) schedule.advance(nowMs());
    // Drain: what is queued or in flight gets until the deadline.
    const pending = (): boolean => queues.some((q) => q.busy || (!q.closed && schedule.waiting(q.index) > 0));
    while (!this.stopped && performance.now() < deadline && pending()) {
      await sleep(Math.min(DRAIN_CHECK_MS, deadline - performance.now()), this.stopController.signal);
    }
    // At the deadline: abort what is still in flight; it counts as not accepted, and so does what still waits.
    for (const q of queues) {
      if (q.closed) continue;
      q.closed = true;
      unsent += (q.busy ? 1 : 0) + schedule.clear(q.index);
    }
    if (queues.some((q) => q.busy)) this.stop();

    const publishedPerRoom: Record<string, number> = {};
    for (const q of queues) {
      publishedPerRoom[q.room] = q.accepted;
      // A message not accepted by the deadline leaves its seq unused: the next run goes on after the last accepted.
      this.nextSeq.set(q.room, (this.nextSeq.get(q.room) ?? 1) + q.accepted);
    }
    const published = queues.reduce((sum, q) => sum + q.accepted, 0);
    const windowMs = Math.max(durationMs, lastAcceptedAt - t0);
    return {
      publishedPerRoom,
      published,
      offered: schedule.offered,
      dropped: schedule.dropped,
      unsent,
      errors,
      errorKinds,
      requests: this.http.requests - startRequests,
      bytes: this.http.bytes() - startBytes,
      ratePerS: windowMs > 0 ? (published * 1000) / windowMs : 0,
    };
  }

  get stopped(): boolean {
    return this.stopController.signal.aborted;
  }

  /** Aborts everything in flight. Idempotent. */
  stop(): void {
    this.stopController.abort();
    this.http.stop();
  }

  /**
   * True when `text` is among the room's latest messages (one publish is in flight per room, so it is one of the
   * last few). Asks until it gets an answer or the deadline passes; false then, and the caller retries.
   */
  private async committed(room: string, text: string, deadline: number): Promise<boolean> {
    const path = `/api/rooms/${encodeURIComponent(room)}/messages?limit=${HISTORY_CHECK_LIMIT}`;
    for (let attempt = 0; attempt < MAX_ATTEMPTS && !this.stopped; attempt++) {
      const left = deadline - performance.now();
      if (left <= 0) return false;
      try {
        const answer = await this.http.request(path, { timeoutMs: Math.min(PUBLISH_TIMEOUT_MS, left) });
        if (answer.status === 200) {
          const events = (JSON.parse(answer.body) as { events?: Array<{ text?: unknown }> }).events ?? [];
          return events.some((e) => e.text === text);
        }
      } catch (err) {
        if (err instanceof RequestAbortedError) return false;
      }
      await sleep(Math.min(PUBLISH_RETRY_MAX_MS, backoffMs(attempt), deadline - performance.now()), this.stopController.signal);
    }
    return false;
  }

  private publishPath(room: string): string {
    const name = encodeURIComponent(room);
    return this.chat ? `/api/rooms/${name}/messages` : `/pub/${name}`;
  }

  private publishBody(text: string, room: string, seq: number): RequestInit {
    // A resent post keeps its Idempotency-Key: a server that honours it (our chat app) returns the message it
    // already made instead of posting it twice; for the others, the history check above is what prevents it.
    return this.chat
      ? { method: 'POST', json: { text }, headers: { 'idempotency-key': `${room}:${seq}` } }
      : { method: 'POST', text: { body: text, contentType: 'text/plain' } };
  }
}
