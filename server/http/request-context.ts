/**
 * What the app's middleware attaches to a request.
 */
import type { Request } from 'express';
import { noSession, type AppError } from '../errors.js';
import type { SessionRow } from '../store/sessions.js';

declare global {
  namespace Express {
    interface Request {
      /** The session named by the `sid` cookie, if any (server/http/session.ts). */
      chatSession?: SessionRow;
      /** Why the cookie's session may not be used (expired, signed out), when it names one (server/http/session.ts). */
      sessionRefusal?: AppError;
      /** True when the request carries a valid Grip-Sig (server/grip/grip-sig.ts). */
      viaProxy?: boolean;
    }
  }
}

/** The request's session; 401 `APP_ERR_NO_SESSION` without one, or the reason its session may no longer be used. */
export function sessionOf(req: Request): SessionRow {
  if (!req.chatSession) throw req.sessionRefusal ?? noSession();
  return req.chatSession;
}

/** The `:room` path parameter (routes only match when it is present). */
export function roomParam(req: Request): string {
  const room = req.params.room;
  return typeof room === 'string' ? room : '';
}
