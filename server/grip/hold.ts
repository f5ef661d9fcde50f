/**
 * The hold instruction of an idle poll (docs/protocol.md §3, §10): the proxy
 * parks the request on the rooms' channels and under the connection ID; the
 * body is what the client gets if nothing is published before the timeout.
 */
import { formatGripChannels } from '../../protocol/grip-channel.js';
import { GRIP_CHANNEL, GRIP_CONNECTION_ID, GRIP_HOLD, GRIP_TIMEOUT } from '../../protocol/headers.js';
import { roomChannel } from './channels.js';

export interface HoldInput {
  /** Each polled room with its last event id (0 if none): the prev-id the proxy checks publishes against. */
  rooms: ReadonlyArray<{ room: string; lastEventId: number }>;
  connectionId: string;
  /** `Grip-Timeout`, seconds. */
  timeoutS: number;
}

export interface HoldResponse {
  /** Grip-* headers only; the route adds Content-Type, Cache-Control and Comet-Connection-Id. */
  headers: Record<string, string>;
  /** The held (timeout) response body. */
  body: { events: []; connectionId: string };
}

/**
 * Builds the hold. The prev-id is the room's last event id, not the client's
 * cursor: there is no news, so the two can only differ when the cursor is ahead
 * (a client from an old database), and the proxy must compare publishes with
 * what the app actually has.
 */
export function buildHold(input: HoldInput): HoldResponse {
  return {
    headers: {
      [GRIP_HOLD]: 'response',
      [GRIP_CHANNEL]: formatGripChannels(
        input.rooms.map((r) => ({ name: roomChannel(r.room), prevId: String(r.lastEventId) })),
      ),
      [GRIP_TIMEOUT]: String(input.timeoutS),
      [GRIP_CONNECTION_ID]: input.connectionId,
    },
    body: { events: [], connectionId: input.connectionId },
  };
}
