/**
 * `POST /api/session` (sign in with a nick no live session has), `GET /api/session`,
 * `PATCH /api/session` (change nick: a `nick` event in each of the user's rooms), and
 * `DELETE /api/session` (sign out: the session ends everywhere, server/session-end.ts).
 */
import { Router } from 'express';
import type { ChatService } from '../chat-service.js';
import { AppError } from '../errors.js';
import { SESSION_COOKIE, sessionCookieOptions } from '../http/cookies.js';
import { clientAddressOf } from '../http/client-address.js';
import { jsonBody } from '../http/json-body.js';
import { enforceRate, type AppRateLimits } from '../http/rate-limit.js';
import { sessionOf } from '../http/request-context.js';
import { requireSession } from '../http/session.js';
import type { SessionEnder } from '../session-end.js';
import { objectBody, parseNick } from '../validation.js';

export interface SessionRoutesOptions {
  bodyMaxBytes: number;
  cookieSecure: boolean;
  cookieDomain: string | undefined;
  /** The session's maximum age, seconds: the cookie's Max-Age too. */
  sessionMaxAgeS: number;
}

export function sessionRoutes(chat: ChatService, ender: SessionEnder, options: SessionRoutesOptions, limits: AppRateLimits): Router {
  const router = Router();
  const cookie = sessionCookieOptions(options.cookieSecure, options.cookieDomain);

  router.post('/session', ...jsonBody(options.bodyMaxBytes), async (req, res) => {
    const nick = parseNick(objectBody(req.body));
    // Counted once the request is valid: only creations cost a row.
    if (!limits.exempt(req)) enforceRate(limits.sessions, clientAddressOf(req), 'sessions from this address');
    const { session } = await freeingUnusable(nick, () => chat.createSession(nick));
    // The browser drops the cookie when the server would refuse it anyway (the idle timeout is the server's alone).
    res.cookie(SESSION_COOKIE, session.token, { ...cookie, maxAge: options.sessionMaxAgeS * 1000 });
    res.status(201).json({ user: { id: session.id, nick: session.nick } });
  });

  router.get('/session', requireSession, (req, res) => {
    const session = sessionOf(req);
    res.json({ user: { id: session.id, nick: session.nick } });
  });

  router.patch('/session', requireSession, ...jsonBody(options.bodyMaxBytes), async (req, res) => {
    const nick = parseNick(objectBody(req.body));
    const { user } = await freeingUnusable(nick, () => chat.changeNick(sessionOf(req), nick));
    res.json({ user });
  });

  router.delete('/session', requireSession, async (req, res) => {
    // A second sign-out racing this one ends nothing more; both answer 204.
    await ender.signOut(sessionOf(req));
    res.clearCookie(SESSION_COOKIE, cookie);
    res.status(204).end();
  });

  return router;

  /**
   * Runs `claim`; when the nick is taken by a session nobody can use any more (expired but not pruned yet, or a
   * Bayeux-made one without a live client: SessionEnder.freeNick), ends that session and claims once more.
   */
  async function freeingUnusable<T>(nick: string, claim: () => Promise<T>): Promise<T> {
    try {
      return await claim();
    } catch (err) {
      if (!(err instanceof AppError && err.code === 'APP_ERR_NICK_TAKEN') || !(await ender.freeNick(nick))) throw err;
      return claim();
    }
  }
}
