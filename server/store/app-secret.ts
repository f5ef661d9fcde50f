/**
 * The database's root secret (migration 5): 32 random bytes made once per
 * database, so every app process on it, and every restart, derives the same
 * keys. It is never used as a key itself: `deriveKey` gives each job its own.
 */
import { hkdfSync } from 'node:crypto';
import type { Database } from 'better-sqlite3';

/** What a derived key is for; each purpose names exactly one job. */
export type KeyPurpose = 'connection-id';

const KEY_INFO: Record<KeyPurpose, string> = {
  // The version lets a later format take a fresh key without touching the root secret.
  'connection-id': 'comet-chat connection-id mac v1',
};

export function readRootSecret(db: Database): Buffer {
  const row = db.prepare("SELECT secret FROM app_secrets WHERE name = 'root'").get() as { secret: Buffer } | undefined;
  if (row === undefined || !Buffer.isBuffer(row.secret) || row.secret.length < 32) {
    throw new Error('the database has no root secret (app_secrets); it was not migrated by this app');
  }
  return row.secret;
}

/** HKDF-SHA256 of the root secret for one purpose: 32 bytes. */
export function deriveKey(rootSecret: Buffer, purpose: KeyPurpose): Buffer {
  return Buffer.from(hkdfSync('sha256', rootSecret, Buffer.alloc(0), KEY_INFO[purpose], 32));
}
