/**
 * Hold timeouts on one coarse wheel (docs/protocol.md §4 step 5, issue 15): instead of a Node `Timeout`
 * per parked request (about 0.2 KB each with its callback), every deadline is rounded UP to the next
 * multiple of `granularityMs` and kept in that slot's set; one timer is armed for the earliest slot.
 * A hold therefore times out no sooner than its timeout and at most `granularityMs` later. The timer
 * runs only while some hold waits, so an empty registry arms none. Time comes from the injected timers;
 * the lifecycle gives it the monotonic clock (`monotonicNow`), as Node's own timers use, so a step of the
 * wall clock moves no deadline.
 *
 * Each slot is a list linked through its items (issue 15), not a Set: the requests answered by a publish left
 * their slots' Sets one by one and their re-polls filled new ones, so every delivery cycle shrank and grew
 * thousand-entry hash tables (garbage the scavenger then copied). An item carries its slot and its two
 * neighbours, so it can be on the wheel once at a time.
 */
import type { ProxyTimers } from '../options.js';

/** The wheel's slot width, ms: the most a hold timeout can run late (docs/protocol.md §4 step 5). */
export const HOLD_TIMEOUT_GRANULARITY_MS = 250;

/** A slot number meaning "not on the wheel". */
export const NO_SLOT = -1;

/** What the wheel keeps on each item: its slot (NO_SLOT when off the wheel) and its neighbours there. */
export interface TimeoutLinks<T> {
  timeoutSlot: number;
  timeoutPrev: T | null;
  timeoutNext: T | null;
}

/** The items due in one slot, in the order they were added. */
class Slot<T> {
  first: T | null = null;
  last: T | null = null;
  size = 0;
}

export class HoldTimeouts<T extends TimeoutLinks<T>> {
  private readonly slots = new Map<number, Slot<T>>();
  /** The slot numbers in `slots`, ascending (a few hundred at most: the longest timeout over the width). */
  private readonly order: number[] = [];
  /** Slots are counted from here so they stay small integers (V8 keeps those unboxed). */
  private readonly epochMs: number;
  private timer: unknown = null;
  private armedSlot = Infinity;

  /** `onTimeout(item)` is called once for each item whose slot came due, earliest slot first, the item already off the wheel. */
  constructor(
    private readonly timers: ProxyTimers,
    private readonly onTimeout: (item: T) => void,
    private readonly granularityMs = HOLD_TIMEOUT_GRANULARITY_MS,
  ) {
    if (!Number.isInteger(granularityMs) || granularityMs < 1) throw new RangeError('granularityMs must be an integer >= 1');
    this.epochMs = timers.now();
  }

  /** Items waiting now. */
  get size(): number {
    let n = 0;
    for (const slot of this.slots.values()) n += slot.size;
    return n;
  }

  /** Is the wheel's one timer armed? (Only while some item waits.) */
  get armed(): boolean {
    return this.timer !== null;
  }

  /** Times `item` (not on the wheel now) out `timeoutMs` from now, rounded up to the slot width; sets its `timeoutSlot`. */
  add(item: T, timeoutMs: number): void {
    const number = Math.ceil((this.timers.now() - this.epochMs + timeoutMs) / this.granularityMs);
    let slot = this.slots.get(number);
    if (slot === undefined) {
      this.slots.set(number, (slot = new Slot<T>()));
      this.order.splice(this.insertionPoint(number), 0, number);
    }
    item.timeoutSlot = number;
    item.timeoutPrev = slot.last;
    item.timeoutNext = null;
    if (slot.last !== null) slot.last.timeoutNext = item;
    else slot.first = item;
    slot.last = item;
    slot.size++;
    if (number < this.armedSlot) this.arm(number);
  }

  /** Takes `item` off the wheel (a no-op if it is not on it); the timer stops when the last one goes. */
  remove(item: T): void {
    const number = item.timeoutSlot;
    const slot = number === NO_SLOT ? undefined : this.slots.get(number);
    item.timeoutSlot = NO_SLOT;
    if (slot === undefined) return;
    if (item.timeoutPrev !== null) item.timeoutPrev.timeoutNext = item.timeoutNext;
    else slot.first = item.timeoutNext;
    if (item.timeoutNext !== null) item.timeoutNext.timeoutPrev = item.timeoutPrev;
    else slot.last = item.timeoutPrev;
    item.timeoutPrev = null;
    item.timeoutNext = null;
    if (--slot.size > 0) return;
    this.slots.delete(number);
    this.order.splice(this.insertionPoint(number), 1);
    if (this.order.length === 0) this.disarm();
  }

  private fire(firedSlot: number): void {
    this.timer = null;
    this.armedSlot = Infinity;
    // A timer may run a little before the clock reaches its slot (ms rounding): the slot it was armed for is due anyway.
    const dueSlot = Math.max(firedSlot, Math.floor((this.timers.now() - this.epochMs) / this.granularityMs));
    let failure: { err: unknown } | null = null;
    while (this.order.length > 0 && this.order[0]! <= dueSlot) {
      const number = this.order.shift()!;
      const slot = this.slots.get(number)!;
      this.slots.delete(number);
      // Every item of the slot leaves the wheel before the first callback (a callback's `remove` then finds nothing
      // to do, its `add` starts afresh); the array is made once per slot that comes due, not per request.
      const due: T[] = new Array<T>(slot.size);
      let n = 0;
      for (let item = slot.first; item !== null; ) {
        const next: T | null = item.timeoutNext;
        item.timeoutSlot = NO_SLOT;
        item.timeoutPrev = null;
        item.timeoutNext = null;
        due[n++] = item;
        item = next;
      }
      for (const item of due) {
        // One failing answer must not leave the rest of the slot parked forever; the first error still surfaces.
        try {
          this.onTimeout(item);
        } catch (err) {
          failure ??= { err };
        }
      }
    }
    // A callback may have added (and armed for) a later slot than one still waiting.
    if (this.order.length > 0 && this.order[0]! < this.armedSlot) this.arm(this.order[0]!);
    if (failure !== null) throw failure.err;
  }

  private arm(slot: number): void {
    this.disarm();
    this.armedSlot = slot;
    const delay = Math.max(0, this.epochMs + slot * this.granularityMs - this.timers.now());
    this.timer = this.timers.setTimeout(() => this.fire(slot), delay);
  }

  private disarm(): void {
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
    this.armedSlot = Infinity;
  }

  /** Where `slot` is, or would go, in `order` (binary search). */
  private insertionPoint(slot: number): number {
    let lo = 0;
    let hi = this.order.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.order[mid]! < slot) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
