/**
 * Options from the process environment and command line (used by main.ts only).
 * Flags win over environment variables, which win over defaults.
 *
 *   --port / APP_PORT (8081)        --host / APP_HOST (127.0.0.1)
 *   --db / DB_PATH (./data/chat.db)  --control-url / PROXY_CONTROL_URL (http://127.0.0.1:5561)
 *   GRIP_SECRET (required: the Grip-Sig key; no flag, so it stays out of `ps`)
 *   CONTROL_SECRET (the proxy's control API credential; required unless REDIS_URL is set; no flag either)
 *   HOLD_TIMEOUT_S (55)   MESSAGE_MAX_CHARS (2000)   LOG_LEVEL (info)
 *   BASE_DOMAIN (none)   SHARD_COUNT (4)   COOKIE_DOMAIN (BASE_DOMAIN)
 *   REQUIRE_GRIP_SIG (0)   POSTS_PER_MINUTE (60)   SESSIONS_PER_MINUTE_PER_ADDRESS (20)
 *   RATE_LIMIT_LOOPBACK (0)   MAX_CONNECTIONS_PER_SESSION (20)
 *   SESSION_IDLE_TIMEOUT_S (604800)   SESSION_MAX_AGE_S (2592000)   PRUNE_INTERVAL_S (60)   PRUNE_BATCH_SIZE (100)
 *   REDIS_URL (none: publish to PROXY_CONTROL_URL; set: publish to the Redis bus, docs/scaleout.md)
 */
import { parseArgs } from 'node:util';
import { pino, type Level } from 'pino';
import { LOG_REDACT } from '../common/log-redact.js';
import { AppOptionsError, type AppOptionsInput } from './options.js';

export const DEFAULT_CONTROL_URL = 'http://127.0.0.1:5561';

const LOG_LEVELS: ReadonlyArray<Level | 'silent'> = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function fail(message: string): never {
  throw new AppOptionsError(message);
}

function integerFrom(source: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^[0-9]+$/.test(text)) fail(`${source} must be a non-negative integer, got ${JSON.stringify(text)}`);
  return Number(text);
}

/** `1`/`true` or `0`/`false`; unset is the default. */
function booleanFrom(source: string, text: string | undefined): boolean | undefined {
  if (text === undefined || text === '') return undefined;
  if (text === '1' || text === 'true') return true;
  if (text === '0' || text === 'false') return false;
  fail(`${source} must be 1 or 0, got ${JSON.stringify(text)}`);
}

function secondsFrom(source: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^[0-9]+(\.[0-9]+)?$/.test(text)) fail(`${source} must be a number of seconds, got ${JSON.stringify(text)}`);
  return Number(text);
}

/**
 * Reads the options. `argv` excludes node and the script (`process.argv.slice(2)`).
 * Throws `AppOptionsError` with a message naming the flag or variable; range
 * checks happen later in `resolveAppOptions()`.
 */
export function appOptionsFromEnv(env: NodeJS.ProcessEnv, argv: readonly string[]): AppOptionsInput {
  let values: { port?: string; host?: string; db?: string; 'control-url'?: string };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        db: { type: 'string' },
        'control-url': { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    fail((err as Error).message);
  }

  const secret = env.GRIP_SECRET;
  if (secret === undefined || secret === '') fail('GRIP_SECRET is required (the Grip-Sig key shared with the proxy)');
  const redisUrl = env.REDIS_URL || undefined;
  const controlSecret = env.CONTROL_SECRET || undefined;
  if (controlSecret === undefined && redisUrl === undefined) {
    fail('CONTROL_SECRET is required (the proxy\'s control API credential, not GRIP_SECRET), unless REDIS_URL is set');
  }

  const level = (env.LOG_LEVEL ?? 'info') as Level | 'silent';
  if (!LOG_LEVELS.includes(level)) fail(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(env.LOG_LEVEL)}`);

  return {
    secret,
    controlSecret,
    port: values.port !== undefined ? integerFrom('--port', values.port) : integerFrom('APP_PORT', env.APP_PORT),
    host: values.host ?? env.APP_HOST,
    dbPath: values.db ?? env.DB_PATH,
    controlUrl: values['control-url'] ?? env.PROXY_CONTROL_URL ?? DEFAULT_CONTROL_URL,
    holdTimeoutS: secondsFrom('HOLD_TIMEOUT_S', env.HOLD_TIMEOUT_S),
    messageMaxChars: integerFrom('MESSAGE_MAX_CHARS', env.MESSAGE_MAX_CHARS),
    baseDomain: env.BASE_DOMAIN || undefined,
    shardCount: integerFrom('SHARD_COUNT', env.SHARD_COUNT),
    // Shards need the session cookie on the parent domain; default it from BASE_DOMAIN.
    cookieDomain: env.COOKIE_DOMAIN || env.BASE_DOMAIN || undefined,
    requireGripSig: booleanFrom('REQUIRE_GRIP_SIG', env.REQUIRE_GRIP_SIG),
    postsPerMinute: integerFrom('POSTS_PER_MINUTE', env.POSTS_PER_MINUTE),
    sessionsPerMinutePerAddress: integerFrom('SESSIONS_PER_MINUTE_PER_ADDRESS', env.SESSIONS_PER_MINUTE_PER_ADDRESS),
    rateLimitLoopback: booleanFrom('RATE_LIMIT_LOOPBACK', env.RATE_LIMIT_LOOPBACK),
    maxConnectionsPerSession: integerFrom('MAX_CONNECTIONS_PER_SESSION', env.MAX_CONNECTIONS_PER_SESSION),
    redisUrl,
    // Like GRIP_SECRET, only from the environment.
    leaseKey: env.LEASE_KEY || undefined,
    leaseTtlS: integerFrom('LEASE_TTL_S', env.LEASE_TTL_S),
    sessionIdleTimeoutS: integerFrom('SESSION_IDLE_TIMEOUT_S', env.SESSION_IDLE_TIMEOUT_S),
    sessionMaxAgeS: integerFrom('SESSION_MAX_AGE_S', env.SESSION_MAX_AGE_S),
    pruneIntervalS: integerFrom('PRUNE_INTERVAL_S', env.PRUNE_INTERVAL_S),
    pruneBatchSize: integerFrom('PRUNE_BATCH_SIZE', env.PRUNE_BATCH_SIZE),
    logger: pino({ name: 'chat-app', level, redact: LOG_REDACT }),
  };
}
