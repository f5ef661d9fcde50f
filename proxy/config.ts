/**
 * Proxy options from command-line flags and environment variables, for
 * proxy/main.ts and the launcher. Flags win over the environment. The secrets
 * come only from `GRIP_SECRET` and `CONTROL_SECRET`: a flag would show in `ps`.
 */
import { parseArgs } from 'node:util';
import { destination, pino, type Level } from 'pino';
import { LOG_REDACT } from '../common/log-redact.js';
import type { JsonpMode } from './http/jsonp.js';
import { ProxyOptionsError, type ProxyOptionsInput } from './options.js';

/** Upstream used when neither `--upstream` nor `APP_URL` is given. */
export const DEFAULT_APP_URL = 'http://127.0.0.1:8081';

const LOG_LEVELS: ReadonlyArray<Level | 'silent'> = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function integer(name: string, text: string): number {
  if (!/^\d+$/.test(text)) throw new ProxyOptionsError(`${name} must be a non-negative integer, got ${JSON.stringify(text)}`);
  return Number(text);
}

function boolean(name: string, text: string): boolean {
  if (text === '1' || text === 'true') return true;
  if (text === '0' || text === 'false') return false;
  throw new ProxyOptionsError(`${name} must be 1 or 0, got ${JSON.stringify(text)}`);
}

function onOff(name: string, text: string): boolean {
  if (text === 'on') return true;
  if (text === 'off') return false;
  throw new ProxyOptionsError(`${name} must be on or off, got ${JSON.stringify(text)}`);
}

/** `a, b,,c` -> ['a', 'b', 'c']; an empty list is no setting. */
function list(_name: string, text: string): string[] | undefined {
  const entries = text.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '');
  return entries.length === 0 ? undefined : entries;
}

/** `PROXY_WORKERS`: a count, or `auto` for the core count (options.ts checks the range). */
function workerCount(name: string, text: string): number | 'auto' {
  if (text === 'auto') return 'auto';
  if (!/^\d+$/.test(text)) throw new ProxyOptionsError(`${name} must be an integer 1-256 or "auto", got ${JSON.stringify(text)}`);
  return Number(text);
}

function secondsToMs(name: string, text: string): number {
  if (!/^\d+(\.\d+)?$/.test(text)) throw new ProxyOptionsError(`${name} must be a number of seconds, got ${JSON.stringify(text)}`);
  return Math.round(Number(text) * 1000);
}

/**
 * Reads `--port`/`PROXY_PORT`, `--host`/`PROXY_HOST`, `--control-port`/`CONTROL_PORT`,
 * `--control-host`/`CONTROL_HOST`, `--upstream`/`APP_URL`, `GRIP_SECRET` and `CONTROL_SECRET` (required),
 * `CONTROL_ISSUER`, `CONTROL_AUDIENCE`, `CONTROL_TOKEN_MAX_LIFETIME_S`,
 * `HOLD_TIMEOUT_MAX_S`, `QUEUE_MAX_ITEMS`, `QUEUE_MAX_BYTES`, `QUEUE_TTL_S`,
 * `CONTROL_ALLOW_REMOTE`, `TRUST_FORWARDED_FOR` (1 or 0), `PROXY_CLIENT_FRONT` (on or off), `BASE_DOMAIN`, `ALLOWED_HOSTS` and
 * `CONTROL_ALLOWED_HOSTS` (comma lists), `LISTEN_BACKLOG`, `MAX_PARKED`,
 * `MAX_PARKED_PER_ADDRESS`, `MAX_PARKED_BODY_BYTES`, `MAX_PARKED_BYTES`, `PARKED_RETRY_AFTER_S`, `MAX_HEADER_BYTES`,
 * `HEADERS_TIMEOUT_S`, `REQUEST_TIMEOUT_S`, `KEEP_ALIVE_TIMEOUT_S`, `PIPELINE_MAX_QUEUED`,
 * `CLIENT_WRITE_TIMEOUT_S`, `RESPONSE_BUFFER_MAX_BYTES`, `STREAM_MAX_BUFFERED_BYTES`, `REDIS_URL` (docs/scaleout.md),
 * `MAX_UNKNOWN_QUEUES`, `CONTROL_MAX_IDS_PER_CALL`, `LEASE_KEY`, `BUFFER_MAX_ITEMS`, `BUFFER_MAX_BYTES`, `BUFFER_MAX_AGE_S` (docs/protocol.md §13), `PROXY_WORKERS` and
 * `LOG_LEVEL` (default info; the logger writes JSON lines to stdout).
 * Throws `ProxyOptionsError` with a message fit for stderr; ranges are checked
 * later by `resolveProxyOptions`.
 */
export function proxyOptionsFromEnv(env: NodeJS.ProcessEnv, argv: readonly string[]): ProxyOptionsInput {
  let flags: Record<string, string | undefined>;
  try {
    flags = parseArgs({
      args: [...argv],
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        'control-port': { type: 'string' },
        'control-host': { type: 'string' },
        upstream: { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    throw new ProxyOptionsError(`${(err as Error).message} (flags: --port --host --control-port --control-host --upstream)`);
  }
  const setting = (flag: string | null, envName: string): string | undefined => {
    const value = (flag !== null ? flags[flag] : undefined) ?? env[envName];
    return value === undefined || value === '' ? undefined : value;
  };
  const read = <T>(flag: string | null, envName: string, parse: (name: string, text: string) => T): T | undefined => {
    const text = setting(flag, envName);
    return text === undefined ? undefined : parse(flag !== null && flags[flag] !== undefined ? `--${flag}` : envName, text);
  };
  const text = (_name: string, value: string) => value;

  const secret = env.GRIP_SECRET;
  if (secret === undefined || secret === '') {
    throw new ProxyOptionsError(
      'GRIP_SECRET is not set. Set it to the Grip-Sig key shared with the app (at least 16 characters), e.g. export GRIP_SECRET="$(openssl rand -hex 32)"',
    );
  }
  const controlSecret = env.CONTROL_SECRET;
  if (controlSecret === undefined || controlSecret === '') {
    throw new ProxyOptionsError(
      'CONTROL_SECRET is not set. Set it to the control API credential publishers use (at least 16 characters, not GRIP_SECRET), ' +
        'e.g. export CONTROL_SECRET="$(openssl rand -hex 32)"',
    );
  }
  const level = env.LOG_LEVEL === undefined || env.LOG_LEVEL === '' ? 'info' : env.LOG_LEVEL;
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new ProxyOptionsError(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(level)}`);
  }

  return {
    upstreamUrl: read('upstream', 'APP_URL', text) ?? DEFAULT_APP_URL,
    secret,
    controlSecret,
    controlIssuer: read(null, 'CONTROL_ISSUER', text),
    controlAudience: read(null, 'CONTROL_AUDIENCE', text),
    controlTokenMaxLifetimeMs: read(null, 'CONTROL_TOKEN_MAX_LIFETIME_S', secondsToMs),
    clientHost: read('host', 'PROXY_HOST', text),
    clientPort: read('port', 'PROXY_PORT', integer),
    controlHost: read('control-host', 'CONTROL_HOST', text),
    controlPort: read('control-port', 'CONTROL_PORT', integer),
    maxHoldTimeoutMs: read(null, 'HOLD_TIMEOUT_MAX_S', secondsToMs),
    queueMaxItems: read(null, 'QUEUE_MAX_ITEMS', integer),
    queueMaxBytes: read(null, 'QUEUE_MAX_BYTES', integer),
    queueTtlMs: read(null, 'QUEUE_TTL_S', secondsToMs),
    maxUnknownQueues: read(null, 'MAX_UNKNOWN_QUEUES', integer),
    controlMaxIdsPerCall: read(null, 'CONTROL_MAX_IDS_PER_CALL', integer),
    baseDomain: read(null, 'BASE_DOMAIN', text) || undefined,
    allowedHosts: read(null, 'ALLOWED_HOSTS', list),
    controlAllowedHosts: read(null, 'CONTROL_ALLOWED_HOSTS', list),
    allowRemoteControl: read(null, 'CONTROL_ALLOW_REMOTE', boolean),
    trustForwardedFor: read(null, 'TRUST_FORWARDED_FOR', boolean),
    clientFront: read(null, 'PROXY_CLIENT_FRONT', onOff),
    jsonpCallbackParam: read(null, 'JSONP_CALLBACK_PARAM', text) || undefined,
    // Checked with every other option in options.ts.
    jsonpMode: read(null, 'JSONP_MODE', text) as JsonpMode | undefined,
    maxParked: read(null, 'MAX_PARKED', integer),
    listenBacklog: read(null, 'LISTEN_BACKLOG', integer),
    maxParkedPerAddress: read(null, 'MAX_PARKED_PER_ADDRESS', integer),
    maxParkedBodyBytes: read(null, 'MAX_PARKED_BODY_BYTES', integer),
    maxParkedBytes: read(null, 'MAX_PARKED_BYTES', integer),
    parkedRetryAfterS: read(null, 'PARKED_RETRY_AFTER_S', integer),
    maxHeaderBytes: read(null, 'MAX_HEADER_BYTES', integer),
    headersTimeoutMs: read(null, 'HEADERS_TIMEOUT_S', secondsToMs),
    requestTimeoutMs: read(null, 'REQUEST_TIMEOUT_S', secondsToMs),
    keepAliveTimeoutMs: read(null, 'KEEP_ALIVE_TIMEOUT_S', secondsToMs),
    pipelineMaxQueued: read(null, 'PIPELINE_MAX_QUEUED', integer),
    clientWriteTimeoutMs: read(null, 'CLIENT_WRITE_TIMEOUT_S', secondsToMs),
    responseBufferMaxBytes: read(null, 'RESPONSE_BUFFER_MAX_BYTES', integer),
    streamMaxBufferedBytes: read(null, 'STREAM_MAX_BUFFERED_BYTES', integer),
    redisUrl: read(null, 'REDIS_URL', text) || undefined,
    // Like GRIP_SECRET, only from the environment.
    leaseKey: env.LEASE_KEY || undefined,
    bufferMaxItems: read(null, 'BUFFER_MAX_ITEMS', integer),
    bufferMaxBytes: read(null, 'BUFFER_MAX_BYTES', integer),
    bufferMaxAgeMs: read(null, 'BUFFER_MAX_AGE_S', secondsToMs),
    workers: read(null, 'PROXY_WORKERS', workerCount),
    // Synchronous writes: a handful of lines, and none lost on exit.
    logger: pino({ level, base: { name: 'comet-proxy' }, redact: LOG_REDACT }, destination({ dest: 1, sync: true })),
  };
}
