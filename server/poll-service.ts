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
    // A write transaction (presence, connection IDs): it waits for a busy database like every write.
    return this.options.busy.run(() => this.store.db.transaction(() => {
      const rooms = cursors.map((c) => this.memberRoom(session, c.room));

      const now = this.options.now();
      const connectionId = this.resolveConnection(session, cid, now);
      this.store.sessions.touchPoll(session.id, now);

      const max = this.options.pollBatchMax;
      // Each room's query is an index range scan; merging by id keeps the
      // global order, and the cut at `max` leaves later events for the next poll.
      const events = rooms
        .flatMap((room, i) => this.store.events.after(room.id, cursors[i]!.cursor, max))
        .sort((a, b) => a.id - b.id)
        .slice(0, max);
      const lastIds = rooms.map((room) => ({ room: room.name, lastEventId: this.store.events.lastId(room.id) }));
      return { connectionId, events, lastIds };
    }).immediate());
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
