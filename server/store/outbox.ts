/**
 * The outbox: publish items committed with the events they announce, waiting
 * for the relay to hand them to the proxy. A row is deleted only after the
 * proxy accepted it, so nothing is lost when the proxy is down. A few rows are
 * `/close/` calls instead (a session that ended closes its connection IDs),
 * committed with the change that needs them and sent in the same order.
 */
import type { Database, Statement } from 'better-sqlite3';
import type { CloseItem } from '../../protocol/control-api.js';

/** `publish`: a publish item (the columns below); `close`: `payload` is a JSON list of `/close/` items. */
export type OutboxKind = 'publish' | 'close';

export interface NewOutboxRow {
  /** GRIP channel, `room:<name>`. */
  channel: string;
  /** Item id: the event id, as a string. */
  itemId: string;
  /** The previous item id on the channel, `'0'` before the first. */
  prevId: string;
  /** JSON of the `http-response` format. */
  payload: string;
  /** ms since the epoch. */
  createdAt: number;
  /** JSON list of revoke items the publish carries (`comet-revoke`), or null. */
  revoke?: string | null;
}

export interface OutboxRow extends NewOutboxRow {
  id: number;
  kind: OutboxKind;
}

const COLUMNS = 'id, kind, channel, item_id AS itemId, prev_id AS prevId, payload, created_at AS createdAt, revoke';

export class OutboxRepo {
  private readonly insertStmt: Statement<[string, string, string, string, number, string | null], void>;
  private readonly insertCloseStmt: Statement<[string, number], void>;
  private readonly oldestStmt: Statement<[number], OutboxRow>;
  private readonly allStmt: Statement<[], OutboxRow>;
  private readonly deleteRangeStmt: Statement<[number, number], void>;
  private readonly countStmt: Statement<[], { n: number }>;

  constructor(db: Database) {
    this.insertStmt = db.prepare(
      'INSERT INTO outbox (channel, item_id, prev_id, payload, created_at, revoke) VALUES (?, ?, ?, ?, ?, ?)',
    );
    this.insertCloseStmt = db.prepare(
      "INSERT INTO outbox (kind, channel, item_id, prev_id, payload, created_at) VALUES ('close', '', '', '', ?, ?)",
    );
    this.oldestStmt = db.prepare(`SELECT ${COLUMNS} FROM outbox ORDER BY id LIMIT ?`);
    this.allStmt = db.prepare(`SELECT ${COLUMNS} FROM outbox ORDER BY id`);
    this.deleteRangeStmt = db.prepare('DELETE FROM outbox WHERE id BETWEEN ? AND ?');
    this.countStmt = db.prepare('SELECT COUNT(*) AS n FROM outbox');
  }

  /** Call through `EventWriter`, inside the event's transaction. */
  insert(row: NewOutboxRow): number {
    const info = this.insertStmt.run(row.channel, row.itemId, row.prevId, row.payload, row.createdAt, row.revoke ?? null);
    return Number(info.lastInsertRowid);
  }

  /** A `/close/` call for the relay to make, in order with the publishes around it. Inside the caller's transaction. */
  insertClose(items: readonly CloseItem[], createdAt: number): number {
    return Number(this.insertCloseStmt.run(JSON.stringify(items), createdAt).lastInsertRowid);
  }

  /** The oldest `limit` rows, in id (= commit) order. */
  oldest(limit: number): OutboxRow[] {
    return this.oldestStmt.all(limit);
  }

  /** Every row in id order (tests and diagnostics). */
  all(): OutboxRow[] {
    return this.allStmt.all();
  }

  /**
   * Deletes the rows with ids from `firstId` to `lastId`. Used after a publish
   * of exactly that range: AUTOINCREMENT ids only grow, so no row can appear
   * inside a range that was read whole.
   */
  deleteRange(firstId: number, lastId: number): number {
    return this.deleteRangeStmt.run(firstId, lastId).changes;
  }

  count(): number {
    return this.countStmt.get()?.n ?? 0;
  }
}
