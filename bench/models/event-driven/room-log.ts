/**
 * One room of the event-driven server: its members and its append-only event
 * log. Events are stored as their serialized JSON, once, next to their ids in
 * two parallel arrays: every poll answer and stream frame is built by
 * concatenating these strings, so an event is never serialized twice and the
 * log holds no per-event objects.
 */
import type { OpenStream, ParkedPoll } from './hub.js';

export class RoomLog {
  /** `JSON.stringify(name)`, spliced into every event of the room. */
  readonly nameJson: string;
  /** User ids. */
  readonly members = new Set<number>();
  /** Polls parked on this room (a poll naming several rooms is in each of their sets). */
  readonly polls = new Set<ParkedPoll>();
  /** Streams reading this room. */
  readonly streams = new Set<OpenStream>();
  /** Id of the last event already fanned out to polls and streams (the hub's flush). */
  flushedId = 0;

  private readonly ids: number[] = [];
  private readonly jsons: string[] = [];

  constructor(readonly name: string) {
    this.nameJson = JSON.stringify(name);
  }

  /** Id of the room's last event, 0 when it has none. */
  get lastEventId(): number {
    const n = this.ids.length;
    return n === 0 ? 0 : this.ids[n - 1]!;
  }

  get length(): number {
    return this.ids.length;
  }

  /** Appends an event; `id` must be larger than every id already in the log (ids are global and increasing). */
  append(id: number, json: string): void {
    this.ids.push(id);
    this.jsons.push(json);
  }

  /** Index of the first event with an id greater than `cursor` (`length` when there is none). */
  indexAfter(cursor: number): number {
    const ids = this.ids;
    let lo = 0;
    let hi = ids.length;
    // Most readers are at or near the end: answer that without a search.
    if (hi === 0 || ids[hi - 1]! <= cursor) return hi;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (ids[mid]! <= cursor) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  idAt(index: number): number {
    return this.ids[index]!;
  }

  jsonAt(index: number): string {
    return this.jsons[index]!;
  }

  /** `{"name","members","lastEventId"}` as in docs/chat-api.md. */
  viewJson(): string {
    return `{"name":${this.nameJson},"members":${this.members.size},"lastEventId":${this.lastEventId}}`;
  }
}

/** A reader's position in one room: the id of the last event it has (0 for none). */
export interface RoomCursorRef {
  room: RoomLog;
  cursor: number;
}

/**
 * Visits the events past the cursors, oldest first (global id order across
 * rooms), at most `max`; returns how many were visited. Cursors are not moved.
 */
export function forEachPast(
  subs: readonly RoomCursorRef[],
  max: number,
  visit: (id: number, json: string, sub: RoomCursorRef) => void,
): number {
  if (subs.length === 1) {
    const sub = subs[0]!;
    const room = sub.room;
    const start = room.indexAfter(sub.cursor);
    const end = Math.min(room.length, start + max);
    for (let i = start; i < end; i++) visit(room.idAt(i), room.jsonAt(i), sub);
    return end - start;
  }
  // Several rooms: merge by id. A poll names at most 50 rooms, so a linear pick of the smallest head is enough.
  const heads = subs.map((s) => s.room.indexAfter(s.cursor));
  let count = 0;
  while (count < max) {
    let best = -1;
    let bestId = Infinity;
    for (let k = 0; k < subs.length; k++) {
      const room = subs[k]!.room;
      const i = heads[k]!;
      if (i < room.length && room.idAt(i) < bestId) {
        bestId = room.idAt(i);
        best = k;
      }
    }
    if (best === -1) break;
    const sub = subs[best]!;
    visit(bestId, sub.room.jsonAt(heads[best]!), sub);
    heads[best] = heads[best]! + 1;
    count++;
  }
  return count;
}

/** Is there any event past the cursors? */
export function hasPast(subs: readonly RoomCursorRef[]): boolean {
  for (const s of subs) if (s.room.lastEventId > s.cursor) return true;
  return false;
}
