/**
 * A room's messages: history pages (`GET`) and posting (`POST`).
 */
import { Router } from 'express';
import type { ChatService } from '../chat-service.js';
import { parseCursor } from '../cursors.js';
import { AppError } from '../errors.js';
import { jsonBody } from '../http/json-body.js';
import { enforceRate, type AppRateLimits } from '../http/rate-limit.js';
import { roomParam, sessionOf } from '../http/request-context.js';
import { requireSession } from '../http/session.js';
import { objectBody, parseIdempotencyKey, parseMessageText } from '../validation.js';

export interface MessagesRoutesOptions {
  bodyMaxBytes: number;
  messageMaxChars: number;
}

/** Page size of history, events. */
export const HISTORY_DEFAULT_LIMIT = 50;
export const HISTORY_MAX_LIMIT = 200;

function queryInteger(value: unknown, name: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const n = typeof value === 'string' ? parseCursor(value) : null;
  if (n === null || n < min || n > max) {
    throw new AppError('APP_ERR_BAD_CURSOR', `${name} must be an integer from ${min} to ${max}`);
  }
  return n;
}

export function messagesRoutes(chat: ChatService, options: MessagesRoutesOptions, limits: AppRateLimits): Router {
  const router = Router();
  router.get('/rooms/:room/messages', requireSession, (req, res) => {
    // Without `before`, the page ends at the room's newest event.
    const before = queryInteger(req.query.before, 'before', Number.MAX_SAFE_INTEGER, 0, Number.MAX_SAFE_INTEGER);
    const limit = queryInteger(req.query.limit, 'limit', HISTORY_DEFAULT_LIMIT, 1, HISTORY_MAX_LIMIT);
    res.json(chat.history(sessionOf(req), roomParam(req), before, limit));
  });

  router.post('/rooms/:room/messages', requireSession, ...jsonBody(options.bodyMaxBytes), async (req, res) => {
    const text = parseMessageText(objectBody(req.body), options.messageMaxChars);
    const key = parseIdempotencyKey(req.headers['idempotency-key']);
    const session = sessionOf(req);
    if (!limits.exempt(req)) enforceRate(limits.posts, String(session.id), 'messages from this session');
    const { event, replayed } = await chat.postMessage(session, roomParam(req), text, key);
    // As Stripe and the IETF idempotency-key draft do: the first answer's body again, marked as a replay.
    if (replayed) res.set('Idempotent-Replayed', 'true');
    res.status(replayed ? 200 : 201).json({ event });
  });

  return router;
}
