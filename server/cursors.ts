/**
 * Cursor syntax of the API: a cursor is the id of the last event a client has
 * seen in a room. The poll names one per room: `rooms=general:42,random:0`.
 * Parsing is strict so that a buggy client fails loudly instead of skipping
 * or replaying events.
 */
import { AppError } from './errors.js';
import { isRoomName } from './validation.js';

export interface RoomCursor {
  room: string;
  /** Last event id the client has in this room, 0 for none. */
  cursor: number;
}

/** Most rooms one poll may name (bounds the work and the Grip-Channel header). */
export const POLL_MAX_ROOMS = 50;

/** Canonical decimal: no sign, no leading zeros, no exponent, no spaces. */
const DECIMAL = /^(?:0|[1-9][0-9]*)$/;

/** A non-negative safe integer written canonically in decimal, or null. */
export function parseCursor(text: string): number | null {
  if (!DECIMAL.test(text)) return null;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : null;
}

function badCursor(message: string): AppError {
  return new AppError('APP_ERR_BAD_CURSOR', message);
}

/**
 * Parses the poll's `rooms` query value. `raw` is what the query parser gave:
 * a repeated parameter (an array) is refused rather than guessed at.
 */
export function parseRoomCursors(raw: unknown): RoomCursor[] {
  if (raw === undefined || raw === '') throw badCursor('rooms is required: rooms=name:cursor,...');
  if (typeof raw !== 'string') throw badCursor('rooms must be given once, as name:cursor,...');
  const entries = raw.split(',');
  if (entries.length > POLL_MAX_ROOMS) throw badCursor(`at most ${POLL_MAX_ROOMS} rooms per poll, got ${entries.length}`);
  const seen = new Set<string>();
  return entries.map((entry) => {
    const parts = entry.split(':');
    const [room, cursorText] = parts;
    if (parts.length !== 2 || room === undefined || cursorText === undefined) {
      throw badCursor(`${JSON.stringify(entry)} is not name:cursor`);
    }
    if (!isRoomName(room)) throw badCursor(`${JSON.stringify(room)} is not a room name`);
    const cursor = parseCursor(cursorText);
    if (cursor === null) throw badCursor(`cursor ${JSON.stringify(cursorText)} of room ${room} is not a non-negative integer`);
    if (seen.has(room)) throw badCursor(`room ${room} is named twice`);
    seen.add(room);
    return { room, cursor };
  });
}
