/**
 * GRIP channel names the app uses (docs/protocol.md §10).
 */

/** What `roomChannel` puts before a room's name. */
export const ROOM_CHANNEL_PREFIX = 'room:';

/** The channel of a room's events: `room:<name>`. Room names are a subset of the channel alphabet. */
export function roomChannel(roomName: string): string {
  return ROOM_CHANNEL_PREFIX + roomName;
}


/** What `sessionStreamsChannel` puts before a session's id. */
export const SESSION_STREAMS_PREFIX = 'streams:';

/**
 * The channel every stream of a session also holds (docs/protocol.md §10.2): an item on it ends them, when the
 * session leaves a room or ends, so a stream never outlives the membership checked when it opened. Internal to
 * the app and the proxy (Grip-* headers never reach clients).
 */
export function sessionStreamsChannel(sessionId: number): string {
  return SESSION_STREAMS_PREFIX + String(sessionId);
}
