/**
 * Bayeux wire shapes (Bayeux 1.0 §3-§5) and the envelope check: a request body
 * is a JSON array of message objects, each with a string `channel`. Anything
 * else is refused whole, before a single message is processed, so a refused
 * request changes nothing. Field checks per channel happen later, per message.
 */
import { AppError } from '../errors.js';
import { BayeuxError } from './errors.js';

/** One message as the client sent it; fields are checked by the handler of its channel. */
export interface BayeuxMessage {
  channel: string;
  id?: string | number;
  clientId?: unknown;
  [field: string]: unknown;
}

export interface BayeuxAdvice {
  reconnect?: 'retry' | 'handshake' | 'none';
  /** ms the client waits before its next connect. */
  interval?: number;
  /** ms the server may hold a connect. */
  timeout?: number;
}

/** A reply or a delivered message. */
export interface BayeuxReply {
  channel: string;
  id?: string | number;
  clientId?: string;
  successful?: boolean;
  error?: string;
  advice?: BayeuxAdvice;
  ext?: Record<string, unknown>;
  data?: unknown;
  [field: string]: unknown;
}

/** Most messages in one request (a publish burst from a batching client fits easily). */
export const BAYEUX_MAX_MESSAGES = 100;
/** Longest message `id` echoed back, characters. */
const ID_MAX_CHARS = 64;
const CHANNEL_MAX_CHARS = 256;

/** Our extension's key in `ext`: the handshake's nick, replies' error codes and ids. */
export const EXT_KEY = 'comet-chat';

function invalid(message: string): AppError {
  return new AppError('APP_ERR_INVALID_BODY', message);
}

/** Checks the envelope; throws 400 `APP_ERR_INVALID_BODY` naming the first problem. */
export function parseEnvelope(body: unknown): BayeuxMessage[] {
  if (!Array.isArray(body)) throw invalid('a Bayeux request is a JSON array of messages');
  if (body.length === 0) throw invalid('the message array is empty');
  if (body.length > BAYEUX_MAX_MESSAGES) throw invalid(`at most ${BAYEUX_MAX_MESSAGES} messages per request, got ${body.length}`);
  body.forEach((m: unknown, i) => {
    if (typeof m !== 'object' || m === null || Array.isArray(m)) throw invalid(`message ${i} is not an object`);
    const channel = (m as Record<string, unknown>).channel;
    if (typeof channel !== 'string' || !channel.startsWith('/') || channel.length > CHANNEL_MAX_CHARS) {
      throw invalid(`message ${i} has no channel (a string starting with "/", at most ${CHANNEL_MAX_CHARS} characters)`);
    }
    const id = (m as Record<string, unknown>).id;
    const idOk = id === undefined || (typeof id === 'string' && id.length <= ID_MAX_CHARS) || (typeof id === 'number' && Number.isSafeInteger(id));
    if (!idOk) throw invalid(`message ${i} has an id that is not a string of at most ${ID_MAX_CHARS} characters or an integer`);
  });
  return body as BayeuxMessage[];
}

/** The message's `clientId` as a string, or a 400 Bayeux error. */
export function clientIdOf(message: BayeuxMessage): string {
  const clientId = message.clientId;
  if (typeof clientId !== 'string' || clientId === '') {
    throw new BayeuxError('BAYEUX_ERR_BAD_MESSAGE', 'clientId is required', 'clientId');
  }
  return clientId;
}

/** `ext` as an object, or empty. */
export function extOf(message: BayeuxMessage): Record<string, unknown> {
  const ext = message.ext;
  return typeof ext === 'object' && ext !== null && !Array.isArray(ext) ? (ext as Record<string, unknown>) : {};
}

/** The fields every reply to `message` starts with. */
export function replyTo(message: BayeuxMessage, clientId?: string): BayeuxReply {
  const reply: BayeuxReply = { channel: message.channel };
  if (message.id !== undefined) reply.id = message.id;
  if (clientId !== undefined) reply.clientId = clientId;
  return reply;
}
