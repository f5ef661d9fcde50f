/**
 * The outbox relay's `Publisher` for models that live in the app's process:
 * instead of POSTing items to a proxy's control API (server/outbox/publisher.ts)
 * it hands them to a function, so the commit → relay → notify path is the one
 * the real app uses, minus the network hop.
 */
import type { ControlResult, PublishItem } from '../../../protocol/control-api.js';
import { PublishError, type Publisher } from '../../../server/outbox/publisher.js';
import type { ChatEvent } from '../../../server/model.js';

/** One published event, decoded. */
export interface PublishedEvent {
  room: string;
  event: ChatEvent;
}

const ROOM_CHANNEL_PREFIX = 'room:';

/**
 * The room and event an outbox item carries: the channel is `room:<name>`
 * (server/grip/channels.ts) and the `http-response` body is `{"events":[event]}`
 * (server/outbox/item-format.ts). Returns null for anything else.
 */
export function decodeItem(item: PublishItem): PublishedEvent | null {
  if (!item.channel.startsWith(ROOM_CHANNEL_PREFIX)) return null;
  const body = item.formats['http-response']?.body;
  if (typeof body !== 'string') return null;
  const event = (JSON.parse(body) as { events?: ChatEvent[] }).events?.[0];
  if (event === undefined) return null;
  return { room: item.channel.slice(ROOM_CHANNEL_PREFIX.length), event };
}

/**
 * Delivers each batch to `deliver` synchronously, in the relay's id order.
 * `deliver` returns how many waiting requests it answered or woke (the
 * `delivered` count of the control API's answer).
 */
export class InProcessPublisher implements Publisher {
  private closed = false;

  constructor(private readonly deliver: (events: PublishedEvent[]) => number) {}

  publish(items: PublishItem[]): Promise<ControlResult> {
    if (this.closed) return Promise.reject(new PublishError('publisher is closed'));
    try {
      const events: PublishedEvent[] = [];
      for (const item of items) {
        const decoded = decodeItem(item);
        if (decoded) events.push(decoded);
      }
      return Promise.resolve({ delivered: this.deliver(events), queued: 0, dropped: 0, reasked: 0 });
    } catch (err) {
      // The relay retries the batch; a model's bug shows as relay warnings, not a crash.
      return Promise.reject(new PublishError(`in-process delivery failed: ${(err as Error).message}`, undefined, { cause: err }));
    }
  }

  close(): void {
    this.closed = true;
  }
}
