/**
 * How an event becomes a GRIP publish item (docs/protocol.md §7.1, §10): the
 * `http-response` a parked poll receives, and the outbox row carrying it.
 */
import type { HttpResponseFormat, PublishItem } from '../../protocol/control-api.js';
import type { ChatEvent } from '../model.js';
import type { OutboxRow } from '../store/outbox.js';

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

/** The publish item stored in an outbox row. */
export function toPublishItem(row: OutboxRow): PublishItem {
  return {
    channel: row.channel,
    id: row.itemId,
    'prev-id': row.prevId,
    formats: { 'http-response': JSON.parse(row.payload) as HttpResponseFormat },
  };
}
