/**
 * `GET /api/stream?rooms=name:cursor,...&cid=ID&format=sse|xhr|iframe`: the rooms' events as server-sent events
 * (docs/chat-api.md, docs/protocol.md §10.2). Same session, membership, cursor and connection-ID rules as
 * `GET /api/poll` (the same PollService call): the first bytes are a `hello` frame with the connection ID and
 * every event past the cursors, then a stream hold on the rooms' channels, so the proxy appends each event
 * the relay publishes (its `http-stream` format, outbox/item-format.ts).
 */
import { Router } from 'express';
import { COMET_CONNECTION_ID } from '../../protocol/headers.js';
import { isConnectionId } from '../../protocol/ids.js';
import { parseCursor, parseRoomCursors, type RoomCursor } from '../cursors.js';
import { AppError } from '../errors.js';
import { sseEventFrame, sseHelloFrame, STREAM_FORMATS, type StreamFormat } from '../grip/stream-frames.js';
import { buildStreamHold } from '../grip/stream-hold.js';
import { sessionOf } from '../http/request-context.js';
import { requireSession } from '../http/session.js';
import type { PollService } from '../poll-service.js';

/** `cid` absent or empty: the client has none yet. Anything else must be a well-formed ID, given once. */
function parseCid(raw: unknown): string | undefined {
  if (raw === undefined || raw === '') return undefined;
  if (!isConnectionId(raw)) {
    throw new AppError('APP_ERR_BAD_CONNECTION_ID', 'cid must be a connection ID (21 characters of A-Z a-z 0-9 _ -), given once');
  }
  return raw;
}

/**
 * `Last-Event-ID` (EventSource sends the last `id:` it saw when it reconnects by itself): an event id, after
 * which the client has every event of the stream's rooms. Absent or empty: none. Node joins a repeated header
 * with ", ", which is refused like any other malformed value.
 */
function parseLastEventId(raw: string | undefined): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  const id = parseCursor(raw);
  if (id === null) throw new AppError('APP_ERR_BAD_CURSOR', `Last-Event-ID ${JSON.stringify(raw.slice(0, 40))} is not an event id (a non-negative integer)`);
  return id;
}

/** `format` absent or empty: server-sent events. `xhr` and `iframe` differ only in their first bytes. */
function parseFormat(raw: unknown): StreamFormat {
  if (raw === undefined || raw === '' || raw === 'sse') return 'sse';
  if (raw === 'xhr' || raw === 'iframe') return raw;
  throw new AppError('APP_ERR_BAD_STREAM_FORMAT', 'format must be sse, xhr or iframe, given once');
}

export function streamRoutes(poll: PollService): Router {
  const router = Router();

  router.get('/stream', requireSession, async (req, res) => {
    // Parse everything before touching state: a refused stream changes nothing.
    const asked = parseRoomCursors(req.query.rooms);
    const cid = parseCid(req.query.cid);
    const format = STREAM_FORMATS[parseFormat(req.query.format)];
    const lastEventId = parseLastEventId(req.get('last-event-id'));
    // The URL's cursors are those of the first connect; Last-Event-ID is newer when EventSource reconnected itself.
    const cursors: RoomCursor[] = lastEventId === undefined ? asked : asked.map((c) => ({ room: c.room, cursor: Math.max(c.cursor, lastEventId) }));
    const session = sessionOf(req);
    const { connectionId, events, lastIds } = await poll.poll(session, cursors, cid);

    // Each room's position after the first bytes: the last event given for it, else the cursor.
    const sent = new Map(cursors.map((c) => [c.room, c.cursor]));
    for (const event of events) sent.set(event.room, event.id);
    // Fewer events than there are (the answer was cut at pollBatchMax) or a request that did not come through
    // the proxy: a complete answer, after which the client reconnects from where it got to.
    const complete = req.viaProxy !== true || lastIds.some((r) => sent.get(r.room)! < r.lastEventId);
    res.set(COMET_CONNECTION_ID, connectionId);
    res.set('Content-Type', format.contentType);
    // The iframe document is for this site's pages only (its script calls into its parent).
    res.set('Content-Security-Policy', "frame-ancestors 'self'");
    if (!complete) res.set(buildStreamHold(session.id, lastIds));
    res.send(format.prologue + sseHelloFrame(connectionId) + events.map(sseEventFrame).join(''));
  });

  return router;
}
