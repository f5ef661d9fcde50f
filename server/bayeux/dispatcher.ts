/**
 * One Bayeux message in, its replies out (Bayeux 1.0 §4-§5, as CometD speaks
 * it): handshake, connect, subscribe, unsubscribe, disconnect and publish to
 * `/chat/<room>`. A refused message gets a `successful: false` reply with
 * `error: "NNN:args:message"`, is logged once, and changed nothing.
 */
import type { Logger } from 'pino';
import { AppError } from '../errors.js';
import { enforceRate, type AppRateLimits } from '../http/rate-limit.js';
import { isBusyError } from '../store/busy-retry.js';
import type { SessionRow } from '../store/sessions.js';
import { objectBody, parseMessageText, parseNick } from '../validation.js';
import type { BayeuxClient, BayeuxService } from './bayeux-service.js';
import { bayeuxRoomChannel, classifyChannel } from './channels.js';
import { BayeuxError, formatBayeuxError, unknownClient } from './errors.js';
import type { BayeuxHoldInput } from './hold.js';
import { clientIdOf, EXT_KEY, extOf, replyTo, type BayeuxAdvice, type BayeuxMessage, type BayeuxReply } from './messages.js';

export const BAYEUX_VERSION = '1.0';

/** The transports served (docs/bayeux.md, Transports): `POST /cometd` and `GET /cometd?jsonp=`. */
export type BayeuxTransport = 'long-polling' | 'callback-polling';
/** Advertised in every handshake reply, long-polling first (the one to prefer where XHR works). */
export const CONNECTION_TYPES: readonly BayeuxTransport[] = ['long-polling', 'callback-polling'];

/**
 * Reconnect interval advised when connects cannot be held (the request did not come
 * through the proxy), ms: the client then polls instead of spinning.
 */
export const NO_HOLD_INTERVAL_MS = 1000;

export interface DispatcherOptions {
  /** Hold timeout, seconds: `Grip-Timeout` and (in ms) the advice's `timeout`. */
  holdTimeoutS: number;
  messageMaxChars: number;
  limits: AppRateLimits;
}

/** What the route knows about the HTTP request. */
export interface RequestFacts {
  /** The transport the request came by: a connect must name it as its `connectionType`. */
  transport: BayeuxTransport;
  /** The session of the request's `sid` cookie, if valid. */
  cookieSession: SessionRow | undefined;
  /** A valid Grip-Sig: the proxy will obey a hold. */
  viaProxy: boolean;
  /** The proxy is re-asking (Grip-Last present with a valid Grip-Sig). */
  reask: boolean;
  /** Loopback clients are exempt from rate limits (unless `rateLimitLoopback`). */
  rateExempt: boolean;
  clientAddress: string;
  /** The request carries this message alone: only then may a connect be held (a re-ask replays the whole body). */
  lone: boolean;
  log: Logger;
}

export interface Outcome {
  replies: BayeuxReply[];
  /** Set when the reply should be held by the proxy. */
  hold?: BayeuxHoldInput;
}

interface Refusal {
  status: number;
  code: string;
  args: string;
  message: string;
  retryAfterS?: number;
}

export class BayeuxDispatcher {
  constructor(
    private readonly bayeux: BayeuxService,
    private readonly options: DispatcherOptions,
  ) {}

  async handle(m: BayeuxMessage, facts: RequestFacts): Promise<Outcome> {
    try {
      return await this.route(m, facts);
    } catch (err) {
      return { replies: [this.refuse(m, err, facts)] };
    }
  }

  private route(m: BayeuxMessage, facts: RequestFacts): Promise<Outcome> {
    const kind = classifyChannel(m.channel);
    switch (kind.kind) {
      case 'meta':
        switch (kind.name) {
          case '/meta/handshake':
            return this.handshake(m, facts);
          case '/meta/connect':
            return this.connect(m, facts);
          case '/meta/subscribe':
            return this.subscribe(m);
          case '/meta/unsubscribe':
            return this.unsubscribe(m);
          case '/meta/disconnect':
            return this.disconnect(m);
          default:
            throw new BayeuxError('BAYEUX_ERR_UNKNOWN_META_CHANNEL', 'unknown meta channel', m.channel);
        }
      case 'room':
        return this.publish(m, kind.room, facts);
      case 'wildcard':
        throw new BayeuxError('BAYEUX_ERR_WILDCARD', 'cannot publish to a channel pattern', m.channel);
      case 'other':
        throw new BayeuxError('BAYEUX_ERR_UNKNOWN_CHANNEL', 'only /chat/<room> channels exist here', m.channel);
    }
  }

  private advice(viaProxy: boolean): BayeuxAdvice {
    return { reconnect: 'retry', interval: viaProxy ? 0 : NO_HOLD_INTERVAL_MS, timeout: this.options.holdTimeoutS * 1000 };
  }

  private async handshake(m: BayeuxMessage, facts: RequestFacts): Promise<Outcome> {
    if (typeof m.version !== 'string' || m.version === '') throw new BayeuxError('BAYEUX_ERR_BAD_MESSAGE', 'version is required', 'version');
    const types = m.supportedConnectionTypes;
    if (!Array.isArray(types) || !CONNECTION_TYPES.some((type) => types.includes(type))) {
      throw new BayeuxError('BAYEUX_ERR_CONNECTION_TYPE', `supportedConnectionTypes must include ${CONNECTION_TYPES.join(' or ')}`, 'supportedConnectionTypes');
    }
    const ext = extOf(m);
    const session = await this.identity(ext[EXT_KEY], facts);
    const ack = ext.ack === true;
    const { clientId } = await this.bayeux.handshake(session, ack);
    const replyExt: Record<string, unknown> = { [EXT_KEY]: { user: { id: session.id, nick: session.nick } } };
    // `true`, not CometD's newer `{enabled, batch}`: every AckExtension version understands it.
    if (ack) replyExt.ack = true;
    return {
      replies: [{
        ...replyTo(m, clientId),
        version: BAYEUX_VERSION,
        supportedConnectionTypes: [...CONNECTION_TYPES],
        successful: true,
        advice: this.advice(facts.viaProxy),
        ext: replyExt,
      }],
    };
  }

  /**
   * `ext["comet-chat"].nick` creates a new session (the explicit ask wins); else the
   * request's session cookie; else the handshake is denied.
   */
  private async identity(chatExt: unknown, facts: RequestFacts): Promise<SessionRow> {
    if (chatExt !== undefined) {
      if (typeof chatExt !== 'object' || chatExt === null || Array.isArray(chatExt)) {
        throw new BayeuxError('BAYEUX_ERR_BAD_MESSAGE', `ext.${EXT_KEY} must be an object`, `ext.${EXT_KEY}`);
      }
      const nick = parseNick(chatExt as Record<string, unknown>);
      // Counted like POST /api/session, once the request is valid.
      if (!facts.rateExempt) enforceRate(this.options.limits.sessions, facts.clientAddress, 'sessions from this address');
      return this.bayeux.createSession(nick);
    }
    if (facts.cookieSession !== undefined) return facts.cookieSession;
    if (facts.transport === 'callback-polling') {
      throw new BayeuxError('BAYEUX_ERR_HANDSHAKE_DENIED', `a chat identity is required: ext.${EXT_KEY}.nick (callback-polling never uses the session cookie)`);
    }
    throw new BayeuxError('BAYEUX_ERR_HANDSHAKE_DENIED', `a chat identity is required: ext.${EXT_KEY}.nick or a session cookie`);
  }

  private async connect(m: BayeuxMessage, facts: RequestFacts): Promise<Outcome> {
    const clientId = clientIdOf(m);
    // The transport is the request's form (POST or JSON-P GET): a connect naming another one is a client bug.
    if (m.connectionType !== facts.transport) {
      throw new BayeuxError('BAYEUX_ERR_CONNECTION_TYPE', `connectionType must be ${facts.transport}`, 'connectionType');
    }
    const ackField = extOf(m).ack;
    const ackBatch = typeof ackField === 'number' && Number.isSafeInteger(ackField) ? ackField : undefined;
    const result = await this.bayeux.connect(clientId, ackBatch);
    if (result === null) throw unknownClient();
    const { client, events } = result;

    const replies: BayeuxReply[] = events.map((e) => ({ channel: bayeuxRoomChannel(e.room), data: e, id: String(e.id) }));
    const reply: BayeuxReply = { ...replyTo(m, clientId), successful: true, advice: this.advice(facts.viaProxy) };
    if (client.ack) reply.ext = { ack: result.batch };
    replies.push(reply);

    // Never held: news, the first connect (CometD answers it at once so the client can
    // settle), a client asking for no wait, a request that did not come through the proxy,
    // a connect batched with other messages (a re-ask would replay them), or a re-ask that
    // found nothing (a stale hint or a wake: answering lets the next connect park on the
    // current subscriptions without spending the proxy's re-ask budget).
    const clientAdvice = m.advice as { timeout?: unknown } | undefined;
    const noWait = typeof clientAdvice === 'object' && clientAdvice !== null && clientAdvice.timeout === 0;
    if (events.length > 0 || result.first || noWait || !facts.viaProxy || !facts.lone || facts.reask) return { replies };
    return {
      replies,
      hold: { rooms: result.lastIds, connectionId: client.connectionId, wakeId: client.wakeId, timeoutS: this.options.holdTimeoutS },
    };
  }

  private async subscribe(m: BayeuxMessage): Promise<Outcome> {
    const client = this.client(m);
    const target = this.subscription(m);
    const done = 'room' in target ? await this.bayeux.subscribe(client, target.room) : await this.bayeux.subscribePattern(client, target.pattern, target.channel);
    if (!done) throw unknownClient();
    return { replies: [{ ...replyTo(m, clientIdOf(m)), subscription: target.channel, successful: true }] };
  }

  private async unsubscribe(m: BayeuxMessage): Promise<Outcome> {
    const client = this.client(m);
    const target = this.subscription(m);
    const done = 'room' in target ? await this.bayeux.unsubscribe(client, target.room) : await this.bayeux.unsubscribePattern(client, target.pattern);
    if (!done) throw unknownClient();
    return { replies: [{ ...replyTo(m, clientIdOf(m)), subscription: target.channel, successful: true }] };
  }

  private async disconnect(m: BayeuxMessage): Promise<Outcome> {
    const clientId = clientIdOf(m);
    if (!(await this.bayeux.disconnect(clientId))) throw unknownClient();
    return { replies: [{ ...replyTo(m, clientId), successful: true }] };
  }

  private async publish(m: BayeuxMessage, room: string, facts: RequestFacts): Promise<Outcome> {
    const client = this.client(m);
    const data = m.data;
    if (typeof data !== 'object' || data === null || Array.isArray(data)) {
      throw new BayeuxError('BAYEUX_ERR_BAD_MESSAGE', 'data must be an object {"text": "..."}', m.channel);
    }
    const text = parseMessageText(objectBody(data), this.options.messageMaxChars);
    if (!facts.rateExempt) enforceRate(this.options.limits.posts, String(client.session.id), 'messages from this session');
    const event = await this.bayeux.publish(client, room, text);
    // No `data` in the reply: CometD clients would take it for a delivered message.
    return { replies: [{ ...replyTo(m), successful: true, ext: { [EXT_KEY]: { eventId: event.id } } }] };
  }

  /** The live client the message names; 402 otherwise. */
  private client(m: BayeuxMessage): BayeuxClient {
    const client = this.bayeux.find(clientIdOf(m));
    if (client === null) throw unknownClient();
    return client;
  }

  /** A subscribe's `subscription`: one `/chat/<room>` channel, or the room patterns `/chat/*` and `/chat/**`. */
  private subscription(m: BayeuxMessage): { channel: string; room: string } | { channel: string; pattern: number } {
    const channel = m.subscription;
    if (typeof channel !== 'string') throw new BayeuxError('BAYEUX_ERR_BAD_MESSAGE', 'subscription must be a channel name', 'subscription');
    const kind = classifyChannel(channel);
    if (kind.kind === 'room') return { channel, room: kind.room };
    if (kind.kind === 'wildcard') {
      if (kind.bit !== null) return { channel, pattern: kind.bit };
      throw new BayeuxError('BAYEUX_ERR_WILDCARD', 'the only channel patterns are /chat/* and /chat/** (the rooms this session is a member of)', channel);
    }
    throw new BayeuxError('BAYEUX_ERR_UNKNOWN_CHANNEL', 'only /chat/<room> channels can be subscribed to', channel);
  }

  /** The error reply, logged once at info (never the message's data). */
  private refuse(m: BayeuxMessage, err: unknown, facts: RequestFacts): BayeuxReply {
    const refusal = toRefusal(err, m, facts.log);
    if (refusal.status !== 500) {
      facts.log.info({ code: refusal.code, status: refusal.status, channel: m.channel }, 'bayeux message refused');
    }
    const reply: BayeuxReply = {
      ...replyTo(m, typeof m.clientId === 'string' ? m.clientId : undefined),
      successful: false,
      error: formatBayeuxError(refusal.status, refusal.args, refusal.message),
      ext: { [EXT_KEY]: { code: refusal.code } },
    };
    if (typeof m.subscription === 'string') reply.subscription = m.subscription;
    const advice = adviceFor(m.channel, refusal);
    if (advice !== undefined) reply.advice = advice;
    return reply;
  }
}

function toRefusal(err: unknown, m: BayeuxMessage, log: Logger): Refusal {
  if (err instanceof BayeuxError) return { status: err.status, code: err.code, args: err.args, message: err.message };
  const args = typeof m.subscription === 'string' ? m.subscription : m.channel.startsWith('/meta/') ? '' : m.channel;
  if (err instanceof AppError) {
    const refusal: Refusal = { status: err.status, code: err.code, args, message: err.message };
    if (err.retryAfterS !== undefined) refusal.retryAfterS = err.retryAfterS;
    return refusal;
  }
  if (isBusyError(err)) {
    log.warn({ channel: m.channel }, 'database busy; bayeux message refused with 503');
    return { status: 503, code: 'APP_ERR_DB_BUSY', args, message: 'the database is busy; nothing was changed, retry shortly', retryAfterS: 1 };
  }
  log.error({ err, channel: m.channel }, 'unhandled error in a bayeux message');
  return { status: 500, code: 'APP_ERR_INTERNAL', args, message: 'internal error' };
}

/**
 * Bayeux §3.5 advice on refusals: an unknown client must handshake again; a refused
 * handshake must not be retried in a loop unless the refusal is temporary.
 */
function adviceFor(channel: string, refusal: Refusal): BayeuxAdvice | undefined {
  if (refusal.code === 'BAYEUX_ERR_UNKNOWN_CLIENT') return { reconnect: 'handshake', interval: 0 };
  // 429 and 5xx pass: retry after the wait. Other 4xx are the client's mistake and would repeat.
  const temporary = refusal.retryAfterS !== undefined || refusal.status >= 500;
  const interval = (refusal.retryAfterS ?? 1) * 1000;
  if (channel === '/meta/handshake') return temporary ? { reconnect: 'handshake', interval } : { reconnect: 'none' };
  if (channel === '/meta/connect') return temporary ? { reconnect: 'retry', interval } : { reconnect: 'none' };
  return undefined;
}
