/**
 * Sessions. A session is the user: it has the nick, the secret cookie token
 * and the last time it polled (for presence).
 */
import { randomBytes } from 'node:crypto';
import type { Database, Statement } from 'better-sqlite3';

export interface SessionRow {
  id: number;
  /** Random 32 bytes, base64url: the `sid` cookie value. */
  token: string;
  nick: string;
  /** ms since the epoch. */
  createdAt: number;
  /** ms since the epoch; null if it never polled. */
  lastPollAt: number | null;
}

const COLUMNS = 'id, token, nick, created_at AS createdAt, last_poll_at AS lastPollAt';

/** Bytes of randomness in a session token (256 bits). */
export const SESSION_TOKEN_BYTES = 32;

export function newSessionToken(): string {
  return randomBytes(SESSION_TOKEN_BYTES).toString('base64url');
}

export class SessionsRepo {
  private readonly insertStmt: Statement<[string, string, number, number | null], void>;
  private readonly byTokenStmt: Statement<[string], SessionRow>;
  private readonly byIdStmt: Statement<[number], SessionRow>;
  private readonly touchPollStmt: Statement<[number, number], void>;
  private readonly touchPollIfLaterStmt: Statement<[number, number, number], void>;

  constructor(db: Database) {
    this.insertStmt = db.prepare('INSERT INTO sessions (token, nick, created_at, last_poll_at) VALUES (?, ?, ?, ?)');
    this.byTokenStmt = db.prepare(`SELECT ${COLUMNS} FROM sessions WHERE token = ?`);
    this.byIdStmt = db.prepare(`SELECT ${COLUMNS} FROM sessions WHERE id = ?`);
    this.touchPollStmt = db.prepare('UPDATE sessions SET last_poll_at = ? WHERE id = ?');
    this.touchPollIfLaterStmt = db.prepare('UPDATE sessions SET last_poll_at = max(coalesce(last_poll_at, ?), ?) WHERE id = ?');
  }

  /**
   * Creates a session with a fresh token. `lastPollAt` starts at `now`: the
   * user just came online (and says so with an `online` event).
   */
  create(nick: string, now: number): SessionRow {
    const token = newSessionToken();
    const info = this.insertStmt.run(token, nick, now, now);
    return { id: Number(info.lastInsertRowid), token, nick, createdAt: now, lastPollAt: now };
  }

  findByToken(token: string): SessionRow | undefined {
    return this.byTokenStmt.get(token);
  }

  findById(id: number): SessionRow | undefined {
    return this.byIdStmt.get(id);
  }

  /** Records a poll, for presence. */
  touchPoll(id: number, now: number): void {
    this.touchPollStmt.run(now, id);
  }

  /** Records a poll made at `at` unless a later one is recorded already (batched writes arrive late). */
  touchPollIfLater(id: number, at: number): void {
    this.touchPollIfLaterStmt.run(at, at, id);
  }
}
