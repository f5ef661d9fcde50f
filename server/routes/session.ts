/**
 * `POST /api/session` (sign in with a nick) and `GET /api/session`.
 */
import { Router } from 'express';
import type { ChatService } from '../chat-service.js';
import { SESSION_COOKIE, sessionCookieOptions } from '../http/cookies.js';
import { clientAddressOf } from '../http/client-address.js';
import { jsonBody } from '../http/json-body.js';
import { enforceRate, type AppRateLimits } from '../http/rate-limit.js';
import { sessionOf } from '../http/request-context.js';
import { requireSession } from '../http/session.js';
import { objectBody, parseNick } from '../validation.js';

export interface SessionRoutesOptions {
  bodyMaxBytes: number;
  cookieSecure: boolean;
  cookieDomain: string | undefined;
}

export function sessionRoutes(chat: ChatService, options: SessionRoutesOptions, limits: AppRateLimits): Router {
  const router = Router();

  router.post('/session', ...jsonBody(options.bodyMaxBytes), async (req, res) => {
    const nick = parseNick(objectBody(req.body));
    // Counted once the request is valid: only creations cost a row.
    if (!limits.exempt(req)) enforceRate(limits.sessions, clientAddressOf(req), 'sessions from this address');
    const { session } = await chat.createSession(nick);
    res.cookie(SESSION_COOKIE, session.token, sessionCookieOptions(options.cookieSecure, options.cookieDomain));
    res.status(201).json({ user: { id: session.id, nick: session.nick } });
  });

  router.get('/session', requireSession, (req, res) => {
    const session = sessionOf(req);
    res.json({ user: { id: session.id, nick: session.nick } });
  });

  return router;
}
