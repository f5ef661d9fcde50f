/**
 * The chat app assembled: database, services, Express app, HTTP server and
 * outbox relay, with one orderly `close()`. Listening is explicit (`listen()`)
 * and so is the link to the proxy (`connectProxy()`), so tests and the
 * launcher can start the app first and the proxy after it.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type express from 'express';
import { answerClientErrors, httpServerOptions } from '../common/http-limits.js';
import { createApp } from './app.js';
import { createChatCore } from './chat-core.js';
import { requireControlSecret, resolveAppOptions, validateControlUrl, type AppOptions, type AppOptionsInput } from './options.js';
import { HttpPublisher } from './outbox/publisher.js';
import { RedisPublisher } from './outbox/redis-publisher.js';
import type { OutboxRelay } from './outbox/relay.js';
import type { LivenessLog } from './liveness-log.js';
import type { PrunerTimers, SessionPruner } from './session-pruner.js';
import { openDatabase, type Db } from './store/database.js';
import type { Store } from './store/store.js';
import { SYNC_BUSY_SLICE_MS, type BusyRetry } from './store/busy-retry.js';

export interface ChatServer {
  app: express.Express;
  /** Not listening until `listen()`. */
  server: http.Server;
  db: Db;
  store: Store;
  relay: OutboxRelay;
  /** Waits for a busy database on timers; `busy.retries` counts the waits. */
  busy: BusyRetry;
  /** First polls' connection rows and presence, written in batches (`flush()` writes them now). */
  liveness: LivenessLog;
  /** The retention job (expired sessions, old connection rows); runs every `pruneIntervalS` once listening, `runOnce()` now. */
  pruner: SessionPruner;
  /** The resolved options. */
  options: AppOptions;
  /** Listens on `options.host:options.port`; resolves with the bound port. Connects the relay if `options.controlUrl` is set. */
  listen(): Promise<number>;
  /** Starts relaying the outbox to the proxy's control API at `controlUrl`. Once only. */
  connectProxy(controlUrl: string): void;
  /** Starts relaying the outbox to the Redis bus at `redisUrl` (docs/scaleout.md). Once only. */
  connectBus(redisUrl: string): void;
  /** Stops the relay (waiting for an in-flight publish), closes the server and its connections, closes the database. Idempotent. */
  close(): Promise<void>;
}

/** Hooks for tests; production uses the defaults. */
export interface ChatServerHooks {
  /** Clock, ms since the epoch. Default `Date.now`. */
  now?: () => number;
  /** The pruner's timers. Default Node's. */
  pruneTimers?: PrunerTimers;
}

/** Wires the core (store, relay, services), app and HTTP server over an open database. */
type Parts = Pick<ChatServer, 'app' | 'server' | 'store' | 'relay' | 'busy' | 'liveness' | 'pruner'>;

function assemble(db: Db, options: AppOptions, now: () => number, pruneTimers: PrunerTimers | undefined): Parts {
  // Several app processes may share the database: one relay publishes at a time (docs/scaleout.md).
  const { store, busy, relay, chat, poll, liveness, bayeux, sessions, ender, pruner } = createChatCore(db, options, now, {
    relayLease: true,
    ...(pruneTimers === undefined ? {} : { pruneTimers }),
  });
  const app = createApp({ store, chat, poll, bayeux, sessions, ender, logger: options.logger, now }, options);
  // Head size and slow-loris limits (common/http-limits.ts), answered as {code, message} JSON.
  const server = http.createServer(httpServerOptions(options), app);
  answerClientErrors(
    server,
    { badRequest: 'APP_ERR_BAD_REQUEST', headersTooLarge: 'APP_ERR_HEADERS_TOO_LARGE', timeout: 'APP_ERR_REQUEST_TIMEOUT' },
    options.logger,
  );
  return { app, server, store, relay, busy, liveness, pruner };
}

/** Builds the app (opening and migrating the database) without listening. Throws `AppOptionsError` on bad options. */
export function createChatServer(input: AppOptionsInput, hooks: ChatServerHooks = {}): ChatServer {
  const options = resolveAppOptions(input);
  const now = hooks.now ?? Date.now;

  const db = openDatabase(options.dbPath, { busyTimeoutMs: options.sqliteBusyTimeoutMs, now });
  let parts: Parts;
  try {
    parts = assemble(db, options, now, hooks.pruneTimers);
  } catch (err) {
    db.close();
    throw err;
  }
  // Migrations above waited the full timeout (start-up may contend with another app process);
  // from now on SQLite only waits a short slice and writes wait on timers (store/busy-retry.ts).
  db.pragma(`busy_timeout = ${Math.min(options.sqliteBusyTimeoutMs, SYNC_BUSY_SLICE_MS)}`);
  const { app, server, store, relay, busy, liveness, pruner } = parts;
  const logger = options.logger;

  let closing: Promise<void> | null = null;

  const connectProxy = (controlUrl: string): void => {
    if (closing) throw new Error('the chat server is closed');
    const url = validateControlUrl(controlUrl);
    relay.start(new HttpPublisher({ controlUrl: url, secret: requireControlSecret(options.controlSecret), timeoutMs: options.relayPublishTimeoutMs, logger }));
    logger.info({ controlUrl: url }, 'outbox relay connected to the proxy');
  };

  const connectBus = (redisUrl: string): void => {
    if (closing) throw new Error('the chat server is closed');
    relay.start(new RedisPublisher({ redisUrl, timeoutMs: options.relayPublishTimeoutMs }));
    logger.info('outbox relay connected to the Redis bus');
  };

  const listen = (): Promise<number> =>
    new Promise<number>((resolve, reject) => {
      if (closing) return reject(new Error('the chat server is closed'));
      const onError = (err: Error): void => reject(err);
      server.once('error', onError);
      server.listen(options.port, options.host, () => {
        server.off('error', onError);
        pruner.start();
        // REDIS_URL wins: with a bus there is no single proxy to POST to.
        if (options.redisUrl !== undefined && !relay.started) connectBus(options.redisUrl);
        else if (options.controlUrl !== undefined && !relay.started) connectProxy(options.controlUrl);
        resolve((server.address() as AddressInfo).port);
      });
    });

  const close = (): Promise<void> => {
    closing ??= (async () => {
      await pruner.stop();
      await relay.stop();
      if (server.listening) {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        // Keep-alive sockets from the proxy would otherwise hold close() open.
        server.closeAllConnections();
        await closed;
      }
      // After the last poll: what first polls left to write is written, not lost.
      liveness.close();
      db.close();
    })();
    return closing;
  };

  return { app, server, db, store, relay, busy, liveness, pruner, options, listen, connectProxy, connectBus, close };
}
