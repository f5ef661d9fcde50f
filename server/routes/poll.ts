/**
 * `GET /api/poll?rooms=name:cursor,...&cid=ID`: the Comet long-poll.
 * News is answered at once; no news is a hold instruction when the request came
 * through the proxy (docs/protocol.md §10), an immediate empty answer otherwise.
 */
import { Router } from 'express';
import { COMET_CONNECTION_ID } from '../../protocol/headers.js';
import { isConnectionId } from '../../protocol/ids.js';
import { parseRoomCursors } from '../cursors.js';
import { AppError } from '../errors.js';
import { buildHold } from '../grip/hold.js';
import type { LeaseIssuer } from '../grip/lease.js';
import { GRIP_LEASE } from '../../protocol/lease.js';
import { sessionOf } from '../http/request-context.js';
import { requireSession } from '../http/session.js';
import type { PollService } from '../poll-service.js';

export interface PollRoutesOptions {
  /** `Grip-Timeout` of holds, seconds. */
  holdTimeoutS: number;
  /** Grants re-poll leases to polls that came through the proxy (docs/protocol.md §13); none: no leases. */
  leases?: LeaseIssuer;
}

/** `cid` absent or empty: the client has none yet. Anything else must be a well-formed ID, given once. */
function parseCid(raw: unknown): string | undefined {
  if (raw === undefined || raw === '') return undefined;
  if (!isConnectionId(raw)) {
    throw new AppError('APP_ERR_BAD_CONNECTION_ID', 'cid must be a connection ID (21 characters of A-Z a-z 0-9 _ -), given once');
  }
  return raw;
}

export function pollRoutes(poll: PollService, options: PollRoutesOptions): Router {
  const router = Router();

  router.get('/poll', requireSession, async (req, res) => {
    // Parse everything before touching state: a refused poll changes nothing.
    const cursors = parseRoomCursors(req.query.rooms);
    const cid = parseCid(req.query.cid);
    const session = sessionOf(req);
    const { connectionId, events, lastIds } = await poll.poll(session, cursors, cid);

    res.set(COMET_CONNECTION_ID, connectionId);
    if (options.leases !== undefined && req.viaProxy === true) {
      // With the answer or the hold: the proxy answers this client's next polls of these rooms itself.
      res.set(GRIP_LEASE, options.leases.issue({ sessionId: session.id, sessionToken: session.token, connectionId, rooms: lastIds }));
    }
    if (events.length > 0 || req.viaProxy !== true) {
      res.json({ events, connectionId });
      return;
    }
    const hold = buildHold({ rooms: lastIds, connectionId, timeoutS: options.holdTimeoutS });
    res.set(hold.headers).json(hold.body);
  });

  return router;
}
