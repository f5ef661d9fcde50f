/**
 * Where the registry finds its held requests: parked ones by channel, by
 * connection ID (in the connection table, docs §4 step 4: at most one per ID)
 * and counted per client address (the `maxParkedPerAddress` cap) and in bytes
 * (the `maxParkedBytes` budget), plus the set
 * of requests being re-asked. A request is in the index its state names and in
 * no other; `remove` takes it out of whichever that is. Pure bookkeeping: no
 * timers, no I/O (hold-lifecycle.ts drives it).
 */
import type { ConnectionTable } from './connection-table.js';
import type { Held } from './held.js';

export class ParkedIndex {
  private readonly parked = new Set<Held>();
  private readonly byChannel = new Map<string, Set<Held>>();
  /** Parked requests per client address (exchanges that know theirs). */
  private readonly perAddress = new Map<string, number>();
  private readonly reasking = new Set<Held>();
  /** Sum of `parkedBytes` over the parked requests. */
  private bytes = 0;

  constructor(private readonly connections: ConnectionTable<Held>) {}

  get parkedCount(): number {
    return this.parked.size;
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

  /** The requests parked on `channel` (live: copy it before answering any). */
  subscribers(channel: string): ReadonlySet<Held> | undefined {
    return this.byChannel.get(channel);
  }

  /** A snapshot of every parked request. */
  allParked(): Held[] {
    return [...this.parked];
  }

  /** A snapshot of every parked or re-asking request. */
  allOpen(): Held[] {
    return [...this.parked, ...this.reasking];
  }

  /** Indexes a request that has just been parked under its channels and connection ID. */
  addParked(held: Held): void {
    const { instruction } = held;
    const address = held.exchange.clientAddress;
    if (address !== undefined) this.perAddress.set(address, (this.perAddress.get(address) ?? 0) + 1);
    this.parked.add(held);
    this.bytes += held.parkedBytes;
    for (const sub of instruction.channels) {
      let set = this.byChannel.get(sub.name);
      if (set === undefined) this.byChannel.set(sub.name, (set = new Set()));
      set.add(held);
    }
    if (instruction.connectionId !== undefined) this.connections.open(instruction.connectionId).parked = held;
  }

  addReasking(held: Held): void {
    this.reasking.add(held);
  }

  /** Takes `held` out of the index its state puts it in (none for `deciding` and `done`). */
  remove(held: Held): void {
    if (held.state === 'parked') {
      if (this.parked.delete(held)) this.bytes -= held.parkedBytes;
      const address = held.exchange.clientAddress;
      if (address !== undefined) {
        const left = (this.perAddress.get(address) ?? 1) - 1;
        if (left > 0) this.perAddress.set(address, left);
        else this.perAddress.delete(address);
      }
      for (const sub of held.instruction.channels) {
        const set = this.byChannel.get(sub.name);
        set?.delete(held);
        if (set?.size === 0) this.byChannel.delete(sub.name);
      }
      const id = held.instruction.connectionId;
      if (id !== undefined) this.connections.leave(id, held);
    } else if (held.state === 'reasking') {
      this.reasking.delete(held);
    }
  }
}
