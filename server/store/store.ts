/**
 * The repositories over one database connection, built once and shared.
 */
import type { Db } from './database.js';
import { ConnectionsRepo } from './connections.js';
import { EventWriter } from './event-writer.js';
import { EventsRepo } from './events.js';
import { OutboxRepo } from './outbox.js';
import { RelayLeaseRepo } from './relay-lease.js';
import { RoomsRepo } from './rooms.js';
import { SessionsRepo } from './sessions.js';

export interface Store {
  db: Db;
  sessions: SessionsRepo;
  rooms: RoomsRepo;
  events: EventsRepo;
  connections: ConnectionsRepo;
  outbox: OutboxRepo;
  /** The relay lease: one relay publishes at a time across processes sharing the database. */
  relayLease: RelayLeaseRepo;
  /** The only way to add events (each with its outbox row). */
  eventWriter: EventWriter;
}

/** Prepares every statement against `db` (already opened and migrated). */
export function createStore(db: Db): Store {
  const events = new EventsRepo(db);
  const outbox = new OutboxRepo(db);
  return {
    db,
    sessions: new SessionsRepo(db),
    rooms: new RoomsRepo(db),
    events,
    connections: new ConnectionsRepo(db),
    outbox,
    relayLease: new RelayLeaseRepo(db),
    eventWriter: new EventWriter(events, outbox),
  };
}
