/**
 * The poll's state work (docs/chat-api.md `GET /api/poll`): check the rooms,
 * resolve the connection ID, record presence and read what is new, in one
 * transaction so that the events returned and the last ids used for a hold
 * come from the same snapshot. Deciding between answer and hold is the route's.
 *
 * Connection IDs are signed (connection-ids.ts): ownership needs no row, and a
 * first poll only reads; the new ID's row and the presence it refreshes go to
 * the liveness log, written in batches off the request path.
 */
import { AppError, notMember, roomNotFound } from './errors.js';
import type { RoomCursor } from './cursors.js';
import type { ChatEvent } from './model.js';
import type { RoomRow } from './store/rooms.js';
import type { SessionRow } from './store/sessions.js';
import type { Store } from './store/store.js';
import type { BusyRetry } from './store/busy-retry.js';
import type { ConnectionIds } from './connection-ids.js';
import type { LivenessLog } from './liveness-log.js';

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
  /** Signs and checks connection IDs. */
  ids: ConnectionIds;
  /** Where first polls leave what they must write. */
  liveness: LivenessLog;
}

export interface PollResult {
  /** The client's connection ID: the one it sent if it is this session's, else a new one. */
  connectionId: string;
  /** Events past the cursors, oldest first, at most `pollBatchMax`. */
  events: ChatEvent[];
  /** Each polled room's last event id, in the order asked (the hold's prev-ids). */
  lastIds: Array<{ room: string; lastEventId: number }>;
}

/** A poll answered without writing; `record`: its new ID goes to the liveness log (with `presence`: its session's too). */
interface ReadOnlyPoll {
  result: PollResult;
  record: boolean;
  presence: boolean;
  now: number;
}

export class PollService {
  /**
   * The poll's two transactions, wrapped once: better-sqlite3's `transaction()` builds four wrapper functions
   * and defines their properties on every call, ~1/3 of the poll's transaction cost in a storm of first
   * polls (issue 15). Arguments pass through the wrapper.
   */
  private readonly readOnlyTx: (session: SessionRow, cursors: readonly RoomCursor[], cid: string | undefined, signed: boolean) => ReadOnlyPoll | null;
  private readonly writeTx: (session: SessionRow, cursors: readonly RoomCursor[], cid: string | undefined, signed: boolean) => PollResult;

  constructor(
    private readonly store: Store,
    private readonly options: PollServiceOptions,
  ) {
    this.readOnlyTx = store.db.transaction(this.tryReadOnly.bind(this)).deferred;
    this.writeTx = store.db.transaction(this.readAndWrite.bind(this)).immediate;
  }

  /**
   * `cid` must already be a well-formed connection ID (or undefined). Throws
   * 404/403/400 before writing anything, so a refused poll changes nothing.
   */
  async poll(session: SessionRow, cursors: readonly RoomCursor[], cid: string | undefined): Promise<PollResult> {
    // A signed ID names its session: another session's is refused before any database work.
    const owner = cid === undefined ? null : this.options.ids.ownerOf(cid);
    if (owner !== null && owner !== session.id) throw foreignConnectionId();
    const signed = owner !== null;
    return this.options.busy.run(() => {
      // Most polls read only (a deferred transaction: one snapshot, no write lock): first polls, whose new ID
      // and presence go to the liveness log, and re-polls whose presence and liveness are fresh. A write per
      // poll was the app's largest cost under load (docs/performance.md).
      const readOnly = this.readOnlyTx(session, cursors, cid, signed);
      if (readOnly !== null) {
        // After the snapshot: a transaction retried on a busy database must not record twice.
        if (readOnly.record) this.options.liveness.record(session.id, readOnly.result.connectionId, readOnly.now, readOnly.presence);
        return readOnly.result;
      }
      // A write transaction (presence, connection rows): it waits for a busy database like every write.
      return this.writeTx(session, cursors, cid, signed);
    });
  }

  /** The write path's work, inside its immediate transaction. */
  private readAndWrite(session: SessionRow, cursors: readonly RoomCursor[], cid: string | undefined, signed: boolean): PollResult {
    const rooms = cursors.map((c) => this.memberRoom(session, c.room));
    const now = this.options.now();
    const connectionId = this.resolveConnection(session, cid, signed, now);
    this.store.sessions.touchPoll(session.id, now);
    return { connectionId, ...this.read(rooms, cursors) };
  }

  /**
   * The poll's answer without writing: a first poll (its new signed ID recorded afterwards in the
   * liveness log, `record`), or a re-poll whose session presence and connection liveness were both
   * refreshed within `presenceRefreshMs`. `null` when something must be written (or checked by the write path).
   */
  private tryReadOnly(
    session: SessionRow,
    cursors: readonly RoomCursor[],
    cid: string | undefined,
    signed: boolean,
  ): ReadOnlyPoll | null {
    const now = this.options.now();
    const refreshMs = this.options.presenceRefreshMs ?? 0;
    const fresh = (at: number | null | undefined): boolean => at !== null && at !== undefined && now - at < refreshMs;
    const presenceFresh = fresh(session.lastPollAt) || fresh(this.options.liveness.presenceAt(session.id));
    if (cid === undefined) {
      const rooms = cursors.map((c) => this.memberRoom(session, c.room));
      this.checkRoomForOneMore(session, now);
      const connectionId = this.options.ids.issue(session.id);
      // A session id too large to sign: the write path stores a random ID.
      if (connectionId === null) return null;
      return { result: { connectionId, ...this.read(rooms, cursors) }, record: true, presence: !presenceFresh, now };
    }
    if (!presenceFresh) return null;
    const known = signed ? undefined : this.store.connections.find(cid);
    if (!signed && (!known || known.sessionId !== session.id)) return null;
    const seenAt = signed ? (this.options.liveness.seenAt(cid) ?? this.store.connections.find(cid)?.lastSeenAt) : known!.lastSeenAt;
    if (!fresh(seenAt)) return null;
    const rooms = cursors.map((c) => this.memberRoom(session, c.room));
    return { result: { connectionId: cid, ...this.read(rooms, cursors) }, record: false, presence: false, now };
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
   * docs/protocol.md §5: a signed ID of this session is used as it is (its row records liveness);
   * a stored ID (issued before signed IDs, or by a Bayeux handshake) is reused when bound to this
   * session and refused when bound to another; an ID that is neither was altered or made up: 400.
   * Without one, a new ID is issued.
   */
  private resolveConnection(session: SessionRow, cid: string | undefined, signed: boolean, now: number): string {
    if (cid !== undefined && signed) {
      this.store.connections.record(cid, session.id, now);
      return cid;
    }
    if (cid !== undefined) {
      const known = this.store.connections.find(cid);
      if (!known) {
        throw new AppError(
          'APP_ERR_BAD_CONNECTION_ID',
          'cid is not a connection ID this app issued (altered, or from another database); poll without cid to get a new one',
        );
      }
      if (known.sessionId !== session.id) throw foreignConnectionId();
      this.store.connections.touch(cid, now);
      return cid;
    }
    this.checkRoomForOneMore(session, now);
    const issued = this.options.ids.issue(session.id);
    if (issued !== null) {
      this.store.connections.record(issued, session.id, now);
      return issued;
    }
    return this.store.connections.create(session.id, now).id;
  }

  /**
   * 503 when the session already polls under `maxConnectionsPerSession` live IDs: rows seen within the
   * window, plus IDs this process issued whose rows are not written yet.
   */
  private checkRoomForOneMore(session: SessionRow, now: number): void {
    const since = now - this.options.connectionLiveMs;
    const live = this.store.connections.live(session.id, since);
    const count = live.count + this.options.liveness.pendingIds(session.id);
    if (count >= this.options.maxConnectionsPerSession) {
      // The oldest one stops counting when its window ends: then a new ID can be issued.
      const pendingOldest = this.options.liveness.oldestPendingIdAt(session.id);
      const oldest = Math.min(live.oldest ?? now, pendingOldest ?? now);
      const retryAfterS = Math.max(1, Math.ceil((oldest - since) / 1000));
      throw new AppError(
        'APP_ERR_TOO_MANY_CONNECTIONS',
        `this session already polls under ${count} connection IDs; reuse one (cid) or retry in ${retryAfterS} s`,
        retryAfterS,
      );
    }
  }
}

function foreignConnectionId(): AppError {
  return new AppError('APP_ERR_FOREIGN_CONNECTION_ID', 'this connection ID belongs to another session');
}
