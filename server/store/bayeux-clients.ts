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
}

export interface BayeuxSubscriptionRow {
  roomId: number;
  room: string;
  /** Last event id the client has for sure. */
  cursor: number;
  /** Last event id of the unacknowledged batch (= cursor when none). */
  sent: number;
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
  private readonly subscribeStmt: Statement<[string, number, number, number], void>;
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
              connected, last_seen_at AS lastSeenAt
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
      `SELECT s.room_id AS roomId, r.name AS room, s.cursor AS cursor, s.sent AS sent
       FROM bayeux_subscriptions s JOIN rooms r ON r.id = s.room_id
       WHERE s.client_id = ? ORDER BY r.name`,
    );
    this.subscribeStmt = db.prepare(
      'INSERT INTO bayeux_subscriptions (client_id, room_id, cursor, sent) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING',
    );
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

  /** Subscribes at `cursor`; false if already subscribed (its cursor is kept). */
  subscribe(clientId: string, roomId: number, cursor: number): boolean {
    return this.subscribeStmt.run(clientId, roomId, cursor, cursor).changes === 1;
  }

  unsubscribe(clientId: string, roomId: number): boolean {
    return this.unsubscribeStmt.run(clientId, roomId).changes === 1;
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
