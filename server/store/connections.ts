/**
 * Connection IDs (docs/protocol.md §5): one per Comet client (browser tab),
 * bound to the session that received it.
 */
import type { Database, Statement } from 'better-sqlite3';
import { nanoid } from 'nanoid';

export interface ConnectionRow {
  /** 21 characters of `A-Za-z0-9_-`: a signed ID (server/connection-ids.ts), or a nanoid (before them, and Bayeux's). */
  id: string;
  sessionId: number;
  /** ms since the epoch. */
  createdAt: number;
  lastSeenAt: number;
}

export class ConnectionsRepo {
  private readonly insertStmt: Statement<[string, number, number, number], void>;
  private readonly byIdStmt: Statement<[string], ConnectionRow>;
  private readonly touchStmt: Statement<[number, string], void>;
  private readonly recordStmt: Statement<[string, number, number, number], void>;
  private readonly liveStmt: Statement<[number, number], { count: number; oldest: number | null }>;
  private readonly pollIdsStmt: Statement<[number], { id: string }>;
  private readonly deleteOfSessionStmt: Statement<[number], void>;
  private readonly deleteSeenBeforeStmt: Statement<[number, number], void>;
  private readonly countStmt: Statement<[], { n: number }>;

  constructor(db: Database) {
    this.insertStmt = db.prepare(
      'INSERT INTO connections (id, session_id, created_at, last_seen_at) VALUES (?, ?, ?, ?)',
    );
    this.byIdStmt = db.prepare(
      'SELECT id, session_id AS sessionId, created_at AS createdAt, last_seen_at AS lastSeenAt FROM connections WHERE id = ?',
    );
    this.touchStmt = db.prepare('UPDATE connections SET last_seen_at = ? WHERE id = ?');
    this.recordStmt = db.prepare(
      `INSERT INTO connections (id, session_id, created_at, last_seen_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET last_seen_at = max(last_seen_at, excluded.last_seen_at)`,
    );
    // connections_by_session bounds this to the session's own rows.
    this.liveStmt = db.prepare(
      'SELECT COUNT(*) AS count, MIN(last_seen_at) AS oldest FROM connections WHERE session_id = ? AND last_seen_at >= ?',
    );
    this.pollIdsStmt = db.prepare(
      `SELECT c.id AS id FROM connections c
       WHERE c.session_id = ? AND NOT EXISTS (SELECT 1 FROM bayeux_clients b WHERE b.connection_id = c.id)
       ORDER BY c.id`,
    );
    this.deleteOfSessionStmt = db.prepare('DELETE FROM connections WHERE session_id = ?');
    // Bounded by `limit`: the pruner deletes in small transactions (connections_by_last_seen makes it a range scan).
    this.deleteSeenBeforeStmt = db.prepare(
      'DELETE FROM connections WHERE rowid IN (SELECT rowid FROM connections WHERE last_seen_at < ? LIMIT ?)',
    );
    this.countStmt = db.prepare('SELECT COUNT(*) AS n FROM connections');
  }

  /** The session's connection IDs seen at or after `since` (ms), and the earliest `lastSeenAt` among them. */
  live(sessionId: number, since: number): { count: number; oldest: number | null } {
    return this.liveStmt.get(sessionId, since)!;
  }

  /** Issues a new connection ID bound to the session. */
  create(sessionId: number, now: number): ConnectionRow {
    const row: ConnectionRow = { id: nanoid(), sessionId, createdAt: now, lastSeenAt: now };
    this.insertStmt.run(row.id, row.sessionId, row.createdAt, row.lastSeenAt);
    return row;
  }

  /**
   * The row of a signed ID (server/connection-ids.ts), created when first written, else its
   * `lastSeenAt` moved forward. Signed IDs need a row only to be counted as live.
   */
  record(id: string, sessionId: number, now: number): void {
    this.recordStmt.run(id, sessionId, now, now);
  }

  find(id: string): ConnectionRow | undefined {
    return this.byIdStmt.get(id);
  }

  touch(id: string, now: number): void {
    this.touchStmt.run(now, id);
  }

  /** The session's connection IDs that polls use (every row but those of its Bayeux clients). */
  pollIdsOf(sessionId: number): string[] {
    return this.pollIdsStmt.all(sessionId).map((r) => r.id);
  }

  /** Deletes the session's rows (and, by cascade, its Bayeux clients); returns how many. */
  deleteOfSession(sessionId: number): number {
    return this.deleteOfSessionStmt.run(sessionId).changes;
  }

  /** Deletes up to `limit` rows not seen since `before` (ms), with their Bayeux clients; returns how many. */
  deleteSeenBefore(before: number, limit: number): number {
    return this.deleteSeenBeforeStmt.run(before, limit).changes;
  }

  count(): number {
    return this.countStmt.get()?.n ?? 0;
  }
}
