/**
 * Who a request's `sid` cookie names: a session that may be used, or the
 * reason it may not (expired, signed out). Reading only: the activity that
 * slides the idle timeout goes to the liveness log (written in batches), and
 * only when the last one is older than `refreshMs`, so a busy session costs no
 * write per request.
 */
import { sessionEnded, sessionExpired, type AppError } from './errors.js';
import type { LivenessLog } from './liveness-log.js';
import type { SessionExpiry } from './session-expiry.js';
import type { SessionRow, SessionsRepo } from './store/sessions.js';

export type Authentication = { session: SessionRow } | { refused: AppError };

export class SessionAuth {
  constructor(
    private readonly sessions: SessionsRepo,
    private readonly expiry: SessionExpiry,
    private readonly liveness: LivenessLog,
    private readonly now: () => number,
  ) {}

  /** The session of `token`; null when no session has it (the caller answers `APP_ERR_NO_SESSION`). */
  authenticate(token: string): Authentication | null {
    const session = this.sessions.findByToken(token);
    if (session === undefined) return null;
    const now = this.now();
    const pending = this.liveness.activityAt(session.id);
    const state = this.expiry.state(session, now, pending);
    if (state.kind === 'ended') return { refused: sessionEnded(state.reason) };
    if (state.kind === 'expired') return { refused: sessionExpired(state.why) };
    if (now - Math.max(session.seenAt, pending ?? 0) >= this.expiry.refreshMs) this.liveness.recordSeen(session.id, now);
    return { session };
  }

  /** Is the session still usable at this moment (for callers that hold a row read earlier, e.g. Bayeux clients)? */
  usable(session: SessionRow): boolean {
    return this.expiry.state(session, this.now(), this.liveness.activityAt(session.id)).kind === 'live';
  }
}
