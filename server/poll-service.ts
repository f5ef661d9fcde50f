/**
 * The poll's state work (docs/chat-api.md `GET /api/poll`): check the rooms,
 * resolve the connection ID, record presence and read what is new, all in one
 * transaction so that the events returned and the last ids used for a hold
 * come from the same snapshot. Deciding between answer and hold is the route's.
 */
import { AppError, notMember, roomNotFound } from './errors.js';
import type { RoomCursor } from './cursors.js';
import type { ChatEvent } from './model.js';
import type { RoomRow } from './store/rooms.js';
import type { SessionRow } from './store/sessions.js';
import type { Store } from './store/store.js';
import type { BusyRetry } from './store/busy-retry.js';

export interface PollServiceOptions {
  /** Clock, ms since the epoch. */
  now: () => number;
  /** Most events in one answer. */
  pollBatchMax: number;
  /** Connection IDs one session may use at once; a poll needing one more gets 503 `APP_ERR_TOO_MANY_CONNECTIONS`. */
  maxConnectionsPerSession: number;
  /** A connection ID counts as in use while it polled within this window, ms (the presence window). */
  connectionLiveMs: number;
  /** Retries the poll's write transaction when the database is busy. */
  busy: BusyRetry;
  /**
   * A poll writes presence and its connection's liveness only when the last
   * write is older than this, ms; younger, it only reads. Default 0: every poll
   * writes. Presence ("online") is then up to this much older than the last poll.
   */
  presenceRefreshMs?: number;
}

export interface PollResult {
  /** The client's connection ID: the one it sent if it is this session's, else a new one. */
  connectionId: string;
  /** Events past the cursors, oldest first, at most `pollBatchMax`. */
  events: ChatEvent[];
  /** Each polled room's last event id, in the order asked (the hold's prev-ids). */
  lastIds: Array<{ room: string; lastEventId: number }>;
}

export class PollService {
  constructor(
    private readonly store: Store,
    private readonly options: PollServiceOptions,
  ) {}

  /**
   * `cid` must already be a well-formed connection ID (or undefined). Throws
   * 404/403 before writing anything, so a refused poll changes nothing.
   */
  poll(session: SessionRow, cursors: readonly RoomCursor[], cid: string | undefined): Promise<PollResult> {
    return this.options.busy.run(() => {
      // Most polls are re-polls of a known connection moments after the last one: presence and the
      // connection's liveness are fresh, so they read only (a deferred transaction: one snapshot, no
      // write lock). A write per poll was the app's largest cost under load (docs/performance.md).
      const readOnly = this.store.db.transaction(() => this.readIfFresh(session, cursors, cid)).deferred();
      if (readOnly !== null) return readOnly;
      // A write transaction (presence, connection IDs): it waits for a busy database like every write.
      return this.store.db.transaction(() => {
        const rooms = cursors.map((c) => this.memberRoom(session, c.room));
        const now = this.options.now();
        const connectionId = this.resolveConnection(session, cid, now);
        this.store.sessions.touchPoll(session.id, now);
        return { connectionId, ...this.read(rooms, cursors) };
      }).immediate();
    });
  }

  /**
   * The poll's answer without writing, when the session's presence and the
   * connection's liveness were both refreshed within `presenceRefreshMs`;
   * `null` when something must be written (or checked by the write path).
   */
  private readIfFresh(session: SessionRow, cursors: readonly RoomCursor[], cid: string | undefined): PollResult | null {
    if (cid === undefined) return null;
    const now = this.options.now();
    const refreshMs = this.options.presenceRefreshMs ?? 0;
    const fresh = (at: number | null): boolean => at !== null && now - at < refreshMs;
    if (!fresh(session.lastPollAt)) return null;
    const known = this.store.connections.find(cid);
    if (!known || known.sessionId !== session.id || !fresh(known.lastSeenAt)) return null;
    const rooms = cursors.map((c) => this.memberRoom(session, c.room));
    return { connectionId: cid, ...this.read(rooms, cursors) };
  }

  /** Events past the cursors and each room's last id, from one snapshot (the caller's transaction). */
  private read(rooms: RoomRow[], cursors: readonly RoomCursor[]): Pick<PollResult, 'events' | 'lastIds'> {
    const max = this.options.pollBatchMax;
    const lastIds = rooms.map((room) => ({ room: room.name, lastEventId: this.store.events.lastId(room.id) }));
    // Each room's query is an index range scan; merging by id keeps the global order, and the cut at `max`
    // leaves later events for the next poll. A room whose cursor is at its last id has nothing to read: most
    // polls are re-polls right after a delivery, and this skips their events query (the app's largest cost).
    const events = rooms
      .flatMap((room, i) => (cursors[i]!.cursor >= lastIds[i]!.lastEventId ? [] : this.store.events.after(room.id, cursors[i]!.cursor, max)))
      .sort((a, b) => a.id - b.id)
      .slice(0, max);
    return { events, lastIds };
  }

  private memberRoom(session: SessionRow, name: string): RoomRow {
    const room = this.store.rooms.findByName(name);
    if (!room) throw roomNotFound(name);
    if (!this.store.rooms.isMember(room.id, session.id)) throw notMember(name);
    return room;
  }

  /**
   * docs/protocol.md §5: reuse an ID bound to this session, refuse one bound to
   * another (so no client can park or read under someone else's ID), and issue
   * a new one when there is none or it is unknown (expired, or from an old database).
   */
  private resolveConnection(session: SessionRow, cid: string | undefined, now: number): string {
    if (cid !== undefined) {
      const known = this.store.connections.find(cid);
      if (known) {
        if (known.sessionId !== session.id) {
          throw new AppError('APP_ERR_FOREIGN_CONNECTION_ID', 'this connection ID belongs to another session');
        }
        this.store.connections.touch(cid, now);
        return cid;
      }
    }
    const since = now - this.options.connectionLiveMs;
    const live = this.store.connections.live(session.id, since);
    if (live.count >= this.options.maxConnectionsPerSession) {
      // The oldest one stops counting when its window ends: then a new ID can be issued.
      const retryAfterS = Math.max(1, Math.ceil(((live.oldest ?? now) - since) / 1000));
      throw new AppError(
        'APP_ERR_TOO_MANY_CONNECTIONS',
        `this session already polls under ${live.count} connection IDs; reuse one (cid) or retry in ${retryAfterS} s`,
        retryAfterS,
      );
    }
    return this.store.connections.create(session.id, now).id;
  }
}
