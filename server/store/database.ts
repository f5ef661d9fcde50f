/**
 * Opens the SQLite database the app runs on, with the pragmas it relies on,
 * and brings its schema up to date.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { migrate } from './migrations.js';

export type Db = Database.Database;

export interface OpenDatabaseOptions {
  /** SQLite `busy_timeout`: how long a statement waits for another connection's write lock, ms. */
  busyTimeoutMs: number;
  /** Clock for rows written by migrations (the `lobby` room), ms since the epoch. Default `Date.now`. */
  now?: () => number;
}

/**
 * Opens (creating it and its directory if needed) the database at `path` and migrates it.
 * `:memory:` is accepted for throwaway use.
 */
export function openDatabase(path: string, options: OpenDatabaseOptions): Db {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  try {
    // WAL lets reads (history, polls) run while the relay deletes published rows;
    // NORMAL is durable across app crashes in WAL mode (only an OS crash can lose the last commits).
    db.pragma('journal_mode = WAL');
    db.pragma(`busy_timeout = ${Math.trunc(options.busyTimeoutMs)}`);
    db.pragma('foreign_keys = ON');
    db.pragma('synchronous = NORMAL');
    migrate(db, options.now ?? Date.now);
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}
