/**
 * The re-poll lease the chat app grants with a poll's answer (docs/protocol.md
 * §13, §10): it lets the proxy answer this client's next polls of the same
 * rooms by itself, from its channel buffer, until the lease expires or is
 * revoked (leaving a room revokes the session's leases: chat-service.ts).
 *
 * Bound to the session cookie (its SHA-256, never the value), so a client that
 * knows another's connection ID gets nothing from the proxy; and it describes
 * the answers the app itself gives, so the client cannot tell who answered.
 */
import { bindingDigest, signLease, type LeaseClaims } from '../../protocol/lease.js';
import { COMET_CONNECTION_ID } from '../../protocol/headers.js';
import { SESSION_COOKIE } from '../http/cookies.js';
import { roomChannel, ROOM_CHANNEL_PREFIX } from './channels.js';

export interface LeaseIssuerOptions {
  leaseKey: string;
  leaseTtlS: number;
  /** `Grip-Timeout` of the poll's holds, seconds. */
  holdTimeoutS: number;
  /** Most events in one answer (the app's own cut). */
  pollBatchMax: number;
  /** Wall clock, ms since the epoch. */
  now: () => number;
}

export interface LeaseInput {
  /** The session's id: the lease's subject, named by revocations. */
  sessionId: number;
  /** The session cookie's value, as this request carried it. */
  sessionToken: string;
  connectionId: string;
  /** Each polled room and its last event id in the poll's snapshot. */
  rooms: ReadonlyArray<{ room: string; lastEventId: number }>;
}

/** Headers every poll answer carries, as the app's JSON answers carry them (Express adds Content-Type). */
export const POLL_ANSWER_HEADERS = {
  'content-type': 'application/json; charset=utf-8',
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
} as const;

/** The lease's `sub` for a session: revocations name it (chat-service.ts). */
export function leaseSubject(sessionId: number): string {
  return `s${sessionId}`;
}

export class LeaseIssuer {
  constructor(private readonly options: LeaseIssuerOptions) {}

  /** A signed lease for the client whose poll is being answered. */
  issue(input: LeaseInput): string {
    const now = this.options.now();
    const claims: LeaseClaims = {
      cid: input.connectionId,
      sub: leaseSubject(input.sessionId),
      bind: { cookie: SESSION_COOKIE, sha256: bindingDigest(input.sessionToken) },
      ch: input.rooms.map((r) => [roomChannel(r.room), String(r.lastEventId)]),
      iat: now / 1000,
      exp: (now + this.options.leaseTtlS * 1000) / 1000,
      req: { path: '/api/poll', cid: 'cid', cursors: 'rooms', prefix: ROOM_CHANNEL_PREFIX },
      hold: {
        timeout: this.options.holdTimeoutS,
        headers: { ...POLL_ANSWER_HEADERS, [COMET_CONNECTION_ID]: input.connectionId },
        body: JSON.stringify({ events: [], connectionId: input.connectionId }),
      },
      // Event items are `{"events":[EVENT]}` (outbox/item-format.ts): several make `{"events":[E1,E2]}`.
      batch: { prefix: '{"events":[', sep: ',', suffix: ']}', max: this.options.pollBatchMax },
    };
    return signLease(claims, this.options.leaseKey);
  }
}
