/**
 * GRIP channel names the app uses (docs/protocol.md §10).
 */

/** The channel of a room's events: `room:<name>`. Room names are a subset of the channel alphabet. */
export function roomChannel(roomName: string): string {
  return `room:${roomName}`;
}
