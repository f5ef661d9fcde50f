import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { DEFAULT_APP_OPTIONS, resolveAppOptions } from '../../server/options.js';

const secret = 'sixteen-chars-ok';

test('defaults apply to every option not given', () => {
  const o = resolveAppOptions({ secret });
  assert.equal(o.host, '127.0.0.1');
  assert.equal(o.port, 8081);
  assert.equal(o.dbPath, './data/chat.db');
  assert.equal(o.controlUrl, undefined);
  assert.equal(o.holdTimeoutS, 55);
  assert.equal(o.messageMaxChars, 2000);
  assert.equal(o.pollBatchMax, 500);
  assert.equal(o.presenceWindowMs, 70_000);
  assert.equal(o.bodyMaxBytes, 16_384);
  assert.equal(o.relayBatchSize, 100);
  assert.equal(o.relayRetryMinMs, 50);
  assert.equal(o.relayRetryMaxMs, 5000);
  assert.equal(o.relayIntervalMs, 1000);
  assert.equal(o.sqliteBusyTimeoutMs, 5000);
  assert.equal(o.cookieSecure, false);
  assert.equal(o.logger.level, 'silent');
  assert.equal(Object.isFrozen(DEFAULT_APP_OPTIONS), true);
});

test('undefined values fall back to the defaults', () => {
  assert.equal(resolveAppOptions({ secret, port: undefined, controlUrl: undefined }).port, 8081);
});

test('a trailing slash is dropped from controlUrl', () => {
  assert.equal(resolveAppOptions({ secret, controlSecret: 'control-secret-0123', controlUrl: 'http://127.0.0.1:5561/' }).controlUrl, 'http://127.0.0.1:5561');
});

test('a given logger is used as is', () => {
  const logger = pino({ level: 'warn' });
  assert.equal(resolveAppOptions({ secret, logger }).logger, logger);
});

test('bad options are refused with APP_ERR_BAD_OPTION and a message naming the option', () => {
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{}, /secret is required/],
    [{ secret: 'short' }, /at least 16 characters/],
    [{ secret, port: -1 }, /port must be an integer from 0 to 65535/],
    [{ secret, port: 70000 }, /port/],
    [{ secret, port: '8081' }, /port/],
    [{ secret, host: '' }, /host must be a non-empty string/],
    [{ secret, dbPath: '  ' }, /dbPath/],
    [{ secret, controlUrl: 'localhost:5561' }, /controlUrl must use http or https/],
    [{ secret, controlUrl: 'nope' }, /controlUrl must be an absolute http\(s\) URL/],
    [{ secret, controlUrl: 'http://x/?a=1' }, /query or fragment/],
    [{ secret, holdTimeoutS: 0 }, /holdTimeoutS/],
    [{ secret, holdTimeoutS: Number.NaN }, /holdTimeoutS/],
    [{ secret, messageMaxChars: 0 }, /messageMaxChars/],
    [{ secret, pollBatchMax: 1.5 }, /pollBatchMax must be an integer/],
    [{ secret, presenceWindowMs: 0 }, /presenceWindowMs/],
    [{ secret, bodyMaxBytes: 10 }, /bodyMaxBytes/],
    [{ secret, relayBatchSize: 0 }, /relayBatchSize/],
    [{ secret, relayRetryMinMs: 100, relayRetryMaxMs: 10 }, /relayRetryMaxMs \(10\) must not be below relayRetryMinMs \(100\)/],
    [{ secret, relayIntervalMs: 0 }, /relayIntervalMs/],
    [{ secret, sqliteBusyTimeoutMs: -1 }, /sqliteBusyTimeoutMs/],
    [{ secret, cookieSecure: 'yes' }, /cookieSecure must be a boolean/],
    [{ secret, logger: console }, /logger must be a pino Logger/],
    [{ secret, holdTimeoutMs: 5 }, /unknown option "holdTimeoutMs"/],
    [{ secret, controlSecret: 'short' }, /controlSecret must be at least 16 characters/],
    [{ secret, controlSecret: secret }, /controlSecret must differ from secret \(CONTROL_SECRET, GRIP_SECRET\)/],
    [{ secret, controlUrl: 'http://127.0.0.1:5561' }, /controlSecret is required to publish to the proxy's control API \(CONTROL_SECRET\)/],
    [{ secret, controlSecret: 'control-secret-0123', leaseKey: 'control-secret-0123' }, /leaseKey must differ from controlSecret/],
  ];
  for (const [input, message] of cases) {
    assert.throws(
      () => resolveAppOptions(input as never),
      (err: Error & { code?: string }) => err.name === 'AppOptionsError' && err.code === 'APP_ERR_BAD_OPTION' && message.test(err.message),
      JSON.stringify(input),
    );
  }
});

test('sessions expire after 7 idle days or 30 days in all, and the pruner runs every 60 s in batches of 100, by default', () => {
  const o = resolveAppOptions({ secret });
  assert.deepEqual([o.sessionIdleTimeoutS, o.sessionMaxAgeS, o.pruneIntervalS, o.pruneBatchSize], [604_800, 2_592_000, 60, 100]);
});

test('session and pruning options are refused when a polling client could expire or the pruner could not run', () => {
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    // 55 s hold + 300 s lease + 60 s: a client whose re-polls the proxy answers reaches the app that rarely.
    [{ secret, sessionIdleTimeoutS: 414 }, /sessionIdleTimeoutS \(414\) must be at least holdTimeoutS \+ leaseTtlS \+ 60 \(415\)/],
    [{ secret, sessionIdleTimeoutS: 3600, sessionMaxAgeS: 3599 }, /sessionMaxAgeS \(3599\) must not be below sessionIdleTimeoutS \(3600\)/],
    [{ secret, sessionMaxAgeS: 401 * 86_400 }, /sessionMaxAgeS must be an integer from 60 to 34560000/],
    [{ secret, sessionIdleTimeoutS: 1.5 }, /sessionIdleTimeoutS must be an integer/],
    [{ secret, pruneIntervalS: 0 }, /pruneIntervalS must be an integer from 1 to 86400/],
    [{ secret, pruneBatchSize: 0 }, /pruneBatchSize must be an integer from 1 to 10000/],
  ];
  for (const [input, message] of cases) {
    assert.throws(
      () => resolveAppOptions(input as never),
      (err: Error & { code?: string }) => err.code === 'APP_ERR_BAD_OPTION' && message.test(err.message),
      JSON.stringify(input),
    );
  }
  assert.equal(resolveAppOptions({ secret, sessionIdleTimeoutS: 415 }).sessionIdleTimeoutS, 415);
});
