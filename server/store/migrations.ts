/**
 * Schema versions, kept in code and tracked with `PRAGMA user_version`.
 * Each migration runs in its own IMMEDIATE transaction together with the
 * version bump, so a crash or a second process never sees half a schema.
 * Append new migrations; never edit one that has shipped.
 */
import { randomBytes } from 'node:crypto';
import type { Database } from 'better-sqlite3';
import { nickKey } from './nick-key.js';

export interface Migration {
  version: number;
  description: string;
  up(db: Database, now: number): void;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'sessions, rooms, memberships, events, connections, outbox; the lobby room',
    up(db, now) {
      // Times are INTEGER milliseconds since the epoch.
      db.exec(`
        CREATE TABLE sessions (
          id           INTEGER PRIMARY KEY,
          token        TEXT    NOT NULL UNIQUE,
          nick         TEXT    NOT NULL,
          created_at   INTEGER NOT NULL,
          last_poll_at INTEGER
        );

        CREATE TABLE rooms (
          id         INTEGER PRIMARY KEY,
          name       TEXT    NOT NULL UNIQUE,
          created_at INTEGER NOT NULL
        );

        CREATE TABLE memberships (
          room_id    INTEGER NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
          session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
          joined_at  INTEGER NOT NULL,
          PRIMARY KEY (room_id, session_id)
        ) WITHOUT ROWID;
        CREATE INDEX memberships_by_session ON memberships (session_id);

        -- AUTOINCREMENT: ids are never reused, even after deletes, so a cursor
        -- can never point at a different event than the one the client saw.
        CREATE TABLE events (
          id         INTEGER PRIMARY KEY AUTOINCREMENT,
          room_id    INTEGER NOT NULL REFERENCES rooms(id),
          type       TEXT    NOT NULL CHECK (type IN ('message', 'join', 'leave', 'online')),
          user_id    INTEGER NOT NULL REFERENCES sessions(id),
          text       TEXT,
          created_at INTEGER NOT NULL
        );
        CREATE INDEX events_by_room ON events (room_id, id);

        CREATE TABLE connections (
          id           TEXT    PRIMARY KEY,
          session_id   INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
          created_at   INTEGER NOT NULL,
          last_seen_at INTEGER NOT NULL
        );
        CREATE INDEX connections_by_session ON connections (session_id);

        -- Rows waiting to be published to the proxy, in id order; deleted once accepted.
        CREATE TABLE outbox (
          id         INTEGER PRIMARY KEY AUTOINCREMENT,
          channel    TEXT    NOT NULL,
          item_id    TEXT    NOT NULL,
          prev_id    TEXT    NOT NULL,
          payload    TEXT    NOT NULL,
          created_at INTEGER NOT NULL
        );
      `);
      db.prepare('INSERT INTO rooms (name, created_at) VALUES (?, ?)').run('lobby', now);
    },
  },
  {
    version: 2,
    description: 'relay_lease: one outbox relay publishes at a time when several app processes share the database',
    up(db) {
      db.exec(`
        -- At most one row per lease name; the holder publishes until expires_at (ms since the epoch).
        CREATE TABLE relay_lease (
          name       TEXT    PRIMARY KEY,
          holder     TEXT    NOT NULL,
          expires_at INTEGER NOT NULL
        );
      `);
    },
  },
  {
    version: 3,
    description: 'bayeux_clients, bayeux_subscriptions: CometD clients and their per-room cursors (docs/bayeux.md)',
    up(db) {
      db.exec(`
        -- One row per handshaken Bayeux client. id is the clientId: 32 random bytes, the client's only credential.
        CREATE TABLE bayeux_clients (
          id            TEXT    PRIMARY KEY,
          session_id    INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
          connection_id TEXT    NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
          ack           INTEGER NOT NULL CHECK (ack IN (0, 1)),  -- the ack extension was negotiated
          batch         INTEGER NOT NULL DEFAULT 0,              -- last ack batch sent, 0 for none
          wake_id       INTEGER NOT NULL DEFAULT 0,              -- last item id on its wake channel
          connected     INTEGER NOT NULL DEFAULT 0 CHECK (connected IN (0, 1)),
          created_at    INTEGER NOT NULL,
          last_seen_at  INTEGER NOT NULL
        );
        CREATE INDEX bayeux_clients_by_last_seen ON bayeux_clients (last_seen_at);

        -- cursor: the last event id the client has for sure (acked, or sent without ack);
        -- sent: the last event id in its unacknowledged batch (= cursor when there is none).
        CREATE TABLE bayeux_subscriptions (
          client_id TEXT    NOT NULL REFERENCES bayeux_clients(id) ON DELETE CASCADE,
          room_id   INTEGER NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
          cursor    INTEGER NOT NULL,
          sent      INTEGER NOT NULL,
          PRIMARY KEY (client_id, room_id)
        ) WITHOUT ROWID;
        CREATE INDEX bayeux_subscriptions_by_room ON bayeux_subscriptions (room_id);
      `);
    },
  },
  {
    version: 4,
    description: 'outbox.revoke: leases a published item ends (docs/protocol.md §13.4)',
    up(db) {
      // JSON list of revoke items carried by the row's publish item, or NULL.
      db.exec('ALTER TABLE outbox ADD COLUMN revoke TEXT');
    },
  },
  {
    version: 5,
    description: 'app_secrets: a random secret per database, from which the app derives its keys (server/store/app-secret.ts)',
    up(db) {
      // Generated here, inside the migration's transaction: every process sharing the database reads the same one.
      db.exec(`
        CREATE TABLE app_secrets (
          name   TEXT PRIMARY KEY,
          secret BLOB NOT NULL
        );
      `);
      db.prepare('INSERT INTO app_secrets (name, secret) VALUES (?, ?)').run('root', randomBytes(32));
    },
  },
  {
    version: 6,
    description: 'events.idempotency_key: a retried post returns the message it already made (docs/chat-api.md)',
    up(db) {
      // Keys are per session; partial, so the events without one (all but retry-safe posts) cost the index nothing.
      db.exec(`
        ALTER TABLE events ADD COLUMN idempotency_key TEXT;
        CREATE UNIQUE INDEX events_by_idempotency_key ON events (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
      `);
    },
  },
  {
    version: 7,
    description: 'session expiry and sign-out (sessions.seen_at, ended_at, end_reason), pruning indexes, outbox.kind for /close/ rows',
    up(db) {
      // Session rows are never deleted: their id and nick stay the author of their events, and a signed
      // connection ID names its session by id (server/connection-ids.ts), so an id must never be reused.
      // An ended session keeps its row and loses everything else (memberships, connections, Bayeux clients).
      db.exec(`
        ALTER TABLE sessions ADD COLUMN seen_at INTEGER NOT NULL DEFAULT 0;  -- last activity written (idle expiry)
        ALTER TABLE sessions ADD COLUMN ended_at INTEGER;                    -- NULL while the session may be used
        ALTER TABLE sessions ADD COLUMN end_reason TEXT CHECK (end_reason IN ('signed-out', 'expired'));
        UPDATE sessions SET seen_at = max(created_at, coalesce(last_poll_at, 0));
        CREATE INDEX sessions_live_by_seen ON sessions (seen_at) WHERE ended_at IS NULL;
        CREATE INDEX sessions_live_by_created ON sessions (created_at) WHERE ended_at IS NULL;

        CREATE INDEX connections_by_last_seen ON connections (last_seen_at);
        CREATE INDEX bayeux_clients_by_session ON bayeux_clients (session_id);
        -- Deleting a connection row cascades to its Bayeux client: without this each delete scans them all.
        CREATE INDEX bayeux_clients_by_connection ON bayeux_clients (connection_id);

        -- 'publish': a publish item (as before); 'close': payload is a JSON list of /close/ items
        -- (docs/protocol.md §7.3), channel, item_id and prev_id are empty.
        ALTER TABLE outbox ADD COLUMN kind TEXT NOT NULL DEFAULT 'publish' CHECK (kind IN ('publish', 'close'));
      `);
    },
  },
  {
    version: 8,
    description: 'Bayeux channel patterns: /chat/* and /chat/** follow every room the session is a member of (docs/bayeux.md)',
    up(db) {
      // A pattern is kept as one row per covered room, so connects, holds and the relay's hint rule read
      // subscriptions exactly as before; `via` says which subscriptions keep a row alive.
      db.exec(`
        ALTER TABLE bayeux_clients ADD COLUMN patterns INTEGER NOT NULL DEFAULT 0;  -- bit 1: /chat/*, bit 2: /chat/**
        ALTER TABLE bayeux_subscriptions ADD COLUMN via INTEGER NOT NULL DEFAULT 1 CHECK (via BETWEEN 0 AND 3);  -- bit 1: by name, bit 2: by a pattern (0 only until the row is dropped)
      `);
    },
  },
  {
    version: 9,
    description: 'identity: unique nicks among live sessions (sessions.nick_key), the nick at send time on events, nick and room events',
    up(db) {
      // 1. events, rebuilt (SQLite cannot alter a CHECK): the new types 'nick' (a nick change; text holds the
      // previous nick) and 'room' (a room was created: written in lobby, text holds the new room's name), and
      // the author's nick as it was when the event was written (events.nick), so history shows
      // what the pushes showed: published items, queued pushes and the proxies' channel buffers cannot be rewritten.
      // Old events take their author's nick of today, the only one known. Ids are copied, and the AUTOINCREMENT
      // high-water mark is carried over, so no id is ever reused (cursors stay valid).
      const seq = (db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'events'").pluck().get() as number | undefined) ?? 0;
      db.exec(`
        CREATE TABLE events_v9 (
          id              INTEGER PRIMARY KEY AUTOINCREMENT,
          room_id         INTEGER NOT NULL REFERENCES rooms(id),
          type            TEXT    NOT NULL CHECK (type IN ('message', 'join', 'leave', 'online', 'nick', 'room')),
          user_id         INTEGER NOT NULL REFERENCES sessions(id),
          nick            TEXT    NOT NULL,
          text            TEXT,
          created_at      INTEGER NOT NULL,
          idempotency_key TEXT
        );
        INSERT INTO events_v9 (id, room_id, type, user_id, nick, text, created_at, idempotency_key)
          SELECT e.id, e.room_id, e.type, e.user_id, s.nick, e.text, e.created_at, e.idempotency_key
          FROM events e JOIN sessions s ON s.id = e.user_id ORDER BY e.id;
        DROP TABLE events;
        ALTER TABLE events_v9 RENAME TO events;
        CREATE INDEX events_by_room ON events (room_id, id);
        CREATE UNIQUE INDEX events_by_idempotency_key ON events (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
      `);
      db.prepare("UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'events'").run(seq);
      if (seq > 0 && db.prepare("SELECT 1 FROM sqlite_sequence WHERE name = 'events'").get() === undefined) {
        db.prepare("INSERT INTO sqlite_sequence (name, seq) VALUES ('events', ?)").run(seq);
      }

      // 2. sessions.nick_key (server/store/nick-key.ts), unique among live sessions: a nick freed by sign-out or
      // expiry may be taken again. Live duplicates in an old database are renamed, deterministically: the oldest
      // session keeps the nick, each later one becomes "<nick>-<its id>" (shortened to fit 32 code points, and
      // suffixed again in the unlikely case someone already uses that name). Their past events keep the old nick.
      db.exec('ALTER TABLE sessions ADD COLUMN nick_key TEXT');
      // 'bayeux': made by a Bayeux handshake with a nick, whose clientIds are its only credential (no cookie was
      // ever given out), so once it has no live client nobody can use it: its nick may be taken again.
      db.exec("ALTER TABLE sessions ADD COLUMN via TEXT NOT NULL DEFAULT 'http' CHECK (via IN ('http', 'bayeux'))");
      const setKey = db.prepare('UPDATE sessions SET nick = ?, nick_key = ? WHERE id = ?');
      const rows = db.prepare('SELECT id, nick, ended_at AS endedAt FROM sessions ORDER BY id').all() as Array<{ id: number; nick: string; endedAt: number | null }>;
      const taken = new Set<string>();
      for (const row of rows) if (row.endedAt === null) taken.add(nickKey(row.nick));
      const claimed = new Set<string>();
      for (const row of rows) {
        const key = nickKey(row.nick);
        if (row.endedAt !== null || !claimed.has(key)) {
          if (row.endedAt === null) claimed.add(key);
          setKey.run(row.nick, key, row.id);
          continue;
        }
        let nick = renamedNick(row.nick, String(row.id));
        for (let n = 2; taken.has(nickKey(nick)); n++) nick = renamedNick(row.nick, `${row.id}-${n}`);
        taken.add(nickKey(nick));
        claimed.add(nickKey(nick));
        setKey.run(nick, nickKey(nick), row.id);
      }
      db.exec('CREATE UNIQUE INDEX sessions_live_by_nick_key ON sessions (nick_key) WHERE ended_at IS NULL');
    },
  },
];

/** `nick` with "-<suffix>", the nick cut (in code points) so the whole stays within the 32 a nick may have. */
function renamedNick(nick: string, suffix: string): string {
  return [...nick].slice(0, 32 - suffix.length - 1).join('') + '-' + suffix;
}

export const LATEST_SCHEMA_VERSION = MIGRATIONS.reduce((max, m) => Math.max(max, m.version), 0);

export class SchemaVersionError extends Error {
  override name = 'SchemaVersionError';
}

function userVersion(db: Database): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/** Applies every migration above the database's `user_version`. Safe to run any number of times. */
export function migrate(db: Database, now: () => number = Date.now): number {
  const current = userVersion(db);
  if (current > LATEST_SCHEMA_VERSION) {
    throw new SchemaVersionError(
      `database schema version ${current} is newer than this app knows (${LATEST_SCHEMA_VERSION}); refusing to open it`,
    );
  }
  for (const migration of MIGRATIONS) {
    if (migration.version <= current) continue;
    db.transaction(() => {
      // Re-read under the write lock: another process may have migrated meanwhile.
      if (userVersion(db) >= migration.version) return;
      migration.up(db, now());
      // user_version lives in the database header and is written inside this transaction.
      db.pragma(`user_version = ${migration.version}`);
    }).immediate();
  }
  return userVersion(db);
}
