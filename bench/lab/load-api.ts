/**
 * What the orchestrator (bench/lab/main.ts) needs from the load generator
 * (bench/lab/load-workers.ts, running clients in worker processes). Only
 * types: the contract between the two halves of the harness.
 */
import type { ClientProtocol } from '../models/target.js';
import type { PublisherTotals, SubscriberTotals } from './results.js';
import type { SoakProgress } from './soak/soak-messages.js';

export interface SubscriberSpec {
  protocol: ClientProtocol;
  /** Target's `clientUrl`. */
  clientUrl: string;
  /** Target's `clientUrls` when it has several front doors: subscriber i uses `clientUrls[i % length]`. */
  clientUrls?: string[];
  /** All rooms; subscriber i is in `roomOfClient(i, rooms)`. */
  rooms: string[];
  clients: number;
  /** Worker processes to spread the subscribers over (each holds at most ~5,000 sockets). */
  workers: number;
  /** Short polling: wait between polls, ms. */
  shortPollIntervalMs: number;
  /** Long polling: pause after an answer with messages before the next poll, ms (fan-out scenario; default 0). */
  repollDelayMs?: number;
  /** Longest a request may stay unanswered before the client gives up on it and retries, ms (> hold timeout). */
  requestTimeoutMs: number;
}

export interface LoadProgress {
  /** Subscribers with a session and a joined room (chat protocols), or ready (Nchan). */
  ready: number;
  /** Subscribers with a first poll or stream open. */
  subscribed: number;
  /** Requests sent so far. */
  requests: number;
  /** Stamped deliveries so far (duplicates included). */
  deliveries: number;
  errors: number;
  /** The soak scenario's own counters (bench/lab/soak/soak-messages.ts), from its workers only. */
  soak?: SoakProgress;
}

export interface TrafficSnapshot {
  requests: number;
  bytes: number;
  deliveries: number;
  /** Failed requests and broken streams so far. */
  errors: number;
}

/** The subscribers, spread over worker processes. Every method has a deadline. */
export interface Subscribers {
  /** Sessions and joins (chat protocols); nothing for Nchan. Resolves when every subscriber is ready. */
  setup(timeoutMs: number): Promise<void>;
  /**
   * Every subscriber opens its poll loop or stream; resolves once every first request was sent. `burst`: every
   * worker starts all its subscribers in one tick (a connection storm) instead of ramping.
   */
  subscribe(timeoutMs: number, burst?: boolean): Promise<void>;
  /** Summed counters as last reported (workers report every ~250 ms). */
  progress(): LoadProgress;
  /** Counters now, for the measured window's deltas. */
  snapshot(timeoutMs: number): Promise<TrafficSnapshot>;
  /**
   * Resolves true once every subscriber holds every seq up to `publishedPerRoom[room]` of its room,
   * false at the deadline.
   */
  waitAllReceived(publishedPerRoom: Record<string, number>, timeoutMs: number): Promise<boolean>;
  /**
   * Stops every client (aborting open requests), then verifies every subscriber against `publishedPerRoom`
   * and sums. Traffic counters are since `windowStart`.
   */
  finish(publishedPerRoom: Record<string, number>, windowStart: TrafficSnapshot, timeoutMs: number): Promise<SubscriberTotals>;
  /** Kills the worker processes (after a failure or at the end). Idempotent. */
  kill(): Promise<void>;
  /** The worker processes, for the load generator's own CPU figure. */
  pids(): number[];
}

export interface PublisherSpec {
  protocol: ClientProtocol;
  /** Target's `publishUrl`. */
  publishUrl: string;
  rooms: string[];
  /** Messages/s over all rooms, round robin; at most one publish in flight per room, so room order is seq order. */
  ratePerS: number;
}

/** The publisher, in its own worker process. */
export interface Publisher {
  /** Chat protocols: a session, each room created (409 is fine) and joined. Nchan: nothing. */
  setup(timeoutMs: number): Promise<void>;
  /**
   * Publishes for `durationMs`, then waits for in-flight publishes; resolves with what was accepted. With
   * `final: false` the publisher stays up for another run, its seqs continuing; the totals are this run's.
   */
  run(durationMs: number, timeoutMs: number, final?: boolean): Promise<PublisherTotals>;
  kill(): Promise<void>;
  /** The worker process, for the load generator's own CPU figure. */
  pids(): number[];
}

export interface LoadGenerator {
  startSubscribers(spec: SubscriberSpec): Promise<Subscribers>;
  startPublisher(spec: PublisherSpec): Promise<Publisher>;
}
