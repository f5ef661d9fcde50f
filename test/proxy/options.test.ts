import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { describe, test } from 'node:test';
import { DEFAULT_PROXY_OPTIONS, ProxyOptionsError, resolveProxyOptions, type ProxyOptionsInput } from '../../proxy/options.js';

const REQUIRED = { upstreamUrl: 'http://127.0.0.1:8081', secret: 'a-secret-of-16-chars', controlSecret: 'a-control-secret-of-16' };

function rejects(input: Record<string, unknown>, message: string): void {
  assert.throws(
    () => resolveProxyOptions({ ...REQUIRED, ...input } as ProxyOptionsInput),
    (err: unknown) => err instanceof ProxyOptionsError && err.code === 'PROXY_ERR_BAD_OPTION' && err.message === message,
  );
}

describe('resolveProxyOptions', () => {
  test('fills in every default', () => {
    const options = resolveProxyOptions(REQUIRED);
    for (const [key, value] of Object.entries(DEFAULT_PROXY_OPTIONS)) {
      assert.equal(options[key as keyof typeof options], value, key);
    }
    assert.equal(options.clientPort, 8080);
    assert.equal(options.queueMaxItems, 100);
    assert.equal(typeof options.logger.info, 'function');
    assert.equal(typeof options.timers.now(), 'number');
  });

  test('an undefined value means the default', () => {
    assert.equal(resolveProxyOptions({ ...REQUIRED, queueMaxItems: undefined }).queueMaxItems, 100);
  });

  test('port 0 is allowed for ephemeral ports', () => {
    assert.equal(resolveProxyOptions({ ...REQUIRED, clientPort: 0, controlPort: 0 }).clientPort, 0);
  });

  test('workers defaults to one process, takes 1-256 or auto (the core count), and refuses anything else', () => {
    assert.equal(resolveProxyOptions(REQUIRED).workers, 1);
    assert.equal(resolveProxyOptions({ ...REQUIRED, workers: 256 }).workers, 256);
    assert.equal(resolveProxyOptions({ ...REQUIRED, workers: 'auto' }).workers, Math.min(availableParallelism(), 256));
    for (const bad of [0, 257, 1.5, -1, '2', 'all', null]) {
      rejects({ workers: bad }, `workers (PROXY_WORKERS) must be an integer 1-256 or "auto", got ${typeof bad === 'string' ? JSON.stringify(bad) : String(bad)}`);
    }
  });

  test('several workers go with a Redis URL (the primary is the host member of the bus)', () => {
    const resolved = resolveProxyOptions({ ...REQUIRED, workers: 2, redisUrl: 'redis://127.0.0.1:6379' });
    assert.equal(resolved.workers, 2);
    assert.equal(resolved.redisUrl, 'redis://127.0.0.1:6379');
    // The Redis URL is still checked when workers are on.
    rejects({ workers: 2, redisUrl: 'http://127.0.0.1:6379' }, 'redisUrl must be a redis:// or rediss:// URL, got "http://127.0.0.1:6379"');
  });

  test('each bad value is refused with a precise message', () => {
    rejects({ queueMaxItems: -3 }, 'queueMaxItems must be an integer >= 1, got -3');
    rejects({ queueMaxBytes: 1.5 }, 'queueMaxBytes must be an integer >= 1, got 1.5');
    rejects({ clientPort: 70_000 }, 'clientPort must be an integer 0-65535, got 70000');
    rejects({ controlPort: '5561' }, 'controlPort must be an integer 0-65535, got "5561"');
    rejects({ upstreamTimeoutMs: 0 }, 'upstreamTimeoutMs must be an integer 1-2147483647, got 0');
    rejects({ maxReasks: -1 }, 'maxReasks must be an integer >= 0, got -1');
    rejects({ clientHost: '' }, 'clientHost must be a non-empty string, got ""');
    rejects({ upstreamUrl: 'not a url' }, 'upstreamUrl must be an http URL, got "not a url"');
    rejects({ upstreamUrl: 'https://app.example' }, 'upstreamUrl must be an http:// URL, got "https://app.example"');
    rejects({ upstreamUrl: 'http://app/?x=1' }, 'upstreamUrl must not have a query or fragment, got "http://app/?x=1"');
    rejects({ minHoldTimeoutMs: 5_000, maxHoldTimeoutMs: 1_000 }, 'minHoldTimeoutMs (5000) must not exceed maxHoldTimeoutMs (1000)');
    rejects({ logger: {} }, 'logger must be a pino Logger');
    rejects({ timers: { now: () => 0 } }, 'timers must have setTimeout, clearTimeout and now functions');
    rejects({ queueMaxItem: 5 }, 'unknown option queueMaxItem');
  });

  test('pipelining and slow-reader limits are validated: at least one waiting request, a positive write timeout, a non-negative read-ahead', () => {
    rejects({ pipelineMaxQueued: 0 }, 'pipelineMaxQueued must be an integer 1-1000, got 0');
    rejects({ pipelineMaxQueued: 5000 }, 'pipelineMaxQueued must be an integer 1-1000, got 5000');
    rejects({ clientWriteTimeoutMs: 0 }, 'clientWriteTimeoutMs must be an integer 1-2147483647, got 0');
    rejects({ responseBufferMaxBytes: -1 }, 'responseBufferMaxBytes must be an integer >= 0, got -1');
    const options = resolveProxyOptions({ ...REQUIRED, responseBufferMaxBytes: 0 });
    assert.equal(options.responseBufferMaxBytes, 0);
    assert.equal(options.pipelineMaxQueued, 16);
    assert.equal(options.clientWriteTimeoutMs, 20_000);
  });

  test('the stream buffer bound is validated: 1024 bytes to 1 GiB, default 1 MiB', () => {
    rejects({ streamMaxBufferedBytes: 1000 }, 'streamMaxBufferedBytes must be an integer 1024-1073741824, got 1000');
    rejects({ streamMaxBufferedBytes: 2 ** 31 }, 'streamMaxBufferedBytes must be an integer 1024-1073741824, got 2147483648');
    assert.equal(resolveProxyOptions(REQUIRED).streamMaxBufferedBytes, 1024 * 1024);
  });

  test('a short secret is refused without echoing it', () => {
    assert.throws(
      () => resolveProxyOptions({ ...REQUIRED, secret: 'short-secret' }),
      (err: unknown) => err instanceof ProxyOptionsError && !err.message.includes('short-secret') && /at least 16/.test(err.message),
    );
    assert.throws(
      () => resolveProxyOptions({ ...REQUIRED, controlSecret: 'short-control' }),
      (err: unknown) => err instanceof ProxyOptionsError && !err.message.includes('short-control') && /^controlSecret must be a string of at least 16/.test(err.message),
    );
  });

  test('the control secret is required and must be neither the Grip-Sig key nor the lease key (one credential, one job)', () => {
    rejects({ controlSecret: undefined }, 'controlSecret must be a string of at least 16 characters');
    rejects(
      { controlSecret: REQUIRED.secret },
      'controlSecret must differ from secret: the Grip-Sig key every app holds must not open the control API (CONTROL_SECRET, GRIP_SECRET)',
    );
    rejects(
      { leaseKey: REQUIRED.controlSecret },
      'leaseKey must differ from controlSecret: a lease key must not open the control API (LEASE_KEY, CONTROL_SECRET)',
    );
    rejects({ leaseKey: REQUIRED.secret }, 'leaseKey must differ from secret: a lease key must not sign Grip-Sig (LEASE_KEY, GRIP_SECRET)');
  });

  test('the push caps are validated: unknown queues, their Retry-After, IDs per call', () => {
    const o = resolveProxyOptions(REQUIRED);
    assert.deepEqual([o.maxUnknownQueues, o.unknownQueuesRetryAfterS, o.controlMaxIdsPerCall], [10_000, 5, 1_000]);
    rejects({ maxUnknownQueues: 0 }, 'maxUnknownQueues must be an integer >= 1, got 0');
    rejects({ unknownQueuesRetryAfterS: 0 }, 'unknownQueuesRetryAfterS must be an integer 1-86400, got 0');
    rejects({ controlMaxIdsPerCall: 2.5 }, 'controlMaxIdsPerCall must be an integer >= 1, got 2.5');
  });

  test('control JWT settings are validated: issuer (not the Grip-Sig one), audience, lifetime', () => {
    const o = resolveProxyOptions(REQUIRED);
    assert.deepEqual([o.controlIssuer, o.controlAudience, o.controlTokenMaxLifetimeMs], ['comet-chat-publisher', 'comet-chat-control', 3_600_000]);
    rejects({ controlIssuer: 'comet-chat' }, 'controlIssuer must differ from the Grip-Sig issuer "comet-chat"');
    rejects({ controlIssuer: '' }, 'controlIssuer must be 1-256 printable ASCII characters without spaces, got ""');
    rejects({ controlAudience: 'a b' }, 'controlAudience must be 1-256 printable ASCII characters without spaces, got "a b"');
    rejects({ controlTokenMaxLifetimeMs: 100 }, 'controlTokenMaxLifetimeMs must be an integer 1000-86400000, got 100');
    rejects({ controlTokenMaxLifetimeMs: 7 * 86_400_000 }, 'controlTokenMaxLifetimeMs must be an integer 1000-86400000, got 604800000');
  });
});
