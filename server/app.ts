/**
 * The chat app as an Express application. Builds, never listens
 * (server/chat-server.ts owns the socket, server/main.ts the process).
 */
import express from 'express';
import type { Logger } from 'pino';
import type { BayeuxService } from './bayeux/bayeux-service.js';
import { bayeuxRoutes } from './bayeux/route.js';
import type { ChatService } from './chat-service.js';
import { gripSig, requireGripSig } from './grip/grip-sig.js';
import { LeaseIssuer } from './grip/lease.js';
import { csrfGuard } from './http/csrf.js';
import { errorHandler, notFound } from './http/error-handler.js';
import { requestLog } from './http/request-log.js';
import { createRateLimits } from './http/rate-limit.js';
import { loadSession } from './http/session.js';
import { staticFiles } from './http/static-files.js';
import type { AppOptions } from './options.js';
import type { PollService } from './poll-service.js';
import type { SessionAuth } from './session-auth.js';
import type { SessionEnder } from './session-end.js';
import { messagesRoutes } from './routes/messages.js';
import { pollRoutes } from './routes/poll.js';
import { streamRoutes } from './routes/stream.js';
import { configRoutes } from './routes/config.js';
import { roomsRoutes } from './routes/rooms.js';
import { sessionRoutes } from './routes/session.js';
import type { Store } from './store/store.js';

export interface AppDeps {
  store: Store;
  chat: ChatService;
  poll: PollService;
  /** Whose session a cookie names (and whether it expired or ended). */
  sessions: SessionAuth;
  /** Sign-out (`DELETE /api/session`). */
  ender: SessionEnder;
  logger: Logger;
  /** Clock of the rate limits, ms. Default `Date.now`. */
  now?: () => number;
  /**
   * Serves `GET /api/poll` instead of `pollRoutes(poll, options)`, behind the same session and CSRF middleware:
   * the models lab (bench/models/) runs other ways of waiting on the same app. Default: the hold route.
   */
  pollRoutes?: express.Router;
  /** Serves the Bayeux endpoint `POST /cometd` (docs/bayeux.md) when given. */
  bayeux?: BayeuxService;
}

/** The options the HTTP layer reads. */
export type AppHttpOptions = Pick<
  AppOptions,
  | 'secret'
  | 'holdTimeoutS'
  | 'messageMaxChars'
  | 'bodyMaxBytes'
  | 'cookieSecure'
  | 'cookieDomain'
  | 'baseDomain'
  | 'shardCount'
  | 'originAgentCluster'
  | 'requireGripSig'
  | 'postsPerMinute'
  | 'sessionsPerMinutePerAddress'
  | 'rateLimitLoopback'
  | 'leaseKey'
  | 'leaseTtlS'
  | 'pollBatchMax'
  | 'sessionMaxAgeS'
>;

export function createApp(deps: AppDeps, options: AppHttpOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  // node:querystring: a repeated parameter becomes an array (refused by the
  // routes), and `a[b]=c` stays a plain key instead of building objects.
  app.set('query parser', 'simple');
  // No ETags on API answers: a held poll's headers become the base of the
  // response the proxy delivers later with another body (docs/protocol.md §6),
  // so an ETag computed here would describe the wrong body. Static files keep theirs.
  app.set('etag', false);

  // First: every later line about the request (errors included) carries its id.
  app.use(requestLog(deps.logger));
  app.use(gripSig(options.secret));
  app.use(staticFiles({ originAgentCluster: options.originAgentCluster }));

  // The guards every API answer passes, shared by /api and the Bayeux endpoint.
  const guards = express.Router();
  guards.use((_req, res, next) => {
    // API answers are per-user and live; no cache may keep them. JSON is never to be sniffed as HTML.
    res.set('Cache-Control', 'no-store');
    res.set('X-Content-Type-Options', 'nosniff');
    next();
  });
  if (options.requireGripSig) guards.use(requireGripSig);
  guards.use(csrfGuard({ baseDomain: options.baseDomain }));
  const limits = createRateLimits(options, deps.now ?? Date.now);

  const api = express.Router();
  api.use(guards);
  api.use(configRoutes(options));
  api.use(loadSession(deps.sessions));
  api.use(sessionRoutes(deps.chat, deps.ender, options, limits));
  api.use(roomsRoutes(deps.chat, options));
  api.use(messagesRoutes(deps.chat, options, limits));
  const leases =
    options.leaseKey === undefined
      ? undefined
      : new LeaseIssuer({ ...options, leaseKey: options.leaseKey, now: deps.now ?? Date.now });
  api.use(deps.pollRoutes ?? pollRoutes(deps.poll, { holdTimeoutS: options.holdTimeoutS, ...(leases === undefined ? {} : { leases }) }));
  api.use(streamRoutes(deps.poll));
  app.use('/api', api);

  if (deps.bayeux !== undefined) {
    const cometd = express.Router();
    cometd.use(guards);
    // A handshake may take its identity from the session cookie.
    cometd.use(loadSession(deps.sessions));
    cometd.use(
      bayeuxRoutes(deps.bayeux, {
        holdTimeoutS: options.holdTimeoutS,
        messageMaxChars: options.messageMaxChars,
        bodyMaxBytes: options.bodyMaxBytes,
        limits,
        logger: deps.logger,
      }),
    );
    app.use('/cometd', cometd);
  }

  app.use(notFound);
  app.use(errorHandler(deps.logger));
  return app;
}
