/**
 * Ending a session, by sign-out (`DELETE /api/session`) or by expiry (the
 * pruner), in one write transaction per call so a session is ended whole or
 * not at all:
 *
 *   1. the row is marked ended (kept: its id and nick are the author of its events);
 *   2. a `/close/` row for each of its polls' connection IDs: every proxy answers
 *      their parked polls with the 401 a new poll would get, ends their leases and
 *      refuses the IDs (docs/protocol.md §7.3);
 *   3. it leaves every room with a `leave` event, which members see, and which carries
 *      the revocation of the session's leases (§13.4) like any leave;
 *   4. its SSE streams are ended (an outbox row on its streams channel, docs/protocol.md §10.2);
 *   5. its Bayeux clients are forgotten and their held connects woken (they get 402);
 *   6. its connection rows are deleted.
 *
 * Rows 2–5 are outbox rows, published in commit order by the relay, so this works
 * on every proxy (and over the Redis bus) and survives a proxy that is down.
 */
import type { BayeuxService } from './bayeux/bayeux-service.js';
import { leaseSubject } from './grip/lease.js';
import { sessionClosedItem, sessionStreamsClosedRow } from './outbox/item-format.js';
import { sessionEnded } from './errors.js';
import type { SessionExpiry } from './session-expiry.js';
import type { BusyRetry } from './store/busy-retry.js';
import type { SessionEndReason, SessionRow } from './store/sessions.js';
import type { Store } from './store/store.js';
import { WriteTransactions } from './store/write-transaction.js';

export interface SessionEnderOptions {
  /** Clock, ms since the epoch. */
  now: () => number;
  busy: BusyRetry;
  /** Called after a commit that wrote outbox rows. Must not throw. */
  onOutboxCommitted: () => void;
  /** The app grants re-poll leases: leave events then revoke the session's leases (as `ChatService.leaveRoom`). */
  revokeLeases: boolean;
  /** Writes what this process still holds for the database (the liveness log), so new connection IDs are closed too. */
  beforeEnd?: () => void;
}

/** Connection IDs per `/close/` row: one control call stays small whatever a session accumulated. */
const CLOSE_ITEMS_PER_ROW = 100;

export class SessionEnder {
  private readonly writes: WriteTransactions;

  constructor(
    private readonly store: Store,
    private readonly bayeux: BayeuxService,
    private readonly expiry: SessionExpiry,
    private readonly options: SessionEnderOptions,
  ) {
    this.writes = new WriteTransactions(store.db, options.busy, options.onOutboxCommitted);
  }

  /** Signs the session out; false when it had ended already (another sign-out won). */
  signOut(session: SessionRow): Promise<boolean> {
    this.options.beforeEnd?.();
    return this.writes.run(() => this.end(session.id, 'signed-out', this.options.now()));
  }

  /**
   * Frees `nick` when the session holding it can no longer be used, and ends that session now: one that expired
   * but the pruner has not ended yet (as the pruner would), or one a Bayeux handshake made (no cookie, its
   * clientIds the only credential) that has no live client left (as a sign-out). True when the nick was freed;
   * false when it is free or really in use.
   */
  freeNick(nick: string): Promise<boolean> {
    this.options.beforeEnd?.();
    return this.writes.run(() => {
      const now = this.options.now();
      const holder = this.store.sessions.liveByNick(nick);
      if (holder === undefined) return false;
      if (this.expiry.state(holder, now).kind === 'expired') return this.end(holder.id, 'expired', now);
      if (holder.via === 'bayeux' && !this.bayeux.hasLiveClient(holder.id)) return this.end(holder.id, 'signed-out', now);
      return false;
    });
  }

  /**
   * Ends up to `limit` sessions that are expired at this moment, in one transaction; returns how many. The
   * selection is made under the write lock, so a session used meanwhile is not ended.
   */
  endExpired(limit: number): Promise<number> {
    this.options.beforeEnd?.();
    return this.writes.run(() => {
      const now = this.options.now();
      const ids = this.store.sessions.expired(this.expiry.idleCutoff(now), this.expiry.ageCutoff(now), limit);
      let count = 0;
      for (const id of ids) if (this.end(id, 'expired', now)) count++;
      return count;
    });
  }

  /** Steps 1–6 above, inside the caller's transaction. */
  private end(sessionId: number, reason: SessionEndReason, now: number): boolean {
    const { store } = this;
    if (!store.sessions.end(sessionId, now, reason)) return false;
    const session = store.sessions.findById(sessionId)!;

    const answer = sessionEnded(reason);
    const ids = store.connections.pollIdsOf(sessionId);
    for (let i = 0; i < ids.length; i += CLOSE_ITEMS_PER_ROW) {
      store.outbox.insertClose(ids.slice(i, i + CLOSE_ITEMS_PER_ROW).map((id) => sessionClosedItem(id, answer)), now);
      this.writes.outboxWritten();
    }

    const revoke = this.options.revokeLeases ? [{ subject: leaseSubject(sessionId), 'issued-before': now }] : undefined;
    for (const room of store.rooms.roomsOf(sessionId)) {
      store.rooms.removeMember(room.id, sessionId);
      store.eventWriter.append({ room, type: 'leave', user: { id: session.id, nick: session.nick }, at: now, ...(revoke ? { revoke } : {}) });
      this.writes.outboxWritten();
    }

    // Its streams (which /close/ does not reach) end after its leave events; reconnecting, they get the 401.
    store.outbox.insert(sessionStreamsClosedRow(sessionId, now));
    this.writes.outboxWritten();

    if (this.bayeux.forgetClientsOf(sessionId) > 0) this.writes.outboxWritten();
    store.connections.deleteOfSession(sessionId);
    return true;
  }
}
