/**
 * Session middleware: loads the session named by the `sid` cookie.
 */
import type { RequestHandler } from 'express';
import type { SessionAuth } from '../session-auth.js';
import { parseCookies, SESSION_COOKIE } from './cookies.js';
import { sessionOf } from './request-context.js';

/**
 * Sets `req.chatSession` when the cookie names a usable session. An unknown token is simply no session; an
 * expired or signed-out one is no session either, but remembered, so `sessionOf` says why (401 with its code).
 * Routes that need no session (signing in again) work with either.
 */
export function loadSession(auth: SessionAuth): RequestHandler {
  return (req, _res, next) => {
    const token = parseCookies(req.headers.cookie).get(SESSION_COOKIE);
    if (token) {
      const found = auth.authenticate(token);
      if (found !== null && 'session' in found) req.chatSession = found.session;
      else if (found !== null) req.sessionRefusal = found.refused;
    }
    next();
  };
}

/** 401 `APP_ERR_NO_SESSION` (or `APP_ERR_SESSION_EXPIRED` / `_ENDED`) unless a session was loaded. */
export const requireSession: RequestHandler = (req, _res, next) => {
  sessionOf(req);
  next();
};
