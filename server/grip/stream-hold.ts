/**
 * The stream hold that follows a chat stream's first bytes (docs/protocol.md §10.2, §14). The frames are
 * stream-frames.ts'. An event's id is global (one SQLite sequence), so `Last-Event-ID: N` tells the app the
 * client has every event up to N of the stream's rooms (a stream carries its rooms' events in id order).
 */
import { formatGripChannels } from '../../protocol/grip-channel.js';
import { GRIP_CHANNEL, GRIP_HOLD } from '../../protocol/headers.js';
import { roomChannel, sessionStreamsChannel } from './channels.js';
import { SSE_RESYNC } from './stream-frames.js';

/** Pushpin's stream headers (docs/protocol.md §14.4, §14.5). */
export const GRIP_KEEP_ALIVE = 'grip-keep-alive';
export const GRIP_STREAM_RESYNC = 'grip-stream-resync';

/** Seconds of silence after which the proxy writes an SSE comment, so idle streams survive NATs and proxies. */
export const STREAM_KEEP_ALIVE_S = 20;

/** A header value in Pushpin's `cstring` format: backslash, CR and LF escaped. */
function cstring(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\r/g, '\\r').replace(/\n/g, '\\n');
}

/**
 * The stream hold: each room's channel with the id of the last event the stream's first bytes gave for it
 * (so a publish in between makes the proxy re-ask, §14.2, and a later gap ends the stream, §14.3), and the
 * session's streams channel, without a position, on which the app ends the stream when the session leaves a
 * room or ends.
 */
export function buildStreamHold(sessionId: number, rooms: ReadonlyArray<{ room: string; lastEventId: number }>): Record<string, string> {
  return {
    [GRIP_HOLD]: 'stream',
    [GRIP_CHANNEL]: formatGripChannels([
      ...rooms.map((r) => ({ name: roomChannel(r.room), prevId: String(r.lastEventId) })),
      { name: sessionStreamsChannel(sessionId) },
    ]),
    [GRIP_KEEP_ALIVE]: `${cstring(':\n\n')}; format=cstring; timeout=${STREAM_KEEP_ALIVE_S}`,
    [GRIP_STREAM_RESYNC]: `${cstring(SSE_RESYNC)}; format=cstring`,
  };
}
