/**
 * What the app receives of the headers that describe the client and its
 * original request (docs/protocol.md §1.2): the proxy sets `X-Forwarded-For`,
 * `-Proto`, `-Host` and `-Port` from what it knows itself, and removes every
 * client-written header of that family (`Forwarded`, `X-Real-IP`, ...) and any
 * spelling of them or of `Grip-*` with underscores. A `Connection` header
 * naming one of the headers the proxy sets removes nothing. Each test sends
 * through a real proxy to a scripted app that records the upstream request.
 */
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { describe, test } from 'node:test';
import { sendRaw } from '../hardening/raw-http.js';
import { jsonFormat, startHarness, type Harness } from '../helpers/proxy-harness.js';
import { writeHold } from '../helpers/scripted-app.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** Sends raw header lines (any spelling, any repetition) and returns the headers the app received. */
async function upstreamHeaders(h: Harness, lines: string[], { host, target = '/x' }: { host?: string; target?: string } = {}): Promise<IncomingHttpHeaders> {
  const port = Number(new URL(h.clientUrl).port);
  const head = [`GET ${target} HTTP/1.1`, `Host: ${host ?? `127.0.0.1:${port}`}`, ...lines, 'Connection: close'];
  const res = await sendRaw(port, Buffer.from(`${head.join('\r\n')}\r\n\r\n`, 'latin1'));
  assert.equal(res.status, 200, `forwarded; got ${res.status} ${res.text.slice(0, 200)}`);
  return (await h.app.waitForRequest(h.app.requests.length || 1)).headers;
}

/** Header names the app received whose `_`-to-`-` spelling is `name`, other than `name` itself. */
function underscoreSpellings(headers: IncomingHttpHeaders): string[] {
  return Object.keys(headers).filter((n) => n.includes('_'));
}

describe('forwarding headers the app receives', { timeout: 10_000 }, () => {
  test("a client's X-Forwarded-Host never reaches the app: it names the Host the proxy validated", async (t) => {
    const h = await startHarness(t);
    const seen = await upstreamHeaders(h, ['X-Forwarded-Host: evil.example', 'X-Forwarded-Host: evil2.example'], { host: 'localhost:8080' });
    assert.equal(seen['x-forwarded-host'], 'localhost:8080');
    assert.equal(seen.host, 'localhost:8080');
  });

  test("a client's X-Forwarded-Proto is replaced by the scheme of the proxy's own listener", async (t) => {
    const h = await startHarness(t);
    const seen = await upstreamHeaders(h, ['X-Forwarded-Proto: https']);
    assert.equal(seen['x-forwarded-proto'], 'http');
  });

  test("a client's X-Forwarded-Port is replaced by the port the client connected to", async (t) => {
    const h = await startHarness(t);
    const port = new URL(h.clientUrl).port;
    // The Host names another port (as behind a port mapping): the proxy reports its own.
    const seen = await upstreamHeaders(h, ['X-Forwarded-Port: 443'], { host: 'localhost:9999' });
    assert.equal(seen['x-forwarded-port'], port);
  });

  test("a client's X-Forwarded-For is replaced by the socket's address", async (t) => {
    const h = await startHarness(t);
    const seen = await upstreamHeaders(h, ['X-Forwarded-For: 203.0.113.9']);
    assert.equal(seen['x-forwarded-for'], '127.0.0.1');
  });

  test("a client's Forwarded header never reaches the app", async (t) => {
    const h = await startHarness(t);
    const seen = await upstreamHeaders(h, ['Forwarded: for=203.0.113.9;host=evil.example;proto=https']);
    assert.equal(seen.forwarded, undefined);
  });

  test("a client's X-Real-IP and the other client-address headers never reach the app", async (t) => {
    const h = await startHarness(t);
    const seen = await upstreamHeaders(h, [
      'X-Real-IP: 203.0.113.9',
      'X-Client-IP: 203.0.113.9',
      'True-Client-IP: 203.0.113.9',
      'X-Cluster-Client-IP: 203.0.113.9',
      'X-Original-Host: evil.example',
      'X-Forwarded-Server: evil.example',
      'X-Forwarded-Prefix: /admin',
      'X-Kept: yes',
    ]);
    for (const name of ['x-real-ip', 'x-client-ip', 'true-client-ip', 'x-cluster-client-ip', 'x-original-host', 'x-forwarded-server', 'x-forwarded-prefix']) {
      assert.equal(seen[name], undefined, name);
    }
    assert.equal(seen['x-kept'], 'yes', 'other headers pass');
  });

  test('underscore spellings of Grip-* headers (Grip_Sig, grip_last, GRIP_Hold) never reach the app', async (t) => {
    const h = await startHarness(t);
    const seen = await upstreamHeaders(h, ['Grip_Sig: forged', 'grip_last: room:a; last-id=9', 'GRIP_Hold: response', 'Grip-Sig_: x']);
    assert.deepEqual(underscoreSpellings(seen), []);
    assert.deepEqual(Object.keys(seen).filter((n) => n.replaceAll('_', '-').startsWith('grip-')), ['grip-sig'], "only the proxy's Grip-Sig");
    assert.notEqual(seen['grip-sig'], 'forged');
  });

  test('underscore spellings of the forwarding headers and of X-Request-Id never reach the app', async (t) => {
    const h = await startHarness(t);
    const seen = await upstreamHeaders(h, [
      'X_Forwarded_For: 203.0.113.9',
      'x_forwarded_host: evil.example',
      'X_FORWARDED_PROTO: https',
      'x-forwarded_port: 443',
      'X_Real_IP: 203.0.113.9',
      'X_Request_Id: forged-id',
      'My_Header: kept',
    ]);
    assert.deepEqual(underscoreSpellings(seen), ['my_header'], 'only the unrelated underscore header passes');
    assert.notEqual(seen['x-request-id'], 'forged-id');
  });

  test("Connection naming X-Request-Id does not remove the proxy's request id", async (t) => {
    const h = await startHarness(t);
    const port = Number(new URL(h.clientUrl).port);
    const res = await sendRaw(port, Buffer.from(`GET /x HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: X-Request-Id, close\r\n\r\n`, 'latin1'));
    assert.equal(res.status, 200);
    const seen = (await h.app.waitForRequest(1)).headers;
    assert.match(String(seen['x-request-id']), UUID, 'the app gets the id the proxy assigned');
    assert.equal(seen['x-request-id'], res.headers['x-request-id'], 'the same id the client got back');

    const kept = await upstreamHeaders(h, ['X-Request-Id: client-id-7', 'Connection: x-request-id']);
    assert.equal(kept['x-request-id'], 'client-id-7', "a client's safe id survives its own Connection header");
  });

  test('Connection naming the forwarding headers, Grip-Sig or Host removes none of them', async (t) => {
    const h = await startHarness(t);
    const seen = await upstreamHeaders(h, ['Connection: X-Forwarded-For, X-Forwarded-Host, X-Forwarded-Proto, X-Forwarded-Port, Grip-Sig, Host, X-Hop', 'X-Hop: 1']);
    for (const name of ['x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-port', 'grip-sig', 'host']) {
      assert.ok(seen[name], `${name} is set`);
    }
    assert.equal(seen['x-hop'], undefined, 'a header the client nominated is still removed');
  });

  test('a re-ask carries the same forwarding headers as the first request and none of the forged ones', async (t) => {
    const h = await startHarness(t);
    h.app.handle = (req, res) => {
      if (req.headers['grip-last'] === undefined) writeHold(res, { channel: 'room:a; prev-id=1' });
      else writeHold(res, { channel: 'room:a; prev-id=3' });
    };
    const port = Number(new URL(h.clientUrl).port);
    const poll = sendRaw(
      port,
      Buffer.from(`GET /poll HTTP/1.1\r\nHost: localhost:${port}\r\nX-Forwarded-Host: evil.example\r\nForwarded: for=1.2.3.4\r\nGrip_Last: room:a; last-id=99\r\n\r\n`, 'latin1'),
    );
    await h.waitParked(1);
    await h.control('/publish/', { items: [{ channel: 'room:a', id: '3', 'prev-id': '2', formats: jsonFormat({ n: 3 }) }] });
    const first = (await h.app.waitForRequest(1)).headers;
    const reask = (await h.app.waitForRequest(2)).headers;
    for (const seen of [first, reask]) {
      assert.equal(seen['x-forwarded-host'], `localhost:${port}`);
      assert.equal(seen['x-forwarded-port'], String(port));
      assert.equal(seen['x-forwarded-proto'], 'http');
      assert.equal(seen.forwarded, undefined);
      assert.deepEqual(underscoreSpellings(seen), []);
    }
    await h.waitParked(1);
    await h.control('/publish/', { items: [{ channel: 'room:a', id: '4', 'prev-id': '3', formats: jsonFormat({ n: 4 }) }] });
    assert.deepEqual((await poll).json, { n: 4 });
  });

  test('with trustForwardedFor the load balancer\'s right-most X-Forwarded-Proto and -Port are kept; Forwarded and X-Real-IP are still removed', async (t) => {
    const h = await startHarness(t, { trustForwardedFor: true });
    const seen = await upstreamHeaders(h, [
      'X-Forwarded-For: 203.0.113.1, 198.51.100.7',
      'X-Forwarded-Proto: http, https',
      'X-Forwarded-Port: 1, 443',
      'X-Forwarded-Host: evil.example',
      'Forwarded: for=203.0.113.1',
      'X-Real-IP: 203.0.113.1',
    ], { host: 'localhost' });
    assert.equal(seen['x-forwarded-for'], '198.51.100.7');
    assert.equal(seen['x-forwarded-proto'], 'https');
    assert.equal(seen['x-forwarded-port'], '443');
    assert.equal(seen['x-forwarded-host'], 'localhost', 'the Host, never a forwarded host');
    assert.equal(seen.forwarded, undefined);
    assert.equal(seen['x-real-ip'], undefined);

    const port = new URL(h.clientUrl).port;
    const odd = await upstreamHeaders(h, ['X-Forwarded-Proto: javascript', 'X-Forwarded-Port: 99999']);
    assert.equal(odd['x-forwarded-proto'], 'http', 'a value that is no scheme falls back to the listener');
    assert.equal(odd['x-forwarded-port'], port, 'a value that is no port falls back to the listener');
  });
});
