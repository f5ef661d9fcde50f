/**
 * Which connection IDs a worker knows have nothing queued and no tombstone, so that a poll under one parks
 * without asking the cluster primary (docs/scaleout.md "Workers"; issue 15: a `take` round trip per leased
 * re-poll was most of what two workers cost beyond one process).
 *
 * Why it is safe: the primary tells every worker, in one ordered IPC channel, of every change that can fill an
 * ID's queue or close it (a push or requeue names the ID in a `push` entry, a close in a `close` entry). An ID is
 * marked empty when a take answers `none` and no such entry for it arrived while that take was in flight: any
 * later change reaches this worker after the mark, and clears it. A request parked without a take is then in the
 * registry when that entry arrives, so the entry's own take (hold-delivery.ts `pushNotified`) answers it, as for
 * any request parked after a take. Anything this worker cannot order (a bus gap, a primary that does not announce
 * requeues, e.g. the Redis bus) forgets every mark.
 *
 * The primary still learns that a client polls under the ID (it counts as known for `maxUnknownQueues`): the IDs
 * parked without a take are sent to it as one `seen` message per SEEN_FLUSH_MS.
 */

/** How long IDs parked without a take wait before the primary hears of them, ms: the slot of the hold-timeout wheel. */
export const SEEN_FLUSH_MS = 250;
/** A mark unused for one to two of these is dropped (it costs memory, not correctness), ms. */
export const KNOWN_EMPTY_ROTATE_MS = 60_000;

export interface KnownEmptyOptions {
  /** Sends the IDs parked without a take to the primary. */
  sendSeen(ids: string[]): void;
  seenFlushMs?: number;
  rotateMs?: number;
}

/** Per ID with takes in flight: how many, and whether an entry named it meanwhile. */
interface InFlight {
  count: number;
  changed: boolean;
}

export class KnownEmpty {
  /** Off until the primary says it announces every queue change (its `hello` answer). */
  private enabled = false;
  /** Two generations: a mark used in `recent` stays, one left in `older` at the next rotation goes. */
  private recent = new Set<string>();
  private older = new Set<string>();
  private readonly inFlight = new Map<string, InFlight>();
  /** IDs parked without a take since the last `seen` (an array: a repeat within one flush is rare and harmless). */
  private seen: string[] = [];
  private seenTimer: NodeJS.Timeout | undefined;
  private readonly rotation: NodeJS.Timeout;

  constructor(private readonly options: KnownEmptyOptions) {
    this.rotation = setInterval(() => {
      this.older = this.recent;
      this.recent = new Set();
    }, options.rotateMs ?? KNOWN_EMPTY_ROTATE_MS);
    this.rotation.unref();
  }

  /** The primary announces every change that can fill a queue or close an ID: marks may be trusted. */
  enable(): void {
    this.enabled = true;
  }

  /** Are marks kept at all (else entries need not be read for the IDs they name)? */
  get active(): boolean {
    return this.enabled;
  }

  /**
   * A poll under `id` is deciding: true if its queue is known empty (then it parks without a take, and the
   * primary hears of it with the next `seen`); false if it must take.
   */
  parkWithoutTake(id: string): boolean {
    if (!this.recent.has(id)) {
      if (!this.older.delete(id)) return false;
      this.recent.add(id);
    }
    if (this.seen.length === 0) {
      this.seenTimer = setTimeout(() => this.flushSeen(), this.options.seenFlushMs ?? SEEN_FLUSH_MS);
      this.seenTimer.unref();
    }
    this.seen.push(id);
    return true;
  }

  /** A take for `id` is being sent to the primary. */
  takeSent(id: string): void {
    const flight = this.inFlight.get(id);
    // Sent before marks were kept: entries meanwhile were not read for it, so its answer is not trusted.
    if (flight === undefined) this.inFlight.set(id, { count: 1, changed: !this.enabled });
    else flight.count++;
  }

  /** Its answer (`kind`, or undefined if it failed): `none` with no change announced meanwhile marks `id` empty. */
  takeAnswered(id: string, kind: string | undefined): void {
    const flight = this.inFlight.get(id);
    if (flight === undefined) return;
    if (kind === 'none' && !flight.changed && this.enabled) this.recent.add(id);
    if (--flight.count === 0) this.inFlight.delete(id);
  }

  /** An entry (push, requeue, close) says `id`'s queue or tombstone changed, or this worker requeued to it. */
  changed(id: string): void {
    this.recent.delete(id);
    this.older.delete(id);
    const flight = this.inFlight.get(id);
    if (flight !== undefined) flight.changed = true;
  }

  /** The entry stream may have a gap (or the worker stops): trust no mark, and none from takes in flight. */
  forgetAll(): void {
    this.recent.clear();
    this.older.clear();
    for (const flight of this.inFlight.values()) flight.changed = true;
  }

  /** Marks kept now (for tests and stats). */
  get size(): number {
    return this.recent.size + this.older.size;
  }

  stop(): void {
    clearInterval(this.rotation);
    clearTimeout(this.seenTimer);
    this.forgetAll();
    this.enabled = false;
  }

  private flushSeen(): void {
    const ids = this.seen;
    this.seen = [];
    this.options.sendSeen(ids);
  }
}
