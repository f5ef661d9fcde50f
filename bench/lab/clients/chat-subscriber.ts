/**
 * The part every chat-API subscriber shares (chat long and short polling, SSE,
 * forever iframe): a session (`s<index>`), one joined room and its cursor, and
 * how a chat event off the wire is counted. The cursor only moves on events
 * read, so a broken request loses nothing: the next one asks again from it.
 */
import { type CallContext, joinRoom, signIn } from './chat-session.js';
import { Subscriber } from './subscriber.js';

export abstract class ChatSubscriber extends Subscriber {
  /** Id of the last event seen in the room (docs/chat-api.md). */
  protected cursor = 0;

  private context(deadline: number): CallContext {
    return {
      http: this.http,
      deadline,
      signal: this.stopController.signal,
      requestTimeoutMs: this.options.requestTimeoutMs,
      onError: (status) => (status === undefined ? this.sink.errors++ : this.sink.badStatus(status)),
    };
  }

  async setup(deadline: number): Promise<void> {
    const ctx = this.context(deadline);
    await signIn(ctx, `s${this.options.index}`);
    this.cursor = await joinRoom(ctx, this.room);
    this.ready = true;
  }

  /**
   * Joining again as a member adds no event and answers the room's last event
   * id: after every subscriber joined, that skips the other subscribers' join
   * events (each would otherwise download them all, quadratic in the room size).
   */
  override async roomCursor(deadline: number): Promise<number | null> {
    return joinRoom(this.context(deadline), this.room);
  }

  override skipTo(cursor: number): void {
    if (cursor > this.cursor) this.cursor = cursor;
  }

  /** `rooms=<room>:<cursor>` for polls and streams. */
  protected roomsParam(): string {
    return `rooms=${encodeURIComponent(this.room)}:${this.cursor}`;
  }

  /** One chat event: stamped messages are delivered, every event of the room moves the cursor. */
  protected event(value: unknown): void {
    if (typeof value !== 'object' || value === null) return;
    const event = value as { id?: unknown; room?: unknown; type?: unknown; text?: unknown; at?: unknown };
    if (event.room !== undefined && event.room !== this.room) return;
    if (event.type === 'message') this.sink.deliver(this.record, event.text, committedAt(event.at));
    if (typeof event.id === 'number' && event.id > this.cursor) this.cursor = event.id;
  }
}

/** An event's `at` (ISO time of its commit, chat-api.md) as epoch ms; undefined when absent or unreadable. */
export function committedAt(at: unknown): number | undefined {
  if (typeof at !== 'string') return undefined;
  const ms = Date.parse(at);
  return Number.isFinite(ms) ? ms : undefined;
}
