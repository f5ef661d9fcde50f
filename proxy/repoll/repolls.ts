/**
 * Re-polls the proxy answers by itself (docs/protocol.md §13). For a client
 * request of the shape a lease names, from the client the lease is bound to,
 * on channels the lease covers, with cursors the channel buffer can place:
 * the items past the cursors go out at once in one answer, or, with none, the
 * request parks as if the app had held it. Anything it cannot decide alone
 * goes to the app exactly as before (`tryAnswer` returns false).
 *
 * It also keeps the buffer and the leases current: every publish the registry
 * applies, every `/close/` and bus gap, every lease the app grants.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { ClientRequest, ClientResponse } from '../http/client-message.js';
import type { Logger } from 'pino';
import type { ChannelSubscription } from '../../protocol/grip-channel.js';
import { GRIP_CHANNEL, GRIP_SET_META } from '../../protocol/headers.js';
import { GRIP_LEASE } from '../../protocol/lease.js';
import type { PublishCommand, RevokeCommand } from '../control/commands.js';
import { createBodilessExchange, type Exchange } from '../forward/exchange.js';
import type { HoldRegistry } from '../holds/hold-registry.js';
import type { HoldInstruction } from '../forward/instruction.js';
import type { ProxyOptions } from '../options.js';
import { requestIdOf } from '../http/request-id.js';
import { mergeItemResponse, prepareItem, writeItem, writeResponse, type HeldResponse, type ItemResponse } from '../http/response.js';
import { ChannelBuffer, type BufferedItem } from './channel-buffer.js';
import { LeaseTable, type Lease } from './lease-table.js';
import { readCursors, readRepollQuery } from './repoll-query.js';

export type RepollOptions = Pick<
  ProxyOptions,
  | 'bufferMaxItems'
  | 'bufferMaxBytes'
  | 'bufferMaxAgeMs'
  | 'bufferMaxTotalBytes'
  | 'maxChannels'
  | 'maxLeases'
  | 'leaseMaxLifetimeMs'
  | 'maxRevocations'
  | 'reaskBodyMaxBytes'
  | 'minHoldTimeoutMs'
  | 'maxHoldTimeoutMs'
  | 'logger'
  | 'timers'
> & { leaseKey: string };

/** Why a request of a leased shape went to the app. */
export type RepollFallback = 'shape' | 'no-lease' | 'binding' | 'channel' | 'cursor' | 'closed' | 'format';

/** What `Repolls.decide` found a re-poll can be answered with: one buffered item, a batch of them, or a park. */
export type RepollDecision =
  | { kind: 'item'; lease: Lease; item: ItemResponse }
  | { kind: 'batch'; lease: Lease; response: HeldResponse }
  | { kind: 'park'; lease: Lease; cid: string; cursors: ChannelSubscription[] };

export interface RepollStats {
  leases: number;
  bufferedItems: number;
  /** Re-polls answered with buffered items. */
  repollAnswers: number;
  /** Re-polls parked without asking the app. */
  repollParks: number;
  /** Requests of a leased shape that went to the app. */
  repollToApp: number;
}

export class Repolls {
  readonly buffer: ChannelBuffer;
  readonly leases: LeaseTable;
  private readonly log: Logger;
  private readonly counters = { repollAnswers: 0, repollParks: 0, repollToApp: 0 };
  private lastPath = '';

  constructor(
    private readonly options: RepollOptions,
    /** The registry that parks re-polls; a getter because it is built with this object as its listener. */
    private readonly registry: () => HoldRegistry,
  ) {
    this.log = options.logger;
    // Leases carry wall-clock times (the app's clock); the buffer's ages use the injected clock.
    this.buffer = new ChannelBuffer(
      {
        maxItems: options.bufferMaxItems,
        maxBytes: options.bufferMaxBytes,
        maxAgeMs: options.bufferMaxAgeMs,
        maxChannels: options.maxChannels,
        maxTotalBytes: options.bufferMaxTotalBytes,
      },
      options.timers.now,
    );
    this.leases = new LeaseTable({
      leaseKey: options.leaseKey,
      maxLeases: options.maxLeases,
      maxLifetimeMs: options.leaseMaxLifetimeMs,
      maxRevocations: options.maxRevocations,
      now: Date.now,
      logger: options.logger,
    });
  }

  stats(): RepollStats {
    return { leases: this.leases.size, bufferedItems: this.buffer.items, ...this.counters };
  }

  // --- kept current by the registry and the upstream side ------------------

  /** A publish item the registry applied; `seq` is its place in the proxy's publish order. */
  published(command: PublishCommand, seq: number): void {
    // Before the item reaches anyone: the client the item tells to leave must not re-poll with its old lease.
    if (command.revoke !== undefined) this.revoke(command.revoke);
    if (command.action === 'hint' || command.response === null) {
      // "Ask the app": the buffer does not know what changed.
      this.buffer.forget(command.channel);
      return;
    }
    this.buffer.record(command.channel, command.id, command.prevId, command.response, seq);
  }

  /** `/close/`: the connection ID's lease ends with it. */
  connectionClosed(connectionId: string): void {
    this.leases.revoke({ connectionId, issuedBeforeMs: Date.now() });
  }

  /**
   * The proxy may have missed bus entries: nothing buffered can be trusted, and a missed revocation must not
   * leave a lease working, so every lease held goes back to the app once.
   */
  busGap(): void {
    this.buffer.clear();
    this.leases.refuseAllIssuedUntilNow();
  }

  /**
   * The app answered `exchange` (first answer or re-ask): take its lease, if it sent one, and learn the
   * channels' heads from it where no publish raced the answer (the same rule as the race check, docs §4 step 3).
   */
  granted(exchange: Exchange, headers: IncomingHttpHeaders): void {
    const token = headers[GRIP_LEASE];
    if (typeof token !== 'string') return;
    // Buffered items are answered unfiltered: a hold with channel filters or meta (skip-self...) keeps asking the app.
    if (headers[GRIP_SET_META] !== undefined || /;\s*filter\s*=/i.test(String(headers[GRIP_CHANNEL] ?? ''))) {
      this.log.debug({ requestId: requestIdOf(exchange.req), refused: 'filters' }, 'lease not taken');
      return;
    }
    const lease = this.leases.grant(token, exchange.req);
    if (typeof lease === 'string') {
      this.log.debug({ requestId: requestIdOf(exchange.req), refused: lease }, 'lease not taken');
      return;
    }
    const registry = this.registry();
    for (const [channel, lastId] of lease.claims.ch) {
      if (!registry.raced(channel, exchange.sentSeq, lastId)) this.buffer.seedHead(channel, lastId);
    }
  }

  /** Ends leases and answers their parked requests with the timeout response: the next poll goes to the app. */
  revoke(commands: readonly RevokeCommand[]): number {
    let ended = 0;
    for (const command of commands) {
      for (const cid of this.leases.revoke(command)) {
        ended++;
        this.registry().releaseConnection(cid);
      }
    }
    if (ended > 0) this.log.debug({ ended }, 'leases revoked');
    return ended;
  }

  sweep(): void {
    this.buffer.sweep();
    this.leases.sweep();
  }

  // --- the client side ------------------------------------------------------

  /**
   * Answers or parks `req` by itself when its lease allows; returns false (having written
   * nothing and changed nothing) when the app must answer.
   */
  tryAnswer(req: ClientRequest, res: ClientResponse, clientAddress: string | undefined): boolean {
    const decision = this.decide(req);
    if (decision === null) return false;
    if (typeof decision === 'string') return this.toApp(decision);
    this.act(req, res, decision, clientAddress);
    return true;
  }

  /** Could a GET of `url` be a re-poll a lease covers (its path is a lease's)? A cheap first look for the client front. */
  isLeasedPath(url: string): boolean {
    const q = url.indexOf('?');
    return q !== -1 && this.leases.routeFor(this.pathOf(url, q)) !== undefined;
  }

  /** `url`'s path (before `?` at `q`): the last one seen again when it is the same, instead of a new string per re-poll. */
  private pathOf(url: string, q: number): string {
    const last = this.lastPath;
    if (q === last.length && url.startsWith(last)) return last;
    return (this.lastPath = url.slice(0, q));
  }

  /**
   * What `tryAnswer` would do with `req`, changing nothing: null when it is no re-poll of a leased shape, the
   * reason when it must go to the app (not counted here), else the answer or park. The client front
   * (http/front/) asks this before it serves a request without Node; a request it hands on is decided again there.
   */
  decide(req: ClientRequest): RepollDecision | RepollFallback | null {
    if (req.method !== 'GET') return null;
    // A body would still be arriving when the request parks, and parking refuses that (docs §4 step 4): the app decides.
    if (req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0) return null;
    const url = req.url ?? '';
    const q = url.indexOf('?');
    if (q === -1) return null;
    const route = this.leases.routeFor(this.pathOf(url, q));
    if (route === undefined) return null;

    const query = readRepollQuery(url, q + 1, route.cid, route.cursors);
    if (query === null) return 'shape';
    const { cid, text, start, end } = query;
    const lease = this.leases.lookup(cid);
    if (lease === undefined) return 'no-lease';
    const spec = lease.claims.req;
    if (spec.cid !== route.cid || spec.cursors !== route.cursors) return 'shape';
    if (!this.leases.bound(lease, req)) return 'binding';
    const cursors = readCursors(text, start, end, spec.prefix, lease);
    if (typeof cursors === 'string') return cursors;
    if (this.registry().isClosed(cid)) return 'closed';

    // Buffered items past the cursors: usually none (the re-poll parks), rarely more than one channel's.
    let first: readonly BufferedItem[] | null = null;
    let lists: Array<readonly BufferedItem[]> | null = null;
    for (let i = 0; i < cursors.length; i++) {
      const sub = cursors[i]!;
      const items = this.buffer.after(sub.name, sub.prevId!);
      if (items === null) return 'cursor';
      if (items.length === 0) continue;
      if (first === null) first = items;
      else (lists ??= [first]).push(items);
    }
    // The lease's own string for the ID (equal: it was found under it): a parked hold keeps it, and this one is
    // already in old space, where the one just read from the target would be promoted (issue 15).
    if (first === null) return { kind: 'park', lease, cid: lease.claims.cid, cursors };
    // One answer with every buffered item past the cursors, in publish order, up to the lease's batch size.
    const items = lists === null ? first.slice(0, lease.claims.batch.max) : mergeBySeq(lists, lease.claims.batch.max);
    if (items.length === 1) return { kind: 'item', lease, item: items[0]!.response };
    const body = batchBody(items, lease);
    if (body === null) {
      this.log.debug({ requestId: requestIdOf(req) }, 'buffered items do not fit the lease batch envelope; asking the app');
      return 'format';
    }
    return { kind: 'batch', lease, response: mergeItemResponse(lease.held, { ...items[0]!.response, body }) };
  }

  /** Carries out a decision `decide` made for `req` in this same tick: writes the answer or parks the request. */
  act(req: ClientRequest, res: ClientResponse, decision: RepollDecision, clientAddress: string | undefined): void {
    if (decision.kind === 'item') {
      // Exactly what a parked request gets for this item (docs §6).
      writeItem(res, decision.lease.held, prepareItem(decision.item));
      this.counters.repollAnswers++;
      return;
    }
    if (decision.kind === 'batch') {
      writeResponse(res, decision.response);
      this.counters.repollAnswers++;
      return;
    }
    // Nothing new: park as the app would have held it, cursors as prev-ids.
    const { lease, cid, cursors } = decision;
    const registry = this.registry();
    req.headers['x-forwarded-for'] = clientAddress ?? req.socket.remoteAddress ?? '';
    const exchange = createBodilessExchange(req, res, clientAddress);
    exchange.sentSeq = registry.publishSeq;
    const instruction: HoldInstruction = {
      channels: cursors,
      connectionId: cid,
      timeoutMs: Math.min(this.options.maxHoldTimeoutMs, Math.max(this.options.minHoldTimeoutMs, Math.round(lease.claims.hold.timeout * 1000))),
      timeoutResponse: lease.held,
    };
    this.counters.repollParks++;
    registry.hold(exchange, instruction);
  }

  private toApp(reason: RepollFallback): false {
    this.counters.repollToApp++;
    if (this.log.isLevelEnabled('trace')) this.log.trace({ reason }, 're-poll goes to the app');
    return false;
  }
}

/** The first `max` items of several per-channel lists, in global publish order. */
function mergeBySeq(lists: Array<readonly BufferedItem[]>, max: number): BufferedItem[] {
  return lists.flat().sort((a, b) => a.seq - b.seq).slice(0, max);
}

/** The lease's envelope around every item's part; null if an item is not `prefix part suffix` or statuses differ. */
function batchBody(items: readonly BufferedItem[], lease: Lease): Buffer | null {
  const { prefix, sep, suffix } = lease.claims.batch;
  const code = items[0]!.response.code ?? 200;
  const parts: string[] = [];
  for (const item of items) {
    if ((item.response.code ?? 200) !== code) return null;
    const text = item.response.body.toString('utf8');
    if (text.length < prefix.length + suffix.length || !text.startsWith(prefix) || !text.endsWith(suffix)) return null;
    parts.push(text.slice(prefix.length, text.length - suffix.length));
  }
  return Buffer.from(prefix + parts.join(sep) + suffix, 'utf8');
}
