/**
 * The channel buffer (docs/protocol.md §13.2): per channel, the newest items
 * published on it, as one unbroken `prev-id` chain ending at the channel's
 * head. With it the proxy can tell, for a client's cursor on a channel, either
 * exactly which items it lacks or that it cannot know; it never guesses:
 *
 *   cursor = head                    -> nothing new (the re-poll may park)
 *   cursor = an item's id, or the
 *            first item's prev-id    -> the items after it
 *   anything else, or no state       -> unknown (the app answers)
 *
 * A publish whose `prev-id` is not the head starts a new chain (the proxy
 * missed something, or the app skipped ids), so the chain never has a hole.
 * Bounded per channel by count, bytes and age, and in total by channels and
 * bytes (least recently published channel first). Pure data; time is injected.
 */
import type { ItemResponse } from '../http/response.js';

export interface ChannelBufferLimits {
  /** Items kept per channel. */
  maxItems: number;
  /** Bytes of item bodies kept per channel. */
  maxBytes: number;
  /** Items older than this are dropped, ms. */
  maxAgeMs: number;
  /** Channels kept; the least recently published is forgotten first. */
  maxChannels: number;
  /** Bytes of item bodies kept over all channels. */
  maxTotalBytes: number;
}

export interface BufferedItem {
  readonly id: string;
  readonly prevId: string;
  /** The proxy's global publish sequence of this item: the order of items across channels. */
  readonly seq: number;
  readonly response: ItemResponse;
  /** When it was recorded (`now()`), for the age bound. */
  readonly at: number;
}

interface Chain {
  /** The newest id on the channel. */
  head: string;
  /** Oldest first; `items[i].prevId === items[i - 1].id`, and the last item's id is `head`. */
  items: BufferedItem[];
  bytes: number;
}

/** Items past a cursor: `null` when the buffer cannot tell. */
export type ItemsAfter = readonly BufferedItem[] | null;

const NONE: readonly BufferedItem[] = [];

export class ChannelBuffer {
  // Insertion order is publish recency: re-inserted on every publish, evicted from the front.
  private readonly chains = new Map<string, Chain>();
  private totalBytes = 0;

  constructor(
    private readonly limits: ChannelBufferLimits,
    private readonly now: () => number,
  ) {}

  /** Channels with a known head. */
  get channels(): number {
    return this.chains.size;
  }

  /** Items held over all channels. */
  get items(): number {
    let n = 0;
    for (const chain of this.chains.values()) n += chain.items.length;
    return n;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  /**
   * A published `send` item. Without an id and a prev-id it cannot be placed in a
   * chain: the channel is forgotten (its re-polls go to the app) rather than guessed.
   */
  record(channel: string, id: string | undefined, prevId: string | undefined, response: ItemResponse, seq: number): void {
    if (id === undefined || prevId === undefined) {
      this.forget(channel);
      return;
    }
    let chain = this.chains.get(channel);
    if (chain !== undefined && (chain.head === id || chain.items.some((item) => item.id === id))) return; // re-published: has it
    const item: BufferedItem = { id, prevId, seq, response, at: this.now() };
    if (chain === undefined || chain.head !== prevId) {
      // A new chain: the first item's prev-id is the oldest cursor it can serve.
      if (chain !== undefined) this.totalBytes -= chain.bytes;
      chain = { head: id, items: [], bytes: 0 };
    }
    this.chains.delete(channel);
    this.chains.set(channel, chain);
    chain.items.push(item);
    chain.head = id;
    chain.bytes += item.response.body.length;
    this.totalBytes += item.response.body.length;
    this.trim(chain);
    this.evict();
  }

  /**
   * The app's word, from a poll it answered, that `lastId` was the channel's head
   * in its snapshot. Taken only for a channel the buffer knows nothing of: a known
   * chain came from publishes, which the app's snapshot cannot be newer than
   * without the proxy seeing them next (the caller checks nothing raced).
   */
  seedHead(channel: string, lastId: string): void {
    if (this.chains.has(channel)) return;
    this.chains.set(channel, { head: lastId, items: [], bytes: 0 });
    this.evict();
  }

  /** Forgets one channel: its re-polls go to the app until a publish or an app answer teaches it again. */
  forget(channel: string): void {
    const chain = this.chains.get(channel);
    if (chain === undefined) return;
    this.totalBytes -= chain.bytes;
    this.chains.delete(channel);
  }

  /** Forgets everything (the proxy may have missed publishes: a bus gap). */
  clear(): void {
    this.chains.clear();
    this.totalBytes = 0;
  }

  /** The items after `cursor` on `channel`, oldest first; `null` when the buffer cannot tell. */
  after(channel: string, cursor: string): ItemsAfter {
    const chain = this.chains.get(channel);
    if (chain === undefined) return null;
    if (chain.head === cursor) return NONE;
    this.trim(chain);
    const { items } = chain;
    if (items.length === 0) return null;
    if (items[0]!.prevId === cursor) return items;
    for (let i = items.length - 2; i >= 0; i--) {
      if (items[i]!.id === cursor) return items.slice(i + 1);
    }
    return null;
  }

  /** Drops aged items everywhere. Runs on the proxy's sweep timer. */
  sweep(): void {
    for (const chain of this.chains.values()) this.trim(chain);
  }

  /** Keeps the chain within its count, byte and age bounds, dropping from the oldest end (the head stays). */
  private trim(chain: Chain): void {
    const { items } = chain;
    const oldest = this.now() - this.limits.maxAgeMs;
    let drop = 0;
    let bytes = chain.bytes;
    while (
      drop < items.length &&
      (items.length - drop > this.limits.maxItems || bytes > this.limits.maxBytes || items[drop]!.at <= oldest)
    ) {
      bytes -= items[drop]!.response.body.length;
      drop++;
    }
    if (drop === 0) return;
    items.splice(0, drop);
    this.totalBytes -= chain.bytes - bytes;
    chain.bytes = bytes;
  }

  private evict(): void {
    while (this.chains.size > this.limits.maxChannels || this.totalBytes > this.limits.maxTotalBytes) {
      const oldest = this.chains.keys().next();
      if (oldest.done) return;
      this.forget(oldest.value);
    }
  }
}
