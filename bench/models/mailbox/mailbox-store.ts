/**
 * The web tier's mailboxes, in this process's memory: one per connection ID,
 * indexed by room for the app's writes. The app writes each committed event
 * into the mailbox of every connection subscribed to its room (fan-out at
 * write time) and wakes the reads parked there. A mailbox not read for
 * `ttlMs` is dropped; the client's next poll then goes through the app, which
 * reads SQLite by its cursors and opens a new one, so expiry loses nothing.
 */
import type { PublishedEvent } from '../chat-lab/in-process-publisher.js';
import { Mailbox, type MailboxOwner, type RoomCoverage } from './mailbox.js';
import type { ParkedReads } from './parked-reads.js';

export interface MailboxStoreOptions {
  /** Drop a mailbox nobody read (or parked on) for this long, ms. */
  ttlMs: number;
  /** Events one mailbox holds at most; an overflow sends that client's next poll to SQLite. */
  maxEvents: number;
  /**
   * A mailbox older than this (since the app opened it) is not answered from: the next poll goes through the app,
   * which records presence and keeps the connection ID live (the tier itself never writes SQLite), ms.
   */
  appRefreshMs: number;
  /** Clock, ms since the epoch. */
  now: () => number;
}

/** Longest pause between expiry sweeps, ms: expiry is also checked on every lookup, the sweep only frees memory. */
const MAX_SWEEP_INTERVAL_MS = 5000;

export class MailboxStore {
  private readonly byConnection = new Map<string, Mailbox>();
  private readonly byRoom = new Map<string, Set<Mailbox>>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly options: MailboxStoreOptions,
    private readonly reads: ParkedReads,
  ) {
    this.sweeper = setInterval(() => this.sweep(), Math.max(10, Math.min(MAX_SWEEP_INTERVAL_MS, Math.floor(options.ttlMs / 2))));
    this.sweeper.unref();
  }

  /** Mailboxes alive right now. */
  get size(): number {
    return this.byConnection.size;
  }

  /** The live mailbox of a connection ID, if the tier may answer from it (fresh enough, its owner still in its rooms). */
  get(connectionId: string): Mailbox | undefined {
    const mailbox = this.byConnection.get(connectionId);
    if (mailbox === undefined || mailbox.ownerLeft) return undefined;
    const now = this.options.now();
    if (this.expired(mailbox, now)) {
      this.drop(mailbox);
      return undefined;
    }
    return now - mailbox.openedAt < this.options.appRefreshMs ? mailbox : undefined;
  }

  /**
   * After a poll through the app: the connection's mailbox starts over, empty,
   * subscribed to the polled rooms and covering each above `rooms[i].from`.
   * Reads parked on the one it replaces get an empty answer.
   */
  open(connectionId: string, owner: MailboxOwner, rooms: readonly RoomCoverage[]): Mailbox {
    const old = this.byConnection.get(connectionId);
    if (old !== undefined) this.drop(old);
    const mailbox = new Mailbox(connectionId, owner, rooms, this.options.now(), this.options.maxEvents);
    this.byConnection.set(connectionId, mailbox);
    for (const { room } of rooms) {
      let set = this.byRoom.get(room);
      if (set === undefined) {
        set = new Set();
        this.byRoom.set(room, set);
      }
      set.add(mailbox);
    }
    return mailbox;
  }

  /**
   * The app's write: every event into every subscribed mailbox, then each
   * touched mailbox wakes its parked reads once (a batch answers together).
   * Returns how many reads were answered.
   */
  write(events: readonly PublishedEvent[]): number {
    const touched = new Set<Mailbox>();
    for (const { room, event } of events) {
      const subscribers = this.byRoom.get(room);
      if (subscribers === undefined) continue;
      for (const mailbox of subscribers) if (mailbox.write(room, event)) touched.add(mailbox);
    }
    let answered = 0;
    for (const mailbox of touched) answered += this.reads.wake(mailbox);
    return answered;
  }

  /** Stops the sweep and drops every mailbox, answering its parked reads; later reads are answered at once. Idempotent. */
  close(): void {
    clearInterval(this.sweeper);
    this.reads.close();
    for (const mailbox of [...this.byConnection.values()]) this.drop(mailbox);
  }

  private sweep(): void {
    const now = this.options.now();
    for (const mailbox of this.byConnection.values()) if (this.expired(mailbox, now)) this.drop(mailbox);
  }

  /** Unread for `ttlMs` and nobody parked on it (a parked read is a read in progress). */
  private expired(mailbox: Mailbox, now: number): boolean {
    return now - mailbox.lastReadAt > this.options.ttlMs && !this.reads.has(mailbox);
  }

  private drop(mailbox: Mailbox): void {
    this.reads.releaseAll(mailbox);
    if (this.byConnection.get(mailbox.connectionId) === mailbox) this.byConnection.delete(mailbox.connectionId);
    for (const room of mailbox.rooms()) {
      const set = this.byRoom.get(room);
      set?.delete(mailbox);
      if (set?.size === 0) this.byRoom.delete(room);
    }
  }
}
