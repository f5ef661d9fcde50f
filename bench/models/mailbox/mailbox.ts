/**
 * One client's mailbox (one per connection ID): the events of its rooms that
 * the app wrote into it and the client has not acknowledged yet. Pure data:
 * no I/O, no timers (parked reads and expiry belong to parked-reads.ts and
 * mailbox-store.ts).
 *
 * Coverage is what makes a mailbox safe to answer from: for each subscribed
 * room it knows an id `from` such that it holds every event of that room above
 * `from` not yet acknowledged. A poll is served from the mailbox only when
 * every cursor is at or above its room's `from`; anything older (an overflow
 * dropped it, the mailbox was opened after it) is read from SQLite by the app.
 */
import { timingSafeEqual } from 'node:crypto';
import type { RoomCursor } from '../../../server/cursors.js';
import type { ChatEvent } from '../../../server/model.js';

/** A subscribed room and the id above which the mailbox holds all its events. */
export interface RoomCoverage {
  room: string;
  from: number;
}

export interface MailboxOwner {
  sessionId: number;
  /** The session's `sid` cookie value: a mailbox read needs the same cookie, as an app poll needs the session. */
  token: string;
}

export class Mailbox {
  /** `from` per subscribed room. */
  private readonly coverage = new Map<string, number>();
  /** Unacknowledged events, in id order (the relay publishes in id order). */
  private events: ChatEvent[] = [];
  private readonly tokenBytes: Buffer;
  /** Last time a client read it or the app opened it, ms: the expiry clock. */
  lastReadAt: number;
  /**
   * The owner left one of its rooms (a `leave` event of theirs was written here). Its parked read still gets
   * that event, as through the proxy, but the next poll must go to the app, which refuses a room left.
   */
  ownerLeft = false;

  constructor(
    readonly connectionId: string,
    readonly owner: MailboxOwner,
    rooms: readonly RoomCoverage[],
    /** When the app opened it (its last poll through the app), ms. */
    readonly openedAt: number,
    /** Most events held; beyond it the oldest is dropped and its room's coverage shrinks. */
    private readonly maxEvents: number,
  ) {
    for (const { room, from } of rooms) this.coverage.set(room, from);
    this.tokenBytes = Buffer.from(owner.token);
    this.lastReadAt = openedAt;
  }

  /** Subscribed rooms. */
  rooms(): IterableIterator<string> {
    return this.coverage.keys();
  }

  /** Events held right now. */
  get size(): number {
    return this.events.length;
  }

  /** Is `token` this mailbox's session cookie? Constant time, as the token is a secret. */
  ownedBy(token: string | undefined): boolean {
    if (token === undefined) return false;
    const given = Buffer.from(token);
    return given.length === this.tokenBytes.length && timingSafeEqual(given, this.tokenBytes);
  }

  /** Can a poll with these cursors be answered from here: the same rooms, no cursor below its room's coverage. */
  covers(cursors: readonly RoomCursor[]): boolean {
    if (cursors.length !== this.coverage.size) return false;
    return cursors.every(({ room, cursor }) => {
      const from = this.coverage.get(room);
      return from !== undefined && cursor >= from;
    });
  }

  /**
   * Cursor = acknowledgement: drops every event at or below its room's cursor
   * and moves coverage up to the cursor (events below it are gone now, so an
   * older cursor must go to SQLite). Call only with cursors it `covers`.
   */
  ack(cursors: readonly RoomCursor[]): void {
    const acked = new Map<string, number>();
    for (const { room, cursor } of cursors) {
      acked.set(room, cursor);
      if (cursor > (this.coverage.get(room) ?? 0)) this.coverage.set(room, cursor);
    }
    if (this.events.length > 0) this.events = this.events.filter((e) => e.id > (acked.get(e.room) ?? 0));
  }

  /** Events past the cursors, oldest first, at most `max`. */
  pending(cursors: readonly RoomCursor[], max: number): ChatEvent[] {
    const out: ChatEvent[] = [];
    for (const event of this.events) {
      const cursor = cursors.find((c) => c.room === event.room)?.cursor;
      if (cursor !== undefined && event.id > cursor) out.push(event);
      if (out.length === max) break;
    }
    return out;
  }

  /**
   * The app writes an event of `room`. Returns false when it is not for this
   * mailbox (room not subscribed, or at or below coverage: already known). A
   * full mailbox drops its oldest event and stops covering that room below it.
   */
  write(room: string, event: ChatEvent): boolean {
    const from = this.coverage.get(room);
    if (from === undefined || event.id <= from) return false;
    if (this.events.length >= this.maxEvents) {
      const dropped = this.events.shift()!;
      this.coverage.set(dropped.room, Math.max(this.coverage.get(dropped.room) ?? 0, dropped.id));
    }
    this.events.push(event);
    if (event.type === 'leave' && event.user.id === this.owner.sessionId) this.ownerLeft = true;
    return true;
  }
}
