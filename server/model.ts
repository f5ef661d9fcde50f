/**
 * JSON shapes of the chat API (docs/chat-api.md), as the app sends them.
 */

/**
 * `message` has text; `join`/`leave` follow membership; `nick` is a member's change of nick (in each of their
 * rooms); `room` (in `lobby`, which every session polls) announces a room someone created, so rooms lists update
 * live; `online` was posted in `lobby` when a session was created, before schema 8: old histories may hold it.
 */
export type EventType = 'message' | 'join' | 'leave' | 'online' | 'nick' | 'room';

export const EVENT_TYPES: readonly EventType[] = ['message', 'join', 'leave', 'online', 'nick', 'room'];

/** A user as other clients see them. A user is a session: `id` is the session's id. */
export interface UserView {
  id: number;
  nick: string;
}

/**
 * One event of the stream. `id` is a global increasing sequence, so it also increases per room. `user.nick` is
 * the author's nick when the event was written (history and pushes agree); `user.id` tells authors apart.
 */
export interface ChatEvent {
  id: number;
  room: string;
  type: EventType;
  user: UserView;
  /** Only on `message` events. */
  text?: string;
  /** Only on `nick` events: the nick before the change (`user.nick` is the new one). */
  previousNick?: string;
  /** Only on `room` events: the name of the room `user` created. */
  createdRoom?: string;
  /** ISO 8601 timestamp of the commit. */
  at: string;
}

/** A room in listings: member count and the id of its last event (0 when it has none). */
export interface RoomView {
  name: string;
  members: number;
  lastEventId: number;
}

/** A room member; `online` when their session polled within the presence window. */
export interface MemberView extends UserView {
  online: boolean;
}
