/**
 * What publishers do to parked requests (docs/protocol.md §7): `publish` moves a
 * channel's cursor and answers, or re-asks, every request parked on it (prev-id
 * checks, §4.1, §7.1); `push` answers the request parked under a connection ID or
 * queues the item (§7.2); `close` answers it and refuses the ID (§7.3). The bus
 * side (docs/scaleout.md): `pushNotified` takes items queued in the shared store,
 * `resyncAllParked` recovers from a bus gap. A revoked lease releases its request.
 *
 * Every answer goes through the lifecycle (hold-lifecycle.ts).
 */
import type { Logger } from 'pino';
import type { ControlResult } from '../../protocol/control-api.js';
import type { CloseCommand, PublishCommand, PushCommand } from '../control/commands.js';
import { errorResponse, ProxyError } from '../errors.js';
import { mergeItemResponse } from '../http/response.js';
import type { ChannelCursors } from './channel-cursors.js';
import { filtersDrop } from './delivery-filters.js';
import type { ConnectionTable } from './connection-table.js';
import { emptyResult, type Held, type HoldCounters, type ItemSource } from './held.js';
import type { TakesInFlight } from './hold-decisions.js';
import type { HoldLifecycle } from './hold-lifecycle.js';
import type { ParkedIndex } from './parked-index.js';
import type { SharedConnections } from './shared-connections.js';
import type { StreamSide } from '../streams/stream-side.js';

/** The hold's subscription to `name` (a loop, not `find`: no closure per subscriber of a publish, issue 15). */
function channelOf(held: Held, name: string): Held['instruction']['channels'][number] | undefined {
  const channels = held.instruction.channels;
  for (let i = 0; i < channels.length; i++) if (channels[i]!.name === name) return channels[i];
  return undefined;
}

/** What the registry's delivery tells the re-poll side (hold-registry.ts `RegistryListener`). */
export interface DeliveryListener {
  published(command: PublishCommand, seq: number): void;
  connectionClosed(connectionId: string): void;
  busGap(): void;
}

export interface HoldDeliveryDeps {
  lifecycle: HoldLifecycle;
  index: ParkedIndex;
  connections: ConnectionTable<Held>;
  cursors: ChannelCursors;
  counters: HoldCounters;
  takes: TakesInFlight;
  shared: SharedConnections | undefined;
  listener: DeliveryListener | undefined;
  /** Streams (proxy/streams/): each item's `http-stream` format goes there first. */
  streams: StreamSide | undefined;
  logger: Logger;
  /** `Retry-After` of a push refused by `maxUnknownQueues`, seconds. */
  unknownQueuesRetryAfterS: number;
}

/** A push refused whole: it would open more queues for unknown IDs than `maxUnknownQueues` leaves room for. */
export class TooManyQueuesError extends ProxyError {
  override name = 'TooManyQueuesError';
  constructor(
    message: string,
    readonly retryAfterS: number,
  ) {
    super('PROXY_ERR_TOO_MANY_QUEUES', message);
  }
}

export class HoldDelivery {
  private readonly lifecycle: HoldLifecycle;
  private readonly connections: ConnectionTable<Held>;
  private readonly counters: HoldCounters;
  private readonly log: Logger;

  constructor(private readonly deps: HoldDeliveryDeps) {
    this.lifecycle = deps.lifecycle;
    this.connections = deps.connections;
    this.counters = deps.counters;
    this.log = deps.logger;
  }

  /** `POST /publish/` (docs §7.1): items in order; for each, cursor first, then every subscriber. */
  publish(commands: readonly PublishCommand[], receivedAt: number): ControlResult {
    const result = emptyResult();
    const source: ItemSource = { kind: 'publish', receivedAt };
    const { cursors, index, listener } = this.deps;
    for (const command of commands) {
      this.counters.publishes++;
      if (command.stream !== undefined && this.deps.streams !== undefined) result.delivered += this.deps.streams.publish(command);
      if (command.action === 'none') continue; // nothing for parked requests (docs §14.3)
      cursors.record(command.channel, command.id);
      listener?.published(command, cursors.seq);
      const subscribers = index.subscribers(command.channel);
      if (subscribers === undefined) continue;
      for (const held of [...subscribers]) {
        if (held.state !== 'parked') continue;
        const channel = channelOf(held, command.channel);
        const prevId = channel?.prevId;
        const behind = command.prevId !== undefined && prevId !== undefined && command.prevId !== prevId;
        if (command.id !== undefined && command.id === prevId) {
          // The client already has this item (a re-published item is harmless, a stale hint costs no re-ask).
        } else if (!behind && channel?.filters !== undefined && filtersDrop(channel, held.instruction.meta, command.meta, held.instruction.channels)) {
          // A channel filter drops it for this hold (skip-self...): it stays parked, its cursor past the item (Pushpin).
          if (prevId !== undefined && command.id !== undefined) channel.prevId = command.id;
        } else if (command.action === 'hint') {
          this.lifecycle.reask(held);
          result.reasked++;
        } else if (behind) {
          // The client is not at the item's predecessor: it would miss or repeat items. Ask the app.
          this.lifecycle.reask(held);
          result.reasked++;
        } else if (this.lifecycle.deliver(held, command.response!, source)) {
          result.delivered++;
        }
      }
    }
    return result;
  }

  /**
   * `POST /push/` (docs §7.2): deliver to the parked request, else queue. Refused whole (nothing delivered) if it
   * would open more queues for IDs not known here than `maxUnknownQueues` leaves room for.
   */
  push(commands: readonly PushCommand[], receivedAt: number): ControlResult {
    const needed = this.connections.unknownAmong(commands.map((c) => c.connectionId));
    if (needed > this.connections.unknownRoom) {
      throw new TooManyQueuesError(
        `this push would open ${needed} queues for connection IDs not parked here lately; ${this.connections.unknownRoom} more fit (maxUnknownQueues)`,
        this.deps.unknownQueuesRetryAfterS,
      );
    }
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
      if (parked && this.lifecycle.deliver(parked, command.response, source)) {
        result.delivered++;
        continue;
      }
      const outcome = this.connections.openForPush(id).queue.push(command.response, command.response.body.length);
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
    const { shared, takes } = this.deps;
    if (shared === undefined) return;
    for (const id of ids) {
      takes.pushNotified(id);
      const held = this.connections.get(id)?.parked;
      if (held === undefined || held === null) continue;
      const receivedAt = performance.now();
      shared.take(id).then(
        (result) => {
          const still = this.connections.get(id)?.parked === held && held.state === 'parked';
          if (!still) {
            if (result.kind === 'item') void shared.requeue(id, result.item).catch(() => {});
            else if (result.kind === 'resync') void shared.resyncAgain(id, result.reason).catch(() => {});
            // A newer request for this ID (parked or deciding) takes its items (and the resync) itself.
            return;
          }
          if (result.kind === 'item') {
            if (this.lifecycle.deliver(held, result.item, { kind: 'push', receivedAt })) shared.delivered(id);
            else void shared.requeue(id, result.item).catch(() => {});
          } else if (result.kind === 'resync') {
            this.counters.dropped += result.dropped;
            this.lifecycle.answerResync(held, result.reason);
            shared.delivered(id); // told: on Redis the resync was out until now
          } else if (result.kind === 'closed') {
            this.lifecycle.finish(held, 'closed', errorResponse('PROXY_ERR_CONNECTION_CLOSED', 'the connection was closed'));
          }
        },
        (err: unknown) => {
          if (queuesLost && this.connections.get(id)?.parked === held && held.state === 'parked') {
            // Redis lost its data and cannot say whether this ID was told yet: tell it (maybe twice, never silently).
            this.lifecycle.answerResync(held, 'queue-lost');
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
  resyncAllParked(queuesLost: boolean): number {
    this.counters.busResyncs++;
    this.deps.listener?.busGap();
    let n = 0;
    const ids: string[] = [];
    for (const held of this.deps.index.allParked()) {
      if (held.state !== 'parked') continue;
      if (held.instruction.channels.length > 0) {
        this.lifecycle.reask(held);
        n++;
      } else if (held.instruction.connectionId !== undefined) {
        ids.push(held.instruction.connectionId);
      }
    }
    if (ids.length > 0) this.pushNotified(ids, queuesLost);
    this.log.warn({ reasked: n }, 'bus gap: re-asked every request parked on channels');
    return n;
  }

  /** `POST /close/` (docs §7.3): answer the parked request, drop the queue, refuse the ID for a while. */
  close(commands: readonly CloseCommand[]): ControlResult {
    const result = emptyResult();
    for (const command of commands) {
      this.deps.listener?.connectionClosed(command.connectionId);
      const parked = this.connections.get(command.connectionId)?.parked;
      if (parked) {
        const response = command.response
          ? mergeItemResponse(parked.instruction.timeoutResponse, command.response)
          : errorResponse('PROXY_ERR_CONNECTION_CLOSED', 'the connection was closed');
        if (this.lifecycle.finish(parked, 'closed', response)) {
          result.delivered++;
          this.counters.deliveries++;
        }
      }
      result.dropped += this.connections.close(command.connectionId);
    }
    return result;
  }

  /**
   * Answers the request parked under `connectionId`, if any, with its timeout response: the client
   * polls again at once and the app decides (a revoked lease, docs §13.4).
   */
  releaseConnection(connectionId: string): boolean {
    const parked = this.connections.get(connectionId)?.parked;
    if (!parked) return false;
    return this.lifecycle.finish(parked, 'revoked', parked.instruction.timeoutResponse);
  }
}
