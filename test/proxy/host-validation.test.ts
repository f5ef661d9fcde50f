/**
 * The Host a client request names (docs/protocol.md §1.6–§1.7): one Host
 * header, RFC 3986 host syntax (reg-name / IPv4 / [IPv6], optional :port),
 * and a name this proxy serves: loopback names always, the names of
 * `allowedHosts`, the base domain and its subdomains. Anything else never
 * reaches the app. An absolute-form request target must name a served host
 * too, and is forwarded in origin form with that host. Raw bytes over real
 * sockets, so nothing is normalised by a client library.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { memoryLogger, sendRaw, type RawResponse } from '../hardening/raw-http.js';
import { startHarness, type Harness } from '../helpers/proxy-harness.js';
import type { ProxyOptions } from '../../proxy/options.js';

/** Sends `GET target` with the given Host lines (none, one or several) and returns the answer. */
async function send(h: Harness, hostLines: string[], target = '/x', version = '1.1'): Promise<RawResponse> {
  const port = Number(new URL(h.clientUrl).port);
  const head = [`GET ${target} HTTP/${version}`, ...hostLines.map((v) => `Host:${v === '' ? '' : ` ${v}`}`), 'Connection: close'];
  return sendRaw(port, Buffer.from(`${head.join('\r\n')}\r\n\r\n`, 'latin1'));
}

function refused(res: RawResponse, status: number, code: string, message?: RegExp): void {
  assert.equal(res.status, status, `status; body ${res.text.slice(0, 300)}`);
  const body = res.json as { code: string; message: string };
  assert.equal(body.code, code);
  if (message) assert.match(body.message, message);
}

async function start(t: import('node:test').TestContext, options: Partial<ProxyOptions> = {}): Promise<Harness & { log: ReturnType<typeof memoryLogger> }> {
  const log = memoryLogger('info');
  const h = await startHarness(t, { logger: log.logger, ...options });
  return Object.assign(h, { log });
}

describe('Host validation on the client port', { timeout: 15_000 }, () => {
  test('by default loopback Hosts are served: localhost, *.localhost, 127.0.0.0/8 and [::1], with or without a port', async (t) => {
    const h = await start(t);
    for (const host of ['localhost', 'LOCALHOST:8080', 'chat.localhost', 'c1.chat.localhost:80', '127.0.0.1', '127.1.2.3:8080', '[::1]', '[::1]:8080', '[0:0:0:0:0:0:0:1]', 'localhost.']) {
      const res = await send(h, [host]);
      assert.equal(res.status, 200, `${host}: ${res.text.slice(0, 200)}`);
    }
    assert.equal(h.app.requests.length, 10);
  });

  test('by default a Host that is not loopback gets 421 naming the setting to change, and never reaches the app', async (t) => {
    const h = await start(t);
    for (const host of ['evil.example', 'evil.example:8080', '10.0.0.1', '[2001:db8::1]', 'localhost.evil.example', '127.0.0.1.evil.example', '2130706433', '0x7f.1', '127.000.000.001']) {
      refused(await send(h, [host]), 421, 'PROXY_ERR_MISDIRECTED', /is not served; set ALLOWED_HOSTS .*or BASE_DOMAIN/);
    }
    const res = await send(h, ['evil.example:8080']);
    assert.match((res.json as { message: string }).message, /^Host evil\.example is not served/);
    assert.equal(h.app.requests.length, 0);
    const lines = h.log.lines.filter((l) => l.code === 'PROXY_ERR_MISDIRECTED');
    assert.equal(lines.length, 10, 'each refusal logged once');
    assert.ok(lines.every((l) => l.level === 30));
  });

  test('two Host headers get 400 PROXY_ERR_BAD_HOST, even when they agree', async (t) => {
    const h = await start(t);
    refused(await send(h, ['localhost', 'evil.example']), 400, 'PROXY_ERR_BAD_HOST', /more than one Host/);
    refused(await send(h, ['evil.example', 'localhost']), 400, 'PROXY_ERR_BAD_HOST');
    refused(await send(h, ['localhost', 'localhost']), 400, 'PROXY_ERR_BAD_HOST');
    assert.equal(h.app.requests.length, 0);
  });

  test('an empty Host gets 400 PROXY_ERR_BAD_HOST', async (t) => {
    const h = await start(t);
    refused(await send(h, ['']), 400, 'PROXY_ERR_BAD_HOST', /empty/);
    refused(await send(h, ['   ']), 400, 'PROXY_ERR_BAD_HOST');
    assert.equal(h.app.requests.length, 0);
  });

  test('a Host with userinfo (a@evil) gets 400 PROXY_ERR_BAD_HOST', async (t) => {
    const h = await start(t);
    refused(await send(h, ['a@evil']), 400, 'PROXY_ERR_BAD_HOST', /not a valid host/);
    refused(await send(h, ['localhost@evil.example']), 400, 'PROXY_ERR_BAD_HOST');
    assert.equal(h.app.requests.length, 0);
  });

  test('Hosts that are not RFC 3986 host[:port] get 400: bad ports, spaces, commas, escapes, brackets, paths', async (t) => {
    const h = await start(t);
    const bad = [
      'localhost:', 'localhost:80a', 'localhost:65536', 'localhost:-1', 'localhost:8080:80', 'local host', 'localhost,evil.example',
      'local%68ost', 'localhost/x', 'localhost?x', '[::1', '::1', '[::1]x', '[v1.x]', '[fe80::1%25eth0]', '[127.0.0.1]', 'a'.repeat(254),
    ];
    for (const host of bad) refused(await send(h, [host]), 400, 'PROXY_ERR_BAD_HOST');
    assert.equal(h.app.requests.length, 0);
  });

  test('with BASE_DOMAIN chat.test, `chat.test:80@evil.example` and `evil.example#.chat.test` get 400, look-alikes 421', async (t) => {
    const h = await start(t, { baseDomain: 'chat.test' });
    refused(await send(h, ['chat.test:80@evil.example']), 400, 'PROXY_ERR_BAD_HOST');
    refused(await send(h, ['evil.example#.chat.test']), 400, 'PROXY_ERR_BAD_HOST');
    refused(await send(h, ['evil.example\\.chat.test']), 400, 'PROXY_ERR_BAD_HOST');
    for (const host of ['evilchat.test', 'chat.test.evil.example', 'evil.example']) {
      refused(await send(h, [host]), 421, 'PROXY_ERR_MISDIRECTED', /ALLOWED_HOSTS/);
    }
    for (const host of ['chat.test', 'CHAT.TEST:8080', 'c1.chat.test:8080', 'chat.test.', 'localhost']) {
      assert.equal((await send(h, [host])).status, 200, host);
    }
    assert.equal(h.app.requests.length, 5);
  });

  test('allowedHosts serves exact names, *.suffix subdomains and IP addresses, and nothing else', async (t) => {
    const h = await start(t, { allowedHosts: ['chat.example.com', '*.shard.example.com', '192.0.2.10', '[2001:db8::1]'] });
    for (const host of ['chat.example.com', 'Chat.Example.Com:443', 'c1.shard.example.com', 'a.b.shard.example.com:8080', '192.0.2.10:8080', '[2001:db8::1]:80', '127.0.0.1']) {
      assert.equal((await send(h, [host])).status, 200, host);
    }
    for (const host of ['example.com', 'shard.example.com', 'x.chat.example.com', '192.0.2.11', 'evilshard.example.com']) {
      refused(await send(h, [host]), 421, 'PROXY_ERR_MISDIRECTED');
    }
  });

  test('allowedHosts * serves every syntactically valid Host, and still refuses invalid ones', async (t) => {
    const h = await start(t, { allowedHosts: ['*'] });
    assert.equal((await send(h, ['anything.example:81'])).status, 200);
    refused(await send(h, ['a@evil']), 400, 'PROXY_ERR_BAD_HOST');
    refused(await send(h, ['a', 'b']), 400, 'PROXY_ERR_BAD_HOST');
  });

  test('an absolute-form request for another host gets 421, whatever its Host says', async (t) => {
    const h = await start(t);
    refused(await send(h, ['localhost'], 'http://evil.example/api/session'), 421, 'PROXY_ERR_MISDIRECTED', /evil\.example/);
    refused(await send(h, ['localhost'], 'http://evil.example:8080/'), 421, 'PROXY_ERR_MISDIRECTED');
    assert.equal(h.app.requests.length, 0);
  });

  test('an absolute-form request with userinfo, a bad authority or another scheme gets 400', async (t) => {
    const h = await start(t);
    refused(await send(h, ['localhost'], 'http://localhost@evil.example/'), 400, 'PROXY_ERR_BAD_HOST');
    refused(await send(h, ['localhost'], 'http://a:b@localhost/'), 400, 'PROXY_ERR_BAD_HOST');
    refused(await send(h, ['localhost'], 'http:///x'), 400, 'PROXY_ERR_BAD_HOST');
    refused(await send(h, ['localhost'], 'ftp://localhost/x'), 400, 'PROXY_ERR_BAD_REQUEST');
    assert.equal(h.app.requests.length, 0);
  });

  test('an absolute-form request for a served host reaches the app in origin form, with that host as Host', async (t) => {
    const h = await start(t);
    const res = await send(h, ['evil.example'], 'http://LOCALHOST:8080/api/rooms?x=1');
    assert.equal(res.status, 200, res.text);
    const seen = await h.app.waitForRequest(1);
    assert.equal(seen.url, '/api/rooms?x=1');
    assert.equal(seen.headers.host, 'LOCALHOST:8080');
    assert.equal(seen.headers['x-forwarded-host'], 'LOCALHOST:8080');
    assert.equal((await send(h, ['localhost'], 'http://127.0.0.1')).status, 200, 'an empty path is /');
    assert.equal((await h.app.waitForRequest(2)).url, '/');
  });

  test('an HTTP/1.0 request without Host is still served (it names no host a page could have chosen)', async (t) => {
    const h = await start(t);
    const res = await send(h, [], '/x', '1.0');
    assert.equal(res.status, 200);
    assert.equal((await h.app.waitForRequest(1)).headers['x-forwarded-host'], undefined);
  });
});

describe('the accepted-Host cache (checkRequestHost with `accepted`)', () => {
  test('a served Host is parsed and judged once, later requests with it are accepted at once; refusals, repeats and absolute targets are judged every time', async (t) => {
    const { createServer } = await import('node:http');
    const { checkRequestHost } = await import('../../proxy/http/request-host.js');
    const judged: string[] = [];
    const options = {
      serves: (host: { name: string }) => {
        judged.push(host.name);
        return host.name === 'served.test';
      },
      notServed: (name: string) => `not ${name}`,
      accepted: new Set<string>(),
    };
    const server = createServer((req, res) => {
      const check = checkRequestHost(req, options);
      res.end(check.ok ? 'ok' : check.code);
    });
    t.after(() => server.close());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const ask = async (head: string) => (await sendRaw(port, Buffer.from(`${head}\r\nConnection: close\r\n\r\n`, 'latin1'))).text;
    assert.equal(await ask('GET /a HTTP/1.1\r\nHost: served.test'), 'ok');
    assert.equal(await ask('GET /b HTTP/1.1\r\nHost: served.test'), 'ok');
    assert.deepEqual(judged, ['served.test'], 'judged once');
    assert.equal(await ask('GET /c HTTP/1.1\r\nHost: served.test\r\nHost: served.test'), 'PROXY_ERR_BAD_HOST');
    assert.equal(await ask('GET /d HTTP/1.1\r\nHost: other.test'), 'PROXY_ERR_MISDIRECTED');
    assert.equal(await ask('GET /e HTTP/1.1\r\nHost: other.test'), 'PROXY_ERR_MISDIRECTED');
    assert.equal(await ask('GET http://other.test/f HTTP/1.1\r\nHost: served.test'), 'PROXY_ERR_MISDIRECTED');
    assert.deepEqual(judged, ['served.test', 'other.test', 'other.test', 'other.test']);
    assert.deepEqual([...options.accepted], ['served.test']);
  });
});
