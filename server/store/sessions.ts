/**
 * Sessions. A session is the user: it has the nick, the secret cookie token,
 * the last time it polled (for presence) and the last activity written (for
 * its idle expiry). A session that ends (sign-out, expiry) keeps its row: its
 * id stays the author of its events; `endedAt` says it is over, and its nick is
 * free again: nicks are unique among live sessions only, by `nickKey`.
 */
import { randomBytes } from 'node:crypto';
import type { Database, Statement } from 'better-sqlite3';
import { nickKey } from './nick-key.js';

/** Why a session ended. */
export type SessionEndReason = 'signed-out' | 'expired';

export interface SessionRow {
  id: number;
  /** Random 32 bytes, base64url: the `sid` cookie value. */
  token: string;
  nick: string;
  /** ms since the epoch. */
  createdAt: number;
  /** ms since the epoch; null if it never polled. */
  lastPollAt: number | null;
  /** Last activity written (a poll's presence, or any request), ms; refreshed at most once a minute or so. */
  seenAt: number;
  /** When it ended, ms; null while it may be used. */
  endedAt: number | null;
  endReason: SessionEndReason | null;
  /** How it was made: `http` (POST /api/session, a cookie) or `bayeux` (a handshake with a nick, no cookie). */
  via: SessionVia;
}

export type SessionVia = 'http' | 'bayeux';

const COLUMNS =
  'id, token, nick, created_at AS createdAt, last_poll_at AS lastPollAt, seen_at AS seenAt, ended_at AS endedAt, end_reason AS endReason, via';

/** Bytes of randomness in a session token (256 bits). */
export const SESSION_TOKEN_BYTES = 32;

export function newSessionToken(): string {
  return randomBytes(SESSION_TOKEN_BYTES).toString('base64url');
}

export class SessionsRepo {
  private readonly insertStmt: Statement<[string, string, string, number, number | null, number, SessionVia], void>;
  private readonly liveByKeyStmt: Statement<[string], SessionRow>;
  private readonly renameStmt: Statement<[string, string, number], void>;
  private readonly byTokenStmt: Statement<[string], SessionRow>;
  private readonly byIdStmt: Statement<[number], SessionRow>;
  private readonly touchPollStmt: Statement<[number, number, number], void>;
  private readonly touchPollIfLaterStmt: Statement<[number, number, number, number], void>;
  private readonly touchSeenIfLaterStmt: Statement<[number, number], void>;
  private readonly endStmt: Statement<[number, string, number], void>;
  private readonly idleStmt: Statement<[number, number], { id: number }>;
  private readonly oldStmt: Statement<[number, number], { id: number }>;

  constructor(db: Database) {
    this.insertStmt = db.prepare('INSERT INTO sessions (token, nick, nick_key, created_at, last_poll_at, seen_at, via) VALUES (?, ?, ?, ?, ?, ?, ?)');
    // The partial unique index sessions_live_by_nick_key answers this.
    this.liveByKeyStmt = db.prepare(`SELECT ${COLUMNS} FROM sessions WHERE nick_key = ? AND ended_at IS NULL`);
    this.renameStmt = db.prepare('UPDATE sessions SET nick = ?, nick_key = ? WHERE id = ? AND ended_at IS NULL');
    this.byTokenStmt = db.prepare(`SELECT ${COLUMNS} FROM sessions WHERE token = ?`);
    this.byIdStmt = db.prepare(`SELECT ${COLUMNS} FROM sessions WHERE id = ?`);
    // A poll's presence is activity too: it moves seen_at, so idle expiry needs one column (and one index).
    this.touchPollStmt = db.prepare('UPDATE sessions SET last_poll_at = ?, seen_at = max(seen_at, ?) WHERE id = ?');
    this.touchPollIfLaterStmt = db.prepare(
      'UPDATE sessions SET last_poll_at = max(coalesce(last_poll_at, ?), ?), seen_at = max(seen_at, ?) WHERE id = ?',
    );
    this.touchSeenIfLaterStmt = db.prepare('UPDATE sessions SET seen_at = max(seen_at, ?) WHERE id = ?');
    this.endStmt = db.prepare('UPDATE sessions SET ended_at = ?, end_reason = ? WHERE id = ? AND ended_at IS NULL');
    // Range scans of the partial indexes sessions_live_by_seen and sessions_live_by_created (no ORDER BY,
    // which would make SQLite walk every row in id order instead).
    this.idleStmt = db.prepare('SELECT id FROM sessions WHERE ended_at IS NULL AND seen_at < ? LIMIT ?');
    this.oldStmt = db.prepare('SELECT id FROM sessions WHERE ended_at IS NULL AND created_at < ? LIMIT ?');
  }

  /**
   * Creates a session with a fresh token. `lastPollAt` starts at `now`: the
   * user just came online (the lobby's members panel shows it). The caller
   * checked, under the write lock, that no live session has the nick (`liveByNick`);
   * the unique index refuses it otherwise.
   */
  create(nick: string, now: number, via: SessionVia = 'http'): SessionRow {
    const token = newSessionToken();
    const info = this.insertStmt.run(token, nick, nickKey(nick), now, now, now, via);
    return { id: Number(info.lastInsertRowid), token, nick, createdAt: now, lastPollAt: now, seenAt: now, endedAt: null, endReason: null, via };
  }

  findByToken(token: string): SessionRow | undefined {
    return this.byTokenStmt.get(token);
  }

  findById(id: number): SessionRow | undefined {
    return this.byIdStmt.get(id);
  }

  /** The session not ended whose nick is the same as `nick` (by `nickKey`), if any; it may have expired unnoticed. */
  liveByNick(nick: string): SessionRow | undefined {
    return this.liveByKeyStmt.get(nickKey(nick));
  }

  /** Gives a live session another nick (checked free by the caller, as for `create`). */
  rename(id: number, nick: string): void {
    this.renameStmt.run(nick, nickKey(nick), id);
  }

  /** Records a poll, for presence (and activity). */
  touchPoll(id: number, now: number): void {
    this.touchPollStmt.run(now, now, id);
  }

  /** Records a poll made at `at` unless a later one is recorded already (batched writes arrive late). */
  touchPollIfLater(id: number, at: number): void {
    this.touchPollIfLaterStmt.run(at, at, at, id);
  }

  /** Records activity at `at` unless later activity is recorded already. */
  touchSeenIfLater(id: number, at: number): void {
    this.touchSeenIfLaterStmt.run(at, id);
  }

  /** Ends the session; false if it had ended already (read under the write lock: two sign-outs end it once). */
  end(id: number, now: number, reason: SessionEndReason): boolean {
    return this.endStmt.run(now, reason, id).changes === 1;
  }

  /** Up to `limit` sessions not ended whose activity is before `seenBefore` or that were created before `createdBefore`. */
  expired(seenBefore: number, createdBefore: number, limit: number): number[] {
    const ids = new Set(this.idleStmt.all(seenBefore, limit).map((r) => r.id));
    if (ids.size < limit) for (const r of this.oldStmt.all(createdBefore, limit - ids.size)) ids.add(r.id);
    return [...ids];
  }
}
