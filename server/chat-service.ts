/**
 * The chat's use cases over the store. Every write runs here, in one IMMEDIATE
 * transaction per request, and every event goes through `EventWriter`, so each
 * event and its outbox row commit together. After a commit that added events,
 * `onEventsCommitted` wakes the relay. Route handlers never publish.
 */
import type { RevokeItem } from '../protocol/control-api.js';
import { AppError, nickTaken, notMember, roomNotFound, sessionEnded } from './errors.js';
import { leaseSubject } from './grip/lease.js';
import { sessionStreamsClosedRow } from './outbox/item-format.js';
import type { ChatEvent, MemberView, RoomView } from './model.js';
import type { RoomRow } from './store/rooms.js';
import type { SessionRow } from './store/sessions.js';
import type { Store } from './store/store.js';
import { LOBBY_ROOM } from './validation.js';
import type { BusyRetry } from './store/busy-retry.js';
import { WriteTransactions } from './store/write-transaction.js';

export interface ChatServiceOptions {
  /** Clock, ms since the epoch. */
  now: () => number;
  /** A member is online if their session polled within this window, ms. */
  presenceWindowMs: number;
  /** Called after a commit that wrote events (and so outbox rows). Must not throw. */
  onEventsCommitted: () => void;
  /** Retries writes that find the database busy. */
  busy: BusyRetry;
  /** Called before presence is read, to write presence recorded elsewhere first (the liveness log). */
  beforePresenceRead?: () => void;
  /**
   * The app grants re-poll leases (docs/protocol.md §13): a leave event then ends the leaving session's
   * leases on every proxy before anyone receives it, so no lease keeps reading the room. Default false.
   */
  revokeLeases?: boolean;
  /**
   * Called inside the transaction of every join that added a member (with the room's new last event id) and
   * every leave, so state that follows memberships (Bayeux `/chat/*` subscriptions) commits with it or not
   * at all. May throw an `AppError` to refuse the change.
   */
  onMembershipChange?: (change: { sessionId: number; roomId: number; joined: boolean; cursor: number }) => void;
}

/** One page of a room's history. */
export interface HistoryPage {
  events: ChatEvent[];
  /** The room's last event id: where a poll for this room starts. */
  cursor: number;
  /** True when older events exist before the first one returned. */
  hasMore: boolean;
}

export class ChatService {
  private readonly writes: WriteTransactions;

  constructor(
    private readonly store: Store,
    private readonly options: ChatServiceOptions,
  ) {
    this.writes = new WriteTransactions(store.db, options.busy, options.onEventsCommitted);
  }

  /**
   * Creates a user with a nick no live session has (else `APP_ERR_NICK_TAKEN`). They are a member of `lobby` from
   * now until the session ends, quietly: no event is written (a sign-in per visitor would flood the lobby); the
   * members panel shows them, online while they poll. The session's end writes the `leave` (server/session-end.ts).
   */
  createSession(nick: string, via: SessionRow['via'] = 'http'): Promise<{ session: SessionRow }> {
    return this.write(() => {
      if (this.store.sessions.liveByNick(nick) !== undefined) throw nickTaken(nick);
      const now = this.options.now();
      const session = this.store.sessions.create(nick, now, via);
      const lobby = this.store.rooms.findByName(LOBBY_ROOM);
      // Migration 1 creates the lobby; without it the database is not ours.
      if (!lobby) throw new Error('the lobby room is missing');
      this.store.rooms.addMember(lobby.id, session.id, now);
      return { session };
    });
  }

  /**
   * Gives the session another nick, under the same rules as signing in (a change of case alone is allowed), and
   * tells each of its rooms with a `nick` event. The same nick again changes nothing and writes no event.
   */
  changeNick(session: SessionRow, nick: string): Promise<{ user: { id: number; nick: string }; events: ChatEvent[] }> {
    return this.write(() => {
      this.mustNotHaveEnded(session);
      const current = this.store.sessions.findById(session.id)!;
      if (current.nick === nick) return { user: { id: current.id, nick }, events: [] };
      const holder = this.store.sessions.liveByNick(nick);
      if (holder !== undefined && holder.id !== current.id) throw nickTaken(nick);
      this.store.sessions.rename(current.id, nick);
      const now = this.options.now();
      const renamed = { ...current, nick };
      const events = this.store.rooms.roomsOf(current.id).map((room) => this.append(room, renamed, 'nick', now, undefined, undefined, undefined, current.nick));
      return { user: { id: current.id, nick }, events };
    });
  }

  /**
   * Creates an empty room (nobody joins it) and announces it with a `room` event in `lobby`, written in the same
   * transaction: every session is a member of the lobby and polls it, so rooms lists update at once, through
   * the outbox like any event (nothing lost, in order), instead of at the clients' next `GET /api/rooms`.
   */
  createRoom(session: SessionRow, name: string): Promise<RoomView> {
    return this.write(() => {
      this.mustNotHaveEnded(session);
      const now = this.options.now();
      const room = this.store.rooms.create(name, now);
      if (!room) throw new AppError('APP_ERR_ROOM_EXISTS', `room ${JSON.stringify(name)} already exists`);
      const lobby = this.store.rooms.findByName(LOBBY_ROOM);
      if (lobby) this.append(lobby, session, 'room', now, undefined, undefined, undefined, undefined, room.name);
      return this.store.rooms.view(room.id);
    });
  }

  /**
   * Every room, by name, each marked `joined` when the session is a member: memberships belong to the session, so
   * a new tab (or a reload) opens the rooms its user joined elsewhere.
   */
  listRooms(session: SessionRow): Array<RoomView & { joined: boolean }> {
    return this.read(() => {
      const mine = new Set(this.store.rooms.roomsOf(session.id).map((r) => r.name));
      return this.store.rooms.list().map((room) => ({ ...room, joined: mine.has(room.name) }));
    });
  }

  /**
   * Joins a room, announced by a `join` event unless already a member.
   * `cursor` is the room's last event id (including that join event):
   * the client starts polling there, after loading history if it wants it.
   */
  joinRoom(session: SessionRow, roomName: string): Promise<{ room: RoomView; cursor: number; event: ChatEvent | null }> {
    return this.write(() => {
      this.mustNotHaveEnded(session);
      const now = this.options.now();
      const room = this.room(roomName);
      const added = this.store.rooms.addMember(room.id, session.id, now);
      const event = added ? this.append(room, session, 'join', now) : null;
      const view = this.store.rooms.view(room.id);
      if (added) this.options.onMembershipChange?.({ sessionId: session.id, roomId: room.id, joined: true, cursor: view.lastEventId });
      return { room: view, cursor: view.lastEventId, event };
    });
  }

  /** Leaves a room; the remaining members see a `leave` event. */
  leaveRoom(session: SessionRow, roomName: string): Promise<{ room: RoomView; event: ChatEvent }> {
    return this.write(() => {
      this.mustNotHaveEnded(session);
      const room = this.room(roomName);
      if (!this.store.rooms.removeMember(room.id, session.id)) throw notMember(roomName);
      const now = this.options.now();
      // Every lease this session holds may name the room; the next polls go to the app, which knows it left.
      const revoke = this.options.revokeLeases === true ? [{ subject: leaseSubject(session.id), 'issued-before': now }] : undefined;
      const event = this.append(room, session, 'leave', now, undefined, revoke);
      // The session's streams got the room's events up to this leave; they end here and reconnect without it.
      this.store.outbox.insert(sessionStreamsClosedRow(session.id, now));
      this.options.onMembershipChange?.({ sessionId: session.id, roomId: room.id, joined: false, cursor: event.id });
      return { room: this.store.rooms.view(room.id), event };
    });
  }

  /**
   * Posts a message (already validated text) in a room the session is a member of. With an idempotency key the
   * session used before for the same room and text, nothing is written and that message is returned
   * (`replayed`): a client may resend a post whose answer it never got without posting it twice.
   */
  postMessage(session: SessionRow, roomName: string, text: string, idempotencyKey?: string): Promise<{ event: ChatEvent; replayed: boolean }> {
    return this.write(() => {
      this.mustNotHaveEnded(session);
      const room = this.memberRoom(session, roomName);
      if (idempotencyKey !== undefined) {
        const earlier = this.store.events.byIdempotencyKey(session.id, idempotencyKey);
        if (earlier !== undefined) {
          if (earlier.room !== room.name || earlier.text !== text) {
            throw new AppError('APP_ERR_IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was already used for another message');
          }
          return { event: earlier, replayed: true };
        }
      }
      return { event: this.append(room, session, 'message', this.options.now(), text, undefined, idempotencyKey), replayed: false };
    });
  }

  /** The room's members with presence. */
  members(session: SessionRow, roomName: string): MemberView[] {
    this.options.beforePresenceRead?.();
    return this.read(() => {
      const room = this.memberRoom(session, roomName);
      const onlineSince = this.options.now() - this.options.presenceWindowMs;
      return this.store.rooms.members(room.id).map((m) => ({
        id: m.id,
        nick: m.nick,
        online: m.lastPollAt !== null && m.lastPollAt >= onlineSince,
      }));
    });
  }

  /** Up to `limit` events with id < `before` (all types), oldest first. */
  history(session: SessionRow, roomName: string, before: number, limit: number): HistoryPage {
    return this.read(() => {
      const room = this.memberRoom(session, roomName);
      // One extra row tells whether older events exist.
      const newestFirst = this.store.events.beforeNewestFirst(room.id, before, limit + 1);
      const hasMore = newestFirst.length > limit;
      const events = newestFirst.slice(0, limit).reverse();
      return { events, cursor: this.store.events.lastId(room.id), hasMore };
    });
  }

  /**
   * Under the write lock: a request that authenticated just before its session ended (a sign-out in another
   * tab, the pruner) writes nothing, so no membership or message outlives the session.
   */
  private mustNotHaveEnded(session: SessionRow): void {
    const row = this.store.sessions.findById(session.id);
    if (row !== undefined && row.endedAt !== null) throw sessionEnded(row.endReason ?? 'expired');
  }

  private room(name: string): RoomRow {
    const room = this.store.rooms.findByName(name);
    if (!room) throw roomNotFound(name);
    return room;
  }

  private memberRoom(session: SessionRow, name: string): RoomRow {
    const room = this.room(name);
    if (!this.store.rooms.isMember(room.id, session.id)) throw notMember(name);
    return room;
  }

  private append(
    room: RoomRow,
    session: SessionRow,
    type: ChatEvent['type'],
    at: number,
    text?: string,
    revoke?: RevokeItem[],
    idempotencyKey?: string,
    previousNick?: string,
    createdRoom?: string,
  ): ChatEvent {
    this.writes.outboxWritten(); // every event has its outbox row (EventWriter)
    // The nick as it is under the write lock: a change made in another tab since this request read its session wins.
    const user = { id: session.id, nick: this.store.sessions.findById(session.id)?.nick ?? session.nick };
    return this.store.eventWriter.append({
      room,
      type,
      user,
      at,
      ...(text === undefined ? {} : { text }),
      ...(revoke === undefined ? {} : { revoke }),
      ...(idempotencyKey === undefined ? {} : { idempotencyKey }),
      ...(previousNick === undefined ? {} : { previousNick }),
      ...(createdRoom === undefined ? {} : { createdRoom }),
    });
  }

  /** One write transaction (store/write-transaction.ts); the relay is nudged after a commit that appended events. */
  private write<T>(fn: () => T): Promise<T> {
    return this.writes.run(fn);
  }

  /** Runs reads in one transaction so they see one snapshot (e.g. a page and its cursor). */
  private read<T>(fn: () => T): T {
    return this.store.db.transaction(fn).deferred();
  }
}
