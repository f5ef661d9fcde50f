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
import { sessionOf } from '../http/request-context.js';
import { requireSession } from '../http/session.js';
import type { PollService } from '../poll-service.js';

export interface PollRoutesOptions {
  /** `Grip-Timeout` of holds, seconds. */
  holdTimeoutS: number;
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
    const { connectionId, events, lastIds } = await poll.poll(sessionOf(req), cursors, cid);

    res.set(COMET_CONNECTION_ID, connectionId);
    if (events.length > 0 || req.viaProxy !== true) {
      res.json({ events, connectionId });
      return;
    }
    const hold = buildHold({ rooms: lastIds, connectionId, timeoutS: options.holdTimeoutS });
    res.set(hold.headers).json(hold.body);
  });

  return router;
}
