/**
 * The control port checks the Host of every call before anything else
 * (docs/protocol.md §7): a page that rebinds its own DNS name to 127.0.0.1
 * must not be able to talk to the control API (or read its status page) from
 * the victim's browser. Loopback names and IP addresses are served (a
 * rebinding page always carries its own DNS name); other names only when
 * `controlAllowedHosts` lists them.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { httpRequest, memoryLogger, sendRaw, type RawResponse } from '../hardening/raw-http.js';
import { startHarness, TEST_CONTROL_SECRET, type Harness } from '../helpers/proxy-harness.js';

function call(h: Harness, path: string, hostLines: string[], method = 'GET'): Promise<RawResponse> {
  const port = Number(new URL(h.controlUrl).port);
  const auth = `Authorization: Bearer ${TEST_CONTROL_SECRET}`;
  const head = [`${method} ${path} HTTP/1.1`, ...hostLines.map((v) => `Host: ${v}`), auth, 'Connection: close'];
  return sendRaw(port, Buffer.from(`${head.join('\r\n')}\r\n\r\n`, 'latin1'));
}

function codeOf(res: RawResponse): string | undefined {
  return (res.json as { code?: string } | undefined)?.code;
}

describe('Host validation on the control port', { timeout: 10_000 }, () => {
  test('a DNS-rebinding Host gets 421 naming CONTROL_ALLOWED_HOSTS, on every endpoint, before authentication', async (t) => {
    const log = memoryLogger('info');
    const h = await startHarness(t, { logger: log.logger });
    for (const path of ['/stats', '/status', '/health', '/metrics', '/nowhere']) {
      const res = await call(h, path, ['rebind.evil.example:5561']);
      assert.equal(res.status, 421, `${path}: ${res.text.slice(0, 200)}`);
      assert.equal(codeOf(res), 'PROXY_ERR_MISDIRECTED');
      assert.match((res.json as { message: string }).message, /rebind\.evil\.example is not served on the control port; set CONTROL_ALLOWED_HOSTS/);
    }
    const port = Number(new URL(h.controlUrl).port);
    const publish = await sendRaw(
      port,
      httpRequest('POST', '/publish/', 'rebind.evil.example', { headers: [['Content-Type', 'application/json']], body: '{"items":[]}' }),
    );
    assert.equal(publish.status, 421, 'before authentication: a guessed secret is never even tried');
    const lines = log.lines.filter((l) => l.code === 'PROXY_ERR_MISDIRECTED');
    assert.equal(lines.length, 6, 'each refusal logged once');
  });

  test('loopback names and IP addresses are served', async (t) => {
    const h = await startHarness(t);
    for (const host of ['127.0.0.1:5561', 'localhost', 'localhost:1', '[::1]:5561', '10.1.2.3:5561', '[2001:db8::5]']) {
      const res = await call(h, '/stats', [host]);
      assert.equal(res.status, 200, `${host}: ${res.text.slice(0, 200)}`);
    }
  });

  test('names in controlAllowedHosts are served; the client port\'s allowedHosts are not', async (t) => {
    const h = await startHarness(t, { controlAllowedHosts: ['control.internal', '*.proxies.internal'], allowedHosts: ['chat.example.com'] });
    assert.equal((await call(h, '/stats', ['control.internal:5561'])).status, 200);
    assert.equal((await call(h, '/stats', ['p1.proxies.internal'])).status, 200);
    assert.equal(codeOf(await call(h, '/stats', ['chat.example.com'])), 'PROXY_ERR_MISDIRECTED');
  });

  test('a duplicate, empty or malformed Host gets 400 PROXY_ERR_BAD_HOST, and a missing one 400 PROXY_ERR_BAD_REQUEST as JSON', async (t) => {
    const h = await startHarness(t);
    for (const lines of [['127.0.0.1', 'evil.example'], [''], ['a@evil'], ['127.0.0.1:80@evil.example']]) {
      const res = await call(h, '/stats', lines);
      assert.equal(res.status, 400, JSON.stringify(lines));
      assert.equal(codeOf(res), 'PROXY_ERR_BAD_HOST', JSON.stringify(lines));
    }
    const missing = await call(h, '/stats', []);
    assert.equal(missing.status, 400);
    assert.equal(codeOf(missing), 'PROXY_ERR_BAD_REQUEST');
  });
});
