import assert from 'node:assert/strict';
import { test } from 'node:test';
import { appOptionsFromEnv } from '../../server/config.js';
import { resolveAppOptions } from '../../server/options.js';

const secret = 'env-secret-0123456789';
const controlSecret = 'env-control-secret-0123456789';

test('with only GRIP_SECRET and CONTROL_SECRET set, the documented defaults apply', () => {
  const input = appOptionsFromEnv({ GRIP_SECRET: secret, CONTROL_SECRET: controlSecret }, []);
  const o = resolveAppOptions(input);
  assert.equal(o.secret, secret);
  assert.equal(o.controlSecret, controlSecret);
  assert.equal(o.port, 8081);
  assert.equal(o.host, '127.0.0.1');
  assert.equal(o.dbPath, './data/chat.db');
  assert.equal(o.controlUrl, 'http://127.0.0.1:5561');
  assert.equal(o.holdTimeoutS, 55);
  assert.equal(o.messageMaxChars, 2000);
  assert.equal(o.logger.level, 'info');
});

test('environment variables set the options', () => {
  const o = resolveAppOptions(
    appOptionsFromEnv(
      {
        GRIP_SECRET: secret, CONTROL_SECRET: controlSecret,
        APP_PORT: '9001',
        APP_HOST: '0.0.0.0',
        DB_PATH: '/tmp/x.db',
        PROXY_CONTROL_URL: 'http://10.0.0.1:6000',
        HOLD_TIMEOUT_S: '20.5',
        MESSAGE_MAX_CHARS: '500',
        LOG_LEVEL: 'debug',
      },
      [],
    ),
  );
  assert.deepEqual(
    [o.port, o.host, o.dbPath, o.controlUrl, o.holdTimeoutS, o.messageMaxChars, o.logger.level],
    [9001, '0.0.0.0', '/tmp/x.db', 'http://10.0.0.1:6000', 20.5, 500, 'debug'],
  );
});

test('flags win over environment variables', () => {
  const o = resolveAppOptions(
    appOptionsFromEnv(
      { GRIP_SECRET: secret, CONTROL_SECRET: controlSecret, APP_PORT: '9001', APP_HOST: 'a', DB_PATH: 'b', PROXY_CONTROL_URL: 'http://c' },
      ['--port', '0', '--host', '::1', '--db', 'flag.db', '--control-url=http://127.0.0.1:7000'],
    ),
  );
  assert.deepEqual([o.port, o.host, o.dbPath, o.controlUrl], [0, '::1', 'flag.db', 'http://127.0.0.1:7000']);
});

test('configuration mistakes are APP_ERR_BAD_OPTION errors naming the variable or flag', () => {
  const cases: Array<[NodeJS.ProcessEnv, string[], RegExp]> = [
    [{}, [], /GRIP_SECRET is required/],
    [{ GRIP_SECRET: '' }, [], /GRIP_SECRET is required/],
    [{ GRIP_SECRET: secret }, [], /CONTROL_SECRET is required \(the proxy's control API credential, not GRIP_SECRET\), unless REDIS_URL is set/],
    [{ GRIP_SECRET: secret, CONTROL_SECRET: controlSecret, APP_PORT: '80a' }, [], /APP_PORT must be a non-negative integer/],
    [{ GRIP_SECRET: secret, CONTROL_SECRET: controlSecret }, ['--port', '-1'], /--port/],
    [{ GRIP_SECRET: secret, CONTROL_SECRET: controlSecret, HOLD_TIMEOUT_S: 'soon' }, [], /HOLD_TIMEOUT_S must be a number of seconds/],
    [{ GRIP_SECRET: secret, CONTROL_SECRET: controlSecret, MESSAGE_MAX_CHARS: '1e3' }, [], /MESSAGE_MAX_CHARS/],
    [{ GRIP_SECRET: secret, CONTROL_SECRET: controlSecret, LOG_LEVEL: 'loud' }, [], /LOG_LEVEL must be one of/],
    [{ GRIP_SECRET: secret, CONTROL_SECRET: controlSecret }, ['--secret', 'x'], /Unknown option '--secret'/],
    [{ GRIP_SECRET: secret, CONTROL_SECRET: controlSecret }, ['extra'], /positional/],
  ];
  for (const [env, argv, message] of cases) {
    assert.throws(
      () => appOptionsFromEnv(env, argv),
      (err: Error & { code?: string }) => err.code === 'APP_ERR_BAD_OPTION' && message.test(err.message),
      `${JSON.stringify(env)} ${argv.join(' ')}`,
    );
  }
});

test('SESSION_IDLE_TIMEOUT_S, SESSION_MAX_AGE_S, PRUNE_INTERVAL_S and PRUNE_BATCH_SIZE set the session and pruning options', () => {
  const o = resolveAppOptions(
    appOptionsFromEnv(
      { GRIP_SECRET: secret, CONTROL_SECRET: controlSecret, SESSION_IDLE_TIMEOUT_S: '3600', SESSION_MAX_AGE_S: '86400', PRUNE_INTERVAL_S: '30', PRUNE_BATCH_SIZE: '50' },
      [],
    ),
  );
  assert.deepEqual([o.sessionIdleTimeoutS, o.sessionMaxAgeS, o.pruneIntervalS, o.pruneBatchSize], [3600, 86_400, 30, 50]);
  assert.throws(() => appOptionsFromEnv({ GRIP_SECRET: secret, CONTROL_SECRET: controlSecret, SESSION_MAX_AGE_S: '30d' }, []), /SESSION_MAX_AGE_S must be a non-negative integer/);
});

test('with REDIS_URL the app publishes to the bus and needs no CONTROL_SECRET', () => {
  const o = resolveAppOptions(appOptionsFromEnv({ GRIP_SECRET: secret, REDIS_URL: 'redis://127.0.0.1:6379', LOG_LEVEL: 'silent' }, []));
  assert.equal(o.controlSecret, undefined);
  assert.equal(o.redisUrl, 'redis://127.0.0.1:6379');
});
