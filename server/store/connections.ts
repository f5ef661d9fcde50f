/**
 * Connection IDs (docs/protocol.md §5): one per Comet client (browser tab),
 * bound to the session that received it.
 */
import type { Database, Statement } from 'better-sqlite3';
import { nanoid } from 'nanoid';

export interface ConnectionRow {
  /** nanoid, 21 characters of `A-Za-z0-9_-`. */
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

  constructor(db: Database) {
    this.insertStmt = db.prepare(
      'INSERT INTO connections (id, session_id, created_at, last_seen_at) VALUES (?, ?, ?, ?)',
    );
    this.byIdStmt = db.prepare(
      'SELECT id, session_id AS sessionId, created_at AS createdAt, last_seen_at AS lastSeenAt FROM connections WHERE id = ?',
    );
    this.touchStmt = db.prepare('UPDATE connections SET last_seen_at = ? WHERE id = ?');
  }

  /** Issues a new connection ID bound to the session. */
  create(sessionId: number, now: number): ConnectionRow {
    const row: ConnectionRow = { id: nanoid(), sessionId, createdAt: now, lastSeenAt: now };
    this.insertStmt.run(row.id, row.sessionId, row.createdAt, row.lastSeenAt);
    return row;
  }

  find(id: string): ConnectionRow | undefined {
    return this.byIdStmt.get(id);
  }

  touch(id: string, now: number): void {
    this.touchStmt.run(now, id);
  }
}
