/**
 * The hold instruction of an idle `/meta/connect` (docs/bayeux.md, docs/protocol.md §3):
 * parked on each subscribed room's hint channel with the room's last event id
 * as prev-id (so the proxy's race check applies), on the client's wake channel,
 * and under its connection ID. The body is the empty connect reply the client
 * gets on timeout; every other answer comes from a re-ask.
 */
import { formatGripChannels, type ChannelSubscription } from '../../protocol/grip-channel.js';
import { GRIP_CHANNEL, GRIP_CONNECTION_ID, GRIP_HOLD, GRIP_TIMEOUT } from '../../protocol/headers.js';
import { bayeuxHintChannel, bayeuxWakeChannel } from './channels.js';

export interface BayeuxHoldInput {
  /** Each subscribed room and its last event id. */
  rooms: ReadonlyArray<{ room: string; lastEventId: number }>;
  connectionId: string;
  /** Last item id on the client's wake channel. */
  wakeId: number;
  /** `Grip-Timeout`, seconds (the advice's timeout). */
  timeoutS: number;
}

/** Grip-* headers only; the route sends the body. */
export function bayeuxHoldHeaders(input: BayeuxHoldInput): Record<string, string> {
  const channels: ChannelSubscription[] = input.rooms.map((r) => ({ name: bayeuxHintChannel(r.room), prevId: String(r.lastEventId) }));
  channels.push({ name: bayeuxWakeChannel(input.connectionId), prevId: String(input.wakeId) });
  return {
    [GRIP_HOLD]: 'response',
    [GRIP_CHANNEL]: formatGripChannels(channels),
    [GRIP_TIMEOUT]: String(input.timeoutS),
    [GRIP_CONNECTION_ID]: input.connectionId,
  };
}
