/**
 * How an event becomes a GRIP publish item (docs/protocol.md §7.1, §10): the
 * `http-response` a parked poll receives, the outbox row carrying it, and the
 * hint items the relay adds for Bayeux holds at publish time.
 */
import type { CloseItem, HttpResponseFormat, PublishItem, RevokeItem } from '../../protocol/control-api.js';
import type { ChatEvent } from '../model.js';
import type { NewOutboxRow, OutboxRow } from '../store/outbox.js';
import { ROOM_CHANNEL_PREFIX, SESSION_STREAMS_PREFIX, sessionStreamsChannel } from '../grip/channels.js';
import { sseEventFrame } from '../grip/stream-frames.js';

/**
 * The response a parked poll gets for one event. Same shape as an immediate
 * poll answer minus `connectionId`, which the client already has.
 */
export function eventResponseFormat(event: ChatEvent): HttpResponseFormat {
  return {
    code: 200,
    headers: { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' },
    body: JSON.stringify({ events: [event] }),
  };
}

/**
 * The `http-stream` format of a room's event item (docs/protocol.md §10.2): the SSE frame of the one event the
 * stored `http-response` carries, so one publish serves parked polls and open streams. Built at publish time
 * from the stored row: rows written before streams existed are framed too.
 */
function streamFormat(channel: string, response: HttpResponseFormat): { content: string } | null {
  if (!channel.startsWith(ROOM_CHANNEL_PREFIX) || typeof response.body !== 'string') return null;
  const events = (JSON.parse(response.body) as { events?: unknown }).events;
  if (!Array.isArray(events) || events.length !== 1) return null;
  return { content: sseEventFrame(events[0] as ChatEvent) };
}

/**
 * The outbox row that ends every stream of a session (docs/protocol.md §10.2), written in the transaction that
 * makes the session leave a room or end, after its leave events: the streams get those, then their end, and
 * reconnect to the membership (or the 401) that is now true. No id: the channel carries nothing else.
 */
export function sessionStreamsClosedRow(sessionId: number, createdAt: number): NewOutboxRow {
  return { channel: sessionStreamsChannel(sessionId), itemId: '', prevId: '', payload: '{}', createdAt, revoke: null };
}

/** The publish item stored in an outbox row: its `http-response`, and for a room's event its `http-stream` too. */
export function toPublishItem(row: OutboxRow): PublishItem {
  if (row.channel.startsWith(SESSION_STREAMS_PREFIX)) return { channel: row.channel, formats: { 'http-stream': { action: 'close' } } };
  const response = JSON.parse(row.payload) as HttpResponseFormat;
  const stream = streamFormat(row.channel, response);
  const item: PublishItem = {
    channel: row.channel,
    id: row.itemId,
    'prev-id': row.prevId,
    formats: stream === null ? { 'http-response': response } : { 'http-response': response, 'http-stream': stream },
  };
  if (row.revoke) item['comet-revoke'] = JSON.parse(row.revoke) as RevokeItem[];
  return item;
}

/** An item that makes the proxy re-ask every request parked on `channel` (docs/protocol.md §7.1). */
export function hintItem(channel: string, id: string, prevId: string): PublishItem {
  return { channel, id, 'prev-id': prevId, formats: { 'http-response': { action: 'hint' } } };
}

/**
 * The publish items of a batch of rows, in order: each row's item, followed by a
 * hint with the same id and prev-id on `hintChannel(row.channel)` when that names
 * one (a Bayeux hold's channel, docs/bayeux.md). One outbox row per event either way;
 * `hintChannel` is asked once per channel per batch.
 */
export function toPublishItems(rows: readonly OutboxRow[], hintChannel?: (channel: string) => string | null): PublishItem[] {
  if (hintChannel === undefined) return rows.map(toPublishItem);
  const hints = new Map<string, string | null>();
  const items: PublishItem[] = [];
  for (const row of rows) {
    items.push(toPublishItem(row));
    let hint = hints.get(row.channel);
    if (hint === undefined) {
      hint = hintChannel(row.channel);
      hints.set(row.channel, hint);
    }
    if (hint !== null) items.push(hintItem(hint, row.itemId, row.prevId));
  }
  return items;
}

/**
 * The `/close/` item that answers a connection ID's parked poll when its session ends: the `{code, message}`
 * a new poll of that session would get (401 `APP_ERR_SESSION_ENDED` or `_EXPIRED`).
 */
export function sessionClosedItem(connectionId: string, error: { status: number; toJSON(): { code: string; message: string } }): CloseItem {
  return {
    'connection-id': connectionId,
    formats: {
      'http-response': {
        code: error.status,
        headers: { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' },
        body: JSON.stringify(error.toJSON()),
      },
    },
  };
}

/** The `/close/` items a batch of `close` rows carries, in order. */
export function toCloseItems(rows: readonly OutboxRow[]): CloseItem[] {
  return rows.flatMap((row) => JSON.parse(row.payload) as CloseItem[]);
}
