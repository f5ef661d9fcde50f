/**
 * Polls parked on a mailbox, waiting for a write or their hold timeout. The
 * registry owns a parked read's whole life: one release path clears its timer
 * and takes it out of its mailbox's set, whether it was answered, timed out,
 * its client went away, or the mailbox was replaced or closed.
 */
import type http from 'node:http';
import type { RoomCursor } from '../../../server/cursors.js';
import type { ChatEvent } from '../../../server/model.js';
import { sendPollAnswer } from '../chat-lab/poll-request.js';
import type { Mailbox } from './mailbox.js';

interface ParkedRead {
  mailbox: Mailbox;
  res: http.ServerResponse;
  cursors: readonly RoomCursor[];
  timer: NodeJS.Timeout;
}

export interface ParkedReadsOptions {
  /** Most events in one answer (the app's `pollBatchMax`). */
  pollBatchMax: number;
  /** Clock, ms since the epoch. */
  now: () => number;
}

export class ParkedReads {
  private readonly byMailbox = new Map<Mailbox, Set<ParkedRead>>();
  private count = 0;
  private closed = false;

  constructor(private readonly options: ParkedReadsOptions) {}

  /** Reads parked right now. */
  get size(): number {
    return this.count;
  }

  has(mailbox: Mailbox): boolean {
    return this.byMailbox.has(mailbox);
  }

  /** Parks `res` on `mailbox` for at most `timeoutMs`; its timeout answer is `{"events":[],"connectionId"}`. */
  park(mailbox: Mailbox, res: http.ServerResponse, cursors: readonly RoomCursor[], timeoutMs: number): void {
    // Gone already: its 'close' has fired and would never release it.
    if (res.destroyed) return;
    if (this.closed) {
      sendPollAnswer(res, mailbox.connectionId, []);
      return;
    }
    const read: ParkedRead = { mailbox, res, cursors, timer: setTimeout(() => this.answer(read, []), timeoutMs) };
    res.once('close', () => {
      if (!res.writableFinished) this.release(read);
    });
    let reads = this.byMailbox.get(mailbox);
    if (reads === undefined) {
      reads = new Set();
      this.byMailbox.set(mailbox, reads);
    }
    reads.add(read);
    this.count++;
  }

  /**
   * After writes into `mailbox`: answers each parked read that now has events
   * past its cursors. One whose cursors the mailbox no longer covers (it
   * overflowed) gets an empty answer: its next poll reads SQLite through the app.
   * Returns how many were answered.
   */
  wake(mailbox: Mailbox): number {
    const reads = this.byMailbox.get(mailbox);
    if (reads === undefined) return 0;
    let answered = 0;
    for (const read of reads) {
      const covered = mailbox.covers(read.cursors);
      const events = covered ? mailbox.pending(read.cursors, this.options.pollBatchMax) : [];
      if (covered && events.length === 0) continue;
      this.answer(read, events);
      answered++;
    }
    return answered;
  }

  /** Answers every read parked on `mailbox` with no events (the mailbox is being replaced or dropped). */
  releaseAll(mailbox: Mailbox): void {
    const reads = this.byMailbox.get(mailbox);
    if (reads === undefined) return;
    for (const read of reads) this.answer(read, []);
  }

  /** From now on a read is answered at once instead of parked (the server is closing). */
  close(): void {
    this.closed = true;
  }

  private answer(read: ParkedRead, events: ChatEvent[]): void {
    if (!this.release(read)) return;
    read.mailbox.lastReadAt = this.options.now();
    sendPollAnswer(read.res, read.mailbox.connectionId, events);
  }

  /** Takes the read out; false if it was already out. */
  private release(read: ParkedRead): boolean {
    const reads = this.byMailbox.get(read.mailbox);
    if (reads === undefined || !reads.delete(read)) return false;
    if (reads.size === 0) this.byMailbox.delete(read.mailbox);
    clearTimeout(read.timer);
    this.count--;
    return true;
  }
}
