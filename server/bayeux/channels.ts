/**
 * Channel names on both sides of the Bayeux mapping (docs/bayeux.md): Bayeux
 * channels `/chat/<room>` are chat rooms; a held `/meta/connect` listens on GRIP
 * channels of its own, to which only `action: "hint"` items are published.
 */
import { BAYEUX_PATTERN_ALL, BAYEUX_PATTERN_ONE } from '../store/bayeux-clients.js';
import { isRoomName } from '../validation.js';

/** The Bayeux channel of a room. */
export function bayeuxRoomChannel(room: string): string {
  return `/chat/${room}`;
}

/** The channel patterns a client may subscribe to, with their `bayeux_clients.patterns` bit. */
export const ROOM_PATTERNS: Readonly<Record<string, number>> = {
  // Room names have one segment, so both cover the same rooms; each is its own subscription for the client.
  '/chat/*': BAYEUX_PATTERN_ONE,
  '/chat/**': BAYEUX_PATTERN_ALL,
};

/** What a Bayeux channel name means here. */
export type ChannelKind =
  | { kind: 'meta'; name: string }
  | { kind: 'room'; room: string }
  /** A channel pattern; `bit` is set for `/chat/*` and `/chat/**`, the only ones served. */
  | { kind: 'wildcard'; bit: number | null }
  | { kind: 'other' };

export function classifyChannel(channel: string): ChannelKind {
  // Bayeux §2.2.1: a segment `*` or `**` at the end makes a channel pattern (`/meta/*` too).
  if (/\/\*\*?$/.test(channel)) return { kind: 'wildcard', bit: ROOM_PATTERNS[channel] ?? null };
  if (channel.startsWith('/meta/')) return { kind: 'meta', name: channel };
  const match = /^\/chat\/([^/]+)$/.exec(channel);
  if (match && isRoomName(match[1]!)) return { kind: 'room', room: match[1]! };
  return { kind: 'other' };
}

/**
 * GRIP channel a held connect listens on for a room. Only hints are published
 * there: a connect reply is per client (its id, clientId, ack batch), so the
 * proxy re-asks the app instead of delivering one body to everyone.
 */
export function bayeuxHintChannel(room: string): string {
  return `bayeux:room:${room}`;
}

/** GRIP channel that wakes one client's held connect (its subscriptions changed, or it disconnected). */
export function bayeuxWakeChannel(connectionId: string): string {
  return `bayeux:c:${connectionId}`;
}

const ROOM_GRIP_CHANNEL = /^room:(.+)$/;

/** The room of a `room:<name>` GRIP channel (server/grip/channels.ts), or null for any other channel. */
export function roomOfGripChannel(channel: string): string | null {
  const match = ROOM_GRIP_CHANNEL.exec(channel);
  return match ? match[1]! : null;
}
