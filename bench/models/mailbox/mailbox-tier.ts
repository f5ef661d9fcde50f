/**
 * The web tier in front of the app (lighttpd's mod_mailbox): it answers
 * `GET /api/poll?rooms=...&cid=ID` from the connection's mailbox when it can,
 * without the app and without SQLite, and passes every other request (and
 * every poll it cannot answer alone) to the app unchanged. Refusals are the
 * app's to make: a poll that does not parse, names another session's mailbox
 * or needs older events than the mailbox covers simply goes through.
 */
import type http from 'node:http';
import querystring from 'node:querystring';
import { isConnectionId } from '../../../protocol/ids.js';
import { REQUEST_ID_HEADER, requestIdFrom } from '../../../protocol/request-id.js';
import { parseRoomCursors, type RoomCursor } from '../../../server/cursors.js';
import { parseCookies, SESSION_COOKIE } from '../../../server/http/cookies.js';
import { sendPollAnswer } from '../chat-lab/poll-request.js';
import type { Mailbox } from './mailbox.js';
import type { MailboxStore } from './mailbox-store.js';
import type { ParkedReads } from './parked-reads.js';

const POLL_PATH = '/api/poll';

export interface MailboxTierOptions {
  /** How long a read parks on an empty mailbox, ms. */
  holdTimeoutMs: number;
  /** Most events in one answer. */
  pollBatchMax: number;
  /** Clock, ms since the epoch. */
  now: () => number;
  /**
   * An extra per-poll check of the `sid` cookie beyond matching the mailbox's owner (the lab's `session-check`
   * mode: a SQLite read of the session per poll, as the app does); false passes the poll to the app, which refuses.
   */
  authorize?: (token: string) => boolean;
}

export class MailboxTier {
  constructor(
    private readonly mailboxes: MailboxStore,
    private readonly reads: ParkedReads,
    private readonly options: MailboxTierOptions,
  ) {}

  /** Answers the request from a mailbox and returns true, or returns false to pass it to the app. */
  handle(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    const url = req.url;
    if (req.method !== 'GET' || url === undefined || !url.startsWith(POLL_PATH) || url[POLL_PATH.length] !== '?') return false;
    // The app's query parser is node:querystring too (Express 'simple'): a repeated parameter is an array, refused below.
    const query = querystring.parse(url.slice(POLL_PATH.length + 1));
    if (!isConnectionId(query.cid)) return false;
    const mailbox = this.mailboxes.get(query.cid);
    const token = parseCookies(req.headers.cookie).get(SESSION_COOKIE);
    if (mailbox === undefined || !mailbox.ownedBy(token)) return false;
    if (this.options.authorize !== undefined && !this.options.authorize(token!)) return false;
    let cursors: RoomCursor[];
    try {
      cursors = parseRoomCursors(query.rooms);
    } catch {
      return false;
    }
    if (!mailbox.covers(cursors)) return false;
    this.serve(mailbox, req, res, cursors);
    return true;
  }

  private serve(mailbox: Mailbox, req: http.IncomingMessage, res: http.ServerResponse, cursors: RoomCursor[]): void {
    mailbox.ack(cursors);
    mailbox.lastReadAt = this.options.now();
    // The app echoes a request id on every answer (server/http/request-log.ts); so does the tier.
    res.setHeader(REQUEST_ID_HEADER, requestIdFrom(req.headers[REQUEST_ID_HEADER]));
    const events = mailbox.pending(cursors, this.options.pollBatchMax);
    if (events.length > 0) sendPollAnswer(res, mailbox.connectionId, events);
    else this.reads.park(mailbox, res, cursors, this.options.holdTimeoutMs);
  }
}
