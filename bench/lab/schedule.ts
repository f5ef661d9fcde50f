/**
 * The publisher's open-loop schedule, pure (no I/O, its clock passed in) so it
 * is tested on its own (test/bench/lab/schedule.test.ts).
 *
 * Message k (k = 0, 1, 2, ...) is due at `startMs + k / rate`, in room
 * k % rooms. Each is stamped with its DUE time, not the time it leaves the
 * queue: a target that falls behind makes the queue wait, and that wait is
 * latency a real sender would have seen (no coordinated omission). A message
 * that falls due while its room's queue is full is dropped: counted in
 * `dropped`, never sent, no seq used (so subscribers count no loss for it).
 */

export interface ScheduleOptions {
  /** Messages per second over all rooms. */
  ratePerS: number;
  /** Messages in the whole run: ceil(duration × rate). */
  total: number;
  rooms: number;
  /** Due messages a room may hold waiting (behind the one in flight); more are dropped. */
  maxQueuePerRoom: number;
  /** The clock's reading when message 0 is due, ms. */
  startMs: number;
}

export class OpenLoopSchedule {
  /** Due messages dropped because their room's queue was full. */
  dropped = 0;
  /** Messages that fell due (queued or dropped). */
  offered = 0;
  private readonly queues: number[][];
  private readonly intervalMs: number;

  constructor(private readonly options: ScheduleOptions) {
    if (!(options.ratePerS > 0) || !Number.isFinite(options.ratePerS)) throw new Error(`ratePerS must be > 0, got ${options.ratePerS}`);
    if (!Number.isInteger(options.rooms) || options.rooms < 1) throw new Error(`rooms must be an integer >= 1, got ${options.rooms}`);
    if (!Number.isInteger(options.total) || options.total < 0) throw new Error(`total must be an integer >= 0, got ${options.total}`);
    this.intervalMs = 1000 / options.ratePerS;
    this.queues = Array.from({ length: options.rooms }, () => []);
  }

  /** Due time of message k on the schedule's clock, ms. */
  dueMs(k: number): number {
    return this.options.startMs + k * this.intervalMs;
  }

  /** Every message has fallen due. */
  get done(): boolean {
    return this.offered >= this.options.total;
  }

  /** When the next message falls due (clock ms), or null when all have. */
  nextDueMs(): number | null {
    return this.done ? null : this.dueMs(this.offered);
  }

  /**
   * Queues (or drops) every message due by `nowMs`, in due order; returns the
   * indexes of the rooms that got a message, so the caller can start them.
   * Bounded by `total`.
   */
  advance(nowMs: number): number[] {
    const touched = new Set<number>();
    const { total, rooms, maxQueuePerRoom } = this.options;
    while (this.offered < total && this.dueMs(this.offered) <= nowMs) {
      const k = this.offered++;
      const room = k % rooms;
      const queue = this.queues[room]!;
      if (queue.length >= maxQueuePerRoom) {
        this.dropped++;
        continue;
      }
      queue.push(this.dueMs(k));
      touched.add(room);
    }
    return [...touched];
  }

  /** Messages waiting in room `room`. */
  waiting(room: number): number {
    return this.queues[room]!.length;
  }

  /** Takes room `room`'s oldest waiting message: its due time (the stamp it is sent with), or null. */
  take(room: number): number | null {
    return this.queues[room]!.shift() ?? null;
  }

  /** Empties room `room`'s queue (it can send nothing more); returns how many were waiting. */
  clear(room: number): number {
    const n = this.queues[room]!.length;
    this.queues[room] = [];
    return n;
  }
}
