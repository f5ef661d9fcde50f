import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DEFAULT_APP_URL, proxyOptionsFromEnv } from '../../proxy/config.js';
import { ProxyOptionsError } from '../../proxy/options.js';

const SECRET = 'env-secret-0123456789';
const CONTROL = 'env-control-secret-0123456789';

function rejects(env: NodeJS.ProcessEnv, argv: string[], pattern: RegExp): void {
  assert.throws(() => proxyOptionsFromEnv(env, argv), (err: unknown) => err instanceof ProxyOptionsError && pattern.test(err.message));
}

describe('proxyOptionsFromEnv', () => {
  test('with only GRIP_SECRET and CONTROL_SECRET everything else is left to the defaults', () => {
    const { logger, ...options } = proxyOptionsFromEnv({ GRIP_SECRET: SECRET, CONTROL_SECRET: CONTROL, LOG_LEVEL: 'silent' }, []);
    assert.deepEqual(
      Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)),
      { upstreamUrl: DEFAULT_APP_URL, secret: SECRET, controlSecret: CONTROL },
    );
    assert.equal(logger?.level, 'silent');
  });

  test('reads every environment variable with its unit', () => {
    const options = proxyOptionsFromEnv(
      {
        GRIP_SECRET: SECRET, CONTROL_SECRET: CONTROL,
        PROXY_PORT: '9000',
        PROXY_HOST: '0.0.0.0',
        CONTROL_PORT: '0',
        CONTROL_HOST: '127.0.0.2',
        APP_URL: 'http://127.0.0.1:9001',
        HOLD_TIMEOUT_MAX_S: '120',
        QUEUE_MAX_ITEMS: '50',
        QUEUE_MAX_BYTES: '2048',
        QUEUE_TTL_S: '1.5',
        LISTEN_BACKLOG: '8192',
        LOG_LEVEL: 'warn',
      },
      [],
    );
    assert.equal(options.clientPort, 9000);
    assert.equal(options.clientHost, '0.0.0.0');
    assert.equal(options.controlPort, 0);
    assert.equal(options.controlHost, '127.0.0.2');
    assert.equal(options.upstreamUrl, 'http://127.0.0.1:9001');
    assert.equal(options.maxHoldTimeoutMs, 120_000);
    assert.equal(options.queueMaxItems, 50);
    assert.equal(options.queueMaxBytes, 2048);
    assert.equal(options.queueTtlMs, 1_500);
    assert.equal(options.listenBacklog, 8192);
    assert.equal(options.logger?.level, 'warn');
  });

  test('reads the pipelining and slow-reader limits', () => {
    const options = proxyOptionsFromEnv(
      { GRIP_SECRET: SECRET, CONTROL_SECRET: CONTROL, PIPELINE_MAX_QUEUED: '4', CLIENT_WRITE_TIMEOUT_S: '2.5', RESPONSE_BUFFER_MAX_BYTES: '65536', STREAM_MAX_BUFFERED_BYTES: '4096', LOG_LEVEL: 'silent' },
      [],
    );
    assert.equal(options.streamMaxBufferedBytes, 4096);
    assert.equal(options.pipelineMaxQueued, 4);
    assert.equal(options.clientWriteTimeoutMs, 2_500);
    assert.equal(options.responseBufferMaxBytes, 65_536);
    rejects({ GRIP_SECRET: SECRET, CONTROL_SECRET: CONTROL, CLIENT_WRITE_TIMEOUT_S: '10s' }, [], /^CLIENT_WRITE_TIMEOUT_S must be a number of seconds/);
  });

  test('flags win over the environment', () => {
    const options = proxyOptionsFromEnv(
      { GRIP_SECRET: SECRET, CONTROL_SECRET: CONTROL, PROXY_PORT: '9000', APP_URL: 'http://a:1', LOG_LEVEL: 'silent' },
      ['--port', '9100', '--upstream=http://b:2', '--control-port', '9200', '--host', '::1', '--control-host', 'localhost'],
    );
    assert.equal(options.clientPort, 9100);
    assert.equal(options.upstreamUrl, 'http://b:2');
    assert.equal(options.controlPort, 9200);
    assert.equal(options.clientHost, '::1');
    assert.equal(options.controlHost, 'localhost');
  });

  test('a missing GRIP_SECRET says how to set it', () => {
    rejects({}, [], /GRIP_SECRET is not set.*export GRIP_SECRET=/);
  });

  test('a missing CONTROL_SECRET says how to set it, and that it is not GRIP_SECRET', () => {
    rejects({ GRIP_SECRET: SECRET }, [], /CONTROL_SECRET is not set.*not GRIP_SECRET.*export CONTROL_SECRET=/);
    rejects({ GRIP_SECRET: SECRET, CONTROL_SECRET: '' }, [], /CONTROL_SECRET is not set/);
  });

  test('MAX_UNKNOWN_QUEUES and CONTROL_MAX_IDS_PER_CALL set the push caps', () => {
    const options = proxyOptionsFromEnv({ GRIP_SECRET: SECRET, CONTROL_SECRET: CONTROL, MAX_UNKNOWN_QUEUES: '500', CONTROL_MAX_IDS_PER_CALL: '50', LOG_LEVEL: 'silent' }, []);
    assert.deepEqual([options.maxUnknownQueues, options.controlMaxIdsPerCall], [500, 50]);
    rejects({ GRIP_SECRET: SECRET, CONTROL_SECRET: CONTROL, MAX_UNKNOWN_QUEUES: 'lots' }, [], /^MAX_UNKNOWN_QUEUES must be a non-negative integer, got "lots"$/);
  });

  test('CONTROL_ISSUER, CONTROL_AUDIENCE and CONTROL_TOKEN_MAX_LIFETIME_S set the control JWT checks', () => {
    const options = proxyOptionsFromEnv(
      { GRIP_SECRET: SECRET, CONTROL_SECRET: CONTROL, CONTROL_ISSUER: 'my-publisher', CONTROL_AUDIENCE: 'my-proxy', CONTROL_TOKEN_MAX_LIFETIME_S: '600', LOG_LEVEL: 'silent' },
      [],
    );
    assert.deepEqual([options.controlIssuer, options.controlAudience, options.controlTokenMaxLifetimeMs], ['my-publisher', 'my-proxy', 600_000]);
  });

  test('PROXY_WORKERS reads a count or auto; anything else names the variable', () => {
    const base = { GRIP_SECRET: SECRET, CONTROL_SECRET: CONTROL, LOG_LEVEL: 'silent' };
    assert.equal(proxyOptionsFromEnv({ ...base, PROXY_WORKERS: '4' }, []).workers, 4);
    assert.equal(proxyOptionsFromEnv({ ...base, PROXY_WORKERS: 'auto' }, []).workers, 'auto');
    assert.equal(proxyOptionsFromEnv({ ...base, PROXY_WORKERS: '' }, []).workers, undefined);
    rejects({ ...base, PROXY_WORKERS: 'two' }, [], /^PROXY_WORKERS must be an integer 1-256 or "auto", got "two"$/);
    rejects({ ...base, PROXY_WORKERS: '-1' }, [], /^PROXY_WORKERS must be an integer 1-256 or "auto", got "-1"$/);
  });

  test('bad values name the variable or flag', () => {
    rejects({ GRIP_SECRET: SECRET, CONTROL_SECRET: CONTROL, PROXY_PORT: 'eighty' }, [], /^PROXY_PORT must be a non-negative integer, got "eighty"$/);
    rejects({ GRIP_SECRET: SECRET, CONTROL_SECRET: CONTROL }, ['--port=-1'], /^--port must be a non-negative integer, got "-1"$/);
    rejects({ GRIP_SECRET: SECRET, CONTROL_SECRET: CONTROL, QUEUE_TTL_S: '1m' }, [], /^QUEUE_TTL_S must be a number of seconds/);
    rejects({ GRIP_SECRET: SECRET, CONTROL_SECRET: CONTROL, LOG_LEVEL: 'loud' }, [], /^LOG_LEVEL must be one of/);
  });

  test('unknown flags, positionals and a --secret flag are refused', () => {
    rejects({ GRIP_SECRET: SECRET, CONTROL_SECRET: CONTROL }, ['--secret', 'x'], /Unknown option '--secret'/);
    rejects({ GRIP_SECRET: SECRET, CONTROL_SECRET: CONTROL }, ['serve'], /positional/);
  });
});
