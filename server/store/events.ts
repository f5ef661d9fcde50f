/**
 * Events: the stream clients read through history and polls.
 * Writes go through `EventWriter` only, so that each event gets its outbox row.
 */
import type { Database, Statement } from 'better-sqlite3';
import type { ChatEvent, EventType } from '../model.js';

export interface NewEvent {
  roomId: number;
  type: EventType;
  userId: number;
  /** The author's nick now: kept with the event (history shows the nick at send time). */
  nick: string;
  /** `message`: the text; `nick`: the previous nick; `room`: the created room's name. */
  text: string | null;
  /** ms since the epoch. */
  createdAt: number;
  /** The client's `Idempotency-Key` for a message, unique per user. */
  idempotencyKey?: string;
}

interface EventJoinedRow {
  id: number;
  room: string;
  type: EventType;
  userId: number;
  nick: string;
  text: string | null;
  createdAt: number;
}

const JOINED_SELECT = `
  SELECT e.id AS id, r.name AS room, e.type AS type, e.user_id AS userId, e.nick AS nick,
         e.text AS text, e.created_at AS createdAt
  FROM events e
  JOIN rooms r ON r.id = e.room_id`;

/**
 * The API shape of an event; `text` only where there is one (a `nick` event's text is its `previousNick`, a `room`
 * event's its `createdRoom`: never `text`, so a client that shows every event's text shows no room name as a message).
 */
export function toChatEvent(row: EventJoinedRow): ChatEvent {
  const event: ChatEvent = {
    id: row.id,
    room: row.room,
    type: row.type,
    user: { id: row.userId, nick: row.nick },
    at: new Date(row.createdAt).toISOString(),
  };
  if (row.text !== null) {
    if (row.type === 'nick') event.previousNick = row.text;
    else if (row.type === 'room') event.createdRoom = row.text;
    else event.text = row.text;
  }
  return event;
}

export class EventsRepo {
  private readonly insertStmt: Statement<[number, string, number, string, string | null, number, string | null], void>;
  private readonly byKeyStmt: Statement<[number, string], EventJoinedRow>;
  private readonly lastIdStmt: Statement<[number], { lastId: number }>;
  private readonly afterStmt: Statement<[number, number, number], EventJoinedRow>;
  private readonly beforeStmt: Statement<[number, number, number], EventJoinedRow>;

  constructor(db: Database) {
    this.insertStmt = db.prepare(
      'INSERT INTO events (room_id, type, user_id, nick, text, created_at, idempotency_key) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
    this.byKeyStmt = db.prepare(`${JOINED_SELECT} WHERE e.user_id = ? AND e.idempotency_key = ?`);
    this.lastIdStmt = db.prepare('SELECT COALESCE(MAX(id), 0) AS lastId FROM events WHERE room_id = ?');
    this.afterStmt = db.prepare(`${JOINED_SELECT} WHERE e.room_id = ? AND e.id > ? ORDER BY e.id LIMIT ?`);
    this.beforeStmt = db.prepare(`${JOINED_SELECT} WHERE e.room_id = ? AND e.id < ? ORDER BY e.id DESC LIMIT ?`);
  }

  /** Inserts an event and returns its id. Call through `EventWriter`. */
  insert(event: NewEvent): number {
    const info = this.insertStmt.run(event.roomId, event.type, event.userId, event.nick, event.text, event.createdAt, event.idempotencyKey ?? null);
    return Number(info.lastInsertRowid);
  }

  /** The event `userId` made with `key`, if any. */
  byIdempotencyKey(userId: number, key: string): ChatEvent | undefined {
    const row = this.byKeyStmt.get(userId, key);
    return row === undefined ? undefined : toChatEvent(row);
  }

  /** The room's last event id, 0 if it has none. */
  lastId(roomId: number): number {
    return this.lastIdStmt.get(roomId)?.lastId ?? 0;
  }

  /** Up to `limit` events of the room with id > `cursor`, oldest first. */
  after(roomId: number, cursor: number, limit: number): ChatEvent[] {
    return this.afterStmt.all(roomId, cursor, limit).map(toChatEvent);
  }

  /** Up to `limit` events of the room with id < `before`, newest first (callers reverse them). */
  beforeNewestFirst(roomId: number, before: number, limit: number): ChatEvent[] {
    return this.beforeStmt.all(roomId, before, limit).map(toChatEvent);
  }
}
