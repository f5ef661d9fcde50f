/**
 * The hold registry owns a parked request's whole life (docs/protocol.md §4–§8):
 * it decides what a hold instruction leads to, indexes parked requests by
 * channel and connection ID, and answers each exactly once, on delivery,
 * timeout, supersession, close, re-ask result or drain, through one cleanup path
 * (`finish`) that clears the timer, the indexes and the close listener. The
 * per-connection state (connection-table.ts) and channel cursors
 * (channel-cursors.ts) are its data.
 *
 * It does no upstream I/O: re-asks go through the injected `reask` callback.
 */
import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { ControlResult, ProxyStats } from '../../protocol/control-api.js';
import { resyncResponse, type ResyncReason } from '../../protocol/resync.js';
import { ChannelCursors } from './channel-cursors.js';
import type { CloseCommand, PublishCommand, PushCommand } from '../control/commands.js';
import type { RepollStats } from '../repoll/repolls.js';
import { ConnectionTable } from './connection-table.js';
import { errorResponse } from '../errors.js';
import type { Exchange } from '../forward/exchange.js';
import type { HeaderMap } from '../http/header-filter.js';
import type { HoldInstruction } from '../forward/instruction.js';
import type { ProxyOptions, ProxyTimers } from '../options.js';
import { requestIdOf } from '../http/request-id.js';
import type { SharedConnections, TakeResult } from './shared-connections.js';
import { isResponseClosed, mergeItemResponse, prepareItem, writeItem, writeResponse, type HeldResponse, type ItemResponse } from '../http/response.js';

/**
 * How a re-ask ended: `dispatched` when the app's answer was handled (written to
 * the client, or handed back to `hold`), `failed` when it could not be sent or
 * failed on the network (the client then gets the `reask-failed` resync answer).
 */
export type ReaskOutcome = 'dispatched' | 'failed';

/**
 * Sends the exchange's request to the app again with `Grip-Last` built from
 * `lastIds` (channel -> the prev-id it was held with) and handles the answer like a
 * first one. Provided by the upstream side (forward/reask.ts).
 */
export type ReaskFn = (exchange: Exchange, lastIds: ReadonlyMap<string, string>) => Promise<ReaskOutcome>;

/**
 * How a held request left the registry: `delivered` (publish, push, queued item),
 * `timeout`, `aborted` (client went away), `superseded` (a newer hold for its
 * connection ID), `resync`, `pipelined`, `drained` (shutdown), `closed` (/close/),
 * `refused` (closed connection ID, or a parking cap reached), `app` (a re-ask's answer went straight to the client),
 * `revoked` (its lease was revoked: the client polls the app again).
 */
export type HoldOutcome =
  | 'delivered'
  | 'timeout'
  | 'aborted'
  | 'superseded'
  | 'resync'
  | 'pipelined'
  | 'drained'
  | 'closed'
  | 'refused'
  | 'app'
  | 'revoked';

/** Told about holds and deliveries as they happen, for metrics (proxy/control/metrics.ts). */
export interface HoldObserver {
  /** A request that had been parked was answered (or abandoned) `heldMs` after it was first parked. */
  holdEnded(outcome: HoldOutcome, heldMs: number): void;
  /** A published or pushed item was written to a parked client `latencyMs` after the control call arrived. */
  itemWritten(kind: 'publish' | 'push', latencyMs: number): void;
}

/** Where a delivered item came from, to time publish-to-write (performance.now() ms). */
interface ItemSource {
  kind: 'publish' | 'push';
  receivedAt: number;
}

export type HoldRegistryOptions = Pick<
  ProxyOptions,
  | 'maxReasks'
  | 'queueMaxItems'
  | 'queueMaxBytes'
  | 'queueTtlMs'
  | 'resyncTtlMs'
  | 'closedTtlMs'
  | 'channelTtlMs'
  | 'maxChannels'
  | 'sweepIntervalMs'
  | 'maxParked'
  | 'maxParkedPerAddress'
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

/** A request the registry owns, from its first hold instruction to its answer. */
interface Held {
  readonly exchange: Exchange;
  /** The latest hold instruction (a re-ask brings a new one). */
  instruction: HoldInstruction;
  state: 'deciding' | 'parked' | 'reasking' | 'done';
  timer: unknown;
  /** `timers.now()` when it was first parked; null if it never was. */
  parkedAt: number | null;
  /** Identifies the re-ask in flight, so a stale re-ask result is ignored. */
  reaskAttempt: object | null;
  readonly onClose: () => void;
}

type Counters = Pick<
  ProxyStats,
  | 'holds'
  | 'publishes'
  | 'pushes'
  | 'deliveries'
  | 'timeouts'
  | 'reasks'
  | 'resyncs'
  | 'dropped'
  | 'clientAborts'
  | 'pipelineReleases'
  | 'busResyncs'
>;

/** Answers given while shutting down tell the client (and Node) to drop the connection. */
const CONNECTION_CLOSE: HeaderMap = { connection: 'close' };

export class HoldRegistry {
  private readonly cursors: ChannelCursors;
  private readonly byChannel = new Map<string, Set<Held>>();
  private readonly connections: ConnectionTable<Held>;
  private readonly parked = new Set<Held>();
  /** Parked requests per client address (exchanges that know theirs), for `maxParkedPerAddress`. */
  private readonly parkedPerAddress = new Map<string, number>();
  private readonly reasking = new Set<Held>();
  /** Every exchange the registry has owned; weak, so answered ones are collected. */
  private readonly owners = new WeakMap<Exchange, Held>();
  private readonly counters: Counters = {
    holds: 0,
    publishes: 0,
    pushes: 0,
    deliveries: 0,
    timeouts: 0,
    reasks: 0,
    resyncs: 0,
    dropped: 0,
    clientAborts: 0,
    pipelineReleases: 0,
    busResyncs: 0,
  };
  /** Connection IDs named by a bus `push` entry while a take for them was in flight (see `decideShared`). */
  private readonly notifiedWhileTaking = new Set<string>();
  /** Takes in flight per connection ID. */
  private readonly taking = new Map<string, number>();
  /** Responses with a request pipelined behind them on the same connection (docs §4 step 0). */
  private readonly pipelinedBehind = new WeakSet<ServerResponse>();
  private readonly byResponse = new WeakMap<ServerResponse, Held>();
  private readonly log: Logger;
  private readonly timers: ProxyTimers;
  private sweepTimer: unknown = null;
  private draining = false;

  constructor(private readonly options: HoldRegistryOptions) {
    this.log = options.logger;
    this.timers = options.timers;
    this.cursors = new ChannelCursors({ ttlMs: options.channelTtlMs, maxChannels: options.maxChannels }, options.timers.now);
    this.connections = new ConnectionTable(options, options.timers.now, (n) => (this.counters.dropped += n));
    this.scheduleSweep();
  }

  /** The global publish sequence; capture it when a request is sent to the app (docs §4 step 3). */
  get publishSeq(): number {
    return this.cursors.seq;
  }

  /**
   * Takes a client request the app answered with a hold instruction (first
   * answer or re-ask) and decides, in the order of docs §4: closed ID → queued
   * news → race check → supersede → park.
   */
  hold(exchange: Exchange, instruction: HoldInstruction): void {
    this.counters.holds++;
    let held = this.owners.get(exchange);
    if (held?.state === 'done') return; // answered (drain) or aborted while its re-ask was in flight
    if (held === undefined) {
      if (isResponseClosed(exchange.res)) {
        this.counters.clientAborts++;
        return;
      }
      held = this.adopt(exchange, instruction);
    } else {
      this.unindex(held); // leaves the re-asking set
      held.instruction = instruction;
    }
    held.state = 'deciding';
    if (this.pipelinedBehind.has(exchange.res)) {
      // A request waits behind this one on the same connection: never park it (docs §4 step 0).
      this.counters.pipelineReleases++;
      this.finish(held, 'pipelined', instruction.timeoutResponse);
      return;
    }
    if (this.draining) {
      this.finish(held, 'drained', instruction.timeoutResponse, CONNECTION_CLOSE);
      return;
    }
    this.decide(held);
  }

  /**
   * The client pipelined another request behind `res` on the same connection.
   * HTTP/1.1 answers in order, so that request would wait for the whole hold:
   * answer `res` now with its timeout response (the client re-polls), or never
   * park it if the app has not answered yet (docs §4 step 0).
   */
  releasePipelined(res: ServerResponse): void {
    this.pipelinedBehind.add(res);
    const held = this.byResponse.get(res);
    if (held === undefined || (held.state !== 'parked' && held.state !== 'reasking')) return;
    this.counters.pipelineReleases++;
    this.finish(held, 'pipelined', held.instruction.timeoutResponse);
  }

  /** `POST /publish/` (docs §7.1): items in order; for each, cursor first, then every subscriber. */
  publish(commands: readonly PublishCommand[], receivedAt: number = performance.now()): ControlResult {
    const result = emptyResult();
    const source: ItemSource = { kind: 'publish', receivedAt };
    for (const command of commands) {
      this.counters.publishes++;
      this.cursors.record(command.channel, command.id);
      this.options.listener?.published(command, this.cursors.seq);
      const subscribers = this.byChannel.get(command.channel);
      if (subscribers === undefined) continue;
      for (const held of [...subscribers]) {
        if (held.state !== 'parked') continue;
        const prevId = held.instruction.channels.find((c) => c.name === command.channel)?.prevId;
        if (command.id !== undefined && command.id === prevId) {
          // The client already has this item (a re-published item is harmless, a stale hint costs no re-ask).
        } else if (command.action === 'hint') {
          this.reask(held);
          result.reasked++;
        } else if (command.prevId !== undefined && prevId !== undefined && command.prevId !== prevId) {
          // The client is not at the item's predecessor: it would miss or repeat items. Ask the app.
          this.reask(held);
          result.reasked++;
        } else if (this.deliver(held, command.response!, source)) {
          result.delivered++;
        }
      }
    }
    return result;
  }

  /** `POST /push/` (docs §7.2): deliver to the parked request, else queue. */
  push(commands: readonly PushCommand[], receivedAt: number = performance.now()): ControlResult {
    const result = emptyResult();
    const source: ItemSource = { kind: 'push', receivedAt };
    for (const command of commands) {
      this.counters.pushes++;
      const id = command.connectionId;
      if (this.connections.isClosed(id)) {
        result.dropped++;
        this.counters.dropped++;
        continue;
      }
      const parked = this.connections.get(id)?.parked;
      if (parked && this.deliver(parked, command.response, source)) {
        result.delivered++;
        continue;
      }
      const outcome = this.connections.open(id).queue.push(command.response, command.response.body.length);
      if (outcome.queued) {
        result.queued++;
      } else {
        result.dropped += outcome.dropped;
        this.log.warn({ connectionId: id, dropped: outcome.dropped }, 'connection queue overflowed; resync pending');
      }
    }
    return result;
  }

  /**
   * A bus `push` entry (docs/scaleout.md): items were queued in the shared store for these IDs.
   * For each one parked here, take the oldest item (or the resync) and answer with it.
   */
  pushNotified(ids: readonly string[], queuesLost = false): void {
    const shared = this.options.shared;
    if (shared === undefined) return;
    for (const id of ids) {
      if (this.taking.has(id)) this.notifiedWhileTaking.add(id);
      const held = this.connections.get(id)?.parked;
      if (held === undefined || held === null) continue;
      const receivedAt = performance.now();
      shared.take(id).then(
        (result) => {
          const still = this.connections.get(id)?.parked === held && held.state === 'parked';
          if (!still) {
            if (result.kind === 'item') void shared.requeue(id, result.item).catch(() => {});
            // A newer request for this ID (parked or deciding) takes its items itself.
            return;
          }
          if (result.kind === 'item') {
            if (!this.deliver(held, result.item, { kind: 'push', receivedAt })) void shared.requeue(id, result.item).catch(() => {});
          } else if (result.kind === 'resync') {
            this.counters.dropped += result.dropped;
            this.answerResync(held, result.reason);
          } else if (result.kind === 'closed') {
            this.finish(held, 'closed', errorResponse('PROXY_ERR_CONNECTION_CLOSED', 'the connection was closed'));
          }
        },
        (err: unknown) => {
          if (queuesLost && this.connections.get(id)?.parked === held && held.state === 'parked') {
            // Redis lost its data and cannot say whether this ID was told yet: tell it (maybe twice, never silently).
            this.answerResync(held, 'queue-lost');
            return;
          }
          this.log.warn({ err, connectionId: id }, 'take after a push notification failed; the item waits for the next poll');
        },
      );
    }
  }

  /**
   * The bus may have lost entries this proxy never applied (Redis restarted, or the stream was trimmed
   * past its position): re-ask every request parked on channels (docs §4.1; the app answers with news
   * past their cursors or holds again), and every request parked on a connection ID looks at its queue again.
   * With `queuesLost` (Redis lost its data: a new epoch) that look answers the `queue-lost` resync once per
   * ID (the shared take decides it, docs/scaleout.md).
   */
  resyncAllParked(queuesLost = false): number {
    this.counters.busResyncs++;
    this.options.listener?.busGap();
    let n = 0;
    const ids: string[] = [];
    for (const held of [...this.parked]) {
      if (held.state !== 'parked') continue;
      if (held.instruction.channels.length > 0) {
        this.reask(held);
        n++;
      } else if (held.instruction.connectionId !== undefined) {
        ids.push(held.instruction.connectionId);
      }
    }
    if (ids.length > 0) this.pushNotified(ids, queuesLost);
    this.log.warn({ reasked: n }, 'bus gap: re-asked every request parked on channels');
    return n;
  }

  /** Counts pushes made through the shared store (they are not delivered by `push`). */
  countPushes(items: number, dropped: number): void {
    this.counters.pushes += items;
    this.counters.dropped += dropped;
  }

  /** `POST /close/` (docs §7.3): answer the parked request, drop the queue, refuse the ID for a while. */
  close(commands: readonly CloseCommand[]): ControlResult {
    const result = emptyResult();
    for (const command of commands) {
      this.options.listener?.connectionClosed(command.connectionId);
      const parked = this.connections.get(command.connectionId)?.parked;
      if (parked) {
        const response = command.response
          ? mergeItemResponse(parked.instruction.timeoutResponse, command.response)
          : errorResponse('PROXY_ERR_CONNECTION_CLOSED', 'the connection was closed');
        if (this.finish(parked, 'closed', response)) {
          result.delivered++;
          this.counters.deliveries++;
        }
      }
      result.dropped += this.connections.close(command.connectionId);
    }
    return result;
  }

  /**
   * Shutdown (docs §9): answers every parked or re-asking request with its
   * timeout response plus `Connection: close`, answers later holds the same way,
   * and stops the sweep timer. Returns how many requests were answered.
   */
  drain(): number {
    this.draining = true;
    this.stopSweep();
    let answered = 0;
    for (const held of [...this.parked, ...this.reasking]) {
      if (this.finish(held, 'drained', held.instruction.timeoutResponse, CONNECTION_CLOSE)) answered++;
    }
    return answered;
  }

  /** `GET /stats` (docs §7.4). */
  stats(): ProxyStats {
    const queued = this.connections.queued();
    return {
      parked: this.parked.size,
      reasking: this.reasking.size,
      connections: this.connections.size,
      queuedItems: queued.items,
      queuedBytes: queued.bytes,
      channels: this.cursors.knownChannels,
      ...this.counters,
      ...(this.options.listener?.stats() ?? NO_REPOLLS),
    };
  }

  /** Forgets expired tombstones, queues and channels. Runs on the sweep timer; public for tests. */
  sweep(): void {
    this.connections.sweep();
    this.cursors.sweep();
    this.options.listener?.sweep();
  }

  /**
   * Was `channel` published on after the global sequence was `sentSeq`, to an id other than `lastId`?
   * Then an answer the app built from a snapshot taken after `sentSeq` may be stale (docs §4 step 3).
   */
  raced(channel: string, sentSeq: number, lastId: string): boolean {
    return this.cursors.publishedSince(channel, sentSeq) && this.cursors.lastId(channel) !== lastId;
  }

  /** Is `connectionId` closed here (docs §7.3)? With Redis the shared tombstone is checked when a hold decides. */
  isClosed(connectionId: string): boolean {
    return this.connections.isClosed(connectionId);
  }

  /**
   * Answers the request parked under `connectionId`, if any, with its timeout response: the client
   * polls again at once and the app decides (a revoked lease, docs §13.4).
   */
  releaseConnection(connectionId: string): boolean {
    const parked = this.connections.get(connectionId)?.parked;
    if (!parked) return false;
    return this.finish(parked, 'revoked', parked.instruction.timeoutResponse);
  }

  // --- decisions ---------------------------------------------------------

  private decide(held: Held): void {
    const id = held.instruction.connectionId;
    if (this.options.shared !== undefined && id !== undefined) {
      this.decideShared(held, id, this.options.shared);
      return;
    }
    this.decideLocal(held);
  }

  /**
   * Steps 1–2 against the shared store (one atomic script in Redis), then steps 3–5 here.
   * While the take is in flight the request is in no index; a publish meanwhile is caught
   * by the race check (step 3), and a push meanwhile by `notifiedWhileTaking`.
   */
  private decideShared(held: Held, id: string, shared: SharedConnections): void {
    this.taking.set(id, (this.taking.get(id) ?? 0) + 1);
    const settled = (result: TakeResult): void => {
      const left = (this.taking.get(id) ?? 1) - 1;
      if (left > 0) this.taking.set(id, left);
      else this.taking.delete(id);
      const notified = this.notifiedWhileTaking.delete(id) || left > 0;
      if (held.state !== 'deciding') {
        // Answered meanwhile (abort, drain, pipelining): an item taken for it goes back to the head of its queue.
        if (result.kind === 'item') void shared.requeue(id, result.item).catch((err: unknown) => this.log.error({ err, connectionId: id }, 'requeue failed'));
        return;
      }
      if (result.kind === 'closed') {
        this.finish(held, 'refused', errorResponse('PROXY_ERR_CONNECTION_CLOSED', 'the connection was closed'));
      } else if (result.kind === 'resync') {
        this.counters.dropped += result.dropped;
        this.answerResync(held, result.reason);
      } else if (result.kind === 'item') {
        if (!this.deliver(held, result.item)) void shared.requeue(id, result.item).catch(() => {});
      } else {
        this.decideLocal(held, true);
        // A push queued between the take and the park: its bus entry found nothing parked here. Look again.
        if (notified && (held.state as Held['state']) === 'parked') this.pushNotified([id]);
      }
    };
    shared.take(id).then(settled, (err: unknown) => {
      // Redis unreachable: park anyway. Queued pushes wait in Redis for the next poll; nothing is lost.
      this.log.warn({ err, connectionId: id }, 'shared connection state unavailable; parking without it');
      settled({ kind: 'none' });
    });
  }

  private decideLocal(held: Held, sharedChecked = false): void {
    const { instruction, exchange } = held;
    const id = sharedChecked ? undefined : instruction.connectionId;

    // 1. A closed connection ID refuses holds for closedTtlMs.
    if (id !== undefined && this.connections.isClosed(id)) {
      this.finish(held, 'refused', errorResponse('PROXY_ERR_CONNECTION_CLOSED', 'the connection was closed'));
      return;
    }

    // 2. News queued for the connection: a pending resync first, else the oldest item (one per response).
    const conn = id === undefined ? undefined : this.connections.get(id);
    if (id !== undefined && conn !== undefined) {
      const resync = conn.queue.takeResync();
      if (resync !== null) {
        this.answerResync(held, resync.reason);
        this.connections.forgetIfIdle(id);
        return;
      }
      const item = conn.queue.shift();
      if (item !== undefined) {
        this.deliver(held, item);
        this.connections.forgetIfIdle(id);
        return;
      }
    }

    // 3. The race check: a channel published on while the app was answering, to an id
    // other than the app's prev-id, means the answer may be stale. Re-ask instead of parking.
    for (const sub of instruction.channels) {
      if (sub.prevId === undefined) continue;
      if (this.raced(sub.name, exchange.sentSeq, sub.prevId)) {
        this.log.debug(
          { requestId: requestIdOf(exchange.req), channel: sub.name, prevId: sub.prevId, lastId: this.cursors.lastId(sub.name) },
          'publish raced the hold; re-asking',
        );
        this.reask(held);
        return;
      }
    }

    // 4. One parked request per connection ID: the older one gets its timeout response and re-polls.
    // But first the parking caps; the older request would make room, and stays parked if this one is refused.
    const ownId = instruction.connectionId;
    const older = ownId === undefined ? undefined : (this.connections.get(ownId)?.parked ?? undefined);
    const refusal = this.parkingRefusal(held, older);
    if (refusal !== null) {
      this.log.info({ requestId: requestIdOf(exchange.req), clientAddress: exchange.clientAddress, reason: refusal }, 'hold refused: too many parked');
      this.finish(held, 'refused', errorResponse('PROXY_ERR_TOO_MANY_PARKED', `${refusal}; retry later`), {
        'retry-after': String(this.options.parkedRetryAfterS),
      });
      return;
    }
    if (older) this.finish(older, 'superseded', older.instruction.timeoutResponse);

    // 5. Park.
    this.park(held);
  }

  /** Why `held` may not be parked (docs §4 step 4: `maxParked`, `maxParkedPerAddress`), or null. */
  private parkingRefusal(held: Held, older: Held | undefined): string | null {
    const { maxParked, maxParkedPerAddress } = this.options;
    if (this.parked.size - (older ? 1 : 0) >= maxParked) return `the proxy already holds ${maxParked} requests`;
    const address = held.exchange.clientAddress;
    if (address !== undefined) {
      const freed = older?.exchange.clientAddress === address ? 1 : 0;
      if ((this.parkedPerAddress.get(address) ?? 0) - freed >= maxParkedPerAddress) {
        return `the proxy already holds ${maxParkedPerAddress} requests from this client address`;
      }
    }
    return null;
  }

  private park(held: Held): void {
    const { instruction } = held;
    held.state = 'parked';
    const address = held.exchange.clientAddress;
    if (address !== undefined) this.parkedPerAddress.set(address, (this.parkedPerAddress.get(address) ?? 0) + 1);
    held.parkedAt ??= this.timers.now();
    this.parked.add(held);
    for (const sub of instruction.channels) {
      let set = this.byChannel.get(sub.name);
      if (set === undefined) this.byChannel.set(sub.name, (set = new Set()));
      set.add(held);
    }
    if (instruction.connectionId !== undefined) this.connections.open(instruction.connectionId).parked = held;
    if (this.log.isLevelEnabled('debug')) this.log.debug(
      { requestId: requestIdOf(held.exchange.req), channels: instruction.channels.map((c) => c.name), connectionId: instruction.connectionId, timeoutMs: instruction.timeoutMs },
      'parked',
    );
    held.timer = this.timers.setTimeout(() => {
      this.counters.timeouts++;
      this.finish(held, 'timeout', held.instruction.timeoutResponse);
    }, instruction.timeoutMs);
  }

  /** Re-ask (docs §4.1): out of every index while the app answers again; at most `maxReasks` times. */
  private reask(held: Held): void {
    const { exchange, instruction } = held;
    if (exchange.reasks >= this.options.maxReasks) {
      this.answerResync(held, 'reask-limit');
      return;
    }
    this.unindex(held);
    held.state = 'reasking';
    this.reasking.add(held);
    exchange.reasks++;
    this.counters.reasks++;
    const attempt = {};
    held.reaskAttempt = attempt;

    // Grip-Last as Pushpin sends it: each channel's prev-id, the client's position, which an app may answer from
    // (fastly/pushpin handler/httpsession.cpp). The channel's last id would be past items the client never got.
    const lastIds = new Map<string, string>();
    for (const sub of instruction.channels) {
      if (sub.prevId !== undefined) lastIds.set(sub.name, sub.prevId);
    }
    let outcome: Promise<ReaskOutcome>;
    try {
      outcome = this.options.reask(exchange, lastIds);
    } catch (err) {
      this.log.error({ err, requestId: requestIdOf(exchange.req) }, 're-ask threw');
      outcome = Promise.resolve('failed');
    }
    outcome
      .catch((err: unknown) => {
        this.log.error({ err, requestId: requestIdOf(exchange.req) }, 're-ask rejected');
        return 'failed' as const;
      })
      .then((result) => {
        // A newer instruction, an answer or an abort got there first: nothing left to do.
        if (held.reaskAttempt !== attempt || held.state !== 'reasking') return;
        if (result === 'failed') this.answerResync(held, 'reask-failed');
        else this.finish(held, 'app', null); // the app's answer went straight to the client
      });
  }

  // --- answers -----------------------------------------------------------

  /** Delivers an item merged onto the held response (docs §6). False if the client was gone. */
  private deliver(held: Held, item: ItemResponse, source?: ItemSource): boolean {
    // Prepared once per item (remembered per item object): a publish to N parked requests merges headers N times, not N objects.
    const ready = prepareItem(item);
    const written = this.end(held, 'delivered', (res) => writeItem(res, held.instruction.timeoutResponse, ready), ready.code);
    if (written) this.counters.deliveries++;
    if (written && source !== undefined) this.options.observer?.itemWritten(source.kind, performance.now() - source.receivedAt);
    return written;
  }

  private answerResync(held: Held, reason: ResyncReason): void {
    this.counters.resyncs++;
    this.log.info({ requestId: requestIdOf(held.exchange.req), reason, connectionId: held.instruction.connectionId }, 'resync answer');
    this.finish(held, 'resync', resyncResponse(reason, held.instruction.channels.map((c) => c.name)));
  }

  /**
   * The one way out for a held request: leaves every index, clears its timer and
   * close listener, then writes `response` (none when the client is gone).
   * Returns whether a response was written; idempotent.
   */
  private finish(held: Held, outcome: HoldOutcome, response: HeldResponse | null, extraHeaders?: HeaderMap): boolean {
    if (response === null) return this.end(held, outcome, null);
    return this.end(held, outcome, (res) => writeResponse(res, response, extraHeaders), response.code);
  }

  /** `finish` with the write as a function (deliveries write a prepared item without a merged copy). */
  private end(held: Held, outcome: HoldOutcome, write: ((res: ServerResponse) => boolean) | null, status?: number): boolean {
    if (held.state === 'done') return false;
    this.unindex(held);
    held.state = 'done';
    held.exchange.res.off('close', held.onClose);
    const written = write !== null && write(held.exchange.res);
    const heldMs = held.parkedAt === null ? null : this.timers.now() - held.parkedAt;
    if (heldMs !== null) this.options.observer?.holdEnded(outcome, heldMs);
    // Guarded: this runs for every answer, thousands per publish; the fields cost even when not logged.
    if (this.log.isLevelEnabled('debug')) this.log.debug(
      { requestId: requestIdOf(held.exchange.req), outcome, connectionId: held.instruction.connectionId, heldMs, status: written ? status : null },
      'hold answered',
    );
    return written;
  }

  // --- bookkeeping -------------------------------------------------------

  private adopt(exchange: Exchange, instruction: HoldInstruction): Held {
    const held: Held = {
      exchange,
      instruction,
      state: 'deciding',
      timer: null,
      parkedAt: null,
      reaskAttempt: null,
      onClose: () => {
        // 'close' also follows a normal finish; only an unfinished response is an abort.
        if (exchange.res.writableFinished) return;
        this.counters.clientAborts++;
        this.log.debug({ requestId: requestIdOf(exchange.req), connectionId: held.instruction.connectionId, state: held.state }, 'client went away');
        this.finish(held, 'aborted', null);
      },
    };
    this.owners.set(exchange, held);
    this.byResponse.set(exchange.res, held);
    exchange.res.on('close', held.onClose);
    return held;
  }

  /** Removes `held` from whichever index its state puts it in, and clears its timer. */
  private unindex(held: Held): void {
    if (held.timer !== null) {
      this.timers.clearTimeout(held.timer);
      held.timer = null;
    }
    if (held.state === 'parked') {
      this.parked.delete(held);
      const address = held.exchange.clientAddress;
      if (address !== undefined) {
        const left = (this.parkedPerAddress.get(address) ?? 1) - 1;
        if (left > 0) this.parkedPerAddress.set(address, left);
        else this.parkedPerAddress.delete(address);
      }
      for (const sub of held.instruction.channels) {
        const set = this.byChannel.get(sub.name);
        set?.delete(held);
        if (set?.size === 0) this.byChannel.delete(sub.name);
      }
      const id = held.instruction.connectionId;
      const conn = id === undefined ? undefined : this.connections.get(id);
      if (id !== undefined && conn?.parked === held) {
        conn.parked = null;
        this.connections.forgetIfIdle(id);
      }
    } else if (held.state === 'reasking') {
      this.reasking.delete(held);
      held.reaskAttempt = null;
    }
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

function emptyResult(): ControlResult {
  return { delivered: 0, queued: 0, dropped: 0, reasked: 0 };
}
