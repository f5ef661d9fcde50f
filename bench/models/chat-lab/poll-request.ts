/**
 * The parts of `GET /api/poll` every lab model shares with the real route
 * (server/routes/poll.ts): reading `cid` and writing the answer, byte for byte
 * what the real route's `res.json` writes, so clients cannot tell the models apart.
 */
import type http from 'node:http';
import { COMET_CONNECTION_ID } from '../../../protocol/headers.js';
import { isConnectionId } from '../../../protocol/ids.js';
import { AppError } from '../../../server/errors.js';
import type { ChatEvent } from '../../../server/model.js';

/**
 * `cid` absent or empty: the client has none yet. Anything else must be a
 * well-formed ID, given once. The same rule and error as server/routes/poll.ts
 * (where it is not exported).
 */
export function parseCid(raw: unknown): string | undefined {
  if (raw === undefined || raw === '') return undefined;
  if (!isConnectionId(raw)) {
    throw new AppError('APP_ERR_BAD_CONNECTION_ID', 'cid must be a connection ID (21 characters of A-Z a-z 0-9 _ -), given once');
  }
  return raw;
}

/**
 * `200 {"events":[...],"connectionId":"ID"}` with the API's headers. Written
 * with plain `node:http` calls so that a tier in front of Express (the
 * mailbox) and a handler re-run outside Express (suspend/resume) answer alike.
 * Does nothing when the response is already over (client gone, answered).
 */
export function sendPollAnswer(res: http.ServerResponse, connectionId: string, events: readonly ChatEvent[]): void {
  if (res.headersSent || res.destroyed) return;
  const body = JSON.stringify({ events, connectionId });
  res.statusCode = 200;
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader(COMET_CONNECTION_ID, connectionId);
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(body);
}
