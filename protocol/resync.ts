/**
 * The resync answer: what the proxy writes to a client when it cannot guarantee
 * the client has everything (a queue overflowed or expired, or a re-ask failed).
 * The client must reload the affected state from the app (history, cursors).
 */
import { COMET_RESYNC } from './headers.js';

export type ResyncReason =
  /** The connection's queue hit its count or byte limit; items were discarded. */
  | 'queue-overflow'
  /** Queued items outlived the queue TTL before the client came back. */
  | 'queue-expired'
  /** Redis (the shared queue store) lost its data; items queued for the connection may be gone (docs/scaleout.md). */
  | 'queue-lost'
  /** The proxy re-asked the app and the re-ask failed (network error, body not retained). */
  | 'reask-failed'
  /** The request was re-asked too many times in a row. */
  | 'reask-limit';

export interface ResyncBody {
  resync: {
    reason: ResyncReason;
    /** Channels of the held request, if it named any. */
    channels: string[];
  };
}

export const RESYNC_STATUS = 200;

export function resyncResponse(reason: ResyncReason, channels: string[]): {
  code: number;
  headers: Record<string, string>;
  body: Buffer;
} {
  const body: ResyncBody = { resync: { reason, channels } };
  return {
    code: RESYNC_STATUS,
    headers: {
      'content-type': 'application/json; charset=utf-8',
      'cache-control': 'no-store',
      [COMET_RESYNC]: reason,
    },
    body: Buffer.from(JSON.stringify(body)),
  };
}
