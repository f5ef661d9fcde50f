/**
 * GRIP channel names the app uses (docs/protocol.md §10).
 */

/** What `roomChannel` puts before a room's name. */
export const ROOM_CHANNEL_PREFIX = 'room:';

/** The channel of a room's events: `room:<name>`. Room names are a subset of the channel alphabet. */
export function roomChannel(roomName: string): string {
  return ROOM_CHANNEL_PREFIX + roomName;
}

