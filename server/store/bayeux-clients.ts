/**
 * Bayeux clients (docs/bayeux.md): one row per handshaken CometD client, bound
 * to a session and to a connection ID, with its room subscriptions and their
 * cursors. This is the client's queue between connects: what it has not got yet
 * is every event past its cursors, read from `events` (nothing is copied).
 */
import type { Database, Statement } from 'better-sqlite3';

export interface BayeuxClientRow {
  /** The clientId. */
  id: string;
  sessionId: number;
  connectionId: string;
  /** The ack extension was negotiated at handshake: cursors advance when the client acks a batch. */
  ack: boolean;
  /** Last ack batch sent, 0 for none. */
  batch: number;
  /** Last item id published on the client's wake channel. */
  wakeId: number;
  /** True after the first `/meta/connect` (which is never held). */
  connected: boolean;
  /** ms since the epoch. */
  lastSeenAt: number;
  /** The channel patterns it subscribes to (`BAYEUX_PATTERN_*` bits), 0 for none. */
  patterns: number;
}

/** `bayeux_clients.patterns` bits. */
export const BAYEUX_PATTERN_ONE = 1; // /chat/*
export const BAYEUX_PATTERN_ALL = 2; // /chat/**
/** `bayeux_subscriptions.via` bits: why a room's row exists. */
export const VIA_NAME = 1;
export const VIA_PATTERN = 2;

export interface BayeuxSubscriptionRow {
  roomId: number;
  room: string;
  /** Last event id the client has for sure. */
  cursor: number;
  /** Last event id of the unacknowledged batch (= cursor when none). */
  sent: number;
  /** `VIA_*` bits: subscribed by name, covered by a pattern, or both. */
  via: number;
}

interface RawClient {
  id: string;
  sessionId: number;
  connectionId: string;
  ack: number;
  batch: number;
  wakeId: number;
  connected: number;
  lastSeenAt: number;
  patterns: number;
}

export class BayeuxClientsRepo {
  private readonly insertStmt: Statement<[string, number, string, number, number, number], void>;
  private readonly byIdStmt: Statement<[string], RawClient>;
  private readonly bySessionStmt: Statement<[number], RawClient>;
  private readonly deleteStmt: Statement<[string], void>;
  private readonly purgeStmt: Statement<[number, number], void>;
  private readonly touchStmt: Statement<[number, string], void>;
  private readonly connectedStmt: Statement<[string], void>;
  private readonly batchStmt: Statement<[number, string], void>;
  private readonly wakeStmt: Statement<[number, string], void>;
  private readonly subsStmt: Statement<[string], BayeuxSubscriptionRow>;
  private readonly subscribeStmt: Statement<[string, number, number, number, number], void>;
  private readonly patternsStmt: Statement<[number, string], void>;
  private readonly clearViaStmt: Statement<[number, string], void>;
  private readonly clearRoomViaStmt: Statement<[number, string, number], void>;
  private readonly dropUnusedStmt: Statement<[string], void>;
  private readonly subStmt: Statement<[string, number], { via: number }>;
  private readonly unsubscribeStmt: Statement<[string, number], void>;
  private readonly sentStmt: Statement<[number, string, number], void>;
  private readonly deliveredStmt: Statement<[number, number, string, number], void>;
  private readonly commitStmt: Statement<[string], void>;
  private readonly roomHasSubsStmt: Statement<[string], { one: number }>;

  constructor(db: Database) {
    this.insertStmt = db.prepare(
      `INSERT INTO bayeux_clients (id, session_id, connection_id, ack, created_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?)`,
    );
    const select = `SELECT id, session_id AS sessionId, connection_id AS connectionId, ack, batch, wake_id AS wakeId,
              connected, last_seen_at AS lastSeenAt, patterns
       FROM bayeux_clients`;
    this.byIdStmt = db.prepare(`${select} WHERE id = ?`);
    this.bySessionStmt = db.prepare(`${select} WHERE session_id = ? ORDER BY id`);
    this.deleteStmt = db.prepare('DELETE FROM bayeux_clients WHERE id = ?');
    // Bounded: a handshake pays for at most `limit` expired rows.
    this.purgeStmt = db.prepare(
      'DELETE FROM bayeux_clients WHERE id IN (SELECT id FROM bayeux_clients WHERE last_seen_at < ? LIMIT ?)',
    );
    this.touchStmt = db.prepare('UPDATE bayeux_clients SET last_seen_at = ? WHERE id = ?');
    this.connectedStmt = db.prepare('UPDATE bayeux_clients SET connected = 1 WHERE id = ?');
    this.batchStmt = db.prepare('UPDATE bayeux_clients SET batch = ? WHERE id = ?');
    this.wakeStmt = db.prepare('UPDATE bayeux_clients SET wake_id = ? WHERE id = ?');
    this.subsStmt = db.prepare(
      `SELECT s.room_id AS roomId, r.name AS room, s.cursor AS cursor, s.sent AS sent, s.via AS via
       FROM bayeux_subscriptions s JOIN rooms r ON r.id = s.room_id
       WHERE s.client_id = ? ORDER BY r.name`,
    );
    // A row that exists keeps its cursor: only the reason it exists grows.
    this.subscribeStmt = db.prepare(
      `INSERT INTO bayeux_subscriptions (client_id, room_id, cursor, sent, via) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (client_id, room_id) DO UPDATE SET via = via | excluded.via`,
    );
    this.subStmt = db.prepare('SELECT via FROM bayeux_subscriptions WHERE client_id = ? AND room_id = ?');
    this.patternsStmt = db.prepare('UPDATE bayeux_clients SET patterns = ? WHERE id = ?');
    this.clearViaStmt = db.prepare('UPDATE bayeux_subscriptions SET via = via & ~? WHERE client_id = ?');
    this.clearRoomViaStmt = db.prepare('UPDATE bayeux_subscriptions SET via = via & ~? WHERE client_id = ? AND room_id = ?');
    this.dropUnusedStmt = db.prepare('DELETE FROM bayeux_subscriptions WHERE client_id = ? AND via = 0');
    this.unsubscribeStmt = db.prepare('DELETE FROM bayeux_subscriptions WHERE client_id = ? AND room_id = ?');
    this.sentStmt = db.prepare('UPDATE bayeux_subscriptions SET sent = ? WHERE client_id = ? AND room_id = ?');
    this.deliveredStmt = db.prepare('UPDATE bayeux_subscriptions SET cursor = ?, sent = ? WHERE client_id = ? AND room_id = ?');
    this.commitStmt = db.prepare('UPDATE bayeux_subscriptions SET cursor = sent WHERE client_id = ? AND cursor <> sent');
    this.roomHasSubsStmt = db.prepare(
      `SELECT 1 AS one FROM bayeux_subscriptions s JOIN rooms r ON r.id = s.room_id WHERE r.name = ? LIMIT 1`,
    );
  }

  create(row: { id: string; sessionId: number; connectionId: string; ack: boolean; now: number }): void {
    this.insertStmt.run(row.id, row.sessionId, row.connectionId, row.ack ? 1 : 0, row.now, row.now);
  }

  find(id: string): BayeuxClientRow | undefined {
    const raw = this.byIdStmt.get(id);
    if (raw === undefined) return undefined;
    return { ...raw, ack: raw.ack === 1, connected: raw.connected === 1 };
  }

  /** The session's clients. */
  ofSession(sessionId: number): BayeuxClientRow[] {
    return this.bySessionStmt.all(sessionId).map((raw) => ({ ...raw, ack: raw.ack === 1, connected: raw.connected === 1 }));
  }

  /** Forgets the client and its subscriptions; false if it was unknown. */
  remove(id: string): boolean {
    return this.deleteStmt.run(id).changes === 1;
  }

  /** Deletes up to `limit` clients not seen since `before` (ms); returns how many. */
  purgeExpired(before: number, limit: number): number {
    return this.purgeStmt.run(before, limit).changes;
  }

  touch(id: string, now: number): void {
    this.touchStmt.run(now, id);
  }

  markConnected(id: string): void {
    this.connectedStmt.run(id);
  }

  setBatch(id: string, batch: number): void {
    this.batchStmt.run(batch, id);
  }

  setWakeId(id: string, wakeId: number): void {
    this.wakeStmt.run(wakeId, id);
  }

  /** The client's subscriptions, by room name. */
  subscriptions(clientId: string): BayeuxSubscriptionRow[] {
    return this.subsStmt.all(clientId);
  }

  /**
   * Subscribes at `cursor` for the reason `via` (a `VIA_*` bit); false if the room already had a row
   * (its cursor is kept, the reason is added).
   */
  subscribe(clientId: string, roomId: number, cursor: number, via: number = VIA_NAME): boolean {
    const existed = this.subStmt.get(clientId, roomId) !== undefined;
    this.subscribeStmt.run(clientId, roomId, cursor, cursor, via);
    return !existed;
  }

  /**
   * Takes the reason `via` away from the room's row; the row goes when no reason is left
   * (a room covered by a pattern stays while the pattern does).
   */
  unsubscribe(clientId: string, roomId: number, via: number = VIA_NAME): boolean {
    const row = this.subStmt.get(clientId, roomId);
    if (row === undefined) return false;
    if ((row.via & ~via) === 0) return this.unsubscribeStmt.run(clientId, roomId).changes === 1;
    this.clearRoomViaStmt.run(via, clientId, roomId);
    return true;
  }

  setPatterns(id: string, patterns: number): void {
    this.patternsStmt.run(patterns, id);
  }

  /** Takes the reason `via` away from every row of the client, and drops the rows left without one. */
  clearVia(clientId: string, via: number): void {
    this.clearViaStmt.run(via, clientId);
    this.dropUnusedStmt.run(clientId);
  }

  /** Ack mode: the room's events up to `sent` went out in the current batch. */
  markSent(clientId: string, roomId: number, sent: number): void {
    this.sentStmt.run(sent, clientId, roomId);
  }

  /** Without ack: the room's events up to `id` went out and count as delivered. */
  markDelivered(clientId: string, roomId: number, id: number): void {
    this.deliveredStmt.run(id, id, clientId, roomId);
  }

  /** The client acked its current batch: every cursor moves to what was sent. */
  commitSent(clientId: string): void {
    this.commitStmt.run(clientId);
  }

  /** Does any Bayeux client subscribe to this room? (The relay hints only those rooms.) */
  roomHasSubscribers(roomName: string): boolean {
    return this.roomHasSubsStmt.get(roomName) !== undefined;
  }
}
