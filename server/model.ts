/**
 * JSON shapes of the chat API (docs/chat-api.md), as the app sends them.
 */

/** `message` has text; `join`/`leave` follow membership; `online` is posted in `lobby` when a session is created. */
export type EventType = 'message' | 'join' | 'leave' | 'online';

export const EVENT_TYPES: readonly EventType[] = ['message', 'join', 'leave', 'online'];

/** A user as other clients see them. A user is a session: `id` is the session's id. */
export interface UserView {
  id: number;
  nick: string;
}

/** One event of the stream. `id` is a global increasing sequence, so it also increases per room. */
export interface ChatEvent {
  id: number;
  room: string;
  type: EventType;
  user: UserView;
  /** Only on `message` events. */
  text?: string;
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
