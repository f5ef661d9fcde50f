/**
 * The lab's chat workload on the wire: what the publisher writes in a message
 * and how a subscriber reads it back. Every message carries its room's
 * publish sequence (1, 2, 3, ...) and its due time on the publisher's
 * open-loop schedule, so a subscriber can count lost, duplicated and
 * out-of-order deliveries and measure due-to-receipt latency without asking
 * anyone.
 */
import { performance } from 'node:perf_hooks';

/** Rooms of a load point: `room-0` .. `room-<n-1>` (valid chat room names). */
export function roomNames(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `room-${i}`);
}

/** The room subscriber `index` (0-based, across all workers) is in: round robin, so rooms are even. */
export function roomOfClient(index: number, rooms: readonly string[]): string {
  return rooms[index % rooms.length]!;
}

/**
 * Wall-clock milliseconds with sub-millisecond resolution, comparable across
 * processes on one machine (each process's `timeOrigin` is wall-clock at start).
 */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

export interface Stamp {
  /** Publish sequence within the room, from 1. */
  seq: number;
  /** The message's due time on the publisher's schedule, `nowMs()` clock (schedule.ts), not when its request left. */
  sentAtMs: number;
}

const PREFIX = 'lab:';

/** The message text for `stamp`: `lab:<seq>:<sentAtMs>`. */
export function formatStamp(stamp: Stamp): string {
  return `${PREFIX}${stamp.seq}:${stamp.sentAtMs.toFixed(3)}`;
}

/** The stamp in a message text, or `null` for any other text (join events, other traffic). */
export function parseStamp(text: unknown): Stamp | null {
  if (typeof text !== 'string' || !text.startsWith(PREFIX)) return null;
  const [seqText, sentText] = text.slice(PREFIX.length).split(':');
  const seq = Number(seqText);
  const sentAtMs = Number(sentText);
  if (!Number.isInteger(seq) || seq < 1 || !Number.isFinite(sentAtMs)) return null;
  return { seq, sentAtMs };
}
