/**
 * Options of the chat app: one typed object, defaults in one place, validated by
 * `resolveAppOptions()` before any socket or database is opened.
 */
import { pino, type Logger } from 'pino';
import type { HttpServerLimits } from '../common/http-limits.js';

/** Everything `createChatServer()` can be tuned with. Units are in the names. */
export interface AppOptions extends HttpServerLimits {
  /** Interface to listen on. Default `127.0.0.1` (the proxy runs next to the app). */
  host: string;
  /** TCP port, 0 for an ephemeral one. Default 8081. */
  port: number;
  /** SQLite database file; its directory is created if missing. Default `./data/chat.db`. */
  dbPath: string;
  /** The Grip-Sig key: verifies the `Grip-Sig` the proxy adds (docs/protocol.md §2). Required, at least 16 characters. */
  secret: string;
  /**
   * The proxy's control API credential, sent by the outbox relay as `Authorization: Bearer` (docs/protocol.md §7).
   * Required to publish to a `controlUrl` (unused with `redisUrl`); at least 16 characters, and neither `secret`
   * nor `leaseKey`. Default none.
   */
  controlSecret: string | undefined;
  /** Base URL of the proxy's control API, e.g. `http://127.0.0.1:5561`. Without it the outbox is not relayed until `connectProxy()`. */
  controlUrl: string | undefined;
  /** `Grip-Timeout` of a held poll, seconds. Default 55. */
  holdTimeoutS: number;
  /** Longest message after trimming, in characters (code points). Default 2000. */
  messageMaxChars: number;
  /** Most events in one poll answer. Default 500. */
  pollBatchMax: number;
  /** A member is `online` if their session polled within this window, ms. Default 70000. */
  presenceWindowMs: number;
  /** Largest accepted request body, bytes. Default 16384. */
  bodyMaxBytes: number;
  /** Most outbox rows in one publish call. Default 100. */
  relayBatchSize: number;
  /** Byte budget of one publish call's payloads (a single larger row is still sent alone). Default 524288, half the proxy's 1 MiB body limit. */
  relayBatchMaxBytes: number;
  /** First retry delay after a failed publish, ms. Default 50. */
  relayRetryMinMs: number;
  /** Longest retry delay, ms. Default 5000. */
  relayRetryMaxMs: number;
  /** Safety sweep of the outbox even without a nudge, ms. Default 1000. */
  relayIntervalMs: number;
  /** Timeout of one publish request to the control API, ms. Default 5000. */
  relayPublishTimeoutMs: number;
  /** Relay lease length when several app processes share the database, ms (docs/scaleout.md). Above relayPublishTimeoutMs. Default 15000. */
  relayLeaseMs: number;
  /** How soon a relay that found the lease taken looks again, ms. Default 25. */
  relayLeaseRetryMs: number;
  /**
   * `redis://host:port`: the relay appends outbox batches to the Redis bus (docs/scaleout.md) instead of
   * POSTing them to one proxy's control API. Default none (the embedded path).
   */
  redisUrl: string | undefined;
  /** How long a write waits for another connection's write lock before `503 APP_ERR_DB_BUSY`, ms; waited on timers, so the app keeps serving meanwhile. Default 5000. */
  sqliteBusyTimeoutMs: number;
  /** Adds `Secure` to the `sid` cookie (set it when clients reach the proxy over HTTPS). Default false. */
  cookieSecure: boolean;
  /**
   * The parent domain of the page and its shard hosts (`chat.test` serves `chat.test`, `c1.chat.test`, ...),
   * announced to clients by `GET /api/config` so they can shard polls. Default none: sharding off.
   */
  baseDomain: string | undefined;
  /** Shard hosts `c1.<baseDomain>` ... `c<N>.<baseDomain>` clients may spread polls over. Default 4. */
  shardCount: number;
  /** `Domain=` of the `sid` cookie, so every shard host sees the session. Default none (host-only cookie). */
  cookieDomain: string | undefined;
  /**
   * `Origin-Agent-Cluster` header on HTML documents. `?0` keeps `document.domain` usable for the
   * shard bridge in Chromium (which origin-keys documents by default); `?1` turns it off. Default `?0`.
   */
  originAgentCluster: '?0' | '?1';
  /**
   * Refuse every /api request without a valid `Grip-Sig` (401 `APP_ERR_NO_GRIP_SIG`): for deployments where the
   * app's port could be reached without going through the proxy. Default false.
   */
  requireGripSig: boolean;
  /** Messages one session may post per minute (also the burst); beyond it 429 `APP_ERR_RATE_LIMITED`. 0: no limit. Default 60. */
  postsPerMinute: number;
  /** Sessions one client address may create per minute (also the burst); beyond it 429. 0: no limit. Default 20. */
  sessionsPerMinutePerAddress: number;
  /**
   * Rate-limit loopback clients too. Default false: requests from this machine (tests, the soak, local tools)
   * are exempt. Behind another reverse proxy on the same host every client looks like loopback: set the
   * proxy's `trustForwardedFor` there, or set this.
   */
  rateLimitLoopback: boolean;
  /**
   * Connection IDs one session may use at once (polled within `presenceWindowMs`); a poll that needs a new one
   * beyond it gets 503 `APP_ERR_TOO_MANY_CONNECTIONS` with `Retry-After`. Default 20.
   */
  maxConnectionsPerSession: number;
  /**
   * How long a first poll's new connection ID and presence wait to be written together with other polls', ms:
   * one write transaction per batch instead of one per first poll. Until written they count toward
   * `maxConnectionsPerSession` in this process only. Default 10.
   */
  livenessFlushMs: number;
  /**
   * Key that signs re-poll leases (`Grip-Lease`, docs/protocol.md §13): the proxy then answers a client's
   * re-polls by itself while the lease holds. The proxy's `LEASE_KEY`; at least 16 characters and not the
   * secret. Default none: no leases, every poll comes to the app.
   */
  leaseKey: string | undefined;
  /** How long a lease holds, seconds; the client's first poll after it comes to the app. Default 300. */
  leaseTtlS: number;
  /**
   * A session unused for this long expires (401 `APP_ERR_SESSION_EXPIRED`), seconds; every request slides it
   * (written at most once a minute). At least `holdTimeoutS + leaseTtlS + 60`, so a client that keeps polling
   * never expires. Default 604800 (7 days).
   */
  sessionIdleTimeoutS: number;
  /** A session expires this long after sign-in however active it is, seconds; also the cookie's Max-Age. Default 2592000 (30 days). */
  sessionMaxAgeS: number;
  /** How often the pruner ends expired sessions and deletes connection rows past the liveness window, seconds. Default 60. */
  pruneIntervalS: number;
  /** Most sessions ended, or rows deleted, in one pruning transaction (keeps the write lock short). Default 100. */
  pruneBatchSize: number;
  /** Logger. Default: a silent pino logger. */
  logger: Logger;
}

/** What callers pass: any subset of the options, plus the secret. */
export type AppOptionsInput = Partial<AppOptions> & { secret: string };

/** Thrown for an option that is missing, mistyped or out of range. */
export class AppOptionsError extends Error {
  override name = 'AppOptionsError';
  readonly code = 'APP_ERR_BAD_OPTION';
}

export const DEFAULT_APP_OPTIONS: Readonly<Omit<AppOptions, 'secret' | 'controlSecret' | 'logger'>> = Object.freeze({
  host: '127.0.0.1',
  port: 8081,
  dbPath: './data/chat.db',
  controlUrl: undefined,
  holdTimeoutS: 55,
  messageMaxChars: 2000,
  pollBatchMax: 500,
  presenceWindowMs: 70_000,
  bodyMaxBytes: 16_384,
  relayBatchSize: 100,
  relayBatchMaxBytes: 512 * 1024,
  relayRetryMinMs: 50,
  relayRetryMaxMs: 5000,
  relayIntervalMs: 1000,
  relayPublishTimeoutMs: 5000,
  relayLeaseMs: 15_000,
  relayLeaseRetryMs: 25,
  redisUrl: undefined,
  sqliteBusyTimeoutMs: 5000,
  cookieSecure: false,
  baseDomain: undefined,
  shardCount: 4,
  cookieDomain: undefined,
  originAgentCluster: '?0',
  requireGripSig: false,
  postsPerMinute: 60,
  sessionsPerMinutePerAddress: 20,
  rateLimitLoopback: false,
  maxConnectionsPerSession: 20,
  livenessFlushMs: 10,
  leaseKey: undefined,
  leaseTtlS: 300,
  sessionIdleTimeoutS: 7 * 86_400,
  sessionMaxAgeS: 30 * 86_400,
  pruneIntervalS: 60,
  pruneBatchSize: 100,
  // 1 KiB above the proxy's 16 KiB: what the proxy accepts still fits with the X-Forwarded-* and Grip-Sig it adds.
  maxHeaderBytes: 17 * 1024,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  // The app's only client is the proxy, whose upstream sockets idle out after 30 s (upstreamIdleTimeoutMs):
  // the app must keep them longer, or a reused socket the app just closed resets a poll (a 502 for the client).
  keepAliveTimeoutMs: 65_000,
});

export const SECRET_MIN_CHARS = 16;

/** Longest session idle timeout or maximum age: 400 days, the longest cookie lifetime browsers keep (RFC 6265bis). */
export const SESSION_AGE_MAX_S = 400 * 86_400;

const KNOWN_KEYS = new Set<string>([...Object.keys(DEFAULT_APP_OPTIONS), 'secret', 'controlSecret', 'logger']);

function fail(message: string): never {
  throw new AppOptionsError(message);
}

function integer(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    fail(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return value;
}

function nonEmptyString(name: string, value: unknown): string {
  if (typeof value !== 'string' || value.trim() === '') fail(`${name} must be a non-empty string, got ${JSON.stringify(value)}`);
  return value;
}

/** Checks an http(s) base URL; shared with `connectProxy()`. Returns it without a trailing slash. */
/** A `redis://` or `rediss://` URL. */
function redisUrl(value: unknown): string {
  if (typeof value !== 'string') fail(`redisUrl must be a string, got ${JSON.stringify(value)}`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    fail(`redisUrl must be an absolute redis:// URL, got ${JSON.stringify(value)}`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') fail(`redisUrl must use redis or rediss, got ${JSON.stringify(value)}`);
  return value;
}

export function validateControlUrl(value: unknown): string {
  if (typeof value !== 'string') fail(`controlUrl must be a string, got ${JSON.stringify(value)}`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    fail(`controlUrl must be an absolute http(s) URL, got ${JSON.stringify(value)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') fail(`controlUrl must use http or https, got ${JSON.stringify(value)}`);
  if (url.search !== '' || url.hash !== '') fail(`controlUrl must not have a query or fragment, got ${JSON.stringify(value)}`);
  return value.replace(/\/+$/, '');
}

/** Lower-case DNS name of two or more labels (`chat.test`); an IP address or a bare name cannot have subdomains. */
const DOMAIN_PATTERN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/;

function optionalDomain(name: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !DOMAIN_PATTERN.test(value)) {
    fail(`${name} must be a lower-case domain name such as chat.example.com, got ${JSON.stringify(value)}`);
  }
  return value;
}

function bool(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') fail(`${name} must be a boolean, got ${JSON.stringify(value)}`);
  return value;
}

function isLogger(value: unknown): value is Logger {
  const l = value as Partial<Record<string, unknown>> | null;
  return typeof l === 'object' && l !== null && ['info', 'warn', 'error', 'debug', 'child'].every((k) => typeof l[k] === 'function');
}

/** A lease key: at least as long as a secret, and neither secret (one credential, one job). Never echoed. */
function leaseKey(value: unknown, secret: string, controlSecret: string | undefined): string {
  if (typeof value !== 'string' || value.length < SECRET_MIN_CHARS) fail(`leaseKey must be at least ${SECRET_MIN_CHARS} characters`);
  if (value === secret) fail('leaseKey must differ from secret (LEASE_KEY, GRIP_SECRET): a lease key must not sign Grip-Sig');
  if (value === controlSecret) fail('leaseKey must differ from controlSecret (LEASE_KEY, CONTROL_SECRET): a lease key must not publish');
  return value;
}

/** The control credential: not the Grip-Sig key, which a proxy in front of any app shares with it. Never echoed. */
function controlSecretOf(value: unknown, secret: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length < SECRET_MIN_CHARS) fail(`controlSecret must be at least ${SECRET_MIN_CHARS} characters`);
  if (value === secret) fail('controlSecret must differ from secret (CONTROL_SECRET, GRIP_SECRET): the Grip-Sig key must not open the control API');
  return value;
}

/** Checks that publishing to the proxy's control API has its credential. */
export function requireControlSecret(controlSecret: string | undefined): string {
  if (controlSecret === undefined) fail('controlSecret is required to publish to the proxy\'s control API (CONTROL_SECRET)');
  return controlSecret;
}

/** Merges `input` over the defaults and validates every field. Throws `AppOptionsError`. */
export function resolveAppOptions(input: AppOptionsInput): AppOptions {
  if (typeof input !== 'object' || input === null) fail('options must be an object');
  for (const key of Object.keys(input)) {
    if (!KNOWN_KEYS.has(key)) fail(`unknown option ${JSON.stringify(key)}`);
  }
  // `undefined` means "use the default", so callers can spread partial configs.
  const defined = Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)) as Partial<AppOptions>;
  const o = { ...DEFAULT_APP_OPTIONS, ...defined };

  if (typeof o.secret !== 'string' || o.secret.length < SECRET_MIN_CHARS) {
    fail(`secret is required and must be at least ${SECRET_MIN_CHARS} characters`);
  }
  if (o.logger !== undefined && !isLogger(o.logger)) fail('logger must be a pino Logger');
  if (typeof o.cookieSecure !== 'boolean') fail(`cookieSecure must be a boolean, got ${JSON.stringify(o.cookieSecure)}`);
  const holdTimeoutS = o.holdTimeoutS as unknown;
  if (typeof holdTimeoutS !== 'number' || !Number.isFinite(holdTimeoutS) || holdTimeoutS <= 0 || holdTimeoutS > 3600) {
    fail(`holdTimeoutS must be a number of seconds above 0 and at most 3600, got ${JSON.stringify(holdTimeoutS)}`);
  }

  const resolved: AppOptions = {
    host: nonEmptyString('host', o.host),
    port: integer('port', o.port, 0, 65535),
    dbPath: nonEmptyString('dbPath', o.dbPath),
    secret: o.secret,
    controlSecret: controlSecretOf(o.controlSecret, o.secret),
    controlUrl: o.controlUrl === undefined ? undefined : validateControlUrl(o.controlUrl),
    holdTimeoutS,
    messageMaxChars: integer('messageMaxChars', o.messageMaxChars, 1, 100_000),
    pollBatchMax: integer('pollBatchMax', o.pollBatchMax, 1, 10_000),
    presenceWindowMs: integer('presenceWindowMs', o.presenceWindowMs, 1, 86_400_000),
    bodyMaxBytes: integer('bodyMaxBytes', o.bodyMaxBytes, 64, 16 * 1024 * 1024),
    relayBatchSize: integer('relayBatchSize', o.relayBatchSize, 1, 10_000),
    relayBatchMaxBytes: integer('relayBatchMaxBytes', o.relayBatchMaxBytes, 1024, 64 * 1024 * 1024),
    relayRetryMinMs: integer('relayRetryMinMs', o.relayRetryMinMs, 1, 3_600_000),
    relayRetryMaxMs: integer('relayRetryMaxMs', o.relayRetryMaxMs, 1, 3_600_000),
    relayIntervalMs: integer('relayIntervalMs', o.relayIntervalMs, 1, 3_600_000),
    relayPublishTimeoutMs: integer('relayPublishTimeoutMs', o.relayPublishTimeoutMs, 1, 600_000),
    relayLeaseMs: integer('relayLeaseMs', o.relayLeaseMs, 2, 3_600_000),
    relayLeaseRetryMs: integer('relayLeaseRetryMs', o.relayLeaseRetryMs, 1, 60_000),
    redisUrl: o.redisUrl === undefined ? undefined : redisUrl(o.redisUrl),
    sqliteBusyTimeoutMs: integer('sqliteBusyTimeoutMs', o.sqliteBusyTimeoutMs, 0, 600_000),
    cookieSecure: o.cookieSecure,
    baseDomain: optionalDomain('baseDomain', o.baseDomain),
    shardCount: integer('shardCount', o.shardCount, 0, 64),
    cookieDomain: optionalDomain('cookieDomain', o.cookieDomain),
    originAgentCluster: o.originAgentCluster === '?0' || o.originAgentCluster === '?1'
      ? o.originAgentCluster
      : fail(`originAgentCluster must be "?0" or "?1", got ${JSON.stringify(o.originAgentCluster)}`),
    requireGripSig: bool('requireGripSig', o.requireGripSig),
    postsPerMinute: integer('postsPerMinute', o.postsPerMinute, 0, 1_000_000),
    sessionsPerMinutePerAddress: integer('sessionsPerMinutePerAddress', o.sessionsPerMinutePerAddress, 0, 1_000_000),
    rateLimitLoopback: bool('rateLimitLoopback', o.rateLimitLoopback),
    maxConnectionsPerSession: integer('maxConnectionsPerSession', o.maxConnectionsPerSession, 1, 100_000),
    livenessFlushMs: integer('livenessFlushMs', o.livenessFlushMs, 0, 1000),
    maxHeaderBytes: integer('maxHeaderBytes', o.maxHeaderBytes, 1024, 1024 * 1024),
    headersTimeoutMs: integer('headersTimeoutMs', o.headersTimeoutMs, 1, 3_600_000),
    requestTimeoutMs: integer('requestTimeoutMs', o.requestTimeoutMs, 0, 3_600_000),
    keepAliveTimeoutMs: integer('keepAliveTimeoutMs', o.keepAliveTimeoutMs, 1, 3_600_000),
    leaseKey: o.leaseKey === undefined ? undefined : leaseKey(o.leaseKey, o.secret, o.controlSecret),
    leaseTtlS: integer('leaseTtlS', o.leaseTtlS, 1, 3600),
    sessionIdleTimeoutS: integer('sessionIdleTimeoutS', o.sessionIdleTimeoutS, 60, SESSION_AGE_MAX_S),
    sessionMaxAgeS: integer('sessionMaxAgeS', o.sessionMaxAgeS, 60, SESSION_AGE_MAX_S),
    pruneIntervalS: integer('pruneIntervalS', o.pruneIntervalS, 1, 86_400),
    pruneBatchSize: integer('pruneBatchSize', o.pruneBatchSize, 1, 10_000),
    logger: o.logger ?? pino({ level: 'silent' }),
  };
  if (resolved.requestTimeoutMs > 0 && resolved.headersTimeoutMs > resolved.requestTimeoutMs) {
    // Node refuses this combination too (ERR_OUT_OF_RANGE): the head is part of the request.
    fail(`headersTimeoutMs (${resolved.headersTimeoutMs}) must not exceed requestTimeoutMs (${resolved.requestTimeoutMs}) unless requestTimeoutMs is 0`);
  }
  // With Redis the relay appends to the bus and never calls the control API.
  if (resolved.controlUrl !== undefined && resolved.redisUrl === undefined) requireControlSecret(resolved.controlSecret);
  if (resolved.relayLeaseMs <= resolved.relayPublishTimeoutMs) {
    fail(`relayLeaseMs (${resolved.relayLeaseMs}) must exceed relayPublishTimeoutMs (${resolved.relayPublishTimeoutMs}): a live relay must not lose its lease mid-publish`);
  }
  // A polling client reaches the app at least once per hold plus lease (leased re-polls stay in the proxy).
  const idleMinS = Math.ceil(resolved.holdTimeoutS) + resolved.leaseTtlS + 60;
  if (resolved.sessionIdleTimeoutS < idleMinS) {
    fail(`sessionIdleTimeoutS (${resolved.sessionIdleTimeoutS}) must be at least holdTimeoutS + leaseTtlS + 60 (${idleMinS}): a client that keeps polling must never expire`);
  }
  if (resolved.sessionMaxAgeS < resolved.sessionIdleTimeoutS) {
    fail(`sessionMaxAgeS (${resolved.sessionMaxAgeS}) must not be below sessionIdleTimeoutS (${resolved.sessionIdleTimeoutS})`);
  }
  if (resolved.relayRetryMaxMs < resolved.relayRetryMinMs) {
    fail(`relayRetryMaxMs (${resolved.relayRetryMaxMs}) must not be below relayRetryMinMs (${resolved.relayRetryMinMs})`);
  }
  return resolved;
}
