/**
 * The real chat app, assembled for the models lab from the same core as
 * server/chat-server.ts (server/chat-core.ts: store, BusyRetry, ChatService,
 * PollService, EventWriter + outbox + OutboxRelay; same Express app and HTTP
 * limits), with two things left
 * to the model plugged in:
 *
 * - how `GET /api/poll` waits (`LabModel.pollRoutes`, through the app's one
 *   seam `AppDeps.pollRoutes`), optionally with a tier in front of Express
 *   (`LabModel.front`) that may answer a request before the app sees it;
 * - where committed events go: the relay publishes to an in-process publisher
 *   that hands them to `LabModel.deliver` instead of to a proxy.
 *
 * It also serves `GET /_lab/stats` and owns the one orderly `close()`.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type express from 'express';
import { pino, type Logger } from 'pino';
import { answerClientErrors, httpServerOptions } from '../../../common/http-limits.js';
import type { SessionAuth } from '../../../server/session-auth.js';
import { createApp } from '../../../server/app.js';
import { createChatCore } from '../../../server/chat-core.js';
import type { ChatService } from '../../../server/chat-service.js';
import { resolveAppOptions, type AppOptions } from '../../../server/options.js';
import type { PollService } from '../../../server/poll-service.js';
import { SYNC_BUSY_SLICE_MS } from '../../../server/store/busy-retry.js';
import { openDatabase } from '../../../server/store/database.js';
import type { Store } from '../../../server/store/store.js';
import { LAB_STATS_PATH, type LabServer, type LabServerOptions } from '../lab-server.js';
import { InProcessPublisher, type PublishedEvent } from './in-process-publisher.js';
import { RoomHeads } from './room-heads.js';

/** What a model gets to build itself on. */
export interface ChatLabCore {
  /** The app's options, resolved: defaults except the lab's database, hold timeout and logger. */
  options: AppOptions;
  store: Store;
  chat: ChatService;
  poll: PollService;
  /** Newest published event id per room, advanced before each batch reaches `deliver`. */
  heads: RoomHeads;
  /** The app's session check (what its `sid` middleware runs on every request). */
  sessions: SessionAuth;
  logger: Logger;
  /** Clock, ms since the epoch. */
  now: () => number;
}

/** One Comet programming model over the chat app. */
export interface LabModel {
  /** Serves `GET /poll` under `/api`, after the app's session and CSRF middleware. */
  pollRoutes: express.Router;
  /** Committed events, in id order, as the relay publishes them. Returns how many waiting requests it woke. Must not throw. */
  deliver(events: PublishedEvent[]): number;
  /** Requests waiting right now. */
  parked(): number;
  /** A tier in front of the app: answers the request and returns true, or returns false to pass it to Express. */
  front?(req: http.IncomingMessage, res: http.ServerResponse): boolean;
  /** Answers or drops every waiting request and stops the model's timers; resolves when no handler run is in flight. */
  close(): Promise<void>;
}

/**
 * Bench runs make ~100k requests: only warnings and errors are logged. The app
 * logs each request at debug and each refusal at info, so neither shows.
 */
function labLogger(): Logger {
  return pino({ level: 'warn', base: { lab: 'chat-lab' } });
}

/** Builds the app and the model; not listening (the caller listens). */
export function createChatLab(lab: LabServerOptions, buildModel: (core: ChatLabCore) => LabModel): LabServer {
  const logger = labLogger();
  const now = lab.now ?? Date.now;
  // A fresh random secret: nothing signs Grip-Sig here (no proxy), so no request is ever "via proxy".
  const options = resolveAppOptions({ secret: randomBytes(24).toString('hex'), dbPath: lab.dbPath, holdTimeoutS: lab.holdTimeoutS, logger });

  const db = openDatabase(options.dbPath, { busyTimeoutMs: options.sqliteBusyTimeoutMs, now });
  // As server/chat-server.ts: after migrations, SQLite only waits a short slice; writes wait on timers.
  db.pragma(`busy_timeout = ${Math.min(options.sqliteBusyTimeoutMs, SYNC_BUSY_SLICE_MS)}`);
  // The app's own core; no relay lease: one lab process owns its database, so the lease's writes would buy nothing.
  const { store, relay, chat, poll, liveness, sessions, ender } = createChatCore(db, options, now, { relayLease: false });
  const heads = new RoomHeads();

  let model: LabModel;
  try {
    model = buildModel({ options, store, chat, poll, heads, sessions, logger, now });
  } catch (err) {
    db.close();
    throw err;
  }
  const app = createApp({ store, chat, poll, sessions, ender, logger, now, pollRoutes: model.pollRoutes }, options);

  const server = http.createServer(httpServerOptions(options), (req, res) => {
    if (req.method === 'GET' && req.url === LAB_STATS_PATH) {
      const body = JSON.stringify({ parked: model.parked() });
      res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    if (model.front?.(req, res) === true) return;
    app(req, res);
  });
  answerClientErrors(
    server,
    { badRequest: 'APP_ERR_BAD_REQUEST', headersTooLarge: 'APP_ERR_HEADERS_TOO_LARGE', timeout: 'APP_ERR_REQUEST_TIMEOUT' },
    logger,
  );

  relay.start(
    new InProcessPublisher((events) => {
      for (const { room, event } of events) heads.advance(room, event.id);
      return model.deliver(events);
    }),
  );

  let closing: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      // Stop taking connections first (serve.ts may have done it already), then stop notifying,
      // then release the waiting requests, and only then close the database they read.
      const closed = server.listening ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
      await relay.stop();
      await model.close();
      server.closeAllConnections();
      await closed;
      // First polls' batched connection rows and presence (server/liveness-log.ts), before the database closes.
      liveness.close();
      db.close();
    })();
    return closing;
  };

  return { server, parked: () => model.parked(), close };
}
