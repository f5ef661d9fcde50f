/**
 * The control API (docs/protocol.md §7) on its own port: `POST /publish/`,
 * `/push/`, `/close/`, `/revoke/` (with or without the trailing slash), `GET /stats` and
 * `GET /health`, plus `GET /metrics` (Prometheus text, same Bearer auth) and
 * `GET /status` (the status page, docs/operations.md). Plain node:http: a few
 * fixed routes need no framework.
 * Order of checks: Host (400/421: a DNS-rebinding page must not reach even
 * `/health`), route (404), method (405), auth (401), shutting down (503),
 * media type (415), size (413), JSON (400), whole-body validation (400), then
 * the registry acts (or refuses the whole call: 503 past `maxUnknownQueues`).
 */
import { isUtf8 } from 'node:buffer';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { httpServerOptions } from '../../common/http-limits.js';
import type { ControlResult, RevokeResult } from '../../protocol/control-api.js';
import { createControlAuth } from './auth.js';
import { errorCodeOf, sendError } from '../errors.js';
import { TooManyQueuesError } from '../holds/hold-delivery.js';
import type { HoldRegistry } from '../holds/hold-registry.js';
import type { ProxyMetrics } from './metrics.js';
import type { ProxyOptions } from '../options.js';
import { BusUnavailableError, type ControlSink } from '../bus/redis-bus.js';
import type { WholeProxyViews } from '../bus/proxy-bus.js';
import { BodyTooLargeError, readBody } from '../http/read-body.js';
import { ItemValidationError, parseCloseBody, parsePublishBody, parsePushBody, parseRevokeBody } from './control-validation.js';
import type { Repolls } from '../repoll/repolls.js';
import { writeResponse } from '../http/response.js';
import { createHostFilter } from '../http/host-filter.js';
import { checkRequestHost } from '../http/request-host.js';

export interface ControlServerDeps {
  options: Pick<
    ProxyOptions,
    | 'controlSecret'
    | 'controlIssuer'
    | 'controlAudience'
    | 'controlTokenMaxLifetimeMs'
    | 'controlBodyMaxBytes'
    | 'controlMaxIdsPerCall'
    | 'controlAllowedHosts'
    | 'logger'
    | 'maxHeaderBytes'
    | 'headersTimeoutMs'
    | 'requestTimeoutMs'
    | 'keepAliveTimeoutMs'
  >;
  registry: HoldRegistry;
  /** Where `/publish/`, `/push/` and `/close/` go. Default the registry (embedded); the Redis bus when scaled out. */
  sink?: ControlSink;
  /** True once the proxy is shutting down: write endpoints answer 503. */
  isClosing: () => boolean;
  /** Served at `GET /metrics` (authenticated) when given. */
  metrics?: ProxyMetrics;
  /** Served at `GET /status` (no authentication: the page holds no data) when given. */
  statusPage?: (req: IncomingMessage, res: ServerResponse) => void;
  /** Leases to end on `/revoke/` (embedded); without a lease key there are none, and `/revoke/` ends nothing. */
  repolls?: Repolls | null;
  /** `/stats` and `/metrics` of every worker together (proxy/cluster/); default this process's. */
  views?: WholeProxyViews;
}

type Route =
  | { method: 'GET'; auth: boolean; answer: () => unknown | Promise<unknown> }
  | { method: 'GET'; auth: boolean; serve: (req: IncomingMessage, res: ServerResponse) => void | Promise<void> }
  | { method: 'POST'; auth: true; act: (body: unknown, receivedAt: number) => Answer | Promise<Answer> };

type Answer = ControlResult | RevokeResult;

/** Builds (does not start) the control server. */
export function createControlServer({ options, registry, sink, isClosing, metrics, statusPage, repolls, views }: ControlServerDeps): Server {
  const log = options.logger;
  // Control JWT claims are epoch seconds: wall-clock time, like Grip-Sig (not the injectable proxy clock).
  const authorize = createControlAuth({
    secret: options.controlSecret,
    issuer: options.controlIssuer,
    audience: options.controlAudience,
    maxLifetimeMs: options.controlTokenMaxLifetimeMs,
    now: Date.now,
  });
  // Loopback names and IP addresses always (a rebinding page comes with a DNS name), other names when listed.
  const hostCheck = {
    serves: createHostFilter(options.controlAllowedHosts, { ipAddresses: true }),
    notServed: (name: string) => `Host ${name} is not served on the control port; set CONTROL_ALLOWED_HOSTS (controlAllowedHosts) to serve it`,
  };

  const target: ControlSink = sink ?? {
    publish: (body, at) => registry.publish(parsePublishBody(body), at),
    push: (body, at) => registry.push(parsePushBody(body, options.controlMaxIdsPerCall), at),
    close: (body) => registry.close(parseCloseBody(body, options.controlMaxIdsPerCall)),
    revoke: (body) => {
      const commands = parseRevokeBody(body);
      return { revoked: repolls?.revoke(commands) ?? 0 };
    },
  };
  const publish: Route = { method: 'POST', auth: true, act: (body, at) => target.publish(body, at) };
  const push: Route = { method: 'POST', auth: true, act: (body, at) => target.push(body, at) };
  const close: Route = { method: 'POST', auth: true, act: (body) => target.close(body) };
  const revoke: Route = { method: 'POST', auth: true, act: (body) => target.revoke(body) };
  const routes = new Map<string, Route>([
    ['/publish/', publish],
    ['/publish', publish],
    ['/push/', push],
    ['/push', push],
    ['/close/', close],
    ['/close', close],
    ['/revoke/', revoke],
    ['/revoke', revoke],
    ['/stats', { method: 'GET', auth: true, answer: () => (views === undefined ? registry.stats() : views.stats()) }],
    ['/health', { method: 'GET', auth: false, answer: () => ({ ok: true }) }],
  ]);
  if (metrics !== undefined) {
    routes.set('/metrics', {
      method: 'GET',
      auth: true, // Prometheus sends it with `authorization: {type: Bearer, credentials: ...}` in its scrape config
      serve: async (_req, res) => {
        // Node drops the body of a HEAD answer itself and keeps its Content-Length.
        writeResponse(res, {
          code: 200,
          headers: { 'content-type': metrics.contentType, 'cache-control': 'no-store' },
          body: Buffer.from(await (views === undefined ? metrics.scrape() : views.metrics()), 'utf8'),
        });
      },
    });
  }
  if (statusPage !== undefined) routes.set('/status', { method: 'GET', auth: false, serve: statusPage });

  function sendJson(res: ServerResponse, value: unknown): void {
    writeResponse(res, {
      code: 200,
      headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' },
      body: Buffer.from(JSON.stringify(value)),
    });
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // Publish-to-write latency starts here (proxy/control/metrics.ts).
    const receivedAt = performance.now();
    const host = checkRequestHost(req, hostCheck);
    if (!host.ok) {
      sendError(res, host.code, host.message);
      return;
    }
    const path = new URL(req.url ?? '/', 'http://control').pathname;
    const route = routes.get(path);
    if (route === undefined) {
      sendError(res, 'PROXY_ERR_NOT_FOUND', `no control endpoint ${path}`);
      return;
    }
    const allowed = route.method === 'GET' ? ['GET', 'HEAD'] : ['POST'];
    if (!allowed.includes(req.method ?? '')) {
      sendError(res, 'PROXY_ERR_METHOD_NOT_ALLOWED', `${path} accepts ${allowed.join(', ')}`, { allow: allowed.join(', ') });
      return;
    }
    if (route.auth && !(await authorize(req.headers.authorization))) {
      sendError(res, 'PROXY_ERR_UNAUTHORIZED', 'Authorization: Bearer <control secret, or a control JWT signed with it> required', {
        'www-authenticate': 'Bearer',
      });
      return;
    }
    if (route.method === 'GET') {
      try {
        if ('serve' in route) await route.serve(req, res);
        else sendJson(res, await route.answer());
      } catch (err) {
        // Several workers: the primary sums `/stats` and `/metrics`, and may be too slow to.
        if (!(err instanceof BusUnavailableError)) throw err;
        sendError(res, 'PROXY_ERR_BUS_UNAVAILABLE', err.message);
      }
      return;
    }
    if (isClosing()) {
      sendError(res, 'PROXY_ERR_SHUTTING_DOWN', 'the proxy is shutting down', { connection: 'close' });
      return;
    }
    const mediaType = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (mediaType !== 'application/json') {
      sendError(res, 'PROXY_ERR_UNSUPPORTED_MEDIA_TYPE', 'Content-Type must be application/json');
      return;
    }
    let raw: Buffer;
    try {
      raw = await readBody(req, options.controlBodyMaxBytes);
    } catch (err) {
      if (err instanceof BodyTooLargeError) {
        // The rest of the body is not read: close the connection rather than drain it.
        sendError(res, 'PROXY_ERR_BODY_TOO_LARGE', `body exceeds ${options.controlBodyMaxBytes} bytes`, { connection: 'close' });
      }
      return; // otherwise the caller went away mid-body
    }
    if (!isUtf8(raw)) {
      // toString() would turn bad bytes into U+FFFD silently; a publisher that sends them has a bug to hear about.
      sendError(res, 'PROXY_ERR_BAD_JSON', 'body is not valid UTF-8');
      return;
    }
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch (err) {
      sendError(res, 'PROXY_ERR_BAD_JSON', `body is not valid JSON: ${(err as Error).message}`);
      return;
    }
    let result: Answer;
    try {
      result = await route.act(body, receivedAt);
    } catch (err) {
      if (err instanceof BusUnavailableError) {
        sendError(res, 'PROXY_ERR_BUS_UNAVAILABLE', err.message);
        return;
      }
      if (err instanceof TooManyQueuesError) {
        sendError(res, err.code, err.message, { 'retry-after': String(err.retryAfterS) });
        return;
      }
      if (!(err instanceof ItemValidationError)) throw err;
      sendError(res, err.code, err.message);
      return;
    }
    log.debug({ path, ...result }, 'control call');
    sendJson(res, result);
  }

  // requireHostHeader off: a Host-less HTTP/1.1 request gets its 400 as JSON from checkRequestHost.
  return createServer({ ...httpServerOptions(options), requireHostHeader: false }, (req, res) => {
    handle(req, res).then(
      () => {
        // Every refused call once, at info (never its headers: they hold the secret or a guess at it).
        const code = errorCodeOf(res);
        if (code !== undefined) {
          log.info({ code, method: req.method, url: req.url?.slice(0, 256), remoteAddress: req.socket.remoteAddress }, 'control request refused');
        }
      },
      (err: unknown) => {
        log.error({ err }, 'control API request failed');
        res.destroy();
      },
    );
  });
}
