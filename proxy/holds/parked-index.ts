/**
 * Where the registry finds its held requests: parked ones by channel, by
 * connection ID (in the connection table, docs §4 step 4: at most one per ID)
 * and counted per client address (the `maxParkedPerAddress` cap) and in bytes
 * (the `maxParkedBytes` budget), plus the set
 * of requests being re-asked. A request is in the index its state names and in
 * no other; `remove` takes it out of whichever that is. Pure bookkeeping: no
 * timers, no I/O (hold-lifecycle.ts drives it).
 *
 * Parked requests and each channel's subscribers are lists linked through the held records (issue 15), not
 * Sets: every delivery and re-park deleted and re-inserted each request in 5,000-10,000-entry hash tables, which
 * shrink and grow (new tables, garbage) as a publish empties them and the re-polls fill them again. A link is
 * two pointer writes; a request on k channels carries k small links, made when it parks.
 */
import type { ConnectionTable } from './connection-table.js';
import type { Held } from './held.js';

/** One parked request's place among one channel's subscribers. */
export class ChannelLink {
  prev: ChannelLink | null = null;
  next: ChannelLink | null = null;
  /** The request's link on its next channel (its channels' links form a chain from `held.channelLinks`). */
  nextOfHeld: ChannelLink | null = null;

  constructor(
    readonly held: Held,
    readonly channel: ChannelSubscribers,
  ) {}
}

/** The requests parked on one channel, in parking order. */
class ChannelSubscribers {
  first: ChannelLink | null = null;
  last: ChannelLink | null = null;
  size = 0;

  constructor(readonly name: string) {}
}

export class ParkedIndex {
  /** Parked requests, in parking order, through `held.parkedPrev` / `parkedNext`. */
  private firstParked: Held | null = null;
  private lastParked: Held | null = null;
  private parkedSize = 0;
  private readonly byChannel = new Map<string, ChannelSubscribers>();
  /** Parked requests per client address (exchanges that know theirs). */
  private readonly perAddress = new Map<string, number>();
  private readonly reasking = new Set<Held>();
  /** Sum of `parkedBytes` over the parked requests. */
  private bytes = 0;

  constructor(private readonly connections: ConnectionTable<Held>) {}

  get parkedCount(): number {
    return this.parkedSize;
  }

  /** Bytes the parked requests keep: heads, bodies, held responses (parked-bytes.ts). */
  get parkedBytes(): number {
    return this.bytes;
  }

  get reaskingCount(): number {
    return this.reasking.size;
  }

  /** Parked requests from `address`. */
  parkedFrom(address: string): number {
    return this.perAddress.get(address) ?? 0;
  }

  /** The request parked under connection ID `id`, if any. */
  parkedUnder(id: string): Held | undefined {
    return this.connections.get(id)?.parked ?? undefined;
  }

  /** A snapshot of the requests parked on `channel`, in parking order, or undefined if there are none. */
  subscribers(channel: string): readonly Held[] | undefined {
    const list = this.byChannel.get(channel);
    if (list === undefined) return undefined;
    const held = new Array<Held>(list.size);
    let i = 0;
    for (let link = list.first; link !== null; link = link.next) held[i++] = link.held;
    return held;
  }

  /** A snapshot of every parked request. */
  allParked(): Held[] {
    const all = new Array<Held>(this.parkedSize);
    let i = 0;
    for (let held = this.firstParked; held !== null; held = held.parkedNext) all[i++] = held;
    return all;
  }

  /** A snapshot of every parked or re-asking request. */
  allOpen(): Held[] {
    return [...this.allParked(), ...this.reasking];
  }

  /** Indexes a request that has just been parked under its channels and connection ID. */
  addParked(held: Held): void {
    const { instruction } = held;
    const address = held.exchange.clientAddress;
    if (address !== undefined) this.perAddress.set(address, (this.perAddress.get(address) ?? 0) + 1);
    held.parkedPrev = this.lastParked;
    held.parkedNext = null;
    if (this.lastParked !== null) this.lastParked.parkedNext = held;
    else this.firstParked = held;
    this.lastParked = held;
    this.parkedSize++;
    this.bytes += held.parkedBytes;
    let previous: ChannelLink | null = null;
    for (const sub of instruction.channels) {
      let list = this.byChannel.get(sub.name);
      if (list === undefined) this.byChannel.set(sub.name, (list = new ChannelSubscribers(sub.name)));
      const link = new ChannelLink(held, list);
      link.prev = list.last;
      if (list.last !== null) list.last.next = link;
      else list.first = link;
      list.last = link;
      list.size++;
      if (previous === null) held.channelLinks = link;
      else previous.nextOfHeld = link;
      previous = link;
    }
    if (instruction.connectionId !== undefined) {
      const conn = this.connections.open(instruction.connectionId);
      conn.parked = held;
      held.connection = conn;
    }
  }

  addReasking(held: Held): void {
    this.reasking.add(held);
  }

  /** Takes `held` out of the index its state puts it in (none for `deciding` and `done`). */
  remove(held: Held): void {
    if (held.state === 'parked') {
      if (held.parkedPrev === null && this.firstParked !== held) return; // not in the index (never parked, or already out)
      if (held.parkedPrev !== null) held.parkedPrev.parkedNext = held.parkedNext;
      else this.firstParked = held.parkedNext;
      if (held.parkedNext !== null) held.parkedNext.parkedPrev = held.parkedPrev;
      else this.lastParked = held.parkedPrev;
      held.parkedPrev = null;
      held.parkedNext = null;
      this.parkedSize--;
      this.bytes -= held.parkedBytes;
      const address = held.exchange.clientAddress;
      if (address !== undefined) {
        const left = (this.perAddress.get(address) ?? 1) - 1;
        if (left > 0) this.perAddress.set(address, left);
        else this.perAddress.delete(address);
      }
      for (let link = held.channelLinks; link !== null; link = link.nextOfHeld) {
        const list = link.channel;
        if (link.prev !== null) link.prev.next = link.next;
        else list.first = link.next;
        if (link.next !== null) link.next.prev = link.prev;
        else list.last = link.prev;
        if (--list.size === 0) this.byChannel.delete(list.name);
      }
      held.channelLinks = null;
      if (held.connection !== null) {
        this.connections.leave(held.connection, held);
        held.connection = null;
      }
    } else if (held.state === 'reasking') {
      this.reasking.delete(held);
    }
  }
}
