/**
 * When a session expires (docs/chat-api.md, "Sessions"): after `idleTimeoutMs`
 * without activity (sliding: every request moves it) or `maxAgeMs` after sign-in
 * (absolute, also the cookie's Max-Age). Pure: the clock and the activity not
 * yet written are the caller's.
 */
import type { SessionRow } from './store/sessions.js';

export interface SessionExpiryOptions {
  idleTimeoutMs: number;
  maxAgeMs: number;
}

export type SessionState =
  | { kind: 'live'; expiresAt: number }
  | { kind: 'expired'; why: 'idle' | 'max-age' }
  | { kind: 'ended'; reason: NonNullable<SessionRow['endReason']> };

/**
 * Activity is written at most this often per session, ms: a minute, or a tenth of a short idle timeout. Expiry
 * can therefore come up to this much early, which the idle timeout's minimum leaves room for (server/options.ts).
 */
export function activityRefreshMs(idleTimeoutMs: number): number {
  return Math.min(60_000, Math.floor(idleTimeoutMs / 10));
}

export class SessionExpiry {
  readonly refreshMs: number;

  constructor(readonly options: SessionExpiryOptions) {
    this.refreshMs = activityRefreshMs(options.idleTimeoutMs);
  }

  /** The session's state at `now`; `pendingActivityAt`: activity recorded but not written yet. */
  state(session: SessionRow, now: number, pendingActivityAt?: number): SessionState {
    if (session.endedAt !== null) return { kind: 'ended', reason: session.endReason ?? 'expired' };
    const seen = Math.max(session.seenAt, pendingActivityAt ?? 0);
    const idleEnd = seen + this.options.idleTimeoutMs;
    const ageEnd = session.createdAt + this.options.maxAgeMs;
    if (now >= ageEnd) return { kind: 'expired', why: 'max-age' };
    if (now >= idleEnd) return { kind: 'expired', why: 'idle' };
    return { kind: 'live', expiresAt: Math.min(idleEnd, ageEnd) };
  }

  /** Sessions whose activity is before this have passed the idle timeout at `now` (as `state` says). */
  idleCutoff(now: number): number {
    return now - this.options.idleTimeoutMs + 1;
  }

  /** Sessions created before this have passed the maximum age at `now` (as `state` says). */
  ageCutoff(now: number): number {
    return now - this.options.maxAgeMs + 1;
  }
}
