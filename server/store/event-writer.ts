/**
 * The one write path for events. Appending an event also writes its outbox
 * row (the push to the proxy) in the same transaction, so a committed event is
 * always eventually published and a rolled-back one never is.
 */
import type { RevokeItem } from '../../protocol/control-api.js';
import { roomChannel } from '../grip/channels.js';
import type { ChatEvent, EventType, UserView } from '../model.js';
import { eventResponseFormat } from '../outbox/item-format.js';
import type { EventsRepo } from './events.js';
import type { OutboxRepo } from './outbox.js';
import type { RoomRow } from './rooms.js';

export interface AppendEvent {
  room: RoomRow;
  type: EventType;
  user: UserView;
  /** Only for `message`. */
  text?: string;
  /** Only for `nick`: the nick before the change (`user.nick` is the new one). */
  previousNick?: string;
  /** Only for `room`: the name of the room created. */
  createdRoom?: string;
  /** ms since the epoch. */
  at: number;
  /** The client's `Idempotency-Key` (messages only). */
  idempotencyKey?: string;
  /** Leases to end when the event is published, before anyone receives it (docs/protocol.md §13.4). */
  revoke?: RevokeItem[];
}

export class EventWriter {
  constructor(
    private readonly events: EventsRepo,
    private readonly outbox: OutboxRepo,
  ) {}

  /**
   * Inserts the event and its outbox row. MUST run inside a write transaction
   * (see `ChatService`): the prev-id read and the two inserts must be atomic,
   * or two writers could give two items the same prev-id.
   */
  append(input: AppendEvent): ChatEvent {
    const prevId = this.events.lastId(input.room.id);
    const id = this.events.insert({
      roomId: input.room.id,
      type: input.type,
      userId: input.user.id,
      nick: input.user.nick,
      text: input.text ?? input.previousNick ?? input.createdRoom ?? null,
      createdAt: input.at,
      ...(input.idempotencyKey === undefined ? {} : { idempotencyKey: input.idempotencyKey }),
    });
    const event: ChatEvent = {
      id,
      room: input.room.name,
      type: input.type,
      user: { id: input.user.id, nick: input.user.nick },
      at: new Date(input.at).toISOString(),
    };
    if (input.text !== undefined) event.text = input.text;
    if (input.previousNick !== undefined) event.previousNick = input.previousNick;
    if (input.createdRoom !== undefined) event.createdRoom = input.createdRoom;
    this.outbox.insert({
      channel: roomChannel(input.room.name),
      itemId: String(id),
      prevId: String(prevId),
      payload: JSON.stringify(eventResponseFormat(event)),
      createdAt: input.at,
      revoke: input.revoke === undefined ? null : JSON.stringify(input.revoke),
    });
    return event;
  }
}
