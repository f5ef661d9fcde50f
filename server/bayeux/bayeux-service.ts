/**
 * The Bayeux module's state work (docs/bayeux.md): clients bound to a session
 * and a connection ID, their subscriptions and cursors, ack batches, and the
 * wake items that re-ask a held connect when its subscriptions change. Chat
 * writes (joins, messages, sessions) go through `ChatService`, so browsers and
 * CometD clients share one write path. Each operation is one transaction.
 */
import { randomBytes } from 'node:crypto';
import type { HttpResponseFormat } from '../../protocol/control-api.js';
import type { ChatService } from '../chat-service.js';
import { AppError, roomNotFound } from '../errors.js';
import type { ChatEvent } from '../model.js';
import { VIA_NAME, VIA_PATTERN, type BayeuxClientRow, type BayeuxClientsRepo } from '../store/bayeux-clients.js';
import type { BusyRetry } from '../store/busy-retry.js';
import { WriteTransactions } from '../store/write-transaction.js';
import type { SessionRow } from '../store/sessions.js';
import type { Store } from '../store/store.js';
import { bayeuxHintChannel, bayeuxRoomChannel, bayeuxWakeChannel, roomOfGripChannel } from './channels.js';
import { BayeuxError } from './errors.js';

export interface BayeuxServiceOptions {
  /** Clock, ms since the epoch. */
  now: () => number;
  busy: BusyRetry;
  /** Most events in one connect reply. */
  batchMax: number;
  /** A client not seen (connecting) for this long is forgotten: its next message gets 402, ms. */
  clientTtlMs: number;
  /** Liveness (client, connection ID, session presence) is written only when older than this, ms. */
  refreshMs: number;
  /** A connection ID counts as in use while it was seen within this window, ms (as for polls). */
  connectionLiveMs: number;
  /** Connection IDs one session may use at once (`maxConnectionsPerSession`). */
  maxConnectionsPerSession: number;
  /** The session's connection IDs issued by polls and not yet written (they count like rows). Default none. */
  pendingConnectionIds?: (sessionId: number) => number;
  /** Called after a commit that wrote outbox rows (wakes). Must not throw. */
  onOutboxWritten: () => void;
  /** Is the client's session still usable (not expired, not ended)? A client of one that is not is unknown (402). Default: yes. */
  sessionUsable?: (session: SessionRow) => boolean;
  /** Frees a nick held by a session nobody can use any more (SessionEnder.freeNick); true when freed. */
  freeNick: (nick: string) => Promise<boolean>;
}

/** A live client and its session. */
export interface BayeuxClient {
  row: BayeuxClientRow;
  session: SessionRow;
}

export interface ConnectResult {
  client: BayeuxClientRow;
  /** Events past the cursors, oldest first, at most `batchMax`. */
  events: ChatEvent[];
  /** The ack batch these events belong to (ack clients), else the client's current batch. */
  batch: number;
  /** True when this was the client's first connect (never held, as in CometD). */
  first: boolean;
  /** Each subscribed room's last event id, when there are no events (the hold's prev-ids). */
  lastIds: Array<{ room: string; lastEventId: number }>;
}

/**
 * Most rooms one client subscribes to, as a poll names at most 50 (server/cursors.ts): it bounds
 * each connect's reads and the hold's `Grip-Channel` header.
 */
export const BAYEUX_MAX_SUBSCRIPTIONS = 50;

/** Expired clients one handshake deletes at most. */
const PURGE_PER_HANDSHAKE = 100;
/** Bytes of randomness in a clientId (256 bits): the clientId is the client's only credential. */
const CLIENT_ID_BYTES = 32;
const WAKE_FORMAT: HttpResponseFormat = { action: 'hint' };

/**
 * The relay's hint rule: an item on `room:<name>` gets a hint on `bayeux:room:<name>`
 * when some Bayeux client subscribes to the room. The relay asks after the event
 * committed, so a subscription it misses was made later, and that client's next
 * connect reads the event past its cursor itself.
 */
export function bayeuxHintChannelFor(clients: BayeuxClientsRepo, gripChannel: string): string | null {
  const room = roomOfGripChannel(gripChannel);
  if (room === null || !clients.roomHasSubscribers(room)) return null;
  return bayeuxHintChannel(room);
}

export class BayeuxService {
  private readonly writes: WriteTransactions;

  constructor(
    private readonly store: Store,
    private readonly clients: BayeuxClientsRepo,
    private readonly chat: ChatService,
    private readonly options: BayeuxServiceOptions,
  ) {
    this.writes = new WriteTransactions(store.db, options.busy, options.onOutboxWritten);
  }

  /**
   * A new client for `session`: a clientId and a connection ID issued by the app,
   * both bound to the session. Throws 503 `APP_ERR_TOO_MANY_CONNECTIONS` like a poll would.
   */
  handshake(session: SessionRow, ack: boolean): Promise<{ clientId: string; connectionId: string }> {
    return this.write(() => {
      const now = this.options.now();
      this.clients.purgeExpired(now - this.options.clientTtlMs, PURGE_PER_HANDSHAKE);
      const since = now - this.options.connectionLiveMs;
      const live = this.store.connections.live(session.id, since);
      const count = live.count + (this.options.pendingConnectionIds?.(session.id) ?? 0);
      if (count >= this.options.maxConnectionsPerSession) {
        const retryAfterS = Math.max(1, Math.ceil(((live.oldest ?? now) - since) / 1000));
        throw new AppError('APP_ERR_TOO_MANY_CONNECTIONS', `this session already uses ${count} connection IDs; retry in ${retryAfterS} s`, retryAfterS);
      }
      const connectionId = this.store.connections.create(session.id, now).id;
      const clientId = randomBytes(CLIENT_ID_BYTES).toString('base64url');
      this.clients.create({ id: clientId, sessionId: session.id, connectionId, ack, now });
      return { clientId, connectionId };
    });
  }

  /**
   * A new chat session, as `POST /api/session` makes, but reachable only through its clientIds. Its nick taken by
   * a session nobody can use any more (expired, or made this way and left without a live client) is freed first.
   */
  async createSession(nick: string): Promise<SessionRow> {
    try {
      return (await this.chat.createSession(nick, 'bayeux')).session;
    } catch (err) {
      if (!(err instanceof AppError && err.code === 'APP_ERR_NICK_TAKEN') || !(await this.options.freeNick(nick))) throw err;
      return (await this.chat.createSession(nick, 'bayeux')).session;
    }
  }

  /** Whether the session has a client not past its time to live (read inside the caller's transaction). */
  hasLiveClient(sessionId: number): boolean {
    const since = this.options.now() - this.options.clientTtlMs;
    return this.clients.ofSession(sessionId).some((c) => c.lastSeenAt >= since);
  }

  /** The live client named by `clientId` with its session, or null (unknown or expired: 402). */
  find(clientId: string): BayeuxClient | null {
    return this.store.db.transaction(() => this.findLive(clientId)).deferred();
  }

  /**
   * A `/meta/connect`: applies the client's ack, refreshes liveness, reads the
   * events past its cursors and records them as sent (ack: in a new batch whose
   * cursors move only when acked; without ack: delivered now). Null for an unknown client.
   */
  connect(clientId: string, ackBatch: number | undefined): Promise<ConnectResult | null> {
    return this.write(() => {
      const found = this.findLive(clientId);
      if (found === null) return null;
      const { row: client, session } = found;
      const now = this.options.now();
      // Idempotent: a re-asked connect carries the same ack, and the batch's cursors are already committed.
      if (client.ack && ackBatch !== undefined && ackBatch === client.batch && client.batch > 0) this.clients.commitSent(client.id);
      this.refreshLiveness(client, session, now);
      const first = !client.connected;
      if (first) this.clients.markConnected(client.id);

      const subs = this.clients.subscriptions(client.id);
      const max = this.options.batchMax;
      // Per-room index range scans merged by id: the cut at `max` keeps a prefix of every room.
      const events = subs
        .flatMap((s) => this.store.events.after(s.roomId, s.cursor, max))
        .sort((a, b) => a.id - b.id)
        .slice(0, max);
      let batch = client.batch;
      if (events.length > 0) {
        const lastOfRoom = new Map<string, number>();
        for (const e of events) lastOfRoom.set(e.room, e.id);
        if (client.ack) {
          batch = client.batch + 1;
          this.clients.setBatch(client.id, batch);
          // The new batch supersedes an unacked one: `sent` is recomputed from the cursor for every room.
          for (const s of subs) this.clients.markSent(client.id, s.roomId, lastOfRoom.get(s.room) ?? s.cursor);
        } else {
          for (const s of subs) {
            const last = lastOfRoom.get(s.room);
            if (last !== undefined) this.clients.markDelivered(client.id, s.roomId, last);
          }
        }
      }
      const lastIds = events.length > 0 ? [] : subs.map((s) => ({ room: s.room, lastEventId: this.store.events.lastId(s.roomId) }));
      return { client: { ...client, batch, connected: true }, events, batch, first, lastIds };
    });
  }

  /**
   * Joins the room (a `join` event unless already a member, as `POST /api/rooms/:room/join`)
   * and subscribes at the room's last event id; a new subscription wakes the held connect
   * so it re-parks on the room. Subscribing twice keeps the first cursor.
   */
  async subscribe(client: BayeuxClient, room: string): Promise<boolean> {
    // Checked before joining too, so a refused subscription writes no join event.
    this.checkRoomFor(client.row.id, room);
    const { cursor } = await this.chat.joinRoom(client.session, room);
    return this.write(() => {
      const row = this.clients.find(client.row.id);
      if (row === undefined) return false;
      const roomRow = this.checkRoomFor(row.id, room);
      if (this.clients.subscribe(row.id, roomRow.id, cursor, VIA_NAME)) this.wake(row);
      return true;
    });
  }

  /**
   * Subscribes to a room pattern (`bit` of `ROOM_PATTERNS`): every room the session is a member of,
   * which is every room it may read, from its last event id on; rooms it joins later follow in the
   * join's transaction (`membershipChanged`). Nothing is joined: joining announces a user to a room's
   * members, which a pattern must not do behind their back. Counted against `BAYEUX_MAX_SUBSCRIPTIONS`
   * as one subscription per covered room; over it, nothing changes.
   */
  subscribePattern(client: BayeuxClient, bit: number, pattern: string): Promise<boolean> {
    return this.write(() => {
      const row = this.clients.find(client.row.id);
      if (row === undefined) return false;
      const subs = this.clients.subscriptions(row.id);
      const have = new Set(subs.map((s) => s.roomId));
      const rooms = this.store.rooms.roomsOf(row.sessionId);
      const added = rooms.filter((r) => !have.has(r.id)).length;
      if (subs.length + added > BAYEUX_MAX_SUBSCRIPTIONS) {
        throw new BayeuxError(
          'BAYEUX_ERR_TOO_MANY_SUBSCRIPTIONS',
          `at most ${BAYEUX_MAX_SUBSCRIPTIONS} subscriptions per client, and this pattern would make ${subs.length + added}`,
          pattern,
        );
      }
      this.clients.setPatterns(row.id, row.patterns | bit);
      for (const room of rooms) this.clients.subscribe(row.id, room.id, this.store.events.lastId(room.id), VIA_PATTERN);
      if (added > 0) this.wake(row);
      return true;
    });
  }

  /** Drops a room pattern; rooms also subscribed by name, or by the other pattern, stay. */
  unsubscribePattern(client: BayeuxClient, bit: number): Promise<boolean> {
    return this.write(() => {
      const row = this.clients.find(client.row.id);
      if (row === undefined) return false;
      const patterns = row.patterns & ~bit;
      this.clients.setPatterns(row.id, patterns);
      if (patterns === 0) this.clients.clearVia(row.id, VIA_PATTERN);
      return true;
    });
  }

  /**
   * A membership changed, inside the transaction that changed it (ChatService's join or leave),
   * so a pattern's rooms are exactly the session's memberships at every commit. A join adds the room
   * to each pattern client of the session at `cursor` (the join event included, as `POST .../join`
   * answers) and wakes its held connect; a leave takes it away at once (what the client had not yet
   * received from that room is not sent). A join that would give a pattern client a 51st room throws
   * 403 `APP_ERR_TOO_MANY_SUBSCRIPTIONS`, which rolls the join back: a pattern never silently misses a room.
   */
  membershipChanged(change: { sessionId: number; roomId: number; joined: boolean; cursor: number }): void {
    for (const row of this.clients.ofSession(change.sessionId)) {
      if (row.patterns === 0) continue;
      if (!change.joined) {
        this.clients.unsubscribe(row.id, change.roomId, VIA_PATTERN);
        continue;
      }
      const subs = this.clients.subscriptions(row.id);
      if (subs.length >= BAYEUX_MAX_SUBSCRIPTIONS && !subs.some((s) => s.roomId === change.roomId)) {
        throw new AppError(
          'APP_ERR_TOO_MANY_SUBSCRIPTIONS',
          `a CometD client of this session subscribes to /chat/* and already follows ${BAYEUX_MAX_SUBSCRIPTIONS} rooms, its limit: leave a room first`,
        );
      }
      if (this.clients.subscribe(row.id, change.roomId, change.cursor, VIA_PATTERN)) this.wake(row);
    }
  }

  /**
   * Drops the subscription; the session stays a member of the room (membership is the
   * user's, a subscription one client's). No wake: a later hint for that room re-asks the held
   * connect, which finds nothing and is answered, and the next connect parks on the rooms left.
   */
  unsubscribe(client: BayeuxClient, room: string): Promise<boolean> {
    return this.write(() => {
      if (this.clients.find(client.row.id) === undefined) return false;
      const roomRow = this.store.rooms.findByName(room);
      // A room a pattern also covers keeps its row (and cursor) while the pattern lasts.
      if (roomRow) this.clients.unsubscribe(client.row.id, roomRow.id, VIA_NAME);
      return true;
    });
  }

  /** Posts a message (already validated text) as the client's session. */
  async publish(client: BayeuxClient, room: string, text: string): Promise<ChatEvent> {
    return (await this.chat.postMessage(client.session, room, text)).event;
  }

  /** Forgets the client and wakes its held connect (which then gets 402). False if it was unknown. */
  disconnect(clientId: string): Promise<boolean> {
    return this.write(() => {
      const row = this.clients.find(clientId);
      if (row === undefined) return false;
      this.clients.remove(clientId);
      this.wake(row);
      return true;
    });
  }

  /**
   * Forgets every client of the session and wakes its held connect, which is re-asked and gets 402
   * (a session ending). Runs inside the caller's write transaction; the caller nudges the relay.
   */
  forgetClientsOf(sessionId: number): number {
    const rows = this.clients.ofSession(sessionId);
    for (const row of rows) {
      this.clients.remove(row.id);
      this.wake(row);
    }
    return rows.length;
  }

  /** The room, if it exists and the client may subscribe to it (already does, or is under the limit). */
  private checkRoomFor(clientId: string, room: string): { id: number } {
    const roomRow = this.store.rooms.findByName(room);
    if (!roomRow) throw roomNotFound(room);
    const subs = this.clients.subscriptions(clientId);
    if (subs.length >= BAYEUX_MAX_SUBSCRIPTIONS && !subs.some((s) => s.roomId === roomRow.id)) {
      throw new BayeuxError('BAYEUX_ERR_TOO_MANY_SUBSCRIPTIONS', `at most ${BAYEUX_MAX_SUBSCRIPTIONS} subscriptions per client`, bayeuxRoomChannel(room));
    }
    return roomRow;
  }

  private findLive(clientId: string): BayeuxClient | null {
    const row = this.clients.find(clientId);
    if (row === undefined || row.lastSeenAt < this.options.now() - this.options.clientTtlMs) return null;
    const session = this.store.sessions.findById(row.sessionId);
    if (session === undefined || session.endedAt !== null || this.options.sessionUsable?.(session) === false) return null;
    return { row, session };
  }

  /** Writes liveness only when stale, like polls do (chat-core.ts `presenceRefreshMs`). */
  private refreshLiveness(client: BayeuxClientRow, session: SessionRow, now: number): void {
    const refreshMs = this.options.refreshMs;
    if (now - client.lastSeenAt >= refreshMs) {
      this.clients.touch(client.id, now);
      this.store.connections.touch(client.connectionId, now);
    }
    if (session.lastPollAt === null || now - session.lastPollAt >= refreshMs) this.store.sessions.touchPoll(session.id, now);
  }

  /** A hint on the client's wake channel, committed with the change that needs it. */
  private wake(row: BayeuxClientRow): void {
    const next = row.wakeId + 1;
    this.clients.setWakeId(row.id, next);
    this.store.outbox.insert({
      channel: bayeuxWakeChannel(row.connectionId),
      itemId: String(next),
      prevId: String(row.wakeId),
      payload: JSON.stringify(WAKE_FORMAT),
      createdAt: this.options.now(),
    });
    this.writes.outboxWritten();
  }

  /** One write transaction (store/write-transaction.ts); the relay is nudged after a commit with wakes. */
  private write<T>(fn: () => T): Promise<T> {
    return this.writes.run(fn);
  }
}
