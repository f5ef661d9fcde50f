/**
 * Liveness that polls record off the request path: signed connection IDs a
 * first poll issued (their `connections` row), sessions' presence, and
 * sessions' activity (what their idle expiry slides on). A first
 * poll only reads; what it has to remember waits here and is written for many
 * polls at once, in one transaction per `flushMs`, instead of one write
 * transaction per poll (the app's limit in a connection storm).
 *
 * The rows are needed only to count a session's live connection IDs
 * (`maxConnectionsPerSession`); until written, `pendingIds` counts them. Losing
 * a batch (crash, database error) loses nothing else: signed IDs stay valid.
 */
import type { Logger } from 'pino';
import { isBusyError } from './store/busy-retry.js';
import type { Store } from './store/store.js';

export interface LivenessLogOptions {
  /** How long a record waits for others to share its write, ms (0: the next timer turn). */
  flushMs: number;
  logger?: Logger;
}

interface PendingSession {
  /** Recorded IDs not yet written. */
  ids: number;
  /** When the earliest of them was recorded, ms. */
  oldestIdAt: number;
  /** Latest presence to write, ms; undefined: none. */
  presenceAt: number | undefined;
  /** Latest activity to write, ms; undefined: none (presence counts as activity too). */
  seenAt: number | undefined;
}

export class LivenessLog {
  private ids = new Map<string, { sessionId: number; at: number }>();
  private sessions = new Map<number, PendingSession>();
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  /** Transactions written (observability and tests). */
  flushes = 0;

  constructor(
    private readonly store: Store,
    private readonly options: LivenessLogOptions,
  ) {}

  /** Remembers that `connectionId` (a signed ID of `sessionId`) polled at `now`; `presence`: the session's presence too. */
  record(sessionId: number, connectionId: string, now: number, presence: boolean): void {
    const known = this.ids.get(connectionId);
    if (known === undefined) this.ids.set(connectionId, { sessionId, at: now });
    else known.at = Math.max(known.at, now);
    let s = this.sessions.get(sessionId);
    if (s === undefined) this.sessions.set(sessionId, (s = newPending(now)));
    if (known === undefined) {
      s.oldestIdAt = s.ids === 0 ? now : Math.min(s.oldestIdAt, now);
      s.ids++;
    }
    if (presence) s.presenceAt = Math.max(s.presenceAt ?? now, now);
    this.schedule();
  }

  /** Remembers that the session was active at `now` (a request other than a poll's presence). */
  recordSeen(sessionId: number, now: number): void {
    let s = this.sessions.get(sessionId);
    if (s === undefined) this.sessions.set(sessionId, (s = newPending(now)));
    s.seenAt = Math.max(s.seenAt ?? now, now);
    this.schedule();
  }

  /** The session's latest activity (presence or other) not yet written, ms; undefined: none. */
  activityAt(sessionId: number): number | undefined {
    const s = this.sessions.get(sessionId);
    if (s === undefined || (s.presenceAt === undefined && s.seenAt === undefined)) return undefined;
    return Math.max(s.presenceAt ?? 0, s.seenAt ?? 0);
  }

  /** The session's IDs recorded and not yet written: they count toward `maxConnectionsPerSession` like rows. */
  pendingIds(sessionId: number): number {
    return this.sessions.get(sessionId)?.ids ?? 0;
  }

  /** When the earliest of the session's unwritten IDs was recorded (for `Retry-After`), ms; undefined: none. */
  oldestPendingIdAt(sessionId: number): number | undefined {
    const s = this.sessions.get(sessionId);
    return s === undefined || s.ids === 0 ? undefined : s.oldestIdAt;
  }

  /** When the ID last polled, if that is not written yet. */
  seenAt(connectionId: string): number | undefined {
    return this.ids.get(connectionId)?.at;
  }

  /** The session's presence, if it is not written yet. */
  presenceAt(sessionId: number): number | undefined {
    return this.sessions.get(sessionId)?.presenceAt;
  }

  get pending(): number {
    return this.ids.size + this.sessions.size;
  }

  /**
   * Writes everything pending in one transaction, now. Readers of presence call it first,
   * so they see what polls recorded. A busy database keeps the records for the next try.
   */
  flush(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    if (this.ids.size === 0 && this.sessions.size === 0) return;
    const ids = this.ids;
    const sessions = this.sessions;
    try {
      this.store.db.transaction(() => {
        for (const [id, { sessionId, at }] of ids) this.store.connections.record(id, sessionId, at);
        for (const [sessionId, { presenceAt, seenAt }] of sessions) {
          if (presenceAt !== undefined) this.store.sessions.touchPollIfLater(sessionId, presenceAt);
          if (seenAt !== undefined) this.store.sessions.touchSeenIfLater(sessionId, seenAt);
        }
      }).immediate();
      this.flushes++;
      // Records made during the transaction (none: it is synchronous) would be in the new maps.
      this.ids = new Map();
      this.sessions = new Map();
    } catch (err) {
      if (isBusyError(err) && !this.closed) {
        this.schedule();
        return;
      }
      // Not retryable: drop the batch rather than fail every later one. Signed IDs stay valid.
      this.options.logger?.error({ err, ids: ids.size, sessions: sessions.size }, 'liveness batch not written');
      this.ids = new Map();
      this.sessions = new Map();
    }
  }

  /** Writes what is pending and stops; later records are written at once. Before the database closes. */
  close(): void {
    this.closed = true;
    this.flush();
  }

  private schedule(): void {
    if (this.closed) {
      this.flush();
      return;
    }
    if (this.timer !== null) return;
    this.timer = setTimeout(() => this.flush(), this.options.flushMs);
    // Pending records must not keep a finished process alive; close() writes them.
    this.timer.unref();
  }
}

function newPending(now: number): PendingSession {
  return { ids: 0, oldestIdAt: now, presenceAt: undefined, seenAt: undefined };
}
