/**
 * The settings that name the hosts the proxy serves: `ALLOWED_HOSTS` and
 * `CONTROL_ALLOWED_HOSTS` (comma lists), read by proxy/config.ts and validated
 * whole by proxy/options.ts; and the start-up warning of a proxy that listens
 * on every interface while serving only loopback names.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { proxyOptionsFromEnv } from '../../proxy/config.js';
import { ProxyOptionsError, resolveProxyOptions } from '../../proxy/options.js';
import { createHoldProxy } from '../../proxy/proxy.js';
import { memoryLogger } from '../hardening/raw-http.js';

const REQUIRED = { upstreamUrl: 'http://127.0.0.1:8081', secret: 'a-secret-of-16-chars', controlSecret: 'a-control-secret-16' };

describe('allowed host settings', () => {
  test('ALLOWED_HOSTS and CONTROL_ALLOWED_HOSTS are comma lists; blanks around entries are ignored', () => {
    const options = proxyOptionsFromEnv(
      { GRIP_SECRET: REQUIRED.secret, CONTROL_SECRET: REQUIRED.controlSecret, ALLOWED_HOSTS: ' chat.example.com, *.chat.example.com ,,10.0.0.1', CONTROL_ALLOWED_HOSTS: 'control.internal', LOG_LEVEL: 'silent' },
      [],
    );
    assert.deepEqual(options.allowedHosts, ['chat.example.com', '*.chat.example.com', '10.0.0.1']);
    assert.deepEqual(options.controlAllowedHosts, ['control.internal']);
    const unset = proxyOptionsFromEnv({ GRIP_SECRET: REQUIRED.secret, CONTROL_SECRET: REQUIRED.controlSecret, LOG_LEVEL: 'silent', ALLOWED_HOSTS: '' }, []);
    assert.equal(unset.allowedHosts, undefined);
    assert.equal(unset.controlAllowedHosts, undefined);
  });

  test('both default to none, and entries are kept lower-cased', () => {
    const defaults = resolveProxyOptions(REQUIRED);
    assert.deepEqual(defaults.allowedHosts, []);
    assert.deepEqual(defaults.controlAllowedHosts, []);
    assert.deepEqual(resolveProxyOptions({ ...REQUIRED, allowedHosts: ['Chat.Example.COM', '[2001:DB8::1]'] }).allowedHosts, ['chat.example.com', '[2001:db8::1]']);
  });

  test('an entry that is no host name, *.suffix, IP address or * is refused, naming the entry and the setting', () => {
    for (const [key, value] of [
      ['allowedHosts', 'chat.example.com:8080'],
      ['allowedHosts', 'http://chat.example.com'],
      ['allowedHosts', '*example.com'],
      ['controlAllowedHosts', 'a@b'],
    ] as const) {
      assert.throws(
        () => resolveProxyOptions({ ...REQUIRED, [key]: [value] }),
        (err: unknown) =>
          err instanceof ProxyOptionsError &&
          err.message.includes(JSON.stringify(value)) &&
          err.message.includes(key === 'allowedHosts' ? 'ALLOWED_HOSTS' : 'CONTROL_ALLOWED_HOSTS'),
        `${key} ${value}`,
      );
    }
    assert.throws(() => resolveProxyOptions({ ...REQUIRED, allowedHosts: 'chat.example.com' as unknown as string[] }), /allowedHosts must be a list/);
  });

  test('a proxy set to listen on every interface that serves only loopback names says which setting to change', (t) => {
    // Built, never listening: the warning comes with the options, and nothing is exposed beyond loopback.
    const log = memoryLogger('info');
    const proxy = createHoldProxy({ ...REQUIRED, clientHost: '0.0.0.0', clientPort: 0, controlPort: 0, logger: log.logger });
    t.after(() => proxy.close());
    const warnings = log.lines.filter((l) => l.level === 40 && /ALLOWED_HOSTS/.test(l.msg));
    assert.equal(warnings.length, 1, JSON.stringify(log.lines));

    const quiet = memoryLogger('info');
    const named = createHoldProxy({ ...REQUIRED, clientHost: '0.0.0.0', clientPort: 0, controlPort: 0, logger: quiet.logger, allowedHosts: ['chat.example.com'] });
    t.after(() => named.close());
    const local = createHoldProxy({ ...REQUIRED, clientPort: 0, controlPort: 0, logger: quiet.logger });
    t.after(() => local.close());
    assert.deepEqual(quiet.lines.filter((l) => l.level >= 40), []);
  });
});
