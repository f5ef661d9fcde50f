/**
 * The outbox relay's lease (docs/scaleout.md "Several app processes"): when
 * several app processes share one SQLite database, each runs a relay, and two
 * relays publishing interleaved batches could publish a room's events out of
 * order (or both delete). So a relay publishes only while it holds this lease,
 * a single row taken and renewed in one IMMEDIATE statement; a crashed
 * holder's lease expires after `leaseMs` and another relay takes over at the
 * oldest row still in the outbox, so global id order holds across handovers.
 */
import type { Database, Statement } from 'better-sqlite3';

const LEASE_NAME = 'outbox-relay';

export class RelayLeaseRepo {
  private readonly acquireStmt: Statement<[string, string, number, number], void>;
  private readonly releaseStmt: Statement<[string, string], void>;

  constructor(db: Database) {
    // One statement: SQLite runs it under the write lock, so two relays can never both win.
    this.acquireStmt = db.prepare(
      `INSERT INTO relay_lease (name, holder, expires_at) VALUES (?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
       WHERE relay_lease.holder = excluded.holder OR relay_lease.expires_at <= ?`,
    );
    this.releaseStmt = db.prepare('DELETE FROM relay_lease WHERE name = ? AND holder = ?');
  }

  /** Takes or renews the lease for `holder` until `now + leaseMs`; false if another holder's lease is live. */
  acquire(holder: string, now: number, leaseMs: number): boolean {
    return this.acquireStmt.run(LEASE_NAME, holder, now + leaseMs, now).changes === 1;
  }

  /** Gives the lease up (if `holder` has it), so another relay need not wait for it to expire. */
  release(holder: string): void {
    this.releaseStmt.run(LEASE_NAME, holder);
  }
}
