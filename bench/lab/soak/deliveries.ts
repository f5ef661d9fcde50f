/**
 * The soak's verdict: compares what every client received with the ground
 * truth in the database (docs/operations.md, "Soak"), and prints the report.
 *
 * Expected deliveries, precisely: for each client and each membership
 * interval `(from, to]` it recorded in a room (`from` = the cursor its join
 * answer returned, i.e. the room's last event id including its own join event;
 * `to` = the room's last event id the client read and caught up to just before
 * it left, or for a membership still open at the end, the room's last event id
 * once the load stopped), every `message` event of that room with
 * `from < id <= to` is expected once.
 *
 * - delivered: expected (client, message) pairs the client received;
 * - lost: expected pairs it never received (must be 0);
 * - duplicated: receptions of an event (any type) the client had already received (must be 0);
 * - outsideWindow: messages received outside every interval (allowed: e.g. between C and the
 *   leave itself, or a join whose answer was lost); unknown: received ids not in the database (must be 0).
 */
import type { ClientRecord } from './soak-messages.js';

export interface EventRow {
  id: number;
  room: string;
  type: string;
}

export interface DeliveryCheck {
  committedMessages: number;
  committedEvents: number;
  expected: number;
  delivered: number;
  lost: number;
  duplicated: number;
  outsideWindow: number;
  unknown: number;
  /** Up to 10 of each, to start an investigation. */
  lostExamples: Array<{ client: string; room: string; eventId: number }>;
  duplicateExamples: Array<{ client: string; eventId: number; times: number }>;
}

/** First index in sorted `ids` whose value is > `id`. */
function upperBound(ids: readonly number[], id: number): number {
  let lo = 0;
  let hi = ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ids[mid]! <= id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export function checkDeliveries(events: readonly EventRow[], lastIds: Readonly<Record<string, number>>, clients: readonly ClientRecord[]): DeliveryCheck {
  const byId = new Map<number, EventRow>();
  const messagesByRoom = new Map<string, number[]>();
  for (const e of events) {
    byId.set(e.id, e);
    if (e.type !== 'message') continue;
    let ids = messagesByRoom.get(e.room);
    if (ids === undefined) messagesByRoom.set(e.room, (ids = []));
    ids.push(e.id);
  }
  for (const ids of messagesByRoom.values()) ids.sort((a, b) => a - b);

  const check: DeliveryCheck = {
    committedMessages: events.filter((e) => e.type === 'message').length,
    committedEvents: events.length,
    expected: 0,
    delivered: 0,
    lost: 0,
    duplicated: 0,
    outsideWindow: 0,
    unknown: 0,
    lostExamples: [],
    duplicateExamples: [],
  };

  for (const client of clients) {
    const times = new Map<number, number>();
    for (const id of client.received) times.set(id, (times.get(id) ?? 0) + 1);
    for (const [id, n] of times) {
      if (n > 1) {
        check.duplicated += n - 1;
        if (check.duplicateExamples.length < 10) check.duplicateExamples.push({ client: client.nick, eventId: id, times: n });
      }
      if (!byId.has(id)) check.unknown++;
    }

    const covered = new Set<number>();
    for (const [room, from, to] of client.intervals) {
      const end = to ?? lastIds[room] ?? from;
      const ids = messagesByRoom.get(room) ?? [];
      for (let i = upperBound(ids, from); i < ids.length && ids[i]! <= end; i++) {
        const id = ids[i]!;
        covered.add(id);
        check.expected++;
        if (times.has(id)) {
          check.delivered++;
        } else {
          check.lost++;
          if (check.lostExamples.length < 10) check.lostExamples.push({ client: client.nick, room, eventId: id });
        }
      }
    }
    for (const id of times.keys()) {
      if (byId.get(id)?.type === 'message' && !covered.has(id)) check.outsideWindow++;
    }
  }
  return check;
}

/** Right-aligned two-column table, for stdout. */
export function formatTable(rows: ReadonlyArray<[string, string | number]>): string {
  const width = Math.max(...rows.map(([k]) => k.length));
  const valueWidth = Math.max(...rows.map(([, v]) => String(v).length));
  const line = `+${'-'.repeat(width + 2)}+${'-'.repeat(valueWidth + 2)}+`;
  return [line, ...rows.map(([k, v]) => `| ${k.padEnd(width)} | ${String(v).padStart(valueWidth)} |`), line].join('\n');
}

export function mib(bytes: number | null | undefined): string {
  return bytes === null || bytes === undefined ? 'n/a' : `${(bytes / 1048576).toFixed(1)} MiB`;
}
