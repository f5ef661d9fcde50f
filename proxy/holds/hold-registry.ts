/**
 * The hold registry owns a parked request's whole life (docs/protocol.md §4–§8).
 * This class is its face to the rest of the proxy: it builds the parts, passes
 * each call to the one that does it, keeps the sweep timer and assembles
 * `/stats`. The parts, each readable alone:
 *
 * - held.ts — the vocabulary: a held request, its outcomes, the counters;
 * - parked-index.ts — parked requests by channel, connection ID and client address;
 * - hold-lifecycle.ts — admit, park, re-ask, and the one cleanup path that answers;
 * - hold-decisions.ts — what a hold instruction leads to (docs §4);
 * - hold-delivery.ts — publish, push, close, bus notifications and gaps (§7);
 * - connection-table.ts, channel-cursors.ts — the per-connection and per-channel data.
 *
 * It does no upstream I/O: re-asks go through the injected `reask` callback.
 */
import type { ClientResponse } from '../http/client-message.js';
import type { ControlResult, ProxyStats } from '../../protocol/control-api.js';
import type { CloseCommand, PublishCommand, PushCommand } from '../control/commands.js';
import type { Exchange } from '../forward/exchange.js';
import type { HoldInstruction } from '../forward/instruction.js';
import type { ProxyOptions, ProxyTimers } from '../options.js';
import type { RepollStats } from '../repoll/repolls.js';
import { ChannelCursors } from './channel-cursors.js';
import { ConnectionTable } from './connection-table.js';
import { createCounters, type Held, type HoldCounters, type HoldObserver, type ReaskFn } from './held.js';
import { HoldDecisions, TakesInFlight } from './hold-decisions.js';
import { HoldDelivery } from './hold-delivery.js';
import { HoldLifecycle } from './hold-lifecycle.js';
import { ParkedIndex } from './parked-index.js';
import type { SharedConnections } from './shared-connections.js';
import { NO_STREAMS, type StreamSide } from '../streams/stream-side.js';

export type { HoldObserver, HoldOutcome, ReaskFn, ReaskOutcome } from './held.js';

export type HoldRegistryOptions = Pick<
  ProxyOptions,
  | 'maxReasks'
  | 'queueMaxItems'
  | 'queueMaxBytes'
  | 'queueTtlMs'
  | 'resyncTtlMs'
  | 'closedTtlMs'
  | 'maxUnknownQueues'
  | 'unknownQueuesRetryAfterS'
  | 'channelTtlMs'
  | 'maxChannels'
  | 'sweepIntervalMs'
  | 'maxParked'
  | 'maxParkedPerAddress'
  | 'maxParkedBodyBytes'
  | 'maxParkedBytes'
  | 'parkedRetryAfterS'
  | 'logger'
  | 'timers'
> & {
  reask: ReaskFn;
  observer?: HoldObserver;
  /**
   * Connection queues and tombstones shared by every proxy (Redis, docs/scaleout.md). Without it
   * (the embedded default) they live in this registry's ConnectionTable.
   */
  shared?: SharedConnections;
  /** Told what the registry applies, to keep the re-poll buffer and leases current (proxy/repoll/). */
  listener?: RegistryListener;
  /** Stream holds (proxy/streams/): publishes reach them, and they count against the parking caps. */
  streams?: StreamSide;
};

/** What the re-poll side (proxy/repoll/repolls.ts) must hear from the registry. */
export interface RegistryListener {
  /** A publish item, after the channel cursor moved; `seq` is the global publish sequence it got. */
  published(command: PublishCommand, seq: number): void;
  /** `/close/` of a connection ID: its lease ends too. */
  connectionClosed(connectionId: string): void;
  /** The registry may have missed publishes (bus gap). */
  busGap(): void;
  /** The registry's sweep ran. */
  sweep(): void;
  /** Its part of `/stats`. */
  stats(): RepollStats;
}

const NO_REPOLLS: RepollStats = { leases: 0, bufferedItems: 0, repollAnswers: 0, repollParks: 0, repollToApp: 0 };

export class HoldRegistry {
  private readonly cursors: ChannelCursors;
  private readonly connections: ConnectionTable<Held>;
  private readonly counters: HoldCounters = createCounters();
  private readonly index: ParkedIndex;
  private readonly lifecycle: HoldLifecycle;
  private readonly decisions: HoldDecisions;
  private readonly delivery: HoldDelivery;
  private readonly timers: ProxyTimers;
  private sweepTimer: unknown = null;

  constructor(private readonly options: HoldRegistryOptions) {
    const { logger, timers, shared, listener } = options;
    this.timers = timers;
    this.cursors = new ChannelCursors({ ttlMs: options.channelTtlMs, maxChannels: options.maxChannels }, timers.now);
    this.connections = new ConnectionTable(options, timers.now, (n) => (this.counters.dropped += n));
    this.index = new ParkedIndex(this.connections);
    this.lifecycle = new HoldLifecycle({
      index: this.index,
      counters: this.counters,
      logger,
      timers,
      reask: options.reask,
      maxReasks: options.maxReasks,
      observer: options.observer,
    });
    const takes = new TakesInFlight();
    const common = { lifecycle: this.lifecycle, index: this.index, connections: this.connections, cursors: this.cursors, counters: this.counters, takes, shared, logger };
    this.delivery = new HoldDelivery({ ...common, listener, streams: options.streams, unknownQueuesRetryAfterS: options.unknownQueuesRetryAfterS });
    this.decisions = new HoldDecisions({
      ...common,
      pushNotified: (ids) => this.delivery.pushNotified(ids),
      maxParked: options.maxParked,
      maxParkedPerAddress: options.maxParkedPerAddress,
      maxParkedBodyBytes: options.maxParkedBodyBytes,
      maxParkedBytes: options.maxParkedBytes,
      parkedRetryAfterS: options.parkedRetryAfterS,
      streams: options.streams,
    });
    this.scheduleSweep();
  }

  /** The global publish sequence; capture it when a request is sent to the app (docs §4 step 3). */
  get publishSeq(): number {
    return this.cursors.seq;
  }

  /** A client request the app answered with a hold instruction (first answer or re-ask): see hold-decisions.ts. */
  hold(exchange: Exchange, instruction: HoldInstruction): void {
    this.decisions.hold(exchange, instruction);
  }

  /** Another request was pipelined behind `res` on its connection (docs §4 step 0): see hold-lifecycle.ts. */
  releasePipelined(res: ClientResponse): void {
    this.lifecycle.releasePipelined(res);
  }

  /** `POST /publish/` (docs §7.1). */
  publish(commands: readonly PublishCommand[], receivedAt: number = performance.now()): ControlResult {
    return this.delivery.publish(commands, receivedAt);
  }

  /** `POST /push/` (docs §7.2). Throws `TooManyQueuesError`, doing nothing, past `maxUnknownQueues`. */
  push(commands: readonly PushCommand[], receivedAt: number = performance.now()): ControlResult {
    return this.delivery.push(commands, receivedAt);
  }

  /** A bus `push` entry: items were queued in the shared store for these IDs (docs/scaleout.md). */
  pushNotified(ids: readonly string[], queuesLost = false): void {
    this.delivery.pushNotified(ids, queuesLost);
  }

  /** The bus may have lost entries: re-ask or re-check every parked request (docs/scaleout.md). */
  resyncAllParked(queuesLost = false): number {
    return this.delivery.resyncAllParked(queuesLost);
  }

  /** Counts pushes made through the shared store (they are not delivered by `push`). */
  countPushes(items: number, dropped: number): void {
    this.counters.pushes += items;
    this.counters.dropped += dropped;
  }

  /** `POST /close/` (docs §7.3). */
  close(commands: readonly CloseCommand[]): ControlResult {
    return this.delivery.close(commands);
  }

  /**
   * Shutdown (docs §9): answers every parked or re-asking request with its
   * timeout response plus `Connection: close`, answers later holds the same way,
   * and stops the sweep timer. Returns how many requests were answered.
   */
  drain(): number {
    this.stopSweep();
    return this.lifecycle.drain();
  }

  /** `GET /stats` (docs §7.4). */
  /** A held first poll was moved off node:http onto the client front before its hold (proxy.ts `adoptHold`). */
  countFrontTakeover(): void {
    this.counters.frontTakeovers++;
  }

  stats(): ProxyStats {
    const queued = this.connections.queued();
    return {
      parked: this.index.parkedCount,
      parkedBytes: this.index.parkedBytes,
      reasking: this.index.reaskingCount,
      connections: this.connections.size,
      queuedItems: queued.items,
      queuedBytes: queued.bytes,
      channels: this.cursors.knownChannels,
      ...this.counters,
      ...(this.options.listener?.stats() ?? NO_REPOLLS),
      ...(this.options.streams?.stats() ?? NO_STREAMS),
    };
  }

  /** Requests parked now and the bytes they keep, from `address` if given: streams count against the same caps (docs §14.5). */
  parkedLoad(address?: string): { count: number; bytes: number; fromAddress: number } {
    return {
      count: this.index.parkedCount,
      bytes: this.index.parkedBytes,
      fromAddress: address === undefined ? 0 : this.index.parkedFrom(address),
    };
  }

  /** Forgets expired tombstones, queues and channels. Runs on the sweep timer; public for tests. */
  sweep(): void {
    this.connections.sweep();
    this.cursors.sweep();
    this.options.listener?.sweep();
  }

  /** Was `channel` published on since `sentSeq`, to an id other than `lastId` (docs §4 step 3)? */
  raced(channel: string, sentSeq: number, lastId: string): boolean {
    return this.decisions.raced(channel, sentSeq, lastId);
  }

  /** Is `connectionId` closed here (docs §7.3)? With Redis the shared tombstone is checked when a hold decides. */
  isClosed(connectionId: string): boolean {
    return this.connections.isClosed(connectionId);
  }

  /** Answers the request parked under `connectionId` with its timeout response (a revoked lease, docs §13.4). */
  releaseConnection(connectionId: string): boolean {
    return this.delivery.releaseConnection(connectionId);
  }

  private scheduleSweep(): void {
    const handle = this.timers.setTimeout(() => {
      this.sweep();
      if (this.sweepTimer !== null) this.scheduleSweep();
    }, this.options.sweepIntervalMs);
    // Housekeeping must never keep the process alive on its own.
    (handle as { unref?: () => void } | null)?.unref?.();
    this.sweepTimer = handle;
  }

  private stopSweep(): void {
    if (this.sweepTimer !== null) this.timers.clearTimeout(this.sweepTimer);
    this.sweepTimer = null;
  }
}
