/**
 * What a hold instruction leads to, in the order of docs/protocol.md §4:
 * pipelined or draining (step 0, in hold-lifecycle.ts `admit`) → closed
 * connection ID → queued news → race check → parking caps and supersession →
 * park. With shared connection state (Redis, docs/scaleout.md) steps 1–2 are
 * one atomic take from the shared store, then steps 3–5 run here.
 *
 * It decides and hands the request to the lifecycle (hold-lifecycle.ts) to be
 * answered, re-asked or parked; it writes nothing itself.
 */
import type { Logger } from 'pino';
import { errorResponse } from '../errors.js';
import type { Exchange } from '../forward/exchange.js';
import type { HoldInstruction } from '../forward/instruction.js';
import { requestIdOf } from '../http/request-id.js';
import type { ChannelCursors } from './channel-cursors.js';
import type { ConnectionTable } from './connection-table.js';
import type { Held, HoldCounters } from './held.js';
import type { HoldLifecycle } from './hold-lifecycle.js';
import { parkedBytesOf } from './parked-bytes.js';
import type { ParkedIndex } from './parked-index.js';
import type { SharedConnections, TakeResult } from './shared-connections.js';
import type { StreamSide } from '../streams/stream-side.js';

/**
 * Takes from the shared store in flight, per connection ID, and whether a bus `push`
 * entry named the ID meanwhile: that entry found nothing parked here, so the request
 * parked after the take must look at its queue again.
 */
export class TakesInFlight {
  private readonly count = new Map<string, number>();
  private readonly notified = new Set<string>();

  begin(id: string): void {
    this.count.set(id, (this.count.get(id) ?? 0) + 1);
  }

  /** Ends one take for `id`; true if a push was notified meanwhile, or another take is still in flight. */
  end(id: string): boolean {
    const left = (this.count.get(id) ?? 1) - 1;
    if (left > 0) this.count.set(id, left);
    else this.count.delete(id);
    return this.notified.delete(id) || left > 0;
  }

  /** A bus `push` entry named `id`: remembered if a take for it is in flight. */
  pushNotified(id: string): void {
    if (this.count.has(id)) this.notified.add(id);
  }
}

export interface HoldDecisionsDeps {
  lifecycle: HoldLifecycle;
  index: ParkedIndex;
  connections: ConnectionTable<Held>;
  cursors: ChannelCursors;
  counters: HoldCounters;
  takes: TakesInFlight;
  /** Connection state shared by every proxy, if any. */
  shared: SharedConnections | undefined;
  /** Looks at the shared queue of these IDs again (hold-delivery.ts `pushNotified`). */
  pushNotified: (ids: readonly string[]) => void;
  maxParked: number;
  maxParkedPerAddress: number;
  maxParkedBodyBytes: number;
  maxParkedBytes: number;
  parkedRetryAfterS: number;
  /** Open streams count against the same caps (docs §14.2). */
  streams: StreamSide | undefined;
  logger: Logger;
}

export class HoldDecisions {
  private readonly lifecycle: HoldLifecycle;
  private readonly connections: ConnectionTable<Held>;
  private readonly log: Logger;

  constructor(private readonly deps: HoldDecisionsDeps) {
    this.lifecycle = deps.lifecycle;
    this.connections = deps.connections;
    this.log = deps.logger;
  }

  /**
   * Takes a client request the app answered with a hold instruction (first
   * answer or re-ask) and decides, in the order of docs §4: closed ID → queued
   * news → race check → supersede → park.
   */
  hold(exchange: Exchange, instruction: HoldInstruction): void {
    this.deps.counters.holds++;
    const held = this.lifecycle.admit(exchange, instruction);
    if (held === null) return;
    const id = held.instruction.connectionId;
    if (this.deps.shared !== undefined && id !== undefined) {
      this.decideShared(held, id, this.deps.shared);
      return;
    }
    this.decideLocal(held);
  }

  /**
   * Was `channel` published on after the global sequence was `sentSeq`, to an id other than `lastId`?
   * Then an answer the app built from a snapshot taken after `sentSeq` may be stale (docs §4 step 3).
   */
  raced(channel: string, sentSeq: number, lastId: string): boolean {
    const { cursors } = this.deps;
    return cursors.publishedSince(channel, sentSeq) && cursors.lastId(channel) !== lastId;
  }

  /**
   * Steps 1–2 against the shared store (one atomic script in Redis), then steps 3–5 here.
   * While the take is in flight the request is in no index; a publish meanwhile is caught
   * by the race check (step 3), and a push meanwhile by `TakesInFlight`.
   */
  private decideShared(held: Held, id: string, shared: SharedConnections): void {
    const { takes } = this.deps;
    takes.begin(id);
    const settled = (result: TakeResult): void => {
      const notified = takes.end(id);
      if (held.state !== 'deciding') {
        // Answered meanwhile (abort, drain, pipelining, a publish): an item taken for it goes back to the head of its
        // queue, and a resync taken for it is set again, for the client's next poll.
        if (result.kind === 'item') void shared.requeue(id, result.item).catch((err: unknown) => this.log.error({ err, connectionId: id }, 'requeue failed'));
        else if (result.kind === 'resync') void shared.resyncAgain(id, result.reason).catch((err: unknown) => this.log.error({ err, connectionId: id }, 'resync could not be set again'));
        return;
      }
      if (result.kind === 'closed') {
        this.lifecycle.finish(held, 'refused', errorResponse('PROXY_ERR_CONNECTION_CLOSED', 'the connection was closed'));
      } else if (result.kind === 'resync') {
        this.deps.counters.dropped += result.dropped;
        this.lifecycle.answerResync(held, result.reason);
        shared.delivered(id); // told: on Redis the resync was out until now
      } else if (result.kind === 'item') {
        if (this.lifecycle.deliver(held, result.item)) shared.delivered(id);
        else void shared.requeue(id, result.item).catch(() => {});
      } else {
        this.decideLocal(held, true);
        // A push queued between the take and the park: its bus entry found nothing parked here. Look again.
        if (notified && (held.state as Held['state']) === 'parked') this.deps.pushNotified([id]);
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
      this.lifecycle.finish(held, 'refused', errorResponse('PROXY_ERR_CONNECTION_CLOSED', 'the connection was closed'));
      return;
    }

    // 2. News queued for the connection: a pending resync first, else the oldest item (one per response).
    const queue = id === undefined ? null : (this.connections.get(id)?.queue ?? null);
    if (id !== undefined && queue !== null) {
      const resync = queue.takeResync();
      if (resync !== null) {
        this.lifecycle.answerResync(held, resync.reason);
        this.connections.forgetIfIdle(id);
        return;
      }
      const item = queue.shift();
      if (item !== undefined) {
        this.lifecycle.deliver(held, item);
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
          { requestId: requestIdOf(exchange.req), channel: sub.name, prevId: sub.prevId, lastId: this.deps.cursors.lastId(sub.name) },
          'publish raced the hold; re-asking',
        );
        this.lifecycle.reask(held);
        return;
      }
    }

    // 4. What a parked request may keep: a body over maxParkedBodyBytes, or one still arriving, is never parked.
    const bodyBytes = exchange.bodySize();
    if (bodyBytes === null || bodyBytes > this.deps.maxParkedBodyBytes) {
      const { maxParkedBodyBytes } = this.deps;
      this.log.info({ requestId: requestIdOf(exchange.req), clientAddress: exchange.clientAddress, bodyBytes, maxParkedBodyBytes }, 'hold refused: request body too large to park');
      const why = bodyBytes === null ? 'had not fully arrived when the app held it' : `has ${bodyBytes} bytes`;
      this.lifecycle.finish(held, 'refused', errorResponse('PROXY_ERR_PARKED_BODY_TOO_LARGE', `the request body ${why}; a held request may keep at most ${maxParkedBodyBytes} bytes`));
      return;
    }

    // One parked request per connection ID: the older one gets its timeout response and re-polls.
    // But first the parking caps; the older request would make room, and stays parked if this one is refused.
    const ownId = instruction.connectionId;
    const older = ownId === undefined ? undefined : this.deps.index.parkedUnder(ownId);
    held.parkedBytes = parkedBytesOf(exchange, instruction);
    const refusal = this.parkingRefusal(held, older);
    if (refusal !== null) {
      this.log.info({ requestId: requestIdOf(exchange.req), clientAddress: exchange.clientAddress, reason: refusal }, 'hold refused: too many parked');
      this.lifecycle.finish(held, 'refused', errorResponse('PROXY_ERR_TOO_MANY_PARKED', `${refusal}; retry later`), {
        'retry-after': String(this.deps.parkedRetryAfterS),
      });
      return;
    }
    if (older) this.lifecycle.finish(older, 'superseded', older.instruction.timeoutResponse);

    // 5. Park.
    this.lifecycle.park(held);
  }

  /** Why `held` may not be parked (docs §4 step 4: `maxParked`, `maxParkedBytes`, `maxParkedPerAddress`), or null. */
  private parkingRefusal(held: Held, older: Held | undefined): string | null {
    const { maxParked, maxParkedBytes, maxParkedPerAddress, index, streams } = this.deps;
    if (index.parkedCount + (streams?.count ?? 0) - (older ? 1 : 0) >= maxParked) return `the proxy already holds ${maxParked} requests`;
    if (index.parkedBytes + (streams?.bytes ?? 0) - (older?.parkedBytes ?? 0) + held.parkedBytes > maxParkedBytes) {
      return `the proxy's parked requests would keep more than ${maxParkedBytes} bytes`;
    }
    const address = held.exchange.clientAddress;
    if (address !== undefined) {
      const freed = older?.exchange.clientAddress === address ? 1 : 0;
      if (index.parkedFrom(address) + (streams?.from(address) ?? 0) - freed >= maxParkedPerAddress) {
        return `the proxy already holds ${maxParkedPerAddress} requests from this client address`;
      }
    }
    return null;
  }
}
