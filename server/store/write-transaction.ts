/**
 * The services' one way to write: an IMMEDIATE transaction (the write lock is
 * taken up front, so a read inside it, such as `EventWriter`'s prev-id, cannot
 * race another writer), retried without blocking while the database is busy
 * (busy-retry.ts), and one nudge to the outbox relay after a commit that wrote
 * outbox rows. Code inside the transaction calls `outboxWritten()`.
 */
import type { BusyRetry } from './busy-retry.js';
import type { Db } from './database.js';

export class WriteTransactions {
  private wrote = false;

  constructor(
    private readonly db: Db,
    private readonly busy: BusyRetry,
    /** Called after a commit that wrote outbox rows (wakes the relay). */
    private readonly onOutboxCommitted: () => void,
  ) {}

  /** Marks the running transaction as one that wrote outbox rows. */
  outboxWritten(): void {
    this.wrote = true;
  }

  async run<T>(fn: () => T): Promise<T> {
    const { result, wrote } = await this.busy.run(() => {
      this.wrote = false;
      const result = this.db.transaction(fn).immediate();
      // Read the flag in the same synchronous run: another write may start before this one resumes.
      const wrote = this.wrote;
      this.wrote = false;
      return { result, wrote };
    });
    if (wrote) this.onOutboxCommitted();
    return result;
  }
}
