/**
 * Hold timeouts on one coarse wheel (docs/protocol.md §4 step 5, issue 15): instead of a Node `Timeout`
 * per parked request (about 0.2 KB each with its callback), every deadline is rounded UP to the next
 * multiple of `granularityMs` and kept in that slot's set; one timer is armed for the earliest slot.
 * A hold therefore times out no sooner than its timeout and at most `granularityMs` later. The timer
 * runs only while some hold waits, so an empty registry arms none. Time comes from the injected timers;
 * the lifecycle gives it the monotonic clock (`monotonicNow`), as Node's own timers use, so a step of the
 * wall clock moves no deadline.
 */
import type { ProxyTimers } from '../options.js';

/** The wheel's slot width, ms: the most a hold timeout can run late (docs/protocol.md §4 step 5). */
export const HOLD_TIMEOUT_GRANULARITY_MS = 250;

/** A slot number meaning "not on the wheel". */
export const NO_SLOT = -1;

export class HoldTimeouts<T> {
  private readonly slots = new Map<number, Set<T>>();
  /** The slot numbers in `slots`, ascending (a few hundred at most: the longest timeout over the width). */
  private readonly order: number[] = [];
  /** Slots are counted from here so they stay small integers (V8 keeps those unboxed). */
  private readonly epochMs: number;
  private timer: unknown = null;
  private armedSlot = Infinity;

  /** `onTimeout(item)` is called once for each item whose slot came due, earliest slot first. */
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
    for (const set of this.slots.values()) n += set.size;
    return n;
  }

  /** Is the wheel's one timer armed? (Only while some item waits.) */
  get armed(): boolean {
    return this.timer !== null;
  }

  /** Times `item` out `timeoutMs` from now (rounded up to the slot width); keep the returned slot to `remove` it. */
  add(item: T, timeoutMs: number): number {
    const slot = Math.ceil((this.timers.now() - this.epochMs + timeoutMs) / this.granularityMs);
    let set = this.slots.get(slot);
    if (set === undefined) {
      this.slots.set(slot, (set = new Set()));
      this.order.splice(this.insertionPoint(slot), 0, slot);
    }
    set.add(item);
    if (slot < this.armedSlot) this.arm(slot);
    return slot;
  }

  /** Takes `item` off the wheel (a no-op if it is not in `slot`); the timer stops when the last one goes. */
  remove(item: T, slot: number): void {
    const set = this.slots.get(slot);
    if (set === undefined || !set.delete(item) || set.size > 0) return;
    this.slots.delete(slot);
    this.order.splice(this.insertionPoint(slot), 1);
    if (this.order.length === 0) this.disarm();
  }

  private fire(firedSlot: number): void {
    this.timer = null;
    this.armedSlot = Infinity;
    // A timer may run a little before the clock reaches its slot (ms rounding): the slot it was armed for is due anyway.
    const due = Math.max(firedSlot, Math.floor((this.timers.now() - this.epochMs) / this.granularityMs));
    let failure: { err: unknown } | null = null;
    while (this.order.length > 0 && this.order[0]! <= due) {
      const slot = this.order.shift()!;
      const set = this.slots.get(slot)!;
      this.slots.delete(slot); // before the callbacks: their `remove` finds nothing to do
      for (const item of set) {
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
