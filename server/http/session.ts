/**
 * Session middleware: loads the session named by the `sid` cookie.
 */
import type { RequestHandler } from 'express';
import type { SessionsRepo } from '../store/sessions.js';
import { parseCookies, SESSION_COOKIE } from './cookies.js';
import { sessionOf } from './request-context.js';

/** Sets `req.chatSession` when the cookie names a known session; an unknown token is simply no session. */
export function loadSession(sessions: SessionsRepo): RequestHandler {
  return (req, _res, next) => {
    const token = parseCookies(req.headers.cookie).get(SESSION_COOKIE);
    if (token) {
      const session = sessions.findByToken(token);
      if (session) req.chatSession = session;
    }
    next();
  };
}

/** 401 `APP_ERR_NO_SESSION` unless a session was loaded. */
export const requireSession: RequestHandler = (req, _res, next) => {
  sessionOf(req);
  next();
};
