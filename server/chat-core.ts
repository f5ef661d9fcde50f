/**
 * The chat app's parts below HTTP, wired once: store, busy-wait, outbox relay
 * and the two services. server/chat-server.ts builds the app on them, and so do
 * the models lab's chat-app models (bench/models/chat-lab), so both run the
 * same write path, poll path and relay settings.
 */
import { randomUUID } from 'node:crypto';
import { BayeuxService, bayeuxHintChannelFor } from './bayeux/bayeux-service.js';
import { ChatService } from './chat-service.js';
import type { AppOptions } from './options.js';
import { OutboxRelay } from './outbox/relay.js';
import { ConnectionIds } from './connection-ids.js';
import { LivenessLog } from './liveness-log.js';
import { PollService } from './poll-service.js';
import { SessionAuth } from './session-auth.js';
import { SessionEnder } from './session-end.js';
import { SessionExpiry } from './session-expiry.js';
import { SessionPruner, type PrunerTimers } from './session-pruner.js';
import { deriveKey, readRootSecret } from './store/app-secret.js';
import { BayeuxClientsRepo } from './store/bayeux-clients.js';
import { BusyRetry } from './store/busy-retry.js';
import type { Db } from './store/database.js';
import { createStore, type Store } from './store/store.js';

export interface ChatCore {
  store: Store;
  /** Waits for a busy database on timers; `busy.retries` counts the waits. */
  busy: BusyRetry;
  relay: OutboxRelay;
  chat: ChatService;
  poll: PollService;
  /** First polls' connection rows and presence, written in batches; `close()` it before the database. */
  liveness: LivenessLog;
  /** The Bayeux endpoint's state (docs/bayeux.md); `createApp` serves it when given. */
  bayeux: BayeuxService;
  /** Whose session a cookie names, and whether it expired or ended. */
  sessions: SessionAuth;
  /** Sign-out and expiry: ends a session everywhere. */
  ender: SessionEnder;
  /** The retention job; not started here (chat-server.ts starts it with the server). */
  pruner: SessionPruner;
}

export interface ChatCoreOptions {
  /**
   * Publish only while holding the relay lease (several app processes on one
   * database, docs/scaleout.md). A process that owns its database alone may
   * skip it and save the lease's writes per batch.
   */
  relayLease: boolean;
  /** The pruner's timers (tests). Default: Node's. */
  pruneTimers?: PrunerTimers;
}

/**
 * How stale presence may get before a poll writes it again: a seventh of the
 * window, at most 10 s (70 s window → 10 s). Re-polls within it only read.
 */
export function presenceRefreshMs(presenceWindowMs: number): number {
  return Math.min(10_000, Math.floor(presenceWindowMs / 7));
}

/** How long past its hold a Bayeux client may take to connect again before it is forgotten (402), ms. */
export const BAYEUX_CLIENT_GRACE_MS = 60_000;

export function createChatCore(db: Db, options: AppOptions, now: () => number, core: ChatCoreOptions): ChatCore {
  const store = createStore(db);
  const busy = new BusyRetry(options.sqliteBusyTimeoutMs);
  const bayeuxClients = new BayeuxClientsRepo(db);
  const relay = new OutboxRelay(store.outbox, {
    batchSize: options.relayBatchSize,
    batchMaxBytes: options.relayBatchMaxBytes,
    retryMinMs: options.relayRetryMinMs,
    retryMaxMs: options.relayRetryMaxMs,
    intervalMs: options.relayIntervalMs,
    logger: options.logger,
    // A room event also hints the rooms' Bayeux holds, for rooms some CometD client subscribes to.
    hintChannel: (channel) => bayeuxHintChannelFor(bayeuxClients, channel),
    ...(core.relayLease
      ? { lease: { repo: store.relayLease, holder: randomUUID(), leaseMs: options.relayLeaseMs, retryMs: options.relayLeaseRetryMs, now } }
      : {}),
  });
  const chat = new ChatService(store, {
    now,
    presenceWindowMs: options.presenceWindowMs,
    // After each commit that wrote events: publish them now rather than at the next sweep.
    onEventsCommitted: () => relay.nudge(),
    // Presence that polls left in the liveness log is written before members are listed.
    beforePresenceRead: () => liveness.flush(),
    busy,
    revokeLeases: options.leaseKey !== undefined,
    // CometD clients subscribed to /chat/* follow their session's memberships in the same transaction.
    onMembershipChange: (change) => bayeux.membershipChanged(change),
  });
  // The key comes from the database, so it survives restarts and is the same in every app process on it.
  const ids = new ConnectionIds(deriveKey(readRootSecret(db), 'connection-id'));
  const liveness = new LivenessLog(store, { flushMs: options.livenessFlushMs, logger: options.logger });
  const poll = new PollService(store, {
    ids,
    liveness,
    now,
    pollBatchMax: options.pollBatchMax,
    maxConnectionsPerSession: options.maxConnectionsPerSession,
    connectionLiveMs: options.presenceWindowMs,
    busy,
    presenceRefreshMs: presenceRefreshMs(options.presenceWindowMs),
  });
  const refreshMs = presenceRefreshMs(options.presenceWindowMs);
  const expiry = new SessionExpiry({ idleTimeoutMs: options.sessionIdleTimeoutS * 1000, maxAgeMs: options.sessionMaxAgeS * 1000 });
  const sessions = new SessionAuth(store.sessions, expiry, liveness, now);
  const bayeuxClientTtlMs = options.holdTimeoutS * 1000 + refreshMs + BAYEUX_CLIENT_GRACE_MS;
  const bayeux: BayeuxService = new BayeuxService(store, bayeuxClients, chat, {
    now,
    busy,
    batchMax: options.pollBatchMax,
    // A connect may stay held for the whole hold timeout, then the client has its interval
    // and network delay to come back; a minute of slack on top of both.
    clientTtlMs: bayeuxClientTtlMs,
    refreshMs,
    connectionLiveMs: options.presenceWindowMs,
    maxConnectionsPerSession: options.maxConnectionsPerSession,
    pendingConnectionIds: (sessionId) => liveness.pendingIds(sessionId),
    onOutboxWritten: () => relay.nudge(),
    sessionUsable: (session) => sessions.usable(session),
    // The ender is built next (it needs this service); called only once requests run.
    freeNick: (nick): Promise<boolean> => ender.freeNick(nick),
  });
  const ender = new SessionEnder(store, bayeux, expiry, {
    now,
    busy,
    onOutboxCommitted: () => relay.nudge(),
    revokeLeases: options.leaseKey !== undefined,
    beforeEnd: () => liveness.flush(),
  });
  const pruner = new SessionPruner(store, ender, bayeuxClients, {
    now,
    intervalMs: options.pruneIntervalS * 1000,
    batchSize: options.pruneBatchSize,
    // The liveness window: past it a row is not counted (presence window) and names no live Bayeux client.
    connectionRetentionMs: Math.max(options.presenceWindowMs, bayeuxClientTtlMs),
    bayeuxClientTtlMs,
    busy,
    logger: options.logger,
    ...(core.pruneTimers === undefined ? {} : { timers: core.pruneTimers }),
  });
  return { store, busy, relay, chat, poll, liveness, bayeux, sessions, ender, pruner };
}
