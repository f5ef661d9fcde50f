/**
 * The hold proxy's options: one typed object, defaults in one place, units in
 * the names, validated whole before any socket opens.
 */
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import type { HttpServerLimits } from '../common/http-limits.js';
import { isLoopbackHost } from '../common/net-address.js';
import { findPublicDir } from '../common/public-dir.js';
import { GRIP_SIG_ISSUER } from '../protocol/grip-sig.js';
import { ProxyError } from './errors.js';
import { isHostPattern } from './http/host-filter.js';
import type { JsonpMode } from './http/jsonp.js';

/** The clock and timers the proxy uses; injected so tests can control time. */
export interface ProxyTimers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  /** Milliseconds since the epoch (or any monotonic origin the tests choose). */
  now(): number;
  /**
   * Milliseconds from any origin, never stepping with the wall clock (default `performance.now()`): what hold
   * timeouts are measured on (holds/hold-timeouts.ts). Injected timers without it use `now`.
   */
  monotonicNow?(): number;
}

export interface ProxyOptions extends HttpServerLimits {
  /** http URL of the app the proxy forwards to, e.g. `http://127.0.0.1:8081`. Required. */
  upstreamUrl: string;
  /**
   * The Grip-Sig key: signs the `Grip-Sig` added to every forwarded request (docs/protocol.md §2); apps verify it
   * with the same key. It never opens the control API. At least 16 characters. Required.
   */
  secret: string;
  /**
   * The control API credential (docs/protocol.md §7): `Authorization: Bearer <controlSecret>`, or a control JWT
   * signed with it. At least 16 characters, and neither `secret` nor `leaseKey`: every app that verifies Grip-Sig
   * holds that key, and must not thereby be able to publish. Required.
   */
  controlSecret: string;
  /** The `iss` a control JWT must carry (the `iss` of a GRIP publisher's URL). Not the Grip-Sig issuer. Default `comet-chat-publisher`. */
  controlIssuer: string;
  /** A control JWT's `aud`, if it has one, must be this. Default `comet-chat-control`. */
  controlAudience: string;
  /** A control JWT's `exp` may be at most this far ahead (plus 60 s of clock skew), ms. Default 3 600 000. */
  controlTokenMaxLifetimeMs: number;
  /** Client-facing listener. Default `127.0.0.1`:8080; port 0 picks a free port. */
  clientHost: string;
  clientPort: number;
  /** Control API listener (publish/push/close/stats). Default `127.0.0.1`:5561; port 0 picks a free port. */
  controlHost: string;
  controlPort: number;
  /**
   * The control API may listen beyond loopback only when this is true (and then only with a strong
   * secret: at least 32 characters, at least 10 different ones). Default false: a non-loopback
   * `controlHost` refuses to start, since anyone who can reach the port and guess the secret can push to every client.
   */
  allowRemoteControl: boolean;
  /** Most requests parked at once; a hold beyond it is answered 503 `PROXY_ERR_TOO_MANY_PARKED`. Default 15 000. */
  maxParked: number;
  /** Most requests parked at once for one client address; beyond it, 503 as for `maxParked`. Default 1 000. */
  maxParkedPerAddress: number;
  /**
   * The client address is the right-most `X-Forwarded-For` entry (what a load balancer in front added) instead
   * of the socket's peer. Default false: only set it when every client comes through such a proxy.
   */
  trustForwardedFor: boolean;
  /**
   * The client port is served by the client front (proxy/http/front/): leased re-polls (docs/protocol.md §13)
   * and their parked answers skip node:http's per-request objects (issue 15: CPU per delivery); every other
   * request goes to node:http exactly as before. Default true; it takes effect with a `leaseKey` (without leases
   * the front would serve nothing). False: node:http serves the port alone.
   */
  clientFront: boolean;
  /**
   * Largest request body a parked request may keep (it is retained for re-asks). A held request with a larger body,
   * or one whose body is still arriving when the app answers, is answered 413 `PROXY_ERR_PARKED_BODY_TOO_LARGE`
   * instead of being parked. Default 8 KiB: polls are GETs, and a GRIP app that holds POSTs holds small ones.
   */
  maxParkedBodyBytes: number;
  /**
   * Bytes all parked requests together may keep: each one's request head, body and held response. A hold beyond
   * it is answered 503 `PROXY_ERR_TOO_MANY_PARKED` like the count caps. Default 64 MiB. At least
   * `maxHeaderBytes + maxParkedBodyBytes`, so the largest request the proxy accepts can park on its own.
   */
  maxParkedBytes: number;
  /** `Retry-After` of a `PROXY_ERR_TOO_MANY_PARKED` answer, seconds. Default 5. */
  parkedRetryAfterS: number;
  /** Hold timeout when the app sends no `Grip-Timeout`. Default 55 000 ms. */
  defaultHoldTimeoutMs: number;
  /** Hold timeouts are clamped to [min, max]. Defaults 1 000 ms and 300 000 ms. */
  minHoldTimeoutMs: number;
  maxHoldTimeoutMs: number;
  /** Idle time allowed on an upstream request before the client gets 504. Default 30 000 ms. */
  upstreamTimeoutMs: number;
  /** Keep-alive sockets to the app; further requests wait in the agent's queue (never 502). Default 256. */
  upstreamMaxSockets: number;
  /**
   * An idle keep-alive socket to the app is closed after this long, ms (or one second before the app's announced
   * `Keep-Alive: timeout=`, if sooner). It must be shorter than the app's own keep-alive timeout: a socket the
   * app closes while the proxy reuses it resets the request, and the client gets 502. Default 30 000.
   */
  upstreamIdleTimeoutMs: number;
  /**
   * Accept queue of the client port (`listen()` backlog; the kernel caps it at `net.core.somaxconn`). Default
   * 4096: Node's 511 overflows when thousands of clients reconnect at once, and the overflowed connections
   * stall for SYN retransmits or fail.
   */
  listenBacklog: number;
  /**
   * Requests that may wait behind the one being answered on a client connection (pipelining): each connection is
   * answered one request at a time, reading pauses while this many wait, and a request parsed beyond it is answered
   * 429 `PROXY_ERR_TOO_MANY_PIPELINED` and the connection closed. Default 16.
   */
  pipelineMaxQueued: number;
  /**
   * A client whose write buffer stays full this long without draining (it stopped reading) is disconnected, which
   * releases its upstream request and parked poll. Default 20 000 ms.
   */
  clientWriteTimeoutMs: number;
  /**
   * Bytes of a pass-through answer read from the app ahead of a slower client, so the app's socket returns to the
   * pool without waiting for the client; 0 reads no further than the client. Default 1 MiB.
   */
  responseBufferMaxBytes: number;
  /**
   * A stream hold (docs/protocol.md §14.4) whose client leaves more than this many bytes unsent is ended (with the
   * hold's `Grip-Stream-Resync` data, if any): a reader that falls behind never grows the proxy's memory. Default 1 MiB.
   */
  streamMaxBufferedBytes: number;
  /** Largest held-response body; a larger one is a bad instruction. Default 1 MiB. */
  heldResponseMaxBytes: number;
  /** Request bodies up to this size are retained so the request can be re-asked. Default 64 KiB. */
  reaskBodyMaxBytes: number;
  /** Re-asks per client request before it gets the `reask-limit` resync answer. Default 5. */
  maxReasks: number;
  /** Per-connection queue bounds: items, bytes of bodies, and item age. Defaults 100, 1 MiB, 60 000 ms. */
  queueMaxItems: number;
  queueMaxBytes: number;
  queueTtlMs: number;
  /** A connection with a resync pending and nothing parked is forgotten after this. Default 600 000 ms. */
  resyncTtlMs: number;
  /**
   * Most queues kept for connection IDs no request parked under within `queueTtlMs` (pushes to IDs this proxy does
   * not know). A push that would open one more is refused whole, 503 `PROXY_ERR_TOO_MANY_QUEUES`, before anything is
   * delivered; a real client's ID is known while it polls. Embedded only (with Redis the queues live there).
   * Default 10 000.
   */
  maxUnknownQueues: number;
  /** `Retry-After` of a `PROXY_ERR_TOO_MANY_QUEUES` answer, seconds. Default 5. */
  unknownQueuesRetryAfterS: number;
  /** Most distinct connection IDs one `/push/` or `/close/` call may name; beyond, 400 `PROXY_ERR_TOO_MANY_IDS`. Default 1 000. */
  controlMaxIdsPerCall: number;
  /** A closed connection ID refuses holds for this long. Default 600 000 ms. */
  closedTtlMs: number;
  /** A channel's last id is forgotten after this long without publishes. Default 3 600 000 ms. */
  channelTtlMs: number;
  /** At most this many channels are tracked; the least recently published is evicted. Default 100 000. */
  maxChannels: number;
  /** How often expired queues, tombstones and channels are swept. Default 1 000 ms. */
  sweepIntervalMs: number;
  /** Largest control API body. Default 1 MiB. */
  controlBodyMaxBytes: number;
  /**
   * The parent domain of the page and its shard hosts: the client port serves it and its subdomains (`c1.<baseDomain>`,
   * ...) besides `allowedHosts`. Default none.
   */
  baseDomain: string | undefined;
  /**
   * Hosts the client port serves besides loopback names (always served), the base domain and the listen address
   * (docs/protocol.md §1.7): `name`, `*.suffix` (its subdomains), an IPv4 address, `[IPv6]`, or `*` (any). Any
   * other Host gets 421 `PROXY_ERR_MISDIRECTED` (DNS rebinding). Default none.
   */
  allowedHosts: readonly string[];
  /** Hosts the control port serves besides loopback names and IP addresses (always served); same forms. Default none. */
  controlAllowedHosts: readonly string[];
  /** The shard bridge page served at `/bridge.html`. Default `public/bridge.html` of this repository. */
  bridgePagePath: string;
  /**
   * `redis://host:port`: share publishes, pushes, connection queues and tombstones with every other proxy
   * through Redis (docs/scaleout.md). Default none: the embedded, single-proxy path.
   */
  redisUrl: string | undefined;
  /**
   * JSON-P for legacy browsers (docs/protocol.md §1.9, Pushpin's `jsonp_cb`): a GET carrying this query parameter
   * (e.g. `callback`) gets every answer wrapped as script calling the function it names. Default none: off.
   */
  jsonpCallbackParam: string | undefined;
  /** JSON-P wrapping: `extended` (Pushpin's default: code, reason, headers and body in one object) or `basic` (the body alone). */
  jsonpMode: JsonpMode;
  /** `Origin-Agent-Cluster` of the bridge page: `?0` (default) allows `document.domain`, `?1` forbids it. */
  bridgeOriginAgentCluster: '?0' | '?1';
  /**
   * Key that verifies the app's re-poll leases (`Grip-Lease`, docs/protocol.md §13). At least 16 characters and
   * not the `secret`: each credential does one job. Default none: no leases, every poll goes to the app.
   */
  leaseKey: string | undefined;
  /** Channel buffer bounds per channel: items, body bytes, item age. Defaults 100, 256 KiB, 300 000 ms. */
  bufferMaxItems: number;
  bufferMaxBytes: number;
  bufferMaxAgeMs: number;
  /** Body bytes buffered over all channels; the least recently published channel goes first. Default 64 MiB. */
  bufferMaxTotalBytes: number;
  /** Leases kept (one per connection ID); past it the least recently granted is dropped. Default 100 000. */
  maxLeases: number;
  /** A lease may live at most this long (`exp - iat`); revocations are kept this long. Default 3 600 000 ms. */
  leaseMaxLifetimeMs: number;
  /** Revocations remembered one by one; past it every lease issued until then is refused. Default 100 000. */
  maxRevocations: number;
  /**
   * Proxy processes `proxy/main.ts` runs (docs/scaleout.md "Workers"): 1 is one process, no cluster; more share
   * the two ports through node:cluster, the primary keeping the ordered control stream and the connection queues.
   * `'auto'` (input only) is the host's core count. 1-256. With `redisUrl` the primary is the host's one member of
   * the bus and relays it to its workers (docs/scaleout.md). Default 1.
   */
  workers: number;
  /** Default: a silent pino logger. */
  logger: Logger;
  /** Default: the global timers and `Date.now`. */
  timers: ProxyTimers;
}

/** What callers pass: everything optional except the upstream URL and the two secrets. */
export type ProxyOptionsInput = Partial<Omit<ProxyOptions, 'workers'>> &
  Pick<ProxyOptions, 'upstreamUrl' | 'secret' | 'controlSecret'> & { workers?: number | 'auto' | undefined };

const MiB = 1024 * 1024;

/** Defaults of every option that has one (logger and timers are built per call). */
export const DEFAULT_PROXY_OPTIONS = {
  clientHost: '127.0.0.1',
  clientPort: 8080,
  controlHost: '127.0.0.1',
  controlPort: 5561,
  defaultHoldTimeoutMs: 55_000,
  minHoldTimeoutMs: 1_000,
  maxHoldTimeoutMs: 300_000,
  upstreamTimeoutMs: 30_000,
  upstreamMaxSockets: 256,
  upstreamIdleTimeoutMs: 30_000,
  listenBacklog: 4096,
  pipelineMaxQueued: 16,
  clientWriteTimeoutMs: 20_000,
  responseBufferMaxBytes: MiB,
  streamMaxBufferedBytes: MiB,
  heldResponseMaxBytes: MiB,
  reaskBodyMaxBytes: 64 * 1024,
  maxReasks: 5,
  queueMaxItems: 100,
  queueMaxBytes: MiB,
  queueTtlMs: 60_000,
  resyncTtlMs: 600_000,
  maxUnknownQueues: 10_000,
  unknownQueuesRetryAfterS: 5,
  controlMaxIdsPerCall: 1_000,
  closedTtlMs: 600_000,
  channelTtlMs: 3_600_000,
  maxChannels: 100_000,
  sweepIntervalMs: 1_000,
  controlBodyMaxBytes: MiB,
  controlIssuer: 'comet-chat-publisher',
  controlAudience: 'comet-chat-control',
  controlTokenMaxLifetimeMs: 3_600_000,
  bridgeOriginAgentCluster: '?0',
  jsonpMode: 'extended',
  allowRemoteControl: false,
  maxParked: 15_000,
  maxParkedPerAddress: 1_000,
  maxParkedBodyBytes: 8 * 1024,
  maxParkedBytes: 64 * MiB,
  trustForwardedFor: false,
  clientFront: true,
  parkedRetryAfterS: 5,
  maxHeaderBytes: 16 * 1024,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  bufferMaxItems: 100,
  bufferMaxBytes: 256 * 1024,
  bufferMaxAgeMs: 300_000,
  bufferMaxTotalBytes: 64 * MiB,
  maxLeases: 100_000,
  leaseMaxLifetimeMs: 3_600_000,
  maxRevocations: 100_000,
  workers: 1,
} as const satisfies Partial<ProxyOptions>;

/** Options without a fixed default value (still accepted as input keys). */
const OPTIONAL_KEYS = ['upstreamUrl', 'secret', 'controlSecret', 'logger', 'timers', 'baseDomain', 'bridgePagePath', 'redisUrl', 'leaseKey', 'allowedHosts', 'controlAllowedHosts', 'jsonpCallbackParam'];

/** Lower-case DNS name of two or more labels (`chat.test`). */
const DOMAIN_PATTERN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** Thrown by `resolveProxyOptions` (code `PROXY_ERR_BAD_OPTION`). */
export class ProxyOptionsError extends ProxyError {
  override name = 'ProxyOptionsError';
  constructor(message: string) {
    super('PROXY_ERR_BAD_OPTION', message);
  }
}

const MIN_SECRET_LENGTH = 16;
/** A control API reachable from other machines needs a secret that resists guessing. */
const REMOTE_SECRET_MIN_LENGTH = 32;
const REMOTE_SECRET_MIN_DISTINCT = 10;
/** Largest delay Node's timers accept (about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;

function describe(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

function integerAtLeast(name: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `${min}-${max}`;
    throw new ProxyOptionsError(`${name} must be an integer ${range}, got ${describe(value)}`);
  }
  return value;
}

function nonEmptyString(name: string, value: unknown): string {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new ProxyOptionsError(`${name} must be a non-empty string, got ${describe(value)}`);
  }
  return value;
}

function httpUrl(name: string, value: unknown): string {
  const text = nonEmptyString(name, value);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ProxyOptionsError(`${name} must be an http URL, got ${describe(value)}`);
  }
  if (url.protocol !== 'http:') throw new ProxyOptionsError(`${name} must be an http:// URL, got ${describe(value)}`);
  if (url.search !== '' || url.hash !== '') {
    throw new ProxyOptionsError(`${name} must not have a query or fragment, got ${describe(value)}`);
  }
  return text;
}

function optionalDomain(name: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !DOMAIN_PATTERN.test(value)) {
    throw new ProxyOptionsError(`${name} must be a lower-case domain name such as chat.example.com, got ${describe(value)}`);
  }
  return value;
}

/** A list of host patterns (http/host-filter.ts), lower-cased; `envName` is the variable that sets it. */
function hostList(name: string, envName: string, value: unknown): readonly string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new ProxyOptionsError(`${name} must be a list of host names, got ${describe(value)}`);
  return value.map((entry: unknown) => {
    if (typeof entry !== 'string' || !isHostPattern(entry)) {
      throw new ProxyOptionsError(
        `${name} (${envName}) entry ${describe(entry)} is not a host name, *.suffix, IP address, [IPv6 address] or *; no ports, schemes or paths`,
      );
    }
    return entry.toLowerCase();
  });
}

function boolean(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw new ProxyOptionsError(`${name} must be true or false, got ${describe(value)}`);
  return value;
}

/**
 * docs/protocol.md §7: the control API stays on loopback unless `allowRemoteControl` says otherwise, and a
 * remote one needs a strong secret. Messages never echo the secret.
 */
function checkControlExposure(options: ProxyOptions): void {
  if (isLoopbackHost(options.controlHost)) return;
  if (!options.allowRemoteControl) {
    throw new ProxyOptionsError(
      `controlHost ${describe(options.controlHost)} is not a loopback address: anyone who can reach it could push to every client. ` +
        'Keep it on 127.0.0.1, or set allowRemoteControl (CONTROL_ALLOW_REMOTE=1) and firewall the port',
    );
  }
  const secret = options.controlSecret;
  if (secret.length < REMOTE_SECRET_MIN_LENGTH || new Set(secret).size < REMOTE_SECRET_MIN_DISTINCT) {
    throw new ProxyOptionsError(
      `a control API on a non-loopback address (${describe(options.controlHost)}) needs a strong controlSecret: at least ` +
        `${REMOTE_SECRET_MIN_LENGTH} characters with at least ${REMOTE_SECRET_MIN_DISTINCT} different ones, e.g. openssl rand -hex 32`,
    );
  }
}

function agentCluster(name: string, value: unknown): '?0' | '?1' {
  if (value !== '?0' && value !== '?1') throw new ProxyOptionsError(`${name} must be "?0" or "?1", got ${describe(value)}`);
  return value;
}

/** A query parameter name that needs no percent-encoding. */
function jsonpParam(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^[A-Za-z0-9_.~-]{1,64}$/.test(value)) {
    throw new ProxyOptionsError(`jsonpCallbackParam must be 1-64 characters from A-Z a-z 0-9 _ . ~ -, got ${describe(value)}`);
  }
  return value;
}

function jsonpMode(value: unknown): JsonpMode {
  if (value !== 'extended' && value !== 'basic') throw new ProxyOptionsError(`jsonpMode must be "extended" or "basic", got ${describe(value)}`);
  return value;
}

function isLogger(value: unknown): value is Logger {
  const l = value as Partial<Logger> | null;
  return typeof l === 'object' && l !== null && ['info', 'warn', 'error', 'debug', 'child'].every((m) => typeof (l as Record<string, unknown>)[m] === 'function');
}

function isTimers(value: unknown): value is ProxyTimers {
  const t = value as Record<string, unknown> | null;
  return typeof t === 'object' && t !== null && ['setTimeout', 'clearTimeout', 'now'].every((m) => typeof t[m] === 'function');
}

/** The global timers and clocks: the default `timers`. */
export const systemTimers: ProxyTimers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
  now: () => Date.now(),
  monotonicNow: () => performance.now(),
};

/**
 * Fills in defaults and validates every option; throws `ProxyOptionsError`
 * with a precise message (`queueMaxItems must be an integer >= 1, got -3`).
 */
export function resolveProxyOptions(input: ProxyOptionsInput): ProxyOptions {
  if (typeof input !== 'object' || input === null) throw new ProxyOptionsError('options must be an object');
  const known = new Set<string>([...Object.keys(DEFAULT_PROXY_OPTIONS), ...OPTIONAL_KEYS]);
  for (const key of Object.keys(input)) {
    if (!known.has(key)) throw new ProxyOptionsError(`unknown option ${key}`);
  }
  // `undefined` means "use the default", so a caller can spread optional settings.
  const defined = Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined));
  const o = { ...DEFAULT_PROXY_OPTIONS, ...defined } as Record<string, unknown>;

  const secret = o.secret;
  if (typeof secret !== 'string' || secret.length < MIN_SECRET_LENGTH) {
    // Never echo the secret itself.
    throw new ProxyOptionsError(`secret must be a string of at least ${MIN_SECRET_LENGTH} characters`);
  }
  const controlSecret = controlSecretOf(o.controlSecret, secret);
  const port = (name: string) => integerAtLeast(name, o[name], 0, 65_535);
  const ms = (name: string, min: number) => integerAtLeast(name, o[name], min, MAX_TIMER_MS);
  const count = (name: string) => integerAtLeast(name, o[name], 1);

  const resolved: ProxyOptions = {
    upstreamUrl: httpUrl('upstreamUrl', o.upstreamUrl),
    secret,
    clientHost: nonEmptyString('clientHost', o.clientHost),
    clientPort: port('clientPort'),
    controlHost: nonEmptyString('controlHost', o.controlHost),
    controlPort: port('controlPort'),
    defaultHoldTimeoutMs: ms('defaultHoldTimeoutMs', 0),
    minHoldTimeoutMs: ms('minHoldTimeoutMs', 0),
    maxHoldTimeoutMs: ms('maxHoldTimeoutMs', 0),
    upstreamTimeoutMs: ms('upstreamTimeoutMs', 1),
    upstreamMaxSockets: count('upstreamMaxSockets'),
    upstreamIdleTimeoutMs: ms('upstreamIdleTimeoutMs', 1),
    listenBacklog: count('listenBacklog'),
    // Each waiting request costs its parsed head; a thousand is far past any real pipelining client.
    pipelineMaxQueued: integerAtLeast('pipelineMaxQueued', o.pipelineMaxQueued, 1, 1000),
    clientWriteTimeoutMs: ms('clientWriteTimeoutMs', 1),
    responseBufferMaxBytes: integerAtLeast('responseBufferMaxBytes', o.responseBufferMaxBytes, 0),
    // At least one chunk header's worth; past 1 GiB a few slow readers could exhaust memory.
    streamMaxBufferedBytes: integerAtLeast('streamMaxBufferedBytes', o.streamMaxBufferedBytes, 1024, 1024 * MiB),
    heldResponseMaxBytes: count('heldResponseMaxBytes'),
    reaskBodyMaxBytes: integerAtLeast('reaskBodyMaxBytes', o.reaskBodyMaxBytes, 0),
    maxReasks: integerAtLeast('maxReasks', o.maxReasks, 0),
    queueMaxItems: count('queueMaxItems'),
    queueMaxBytes: count('queueMaxBytes'),
    queueTtlMs: ms('queueTtlMs', 1),
    resyncTtlMs: ms('resyncTtlMs', 1),
    maxUnknownQueues: count('maxUnknownQueues'),
    unknownQueuesRetryAfterS: integerAtLeast('unknownQueuesRetryAfterS', o.unknownQueuesRetryAfterS, 1, 86_400),
    controlMaxIdsPerCall: count('controlMaxIdsPerCall'),
    closedTtlMs: ms('closedTtlMs', 1),
    channelTtlMs: ms('channelTtlMs', 1),
    maxChannels: count('maxChannels'),
    sweepIntervalMs: ms('sweepIntervalMs', 1),
    controlBodyMaxBytes: count('controlBodyMaxBytes'),
    controlSecret,
    controlIssuer: controlIssuer(o.controlIssuer),
    controlAudience: claimValue('controlAudience', o.controlAudience),
    controlTokenMaxLifetimeMs: integerAtLeast('controlTokenMaxLifetimeMs', o.controlTokenMaxLifetimeMs, 1000, 86_400_000),
    baseDomain: optionalDomain('baseDomain', o.baseDomain),
    allowedHosts: hostList('allowedHosts', 'ALLOWED_HOSTS', o.allowedHosts),
    controlAllowedHosts: hostList('controlAllowedHosts', 'CONTROL_ALLOWED_HOSTS', o.controlAllowedHosts),
    redisUrl: o.redisUrl === undefined ? undefined : redisUrl(o.redisUrl),
    bridgePagePath: o.bridgePagePath === undefined ? join(findPublicDir(), 'bridge.html') : nonEmptyString('bridgePagePath', o.bridgePagePath),
    bridgeOriginAgentCluster: agentCluster('bridgeOriginAgentCluster', o.bridgeOriginAgentCluster),
    jsonpCallbackParam: jsonpParam(o.jsonpCallbackParam),
    jsonpMode: jsonpMode(o.jsonpMode),
    allowRemoteControl: boolean('allowRemoteControl', o.allowRemoteControl),
    maxParked: count('maxParked'),
    maxParkedPerAddress: count('maxParkedPerAddress'),
    maxParkedBodyBytes: integerAtLeast('maxParkedBodyBytes', o.maxParkedBodyBytes, 0),
    maxParkedBytes: count('maxParkedBytes'),
    trustForwardedFor: boolean('trustForwardedFor', o.trustForwardedFor),
    clientFront: boolean('clientFront', o.clientFront),
    parkedRetryAfterS: integerAtLeast('parkedRetryAfterS', o.parkedRetryAfterS, 1, 86_400),
    // At most 1 MiB: no legitimate request needs a larger head, and each connection may buffer one.
    maxHeaderBytes: integerAtLeast('maxHeaderBytes', o.maxHeaderBytes, 1024, 1024 * 1024),
    headersTimeoutMs: ms('headersTimeoutMs', 1),
    requestTimeoutMs: ms('requestTimeoutMs', 0),
    keepAliveTimeoutMs: ms('keepAliveTimeoutMs', 1),
    leaseKey: leaseKey(o.leaseKey, secret, controlSecret),
    bufferMaxItems: count('bufferMaxItems'),
    bufferMaxBytes: count('bufferMaxBytes'),
    bufferMaxAgeMs: ms('bufferMaxAgeMs', 1),
    bufferMaxTotalBytes: count('bufferMaxTotalBytes'),
    maxLeases: count('maxLeases'),
    leaseMaxLifetimeMs: ms('leaseMaxLifetimeMs', 1000),
    maxRevocations: count('maxRevocations'),
    workers: workers(o.workers),
    logger: o.logger === undefined ? pino({ level: 'silent' }) : (o.logger as Logger),
    timers: o.timers === undefined ? systemTimers : (o.timers as ProxyTimers),
  };
  if (!isLogger(resolved.logger)) throw new ProxyOptionsError('logger must be a pino Logger');
  if (!isTimers(resolved.timers)) throw new ProxyOptionsError('timers must have setTimeout, clearTimeout and now functions');
  if (resolved.requestTimeoutMs > 0 && resolved.headersTimeoutMs > resolved.requestTimeoutMs) {
    // Node refuses this combination too (ERR_OUT_OF_RANGE): the head is part of the request.
    throw new ProxyOptionsError(
      `headersTimeoutMs (${resolved.headersTimeoutMs}) must not exceed requestTimeoutMs (${resolved.requestTimeoutMs}) unless requestTimeoutMs is 0`,
    );
  }
  checkControlExposure(resolved);
  const largestRequest = resolved.maxHeaderBytes + resolved.maxParkedBodyBytes;
  if (resolved.maxParkedBytes < largestRequest) {
    // Otherwise a request the proxy accepts could never park, whatever else is parked: a retry loop, not a limit.
    throw new ProxyOptionsError(
      `maxParkedBytes (${resolved.maxParkedBytes}) must be at least maxHeaderBytes + maxParkedBodyBytes (${largestRequest})`,
    );
  }
  if (resolved.minHoldTimeoutMs > resolved.maxHoldTimeoutMs) {
    throw new ProxyOptionsError(
      `minHoldTimeoutMs (${resolved.minHoldTimeoutMs}) must not exceed maxHoldTimeoutMs (${resolved.maxHoldTimeoutMs})`,
    );
  }
  return resolved;
}

/** The lease key: none, or a string of at least 16 characters that is neither secret (never echoed). */
function leaseKey(value: unknown, secret: string, controlSecret: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length < MIN_SECRET_LENGTH) {
    throw new ProxyOptionsError(`leaseKey must be a string of at least ${MIN_SECRET_LENGTH} characters`);
  }
  if (value === secret) {
    throw new ProxyOptionsError('leaseKey must differ from secret: a lease key must not sign Grip-Sig (LEASE_KEY, GRIP_SECRET)');
  }
  if (value === controlSecret) {
    throw new ProxyOptionsError('leaseKey must differ from controlSecret: a lease key must not open the control API (LEASE_KEY, CONTROL_SECRET)');
  }
  return value;
}

/**
 * The control secret: at least 16 characters and not the Grip-Sig key, which every upstream app holds to verify
 * Grip-Sig: with one key for both, any of them could publish to every client (never echoed).
 */
function controlSecretOf(value: unknown, secret: string): string {
  if (typeof value !== 'string' || value.length < MIN_SECRET_LENGTH) {
    throw new ProxyOptionsError(`controlSecret must be a string of at least ${MIN_SECRET_LENGTH} characters`);
  }
  if (value === secret) {
    throw new ProxyOptionsError(
      'controlSecret must differ from secret: the Grip-Sig key every app holds must not open the control API (CONTROL_SECRET, GRIP_SECRET)',
    );
  }
  return value;
}

/** A JWT claim value we compare: 1-256 printable ASCII characters. */
function claimValue(name: string, value: unknown): string {
  if (typeof value !== 'string' || !/^[\x21-\x7e]{1,256}$/.test(value)) {
    throw new ProxyOptionsError(`${name} must be 1-256 printable ASCII characters without spaces, got ${describe(value)}`);
  }
  return value;
}

/** The control issuer must not be the one Grip-Sig tokens carry, so no Grip-Sig could pass for a control JWT. */
function controlIssuer(value: unknown): string {
  const issuer = claimValue('controlIssuer', value);
  if (issuer === GRIP_SIG_ISSUER) throw new ProxyOptionsError(`controlIssuer must differ from the Grip-Sig issuer ${describe(GRIP_SIG_ISSUER)}`);
  return issuer;
}

/** Most workers: far beyond any host's useful core count, low enough to refuse a typo like 10000. */
export const MAX_WORKERS = 256;

/** 1-256, or `'auto'`: the cores this process may use (os.availableParallelism), at most 256. */
function workers(value: unknown): number {
  if (value === 'auto') return Math.min(availableParallelism(), MAX_WORKERS);
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_WORKERS) {
    throw new ProxyOptionsError(`workers (PROXY_WORKERS) must be an integer 1-${MAX_WORKERS} or "auto", got ${describe(value)}`);
  }
  return value;
}

/** A `redis://` or `rediss://` URL. */
function redisUrl(value: unknown): string {
  let url: URL | null = null;
  try {
    url = typeof value === 'string' ? new URL(value) : null;
  } catch {
    url = null;
  }
  if (url === null || (url.protocol !== 'redis:' && url.protocol !== 'rediss:')) {
    throw new ProxyOptionsError(`redisUrl must be a redis:// or rediss:// URL, got ${JSON.stringify(value)}`);
  }
  return value as string;
}
