/**
 * `GET /api/poll` inside the app, for the polls the mailbox tier could not
 * answer alone: the first poll of a connection, one whose mailbox expired,
 * overflowed or is due for a presence refresh, or one naming other rooms or
 * older cursors than its mailbox covers. The app reads SQLite (PollService.poll,
 * as the real route), (re)opens the connection's mailbox on the polled rooms,
 * and answers the events, or parks the request on the new mailbox.
 */
import { Router, type Request, type Response } from 'express';
import { parseRoomCursors } from '../../../server/cursors.js';
import { sessionOf } from '../../../server/http/request-context.js';
import { requireSession } from '../../../server/http/session.js';
import type { PollService } from '../../../server/poll-service.js';
import type { RoomHeads } from '../chat-lab/room-heads.js';
import { parseCid, sendPollAnswer } from '../chat-lab/poll-request.js';
import type { MailboxStore } from './mailbox-store.js';
import type { ParkedReads } from './parked-reads.js';

export interface MailboxAppPollDeps {
  poll: PollService;
  mailboxes: MailboxStore;
  reads: ParkedReads;
  heads: RoomHeads;
  /** How long a poll parks on its new mailbox, ms. */
  holdTimeoutMs: number;
}

/**
 * Reads before giving up on the race below and answering empty (the client
 * then polls again at once, and that poll reads SQLite).
 */
const MAX_READS = 3;

export interface MailboxAppPoll {
  router: Router;
  /** Resolves when no app-path poll is reading SQLite (close() waits for it before the database closes). */
  idle(): Promise<void>;
}

export function mailboxAppPollRoutes(deps: MailboxAppPollDeps): MailboxAppPoll {
  const router = Router();
  const inFlight = new Set<Promise<void>>();

  const handle = async (req: Request, res: Response): Promise<void> => {
    const cursors = parseRoomCursors(req.query.rooms);
    let cid = parseCid(req.query.cid);
    const session = sessionOf(req);
    for (let read = 1; ; read++) {
      const { connectionId, events, lastIds } = await deps.poll.poll(session, cursors, cid);
      cid = connectionId;
      // Events published after the read but before this line were written to no mailbox of this
      // connection: the new mailbox covers a room only above both the read and the room's published head.
      const mailbox = deps.mailboxes.open(
        connectionId,
        { sessionId: session.id, token: session.token },
        lastIds.map(({ room, lastEventId }) => ({ room, from: Math.max(lastEventId, deps.heads.get(room)) })),
      );
      if (events.length > 0) {
        sendPollAnswer(res, connectionId, events);
        return;
      }
      if (mailbox.covers(cursors)) {
        mailbox.ack(cursors);
        deps.reads.park(mailbox, res, cursors, deps.holdTimeoutMs);
        return;
      }
      if (read === MAX_READS) {
        sendPollAnswer(res, connectionId, []);
        return;
      }
    }
  };

  router.get('/poll', requireSession, (req, res) => {
    const running = handle(req, res).finally(() => inFlight.delete(running));
    inFlight.add(running);
    // Express 5 sends a rejection to the error handler.
    return running;
  });

  return {
    router,
    async idle() {
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    },
  };
}
