/**
 * Per-channel cursors for the race check (docs/protocol.md §4 step 3): the id
 * of the last item published on each channel and the global publish sequence
 * number at that publish. A request remembers the global sequence when it is
 * sent to the app; a channel whose sequence is higher was published on while the
 * app was answering. Pure data structure; time comes from the injected `now`.
 */

export interface ChannelCursorLimits {
  /** A channel is forgotten after this long without publishes, ms. */
  ttlMs: number;
  /** At most this many channels are kept; the least recently published is evicted first. */
  maxChannels: number;
}

interface Cursor {
  /** Id of the last published item that had one. */
  lastId: string | undefined;
  /** Global sequence number of the channel's last publish. */
  lastSeq: number;
  lastPublishMs: number;
}

export class ChannelCursors {
  // Map iteration order is insertion order; re-inserting on publish keeps it
  // ordered by last publish, so TTL and cap eviction both pop from the front.
  private readonly cursors = new Map<string, Cursor>();
  private sequence = 0;

  constructor(
    private readonly limits: ChannelCursorLimits,
    private readonly now: () => number,
  ) {}

  /** The global publish sequence: how many items were published since start. */
  get seq(): number {
    return this.sequence;
  }

  /** Channels with a known last id. */
  get knownChannels(): number {
    let n = 0;
    for (const cursor of this.cursors.values()) if (cursor.lastId !== undefined) n++;
    return n;
  }

  /** Records a publish on `channel`: its last id becomes `id` (if given) and the sequence advances. */
  record(channel: string, id: string | undefined): void {
    const previous = this.cursors.get(channel);
    this.cursors.delete(channel);
    this.sequence++;
    this.cursors.set(channel, {
      lastId: id ?? previous?.lastId,
      lastSeq: this.sequence,
      lastPublishMs: this.now(),
    });
    while (this.cursors.size > this.limits.maxChannels) this.evictOldest();
  }

  /** The id of the last item published on `channel`, if known. */
  lastId(channel: string): string | undefined {
    return this.get(channel)?.lastId;
  }

  /** Was anything published on `channel` after the global sequence was `seq`? */
  publishedSince(channel: string, seq: number): boolean {
    const cursor = this.get(channel);
    return cursor !== undefined && cursor.lastSeq > seq;
  }

  /** Forgets channels not published on within the TTL; returns how many. */
  sweep(): number {
    const cutoff = this.now() - this.limits.ttlMs;
    let removed = 0;
    for (const [name, cursor] of this.cursors) {
      if (cursor.lastPublishMs > cutoff) break;
      this.cursors.delete(name);
      removed++;
    }
    return removed;
  }

  private get(channel: string): Cursor | undefined {
    const cursor = this.cursors.get(channel);
    if (cursor !== undefined && cursor.lastPublishMs <= this.now() - this.limits.ttlMs) {
      this.cursors.delete(channel);
      return undefined;
    }
    return cursor;
  }

  private evictOldest(): void {
    const oldest = this.cursors.keys().next();
    if (!oldest.done) this.cursors.delete(oldest.value);
  }
}
