/**
 * Rooms and memberships.
 */
import type { Database, Statement } from 'better-sqlite3';
import type { RoomView } from '../model.js';

export interface RoomRow {
  id: number;
  name: string;
}

/** A member with what presence needs. */
export interface MemberRow {
  id: number;
  nick: string;
  lastPollAt: number | null;
}

// Member count and last event id are derived, not stored: the (room_id, id)
// index on events makes MAX(id) a single index seek.
const VIEW_SELECT = `
  SELECT r.name AS name,
         (SELECT COUNT(*) FROM memberships m WHERE m.room_id = r.id) AS members,
         COALESCE((SELECT MAX(e.id) FROM events e WHERE e.room_id = r.id), 0) AS lastEventId
  FROM rooms r`;

export class RoomsRepo {
  private readonly insertStmt: Statement<[string, number], void>;
  private readonly byNameStmt: Statement<[string], RoomRow>;
  private readonly listStmt: Statement<[], RoomView>;
  private readonly viewStmt: Statement<[number], RoomView>;
  private readonly isMemberStmt: Statement<[number, number], { one: number }>;
  private readonly addMemberStmt: Statement<[number, number, number], void>;
  private readonly removeMemberStmt: Statement<[number, number], void>;
  private readonly membersStmt: Statement<[number], MemberRow>;
  private readonly roomsOfStmt: Statement<[number], RoomRow>;

  constructor(db: Database) {
    this.insertStmt = db.prepare('INSERT INTO rooms (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING');
    this.byNameStmt = db.prepare('SELECT id, name FROM rooms WHERE name = ?');
    this.listStmt = db.prepare(`${VIEW_SELECT} ORDER BY r.name`);
    this.viewStmt = db.prepare(`${VIEW_SELECT} WHERE r.id = ?`);
    this.isMemberStmt = db.prepare('SELECT 1 AS one FROM memberships WHERE room_id = ? AND session_id = ?');
    this.addMemberStmt = db.prepare(
      'INSERT INTO memberships (room_id, session_id, joined_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING',
    );
    this.removeMemberStmt = db.prepare('DELETE FROM memberships WHERE room_id = ? AND session_id = ?');
    this.membersStmt = db.prepare(`
      SELECT s.id AS id, s.nick AS nick, s.last_poll_at AS lastPollAt
      FROM memberships m JOIN sessions s ON s.id = m.session_id
      WHERE m.room_id = ?
      ORDER BY s.nick COLLATE NOCASE, s.id`);
    this.roomsOfStmt = db.prepare(
      'SELECT r.id AS id, r.name AS name FROM memberships m JOIN rooms r ON r.id = m.room_id WHERE m.session_id = ? ORDER BY r.id',
    );
  }

  /** Creates a room; null if the name is taken. */
  create(name: string, now: number): RoomRow | null {
    const info = this.insertStmt.run(name, now);
    return info.changes === 1 ? { id: Number(info.lastInsertRowid), name } : null;
  }

  findByName(name: string): RoomRow | undefined {
    return this.byNameStmt.get(name);
  }

  /** Every room, by name. */
  list(): RoomView[] {
    return this.listStmt.all();
  }

  view(roomId: number): RoomView {
    const view = this.viewStmt.get(roomId);
    if (!view) throw new Error(`room ${roomId} vanished`);
    return view;
  }

  isMember(roomId: number, sessionId: number): boolean {
    return this.isMemberStmt.get(roomId, sessionId) !== undefined;
  }

  /** Adds a member; false if they already were one. */
  addMember(roomId: number, sessionId: number, now: number): boolean {
    return this.addMemberStmt.run(roomId, sessionId, now).changes === 1;
  }

  /** Removes a member; false if they were not one. */
  removeMember(roomId: number, sessionId: number): boolean {
    return this.removeMemberStmt.run(roomId, sessionId).changes === 1;
  }

  /** The rooms the session is a member of, by id. */
  roomsOf(sessionId: number): RoomRow[] {
    return this.roomsOfStmt.all(sessionId);
  }

  /** Members by nick (case-insensitive), then id. */
  members(roomId: number): MemberRow[] {
    return this.membersStmt.all(roomId);
  }
}
