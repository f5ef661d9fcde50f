/**
 * Malformed and hostile requests against the proxy's client port, its control
 * port, and the app behind it, one table row each: what is sent (raw bytes, so
 * nothing is cleaned up by a client library) and the exact status and error
 * code that must come back as `{code, message}` JSON. After the whole table the
 * processes still serve, nothing is parked, and the database holds exactly what
 * it held before plus the rows the table creates on purpose; every refusal was
 * logged once, at info or warn.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { SignJWT, type JWTPayload } from 'jose';
import { signGripSig } from '../../protocol/grip-sig.js';
import { InstructionError, parseHoldInstruction } from '../../proxy/forward/instruction.js';
import { DEFAULT_PROXY_OPTIONS } from '../../proxy/options.js';
import { startHarness } from '../helpers/proxy-harness.js';
import { startStack, TEST_CONTROL_SECRET, TEST_SECRET } from '../helpers/stack.js';
import { httpRequest, memoryLogger, sendRaw, type LogLine, type RawResponse } from './raw-http.js';

type Target = 'client' | 'control' | 'scripted';

interface Context {
  clientHost: string;
  controlHost: string;
  scriptedHost: string;
  ada: string;
  bob: string;
  adaCid: string;
  /** The cookie of a session that signed out before the table ran (issue 14, item 7). */
  ended: string;
}

interface Row {
  /** What is sent, as a behaviour: "a NUL byte in the request target". */
  name: string;
  target: Target;
  request: (c: Context) => Buffer | Buffer[];
  status: number;
  /** The error code of the answer; rows without one are accepted requests, checked by `check`. */
  code?: string;
  check?: (res: RawResponse, c: Context) => void;
  /** Rows this request adds to the database on purpose. */
  creates?: { events?: number };
  /** Which answer on the connection is checked, for pipelined requests (1-based). Default the first. */
  answer?: number;
}

const JSON_TYPE: [string, string] = ['Content-Type', 'application/json'];
const bearer = (token: string): [string, string] => ['Authorization', `Bearer ${token}`];
const cookie = (sid: string): [string, string] => ['Cookie', sid];

/** A request to the proxy's client port, as ada unless `as` says otherwise. */
function client(method: string, target: string, opts: { as?: 'ada' | 'bob' | 'ended' | null; headers?: Array<[string, string]>; body?: string | Buffer; contentLength?: number } = {}) {
  return (c: Context) => {
    const who = opts.as === undefined ? 'ada' : opts.as;
    const headers = [...(who === null ? [] : [cookie(c[who])]), ...(opts.headers ?? [])];
    return httpRequest(method, target, c.clientHost, { headers, body: opts.body, contentLength: opts.contentLength });
  };
}

/** A POST to the control port with the control secret unless `headers` replace the auth. */
function control(path: string, body: string | Buffer, opts: { headers?: Array<[string, string]>; auth?: boolean; contentLength?: number } = {}) {
  return (c: Context) =>
    httpRequest('POST', path, c.controlHost, {
      headers: [...(opts.auth === false ? [] : [bearer(TEST_CONTROL_SECRET)]), JSON_TYPE, ...(opts.headers ?? [])],
      body,
      contentLength: opts.contentLength,
    });
}

/** A publish body with one item whose `http-response` is `format`. */
function publishWith(format: Record<string, unknown>, channel = 'room:nobody'): string {
  return JSON.stringify({ items: [{ channel, formats: { 'http-response': format } }] });
}

const raw = (text: string | Buffer) => (_c: Context) => (Buffer.isBuffer(text) ? text : Buffer.from(text, 'latin1'));
const onClient = (build: (host: string) => string | Buffer) => (c: Context) => {
  const out = build(c.clientHost);
  return Buffer.isBuffer(out) ? out : Buffer.from(out, 'latin1');
};

const IMG = '<img src=x onerror=alert(1)>';

// Issue 14 item 2 (sec-control-auth): control JWTs and connection IDs for the rows below.
const CONTROL_ISS = 'comet-chat-publisher';
const inS = (seconds: number) => Math.floor(Date.now() / 1000) + seconds;
const controlJwt = (claims: JWTPayload) => new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(TEST_CONTROL_SECRET));
const NOT_YET = await controlJwt({ iss: CONTROL_ISS, nbf: inS(600), exp: inS(1200) });
/** `n` distinct, well-formed connection IDs no client uses. */
/** A URL-encoded `/meta/connect` for JSON-P rows: refused before it is read. */
const JSONP_CONNECT = encodeURIComponent(JSON.stringify([{ channel: '/meta/connect', clientId: 'nobody', connectionType: 'callback-polling' }]));
const manyIds = (n: number) => Array.from({ length: n }, (_, i) => `nobody${i}`.padEnd(21, '_'));

const ROWS: Row[] = [
  // --- proxy client port: bytes that are not HTTP -------------------------------------------------
  { name: 'a request line that is not HTTP', target: 'client', request: raw('GARBAGE\r\n\r\n'), status: 400, code: 'PROXY_ERR_BAD_REQUEST' },
  { name: 'bare LF line ends', target: 'client', request: onClient((h) => `GET / HTTP/1.1\nHost: ${h}\n\n`), status: 400, code: 'PROXY_ERR_BAD_REQUEST' },
  { name: 'a NUL byte in the request target', target: 'client', request: onClient((h) => `GET /api/\0session HTTP/1.1\r\nHost: ${h}\r\n\r\n`), status: 400, code: 'PROXY_ERR_BAD_REQUEST' },
  { name: 'a NUL byte in a header value', target: 'client', request: onClient((h) => `GET / HTTP/1.1\r\nHost: ${h}\r\nX-A: a\0b\r\n\r\n`), status: 400, code: 'PROXY_ERR_BAD_REQUEST' },
  { name: 'a bare CR inside a header value (header injection)', target: 'client', request: onClient((h) => `GET / HTTP/1.1\r\nHost: ${h}\r\nX-A: a\rGrip-Hold: response\r\n\r\n`), status: 400, code: 'PROXY_ERR_BAD_REQUEST' },
  { name: 'a header line without a colon', target: 'client', request: onClient((h) => `GET / HTTP/1.1\r\nHost: ${h}\r\nNoColonHere\r\n\r\n`), status: 400, code: 'PROXY_ERR_BAD_REQUEST' },
  { name: 'an obsolete folded header line', target: 'client', request: onClient((h) => `GET / HTTP/1.1\r\nHost: ${h}\r\nX-A: a\r\n b\r\n\r\n`), status: 400, code: 'PROXY_ERR_BAD_REQUEST' },
  {
    name: 'Content-Length and Transfer-Encoding together (request smuggling)',
    target: 'client',
    request: onClient((h) => `POST /api/session HTTP/1.1\r\nHost: ${h}\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`),
    status: 400,
    code: 'PROXY_ERR_BAD_REQUEST',
  },
  {
    name: 'two different Content-Length headers',
    target: 'client',
    request: onClient((h) => `POST /api/session HTTP/1.1\r\nHost: ${h}\r\nContent-Length: 2\r\nContent-Length: 20\r\n\r\n{}`),
    status: 400,
    code: 'PROXY_ERR_BAD_REQUEST',
  },
  { name: 'an HTTP/1.1 request without Host', target: 'client', request: raw('GET /api/config HTTP/1.1\r\nConnection: close\r\n\r\n'), status: 400, code: 'PROXY_ERR_BAD_REQUEST' },
  { name: 'one 20 KiB header', target: 'client', request: client('GET', '/api/session', { headers: [['X-Big', 'a'.repeat(20_000)]] }), status: 431, code: 'PROXY_ERR_HEADERS_TOO_LARGE' },
  { name: 'a 20 KiB request target', target: 'client', request: client('GET', `/api/rooms?x=${'a'.repeat(20_000)}`), status: 431, code: 'PROXY_ERR_HEADERS_TOO_LARGE' },
  {
    name: '1,500 small headers adding up over the head limit',
    target: 'client',
    request: client('GET', '/api/session', { headers: Array.from({ length: 1500 }, (_, i): [string, string] => [`X-H${i}`, 'vvvvvv']) }),
    status: 431,
    code: 'PROXY_ERR_HEADERS_TOO_LARGE',
  },
  // --- issue 14 item 1, pipelining: requests pipelined past the queue of one connection -------------
  {
    // One answered plus pipelineMaxQueued waiting are served in order; the next is refused and the connection closed.
    name: 'more requests pipelined on one connection than may wait (pipelineMaxQueued + 3 in one write)',
    target: 'client',
    request: (c) => {
      const one = `GET /api/session HTTP/1.1\r\nHost: ${c.clientHost}\r\nCookie: ${c.ada}\r\n\r\n`;
      return Buffer.from(one.repeat(DEFAULT_PROXY_OPTIONS.pipelineMaxQueued + 3), 'latin1');
    },
    answer: DEFAULT_PROXY_OPTIONS.pipelineMaxQueued + 2,
    status: 429,
    code: 'PROXY_ERR_TOO_MANY_PIPELINED',
    check: (res) => assert.equal(res.headers.connection, 'close'),
  },
  // --- forged protocol headers from a client ---------------------------------------------------
  {
    name: 'a forged Grip-Sig from a client, which is stripped (the app sees only the proxy\'s)',
    target: 'client',
    request: client('GET', '/api/session', { headers: [['Grip-Sig', 'eyJhbGciOiJub25lIn0.e30.'], ['grip-sig', 'forged']] }),
    status: 200,
    check: (res) => assert.equal((res.json as { user: { nick: string } }).user.nick, 'ada'),
  },
  {
    name: 'forged Grip-Hold, Grip-Channel and a negative Grip-Timeout from a client, which are stripped and never park',
    target: 'client',
    request: client('GET', '/api/session', {
      headers: [['Grip-Hold', 'response'], ['Grip-Channel', 'room:lobby'], ['Grip-Timeout', '-5'], ['Grip-Connection-Id', 'V1StGXR8_Z5jdHi6B-myT']],
    }),
    status: 200,
    check: (res) => assert.equal((res.json as { user: { nick: string } }).user.nick, 'ada'),
  },
  // --- issue 14 items 3-4 (sec-headers-host): forwarded headers and the Host a request names ---------
  {
    name: 'forged Forwarded, X-Real-IP, X-Forwarded-Host/Proto/Port and underscore spellings, which are replaced or stripped',
    target: 'client',
    request: client('GET', '/api/session', {
      headers: [['Forwarded', 'for=203.0.113.9;host=evil.example'], ['X-Real-IP', '203.0.113.9'], ['X-Forwarded-Host', 'evil.example'], ['X-Forwarded-Proto', 'https'], ['X-Forwarded-Port', '443'], ['Grip_Sig', 'forged'], ['X_Forwarded_For', '203.0.113.9'], ['Connection', 'X-Request-Id']],
    }),
    status: 200,
    check: (res) => assert.equal((res.json as { user: { nick: string } }).user.nick, 'ada'),
  },
  { name: 'two Host headers', target: 'client', request: onClient((h) => `GET /api/session HTTP/1.1\r\nHost: ${h}\r\nHost: evil.example\r\nConnection: close\r\n\r\n`), status: 400, code: 'PROXY_ERR_BAD_HOST' },
  { name: 'an empty Host', target: 'client', request: raw('GET /api/session HTTP/1.1\r\nHost:\r\nConnection: close\r\n\r\n'), status: 400, code: 'PROXY_ERR_BAD_HOST' },
  { name: 'a Host with userinfo (a@evil)', target: 'client', request: (c) => httpRequest('GET', '/api/session', 'a@evil', { headers: [cookie(c.ada)] }), status: 400, code: 'PROXY_ERR_BAD_HOST' },
  { name: 'a Host with a fragment (evil.example#.chat.test)', target: 'client', request: (c) => httpRequest('GET', '/api/session', 'evil.example#.chat.test', { headers: [cookie(c.ada)] }), status: 400, code: 'PROXY_ERR_BAD_HOST' },
  { name: 'a Host whose port hides userinfo (127.0.0.1:80@evil.example)', target: 'client', request: (c) => httpRequest('GET', '/api/session', '127.0.0.1:80@evil.example', { headers: [cookie(c.ada)] }), status: 400, code: 'PROXY_ERR_BAD_HOST' },
  { name: 'a Host this proxy does not serve (DNS rebinding)', target: 'client', request: (c) => httpRequest('POST', '/api/rooms/lobby/messages', 'rebind.evil.example:8080', { headers: [cookie(c.ada), JSON_TYPE], body: '{"text":"rebound"}' }), status: 421, code: 'PROXY_ERR_MISDIRECTED' },
  { name: 'an absolute-form request for another host', target: 'client', request: (c) => httpRequest('POST', 'http://evil.example/api/rooms/lobby/messages', c.clientHost, { headers: [cookie(c.ada), JSON_TYPE], body: '{"text":"absolute"}' }), status: 421, code: 'PROXY_ERR_MISDIRECTED' },
  { name: 'an absolute-form request with userinfo', target: 'client', request: (c) => httpRequest('GET', `http://evil@${c.clientHost}/api/session`, c.clientHost, { headers: [cookie(c.ada)] }), status: 400, code: 'PROXY_ERR_BAD_HOST' },
  { name: 'a control call under a rebinding Host', target: 'control', request: () => httpRequest('GET', '/stats', 'rebind.evil.example', { headers: [bearer(TEST_CONTROL_SECRET)] }), status: 421, code: 'PROXY_ERR_MISDIRECTED' },
  { name: 'a control call with two Host headers', target: 'control', request: (c) => Buffer.from(`GET /stats HTTP/1.1\r\nHost: ${c.controlHost}\r\nHost: evil.example\r\nAuthorization: Bearer ${TEST_CONTROL_SECRET}\r\nConnection: close\r\n\r\n`, 'latin1'), status: 400, code: 'PROXY_ERR_BAD_HOST' },
  // --- hold instructions a client's request can trigger (the parser, through a scripted app) --------
  { name: 'an app hold with a negative Grip-Timeout', target: 'scripted', request: (c) => httpRequest('GET', '/hold/timeout-negative', c.scriptedHost), status: 502, code: 'PROXY_ERR_BAD_INSTRUCTION' },
  { name: 'an app hold with Grip-Timeout in exponent form', target: 'scripted', request: (c) => httpRequest('GET', '/hold/timeout-exponent', c.scriptedHost), status: 502, code: 'PROXY_ERR_BAD_INSTRUCTION' },
  { name: 'an app hold in an unknown mode (websocket)', target: 'scripted', request: (c) => httpRequest('GET', '/hold/mode-unknown', c.scriptedHost), status: 502, code: 'PROXY_ERR_BAD_INSTRUCTION' },
  { name: 'an app stream hold with a bad cstring escape in Grip-Keep-Alive', target: 'scripted', request: (c) => httpRequest('GET', '/hold/keep-alive-escape', c.scriptedHost), status: 502, code: 'PROXY_ERR_BAD_INSTRUCTION' },
  { name: 'an app stream hold with a Grip-Keep-Alive timeout of 0', target: 'scripted', request: (c) => httpRequest('GET', '/hold/keep-alive-zero', c.scriptedHost), status: 502, code: 'PROXY_ERR_BAD_INSTRUCTION' },
  { name: 'an app stream hold with Grip-Stream-Resync data that is not base64', target: 'scripted', request: (c) => httpRequest('GET', '/hold/resync-not-base64', c.scriptedHost), status: 502, code: 'PROXY_ERR_BAD_INSTRUCTION' },
  { name: 'an app hold on a channel name with a space', target: 'scripted', request: (c) => httpRequest('GET', '/hold/channel-invalid', c.scriptedHost), status: 502, code: 'PROXY_ERR_BAD_INSTRUCTION' },
  { name: 'an app hold under a malformed connection ID', target: 'scripted', request: (c) => httpRequest('GET', '/hold/connection-id-invalid', c.scriptedHost), status: 502, code: 'PROXY_ERR_BAD_INSTRUCTION' },
  { name: 'an app hold with Grip-Status 99', target: 'scripted', request: (c) => httpRequest('GET', '/hold/status-invalid', c.scriptedHost), status: 502, code: 'PROXY_ERR_BAD_INSTRUCTION' },
  // --- issue 14 item 6: what a parked request may keep (a valid hold, on a request with a large body) ----------
  {
    name: 'a held POST with a 60 KB body',
    target: 'scripted',
    request: (c) => httpRequest('POST', '/hold/valid', c.scriptedHost, { headers: [['Content-Type', 'text/plain']], body: 'x'.repeat(60_000) }),
    status: 413,
    code: 'PROXY_ERR_PARKED_BODY_TOO_LARGE',
  },
  {
    name: 'a held GET with a chunked 60 KB body',
    target: 'scripted',
    request: (c) => Buffer.from(`GET /hold/valid HTTP/1.1\r\nHost: ${c.scriptedHost}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${(60_000).toString(16)}\r\n${'x'.repeat(60_000)}\r\n0\r\n\r\n`, 'latin1'),
    status: 413,
    code: 'PROXY_ERR_PARKED_BODY_TOO_LARGE',
  },
  // --- issue 16 item 3: the rest of GRIP (docs/protocol.md §3.1, §3.2, §1.9, §12) ---------------------------
  { name: 'an app hold with a Pushpin content filter (build-id)', target: 'scripted', request: (c) => httpRequest('GET', '/hold/filter-build-id', c.scriptedHost), status: 502, code: 'PROXY_ERR_UNSUPPORTED_INSTRUCTION' },
  { name: 'an app answer with Grip-Link rel=next and no hold (paged streaming)', target: 'scripted', request: (c) => httpRequest('GET', '/hold/link-no-hold', c.scriptedHost), status: 502, code: 'PROXY_ERR_UNSUPPORTED_INSTRUCTION' },
  { name: 'an app hold with a Grip-Link that is not <URL>', target: 'scripted', request: (c) => httpRequest('GET', '/hold/link-malformed', c.scriptedHost), status: 502, code: 'PROXY_ERR_BAD_INSTRUCTION' },
  { name: 'an app hold with an empty Grip-Set-Meta entry', target: 'scripted', request: (c) => httpRequest('GET', '/hold/meta-empty', c.scriptedHost), status: 502, code: 'PROXY_ERR_BAD_INSTRUCTION' },
  { name: 'an application/grip-instruct body whose channels are not a list', target: 'scripted', request: (c) => httpRequest('GET', '/hold/instruct-bad', c.scriptedHost), status: 502, code: 'PROXY_ERR_BAD_GRIP_INSTRUCT' },
  { name: 'a JSON-P callback that is not an identifier path', target: 'scripted', request: (c) => httpRequest('GET', '/hold/valid?callback=alert(1)//', c.scriptedHost), status: 400, code: 'PROXY_ERR_BAD_CALLBACK' },
  { name: 'a WebSocket upgrade', target: 'client', request: client('GET', '/api/poll?rooms=lobby:0', { headers: [['Connection', 'Upgrade'], ['Upgrade', 'websocket'], ['Sec-WebSocket-Version', '13'], ['Sec-WebSocket-Key', 'dGhlIHNhbXBsZSBub25jZQ==']] }), status: 501, code: 'PROXY_ERR_UPGRADE_UNSUPPORTED' },
  { name: 'a publish item whose meta holds a number', target: 'control', request: control('/publish/', '{"items":[{"channel":"room:nobody","meta":{"sender":1},"formats":{"http-response":{"body":"x"}}}]}'), status: 400, code: 'PROXY_ERR_INVALID_ITEM' },
  // --- control port: authentication ------------------------------------------------------------
  { name: 'a publish without Authorization', target: 'control', request: control('/publish/', '{"items":[]}', { auth: false }), status: 401, code: 'PROXY_ERR_UNAUTHORIZED' },
  { name: 'a publish with a wrong secret', target: 'control', request: control('/publish/', '{"items":[]}', { auth: false, headers: [bearer('wrong-secret-0123456789abcdef')] }), status: 401, code: 'PROXY_ERR_UNAUTHORIZED' },
  { name: 'a publish with the secret as Basic credentials', target: 'control', request: control('/publish/', '{"items":[]}', { auth: false, headers: [['Authorization', `Basic ${Buffer.from(`x:${TEST_SECRET}`).toString('base64')}`]] }), status: 401, code: 'PROXY_ERR_UNAUTHORIZED' },
  { name: 'a publish with an unsigned JWT (alg none)', target: 'control', request: control('/publish/', '{"items":[]}', { auth: false, headers: [bearer('eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJpc3MiOiJjb21ldC1jaGF0In0.')] }), status: 401, code: 'PROXY_ERR_UNAUTHORIZED' },
  {
    name: 'two Authorization headers, a wrong one first (Node keeps the first)',
    target: 'control',
    request: control('/publish/', '{"items":[]}', { auth: false, headers: [bearer('wrong-secret-0123456789abcdef'), bearer(TEST_CONTROL_SECRET)] }),
    status: 401,
    code: 'PROXY_ERR_UNAUTHORIZED',
  },
  // --- control port: bodies --------------------------------------------------------------------
  { name: 'a publish body that is not JSON', target: 'control', request: control('/publish/', '{"items": ['), status: 400, code: 'PROXY_ERR_BAD_JSON' },
  { name: 'a publish body with invalid UTF-8', target: 'control', request: control('/publish/', Buffer.concat([Buffer.from('{"items":[],"x":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')])), status: 400, code: 'PROXY_ERR_BAD_JSON' },
  { name: 'a publish body with a raw NUL byte', target: 'control', request: control('/publish/', Buffer.from('{"items":[]\0}', 'latin1')), status: 400, code: 'PROXY_ERR_BAD_JSON' },
  { name: 'a publish body whose items is not a list', target: 'control', request: control('/publish/', '{"items":{"channel":"a"}}'), status: 400, code: 'PROXY_ERR_INVALID_ITEM' },
  { name: 'an item status code given as a non-numeric string', target: 'control', request: control('/publish/', publishWith({ code: '2e2', body: 'x' })), status: 400, code: 'PROXY_ERR_INVALID_ITEM' },
  { name: 'an http-stream item with action hint (needs a Grip-Link the proxy does not follow)', target: 'control', request: control('/publish/', JSON.stringify({ items: [{ channel: 'c', formats: { 'http-stream': { action: 'hint' } } }] })), status: 400, code: 'PROXY_ERR_INVALID_ITEM' },
  { name: 'an http-stream item with both content and content-bin', target: 'control', request: control('/publish/', JSON.stringify({ items: [{ channel: 'c', formats: { 'http-stream': { content: 'a', 'content-bin': 'YQ==' } } }] })), status: 400, code: 'PROXY_ERR_INVALID_ITEM' },
  { name: 'an http-stream send item without content', target: 'control', request: control('/publish/', JSON.stringify({ items: [{ channel: 'c', formats: { 'http-stream': {} } }] })), status: 400, code: 'PROXY_ERR_INVALID_ITEM' },
  { name: 'a negative item status code', target: 'control', request: control('/publish/', publishWith({ code: -1, body: 'x' })), status: 400, code: 'PROXY_ERR_INVALID_ITEM' },
  { name: 'a huge item status code', target: 'control', request: control('/publish/', publishWith({ code: 1e9, body: 'x' })), status: 400, code: 'PROXY_ERR_INVALID_ITEM' },
  { name: 'an item header value with CR/LF (response splitting)', target: 'control', request: control('/publish/', publishWith({ headers: { 'X-A': 'a\r\nSet-Cookie: sid=stolen' }, body: 'x' })), status: 400, code: 'PROXY_ERR_INVALID_ITEM' },
  { name: 'an item header name with a space and a colon', target: 'control', request: control('/publish/', publishWith({ headers: [['X Bad:', 'v']], body: 'x' })), status: 400, code: 'PROXY_ERR_INVALID_ITEM' },
  { name: 'an item reason phrase with CR/LF', target: 'control', request: control('/publish/', publishWith({ code: 200, reason: 'OK\r\nX-A: b', body: 'x' })), status: 400, code: 'PROXY_ERR_INVALID_ITEM' },
  { name: 'a channel name with CR/LF', target: 'control', request: control('/publish/', publishWith({ body: 'x' }, 'room:a\r\nb')), status: 400, code: 'PROXY_ERR_INVALID_ITEM' },
  { name: 'a push to a path-like connection ID', target: 'control', request: control('/push/', JSON.stringify({ items: [{ 'connection-id': '../../../etc/passwd', formats: { 'http-response': { body: 'x' } } }] })), status: 400, code: 'PROXY_ERR_INVALID_ITEM' },
  { name: 'a body-bin that is not base64', target: 'control', request: control('/publish/', publishWith({ 'body-bin': '<script>' })), status: 400, code: 'PROXY_ERR_INVALID_ITEM' },
  { name: 'a publish declaring a 2 MB body', target: 'control', request: control('/publish/', '{"items":[', { contentLength: 2_000_000 }), status: 413, code: 'PROXY_ERR_BODY_TOO_LARGE' },
  { name: 'a publish sent as text/plain', target: 'control', request: (c) => httpRequest('POST', '/publish/', c.controlHost, { headers: [bearer(TEST_CONTROL_SECRET), ['Content-Type', 'text/plain']], body: '{"items":[]}' }), status: 415, code: 'PROXY_ERR_UNSUPPORTED_MEDIA_TYPE' },
  { name: 'a GET of the publish endpoint', target: 'control', request: (c) => httpRequest('GET', '/publish/', c.controlHost, { headers: [bearer(TEST_CONTROL_SECRET)] }), status: 405, code: 'PROXY_ERR_METHOD_NOT_ALLOWED' },
  { name: 'an unknown control path', target: 'control', request: control('/publish/../../admin', '{"items":[]}'), status: 404, code: 'PROXY_ERR_NOT_FOUND' },
  {
    name: 'a chunked publish body with an invalid chunk size',
    target: 'control',
    request: (c) => Buffer.from(`POST /publish/ HTTP/1.1\r\nHost: ${c.controlHost}\r\nAuthorization: Bearer ${TEST_CONTROL_SECRET}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n`, 'latin1'),
    status: 400,
    code: 'PROXY_ERR_BAD_REQUEST',
  },
  {
    name: 'a publish to a channel nobody listens on',
    target: 'control',
    request: control('/publish/', publishWith({ body: '{"events":[]}' }, 'room:nobody-listens')),
    status: 200,
    check: (res) => assert.deepEqual(res.json, { delivered: 0, queued: 0, dropped: 0, reasked: 0 }),
  },
  // --- issue 14 items 2 and 5 (sec-control-auth): control credentials, push caps, item statuses ---------
  { name: 'a publish with a Grip-Sig token the proxy signs for apps', target: 'control', request: control('/publish/', '{"items":[]}', { auth: false, headers: [bearer(await signGripSig(TEST_SECRET))] }), status: 401, code: 'PROXY_ERR_UNAUTHORIZED' },
  { name: 'a publish with the Grip-Sig key as the Bearer token', target: 'control', request: control('/publish/', '{"items":[]}', { auth: false, headers: [bearer(TEST_SECRET)] }), status: 401, code: 'PROXY_ERR_UNAUTHORIZED' },
  { name: 'a control JWT from another issuer', target: 'control', request: control('/publish/', '{"items":[]}', { auth: false, headers: [bearer(await controlJwt({ iss: 'mallory', exp: inS(600) }))] }), status: 401, code: 'PROXY_ERR_UNAUTHORIZED' },
  { name: 'a control JWT for another audience', target: 'control', request: control('/publish/', '{"items":[]}', { auth: false, headers: [bearer(await controlJwt({ iss: CONTROL_ISS, aud: 'pushpin', exp: inS(600) }))] }), status: 401, code: 'PROXY_ERR_UNAUTHORIZED' },
  { name: 'a control JWT without exp', target: 'control', request: control('/publish/', '{"items":[]}', { auth: false, headers: [bearer(await controlJwt({ iss: CONTROL_ISS }))] }), status: 401, code: 'PROXY_ERR_UNAUTHORIZED' },
  { name: 'a control JWT valid for a year', target: 'control', request: control('/publish/', '{"items":[]}', { auth: false, headers: [bearer(await controlJwt({ iss: CONTROL_ISS, exp: inS(365 * 86_400) }))] }), status: 401, code: 'PROXY_ERR_UNAUTHORIZED' },
  { name: 'a stats call with a control JWT not valid for ten minutes (nbf)', target: 'control', request: (c) => httpRequest('GET', '/stats', c.controlHost, { headers: [bearer(NOT_YET)] }), status: 401, code: 'PROXY_ERR_UNAUTHORIZED' },
  { name: 'a push naming 1,001 distinct connection IDs (the per-call cap)', target: 'control', request: control('/push/', JSON.stringify({ items: manyIds(1001).map((id) => ({ 'connection-id': id, formats: { 'http-response': { body: 'x' } } })) })), status: 400, code: 'PROXY_ERR_TOO_MANY_IDS' },
  { name: 'a close naming 1,001 distinct connection IDs', target: 'control', request: control('/close/', JSON.stringify({ items: manyIds(1001).map((id) => ({ 'connection-id': id })) })), status: 400, code: 'PROXY_ERR_TOO_MANY_IDS' },
  { name: 'a published item with status 101 (an upgrade the client never asked for)', target: 'control', request: control('/publish/', publishWith({ code: 101, body: 'x' })), status: 400, code: 'PROXY_ERR_INVALID_STATUS' },
  { name: 'a published item with status "100" as text', target: 'control', request: control('/publish/', publishWith({ code: '100', body: '' })), status: 400, code: 'PROXY_ERR_INVALID_STATUS' },
  { name: 'a published item with status 204 and a body', target: 'control', request: control('/publish/', publishWith({ code: 204, body: 'x' })), status: 400, code: 'PROXY_ERR_INVALID_STATUS' },
  { name: 'a pushed item with status 304 and a body', target: 'control', request: control('/push/', JSON.stringify({ items: [{ 'connection-id': 'V1StGXR8_Z5jdHi6B-myT', formats: { 'http-response': { code: 304, body: 'x' } } }] })), status: 400, code: 'PROXY_ERR_INVALID_STATUS' },
  { name: 'a close item with status 103', target: 'control', request: control('/close/', JSON.stringify({ items: [{ 'connection-id': 'V1StGXR8_Z5jdHi6B-myT', formats: { 'http-response': { code: 103, body: '' } } }] })), status: 400, code: 'PROXY_ERR_INVALID_STATUS' },
  { name: 'a published item with status 600', target: 'control', request: control('/publish/', publishWith({ code: 600, body: 'x' })), status: 400, code: 'PROXY_ERR_INVALID_STATUS' },
  // --- the app through the proxy: bodies -------------------------------------------------------
  { name: 'a session body that is not JSON', target: 'client', request: client('POST', '/api/session', { as: null, headers: [JSON_TYPE], body: '{"nick":' }), status: 400, code: 'APP_ERR_BAD_JSON' },
  { name: 'a nick that is a number', target: 'client', request: client('POST', '/api/session', { as: null, headers: [JSON_TYPE], body: '{"nick":42}' }), status: 400, code: 'APP_ERR_INVALID_BODY' },
  { name: 'a session body that is a JSON list', target: 'client', request: client('POST', '/api/session', { as: null, headers: [JSON_TYPE], body: '["ada"]' }), status: 400, code: 'APP_ERR_INVALID_BODY' },
  { name: 'a nick <script>', target: 'client', request: client('POST', '/api/session', { as: null, headers: [JSON_TYPE], body: '{"nick":"<script>alert(1)</script>"}' }), status: 400, code: 'APP_ERR_INVALID_NICK' },
  { name: 'a nick with invalid UTF-8', target: 'client', request: client('POST', '/api/session', { as: null, headers: [JSON_TYPE], body: Buffer.concat([Buffer.from('{"nick":"a'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]) }), status: 400, code: 'APP_ERR_BAD_JSON' },
  { name: 'a session body with a raw NUL byte', target: 'client', request: client('POST', '/api/session', { as: null, headers: [JSON_TYPE], body: Buffer.from('{"nick":"a\0b"}', 'latin1') }), status: 400, code: 'APP_ERR_BAD_JSON' },
  { name: 'a session body sent as text/plain', target: 'client', request: client('POST', '/api/session', { as: null, headers: [['Content-Type', 'text/plain']], body: '{"nick":"x"}' }), status: 415, code: 'APP_ERR_UNSUPPORTED_MEDIA_TYPE' },
  { name: 'a post declaring a 2 MB body', target: 'client', request: client('POST', '/api/rooms/lobby/messages', { headers: [JSON_TYPE], body: '{"text":"', contentLength: 2_000_000 }), status: 413, code: 'APP_ERR_BODY_TOO_LARGE' },
  {
    name: 'a chunked 17 KiB post body',
    target: 'client',
    request: (c) => {
      const body = JSON.stringify({ text: 'x'.repeat(17 * 1024) });
      const head = `POST /api/rooms/lobby/messages HTTP/1.1\r\nHost: ${c.clientHost}\r\nCookie: ${c.ada}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`;
      return Buffer.from(`${head}${Buffer.byteLength(body).toString(16)}\r\n${body}\r\n0\r\n\r\n`, 'latin1');
    },
    status: 413,
    code: 'APP_ERR_BODY_TOO_LARGE',
  },
  { name: 'a message with an escaped NUL character', target: 'client', request: client('POST', '/api/rooms/lobby/messages', { headers: [JSON_TYPE], body: '{"text":"a\\u0000b"}' }), status: 400, code: 'APP_ERR_INVALID_MESSAGE' },
  { name: 'a message with a terminal escape sequence', target: 'client', request: client('POST', '/api/rooms/lobby/messages', { headers: [JSON_TYPE], body: '{"text":"\\u001b[2J owned"}' }), status: 400, code: 'APP_ERR_INVALID_MESSAGE' },
  { name: 'a message with an unpaired surrogate', target: 'client', request: client('POST', '/api/rooms/lobby/messages', { headers: [JSON_TYPE], body: '{"text":"a\\ud800b"}' }), status: 400, code: 'APP_ERR_INVALID_MESSAGE' },
  { name: 'a message of 2,001 characters', target: 'client', request: client('POST', '/api/rooms/lobby/messages', { headers: [JSON_TYPE], body: JSON.stringify({ text: 'é'.repeat(2001) }) }), status: 413, code: 'APP_ERR_MESSAGE_TOO_LONG' },
  { name: 'a message of only whitespace', target: 'client', request: client('POST', '/api/rooms/lobby/messages', { headers: [JSON_TYPE], body: '{"text":" \\n\\t "}' }), status: 400, code: 'APP_ERR_EMPTY_MESSAGE' },
  { name: 'a message text that is an object', target: 'client', request: client('POST', '/api/rooms/lobby/messages', { headers: [JSON_TYPE], body: '{"text":{"$gt":""}}' }), status: 400, code: 'APP_ERR_INVALID_BODY' },
  {
    name: 'a message with HTML, which is stored and returned verbatim as JSON text',
    target: 'client',
    request: client('POST', '/api/rooms/lobby/messages', { headers: [JSON_TYPE], body: JSON.stringify({ text: IMG }) }),
    status: 201,
    creates: { events: 1 },
    check: (res) => {
      assert.match(res.headers['content-type'] ?? '', /^application\/json/);
      assert.equal(res.headers['x-content-type-options'], 'nosniff');
      assert.equal((res.json as { event: { text: string } }).event.text, IMG);
      assert.ok(res.text.includes(IMG), 'the markup is JSON text, neither escaped into entities nor rendered');
    },
  },
  { name: 'a room name with markup', target: 'client', request: client('POST', '/api/rooms', { headers: [JSON_TYPE], body: '{"name":"<b>x</b>"}' }), status: 400, code: 'APP_ERR_INVALID_ROOM_NAME' },
  { name: 'a room name that climbs directories', target: 'client', request: client('POST', '/api/rooms', { headers: [JSON_TYPE], body: '{"name":"../../etc"}' }), status: 400, code: 'APP_ERR_INVALID_ROOM_NAME' },
  // --- the app through the proxy: sessions, rooms and authorization ------------------------------
  { name: 'a post without a session', target: 'client', request: client('POST', '/api/rooms/lobby/messages', { as: null, headers: [JSON_TYPE], body: '{"text":"hi"}' }), status: 401, code: 'APP_ERR_NO_SESSION' },
  { name: 'a post with a forged session cookie', target: 'client', request: client('POST', '/api/rooms/lobby/messages', { as: null, headers: [cookie('sid=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'), JSON_TYPE], body: '{"text":"hi"}' }), status: 401, code: 'APP_ERR_NO_SESSION' },
  { name: 'a post in a room the user is not a member of', target: 'client', request: client('POST', '/api/rooms/general/messages', { as: 'bob', headers: [JSON_TYPE], body: '{"text":"hi"}' }), status: 403, code: 'APP_ERR_NOT_MEMBER' },
  { name: 'a history read of a room the user is not a member of', target: 'client', request: client('GET', '/api/rooms/general/messages', { as: 'bob' }), status: 403, code: 'APP_ERR_NOT_MEMBER' },
  { name: 'a poll of a room the user is not a member of', target: 'client', request: client('GET', '/api/poll?rooms=general:0', { as: 'bob' }), status: 403, code: 'APP_ERR_NOT_MEMBER' },
  { name: 'a room path segment that is not valid percent-encoding', target: 'client', request: client('POST', '/api/rooms/%ff%fe/join'), status: 404, code: 'APP_ERR_NOT_FOUND' },
  // --- issue 14, item 7: sign-out and ended sessions (ada must still be signed in afterwards) ----------
  { name: 'a sign-out without a session', target: 'client', request: client('DELETE', '/api/session', { as: null }), status: 401, code: 'APP_ERR_NO_SESSION' },
  { name: 'a sign-out with a forged session cookie', target: 'client', request: client('DELETE', '/api/session', { as: null, headers: [cookie('sid=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA')] }), status: 401, code: 'APP_ERR_NO_SESSION' },
  { name: 'a sign-out from another site\'s Origin', target: 'client', request: client('DELETE', '/api/session', { headers: [['Origin', 'http://evil.test']] }), status: 403, code: 'APP_ERR_CSRF' },
  { name: 'a sign-out with another site\'s Referer and no Origin', target: 'client', request: client('DELETE', '/api/session', { headers: [['Referer', 'http://evil.test/page']] }), status: 403, code: 'APP_ERR_CSRF' },
  { name: 'a second sign-out with the cookie of a signed-out session', target: 'client', request: client('DELETE', '/api/session', { as: 'ended' }), status: 401, code: 'APP_ERR_SESSION_ENDED' },
  { name: 'a poll with the cookie of a signed-out session', target: 'client', request: client('GET', '/api/poll?rooms=lobby:0', { as: 'ended' }), status: 401, code: 'APP_ERR_SESSION_ENDED' },
  { name: 'a post with the cookie of a signed-out session', target: 'client', request: client('POST', '/api/rooms/lobby/messages', { as: 'ended', headers: [JSON_TYPE], body: '{"text":"still here"}' }), status: 401, code: 'APP_ERR_SESSION_ENDED' },
  { name: 'a join with the cookie of a signed-out session', target: 'client', request: client('POST', '/api/rooms/general/join', { as: 'ended' }), status: 401, code: 'APP_ERR_SESSION_ENDED' },
  // --- issue 18: unique nicks and nick changes (ada and bob are live) --------------------------------
  { name: 'a sign-in with a live session\'s nick in another case and width (ＡＤＡ)', target: 'client', request: client('POST', '/api/session', { as: null, headers: [JSON_TYPE], body: '{"nick":" ＡＤＡ "}' }), status: 409, code: 'APP_ERR_NICK_TAKEN' },
  { name: 'a nick change to another live session\'s nick', target: 'client', request: client('PATCH', '/api/session', { headers: [JSON_TYPE], body: '{"nick":"BOB"}' }), status: 409, code: 'APP_ERR_NICK_TAKEN' },
  { name: 'a nick change to <script>', target: 'client', request: client('PATCH', '/api/session', { headers: [JSON_TYPE], body: '{"nick":"<script>"}' }), status: 400, code: 'APP_ERR_INVALID_NICK' },
  { name: 'a nick change whose body is a JSON list', target: 'client', request: client('PATCH', '/api/session', { headers: [JSON_TYPE], body: '["ada2"]' }), status: 400, code: 'APP_ERR_INVALID_BODY' },
  { name: 'a nick change without a session', target: 'client', request: client('PATCH', '/api/session', { as: null, headers: [JSON_TYPE], body: '{"nick":"zed"}' }), status: 401, code: 'APP_ERR_NO_SESSION' },
  { name: 'a nick change with the cookie of a signed-out session', target: 'client', request: client('PATCH', '/api/session', { as: 'ended', headers: [JSON_TYPE], body: '{"nick":"zed"}' }), status: 401, code: 'APP_ERR_SESSION_ENDED' },
  { name: 'a nick change from another site\'s Origin', target: 'client', request: client('PATCH', '/api/session', { headers: [JSON_TYPE, ['Origin', 'http://evil.test']], body: '{"nick":"zed"}' }), status: 403, code: 'APP_ERR_CSRF' },
  // --- the app through the proxy: cursors and IDs ------------------------------------------------
  { name: 'a poll cursor of -1', target: 'client', request: client('GET', '/api/poll?rooms=lobby:-1'), status: 400, code: 'APP_ERR_BAD_CURSOR' },
  { name: 'a poll cursor in exponent form', target: 'client', request: client('GET', '/api/poll?rooms=lobby:1e3'), status: 400, code: 'APP_ERR_BAD_CURSOR' },
  { name: 'a poll cursor beyond 2^53', target: 'client', request: client('GET', '/api/poll?rooms=lobby:99999999999999999999'), status: 400, code: 'APP_ERR_BAD_CURSOR' },
  { name: 'the rooms parameter given twice', target: 'client', request: client('GET', '/api/poll?rooms=lobby:0&rooms=lobby:1'), status: 400, code: 'APP_ERR_BAD_CURSOR' },
  { name: 'a poll room name with a path and a CR/LF', target: 'client', request: client('GET', '/api/poll?rooms=..%2Flobby%0D%0A:0'), status: 400, code: 'APP_ERR_BAD_CURSOR' },
  { name: 'a connection ID with CR/LF', target: 'client', request: client('GET', '/api/poll?rooms=lobby:0&cid=V1StGXR8_Z5jdHi6B%0D%0AGrip-'), status: 400, code: 'APP_ERR_BAD_CONNECTION_ID' },
  { name: 'a connection ID of 22 characters', target: 'client', request: client('GET', '/api/poll?rooms=lobby:0&cid=V1StGXR8_Z5jdHi6B-myTx'), status: 400, code: 'APP_ERR_BAD_CONNECTION_ID' },
  { name: 'another session\'s connection ID', target: 'client', request: (c) => client('GET', `/api/poll?rooms=lobby:0&cid=${c.adaCid}`, { as: 'bob' })(c), status: 403, code: 'APP_ERR_FOREIGN_CONNECTION_ID' },
  // --- the app through the proxy: the SSE stream (GET /api/stream, the poll's rules) -----------------
  { name: 'a stream of a room the user is not a member of', target: 'client', request: client('GET', '/api/stream?rooms=general:0', { as: 'bob' }), status: 403, code: 'APP_ERR_NOT_MEMBER' },
  { name: 'a stream with the cookie of a signed-out session', target: 'client', request: client('GET', '/api/stream?rooms=lobby:0', { as: 'ended' }), status: 401, code: 'APP_ERR_SESSION_ENDED' },
  { name: 'a stream cursor of -1', target: 'client', request: client('GET', '/api/stream?rooms=lobby:-1'), status: 400, code: 'APP_ERR_BAD_CURSOR' },
  { name: 'a stream Last-Event-ID that is not an event id', target: 'client', request: client('GET', '/api/stream?rooms=lobby:0', { headers: [['Last-Event-ID', '1 OR 1=1']] }), status: 400, code: 'APP_ERR_BAD_CURSOR' },
  { name: 'a stream Last-Event-ID given twice', target: 'client', request: client('GET', '/api/stream?rooms=lobby:0', { headers: [['Last-Event-ID', '1'], ['Last-Event-ID', '2']] }), status: 400, code: 'APP_ERR_BAD_CURSOR' },
  { name: 'a stream format that does not exist', target: 'client', request: client('GET', '/api/stream?rooms=lobby:0&format=jsonp'), status: 400, code: 'APP_ERR_BAD_STREAM_FORMAT' },
  { name: 'a stream format given twice', target: 'client', request: client('GET', '/api/stream?rooms=lobby:0&format=xhr&format=iframe'), status: 400, code: 'APP_ERR_BAD_STREAM_FORMAT' },
  { name: 'a stream with another session\'s connection ID', target: 'client', request: (c) => client('GET', `/api/stream?rooms=lobby:0&cid=${c.adaCid}`, { as: 'bob' })(c), status: 403, code: 'APP_ERR_FOREIGN_CONNECTION_ID' },
  { name: 'a history limit of 0', target: 'client', request: client('GET', '/api/rooms/lobby/messages?limit=0'), status: 400, code: 'APP_ERR_BAD_CURSOR' },
  { name: 'a history limit of 10,000', target: 'client', request: client('GET', '/api/rooms/lobby/messages?limit=10000'), status: 400, code: 'APP_ERR_BAD_CURSOR' },
  { name: 'a history cursor that is not a number', target: 'client', request: client('GET', '/api/rooms/lobby/messages?before=1%20OR%201=1'), status: 400, code: 'APP_ERR_BAD_CURSOR' },
  // --- the app through the proxy: cross-site requests ---------------------------------------------
  { name: 'a post from another site\'s Origin', target: 'client', request: client('POST', '/api/rooms/lobby/messages', { headers: [JSON_TYPE, ['Origin', 'http://evil.test']], body: '{"text":"hi"}' }), status: 403, code: 'APP_ERR_CSRF' },
  { name: 'a post with another site\'s Referer and no Origin', target: 'client', request: client('POST', '/api/rooms/lobby/messages', { headers: [JSON_TYPE, ['Referer', 'http://evil.test/page']], body: '{"text":"hi"}' }), status: 403, code: 'APP_ERR_CSRF' },
  { name: 'a post with Origin null', target: 'client', request: client('POST', '/api/rooms/general/join', { as: 'bob', headers: [['Origin', 'null']] }), status: 403, code: 'APP_ERR_CSRF' },
  // --- the app through the proxy: static files outside public/ ----------------------------------
  { name: 'an encoded ../ path to package.json', target: 'client', request: client('GET', '/..%2f..%2fpackage.json', { as: null }), status: 404, code: 'APP_ERR_NOT_FOUND' },
  { name: 'a %2e%2e path to package.json', target: 'client', request: client('GET', '/%2e%2e/package.json', { as: null }), status: 404, code: 'APP_ERR_NOT_FOUND' },
  { name: 'a literal /public/../ path to package.json', target: 'client', request: client('GET', '/public/../package.json', { as: null }), status: 404, code: 'APP_ERR_NOT_FOUND' },
  { name: 'a backslash path to package.json', target: 'client', request: client('GET', '/..%5c..%5cpackage.json', { as: null }), status: 404, code: 'APP_ERR_NOT_FOUND' },
  { name: 'an encoded NUL byte in a file path', target: 'client', request: client('GET', '/index.html%00.json', { as: null }), status: 404, code: 'APP_ERR_NOT_FOUND' },
  { name: 'an unknown API route', target: 'client', request: client('PUT', '/api/session'), status: 404, code: 'APP_ERR_NOT_FOUND' },
  // Bayeux callback-polling (docs/bayeux.md): a GET's callback name is written into JavaScript, so it is checked first.
  { name: 'a Bayeux GET without a jsonp callback', target: 'client', request: client('GET', `/cometd?message=${JSONP_CONNECT}`, { as: null }), status: 400, code: 'APP_ERR_BAD_JSONP_CALLBACK' },
  { name: 'a jsonp callback that is script', target: 'client', request: client('GET', `/cometd?jsonp=alert(document.cookie)//&message=${JSONP_CONNECT}`, { as: null }), status: 400, code: 'APP_ERR_BAD_JSONP_CALLBACK' },
  { name: 'a jsonp callback with an encoded bracket and quote', target: 'client', request: client('GET', `/cometd?jsonp=a%5B%22x%22%5D&message=${JSONP_CONNECT}`, { as: null }), status: 400, code: 'APP_ERR_BAD_JSONP_CALLBACK' },
  { name: 'a jsonp callback with non-ASCII letters', target: 'client', request: client('GET', `/cometd?jsonp=%C3%A9t%C3%A9&message=${JSONP_CONNECT}`, { as: null }), status: 400, code: 'APP_ERR_BAD_JSONP_CALLBACK' },
  { name: 'two jsonp callbacks', target: 'client', request: client('GET', `/cometd?jsonp=a&jsonp=b&message=${JSONP_CONNECT}`, { as: null }), status: 400, code: 'APP_ERR_BAD_JSONP_CALLBACK' },
  { name: 'a jsonp callback of 129 characters', target: 'client', request: client('GET', `/cometd?jsonp=${'a'.repeat(129)}&message=${JSONP_CONNECT}`, { as: null }), status: 400, code: 'APP_ERR_BAD_JSONP_CALLBACK' },
  { name: 'a JSON-P request without message', target: 'client', request: client('GET', '/cometd/connect?jsonp=cb', { as: null }), status: 400, code: 'APP_ERR_INVALID_BODY' },
  { name: 'a JSON-P message that is not JSON', target: 'client', request: client('GET', '/cometd?jsonp=cb&message=%5B%7B%22channel%22', { as: null }), status: 400, code: 'APP_ERR_BAD_JSON' },
  { name: 'a JSON-P message with invalid UTF-8', target: 'client', request: client('GET', '/cometd?jsonp=cb&message=%5B%22%C3%28%22%5D', { as: null }), status: 400, code: 'APP_ERR_BAD_JSON' },
  { name: 'a JSON-P message that is an empty array', target: 'client', request: client('GET', '/cometd?jsonp=cb&message=%5B%5D', { as: null }), status: 400, code: 'APP_ERR_INVALID_BODY' },
];

/** Hold instructions the scripted app answers `/hold/<name>` with. */
const SCRIPTED_HOLDS: Record<string, Array<[string, string]>> = {
  'timeout-negative': [['Grip-Hold', 'response'], ['Grip-Timeout', '-5']],
  'timeout-exponent': [['Grip-Hold', 'response'], ['Grip-Timeout', '1e9']],
  'mode-unknown': [['Grip-Hold', 'websocket']],
  'keep-alive-escape': [['Grip-Hold', 'stream'], ['Grip-Keep-Alive', '\\q; format=cstring']],
  'keep-alive-zero': [['Grip-Hold', 'stream'], ['Grip-Keep-Alive', 'x; timeout=0']],
  'resync-not-base64': [['Grip-Hold', 'stream'], ['Grip-Stream-Resync', '***; format=base64']],
  'channel-invalid': [['Grip-Hold', 'response'], ['Grip-Channel', 'room general']],
  'connection-id-invalid': [['Grip-Hold', 'response'], ['Grip-Connection-Id', '../../etc']],
  'status-invalid': [['Grip-Hold', 'response'], ['Grip-Status', '99 Too Low']],
  'filter-build-id': [['Grip-Hold', 'response'], ['Grip-Channel', 'room:a; filter=build-id']],
  'link-no-hold': [['Grip-Link', '</next>; rel=next']],
  'link-malformed': [['Grip-Hold', 'response'], ['Grip-Link', 'next; rel=next']],
  'meta-empty': [['Grip-Hold', 'response'], ['Grip-Set-Meta', 'user=ada, ,']],
  'instruct-bad': [['Content-Type', 'application/grip-instruct']],
  // A hold the proxy obeys, for requests refused for what they would keep (issue 14 item 6); 1 s if one ever parks.
  valid: [['Grip-Hold', 'response'], ['Grip-Channel', 'room:a'], ['Grip-Timeout', '1']],
};

/** Bodies of scripts that need one (an `application/grip-instruct` instruction is its body). */
const SCRIPTED_BODIES: Record<string, string> = {
  'instruct-bad': '{"hold": {"channels": "room:a"}}',
};

type Snapshot = Record<string, { count: number; hash: string }>;

/** Row count and a content hash of every table (sqlite_sequence follows the events count). */
function snapshot(db: Database.Database): Snapshot {
  const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").pluck().all() as string[];
  return Object.fromEntries(
    tables.map((name) => {
      const rows = (db.prepare(`SELECT * FROM "${name}"`).all() as unknown[]).map((r) => JSON.stringify(r)).sort();
      return [name, { count: rows.length, hash: createHash('sha256').update(rows.join('\n')).digest('hex') }];
    }),
  );
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

test(`${ROWS.length} malformed or hostile requests each get their own status and {code, message}, and change nothing`, { timeout: 60_000 }, async (t) => {
  assert.ok(ROWS.length >= 40, `the table has ${ROWS.length} rows`);
  const log = memoryLogger('debug');
  const stack = await startStack(t, { app: { logger: log.logger }, proxy: { logger: log.logger } });
  const scripted = await startHarness(t, { logger: log.logger, jsonpCallbackParam: 'callback' });
  scripted.app.handle = (req, res) => {
    const hold = SCRIPTED_HOLDS[req.url.split('/')[2] ?? ''];
    if (hold === undefined) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"code":"TEST_NOT_FOUND","message":"no such script"}');
      return;
    }
    // A Content-Type in the script comes first and wins (Node keeps the first of repeated Content-Types).
    res.writeHead(200, [...hold.flat(), 'Content-Type', 'application/json']);
    res.end(SCRIPTED_BODIES[req.url.split('/')[2] ?? ''] ?? '{}');
  };

  // Users and rooms the rows need: ada in lobby and general, bob in lobby only; ada's connection ID.
  const base = stack.base;
  const login = async (nick: string): Promise<string> => {
    const res = await fetch(`${base}/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ nick }) });
    assert.equal(res.status, 201);
    return res.headers.getSetCookie()[0]!.split(';')[0]!;
  };
  const ada = await login('ada');
  const bob = await login('bob');
  const ended = await login('cy');
  assert.equal((await fetch(`${base}/api/session`, { method: 'DELETE', headers: { cookie: ended } })).status, 204);
  const asAda = { cookie: ada, 'content-type': 'application/json' };
  assert.equal((await fetch(`${base}/api/rooms`, { method: 'POST', headers: asAda, body: '{"name":"general"}' })).status, 201);
  assert.equal((await fetch(`${base}/api/rooms/general/join`, { method: 'POST', headers: asAda })).status, 200);
  // Cursor 0 in the lobby: there is news, so the poll is answered at once (nothing parks) with a connection ID.
  const poll = await fetch(`${base}/api/poll?rooms=lobby:0`, { headers: { cookie: ada } });
  const adaCid = ((await poll.json()) as { connectionId: string }).connectionId;

  const db = new Database(stack.dbPath, { readonly: true, fileMustExist: true });
  t.after(() => db.close());
  const outboxEmpty = () => (db.prepare('SELECT COUNT(*) FROM outbox').pluck().get() as number) === 0;
  await until('the outbox to be published', outboxEmpty);
  // The first poll's connection row is written in the liveness log's next batch (server/liveness-log.ts).
  await until("ada's connection row", () => db.prepare('SELECT COUNT(*) FROM connections WHERE id = ?').pluck().get(adaCid) === 1);
  const before = snapshot(db);
  const controlPort = stack.controlPort;
  const scriptedPort = Number(new URL(scripted.clientUrl).port);
  const ports: Record<Target, number> = { client: stack.clientPort, control: controlPort, scripted: scriptedPort };
  const context: Context = {
    clientHost: `127.0.0.1:${stack.clientPort}`,
    controlHost: `127.0.0.1:${controlPort}`,
    scriptedHost: `127.0.0.1:${scriptedPort}`,
    ada,
    bob,
    adaCid,
    ended,
  };
  const firstLine = log.lines.length;
  let created = 0;

  for (const row of ROWS) {
    const expected = row.code === undefined ? `${row.status}` : `${row.status} ${row.code}`;
    await t.test(`${row.name}: ${expected}`, async () => {
      const from = log.lines.length;
      const res = await sendRaw(ports[row.target], row.request(context), { answer: row.answer ?? 1 });
      const lines = log.lines.slice(from).filter((l) => l.level >= 30);
      assert.equal(res.status, row.status, `status; body ${res.text.slice(0, 300)}`);
      if (row.code !== undefined) {
        assert.match(res.headers['content-type'] ?? '', /^application\/json/, 'a JSON answer');
        const body = res.json as Record<string, unknown> | undefined;
        assert.ok(body !== undefined, `a JSON body, got ${res.text.slice(0, 200)}`);
        assert.deepEqual(Object.keys(body).sort(), ['code', 'message']);
        assert.equal(body.code, row.code);
        assert.equal(typeof body.message, 'string');
        // Logged once, at info or warn, by whichever side refused it.
        assert.equal(lines.length, 1, `one log line, got ${JSON.stringify(lines)}`);
        const [line] = lines as [LogLine];
        assert.ok(line.level === 30 || line.level === 40, `info or warn, got ${line.level}`);
        if (line.code !== undefined) assert.equal(line.code, row.code);
      } else {
        assert.deepEqual(lines, [], 'an accepted request logs nothing at info');
      }
      assert.deepEqual(Object.keys(res.headers).filter((h) => h.startsWith('grip-')), [], 'no Grip-* header reaches a client');
      row.check?.(res, context);
      created += row.creates?.events ?? 0;
    });
  }

  await t.test('afterwards both servers answer, nothing is parked, and only the intended rows were added', async () => {
    const me = await fetch(`${base}/api/session`, { headers: { cookie: ada } });
    assert.equal(me.status, 200);
    const health = await fetch(`http://${context.controlHost}/health`);
    assert.equal(health.status, 200);
    assert.equal(stack.proxy.stats().parked, 0);
    assert.equal(stack.proxy.stats().streams, 0);
    assert.equal(stack.proxy.stats().reasking, 0);
    assert.equal(scripted.proxy.stats().parked, 0);
    await until('the outbox to be published', outboxEmpty);
    const after = snapshot(db);
    assert.equal(after.events!.count, before.events!.count + created, 'events: only those the table meant to add');
    for (const table of Object.keys(before)) {
      if (table === 'events') continue;
      assert.deepEqual(after[table], before[table], `table ${table} is unchanged`);
    }
    const errors = log.lines.slice(firstLine).filter((l) => l.level >= 50);
    assert.deepEqual(errors, [], 'no bad request is logged as an error');
    assert.ok(!log.raw.join('').includes(TEST_SECRET), 'the secret never appears in the logs');
    assert.ok(!log.raw.join('').includes(TEST_CONTROL_SECRET), 'nor the control secret');
  });
});

test('the instruction parser refuses negative, signed and exponent Grip-Timeouts and clamps huge ones', () => {
  const limits = { defaultHoldTimeoutMs: 55_000, minHoldTimeoutMs: 1_000, maxHoldTimeoutMs: 300_000 };
  const head = (timeout: string) => ({ statusCode: 200, headers: { 'grip-hold': 'response', 'grip-timeout': timeout } });
  for (const bad of ['-1', '+5', '1e3', 'Infinity', 'NaN', '0x10', '', ' ']) {
    assert.throws(() => parseHoldInstruction(head(bad), Buffer.alloc(0), limits), InstructionError, `Grip-Timeout ${JSON.stringify(bad)}`);
  }
  assert.equal(parseHoldInstruction(head('99999999999999999999'), Buffer.alloc(0), limits)!.timeoutMs, 300_000);
  assert.equal(parseHoldInstruction(head('0'), Buffer.alloc(0), limits)!.timeoutMs, 1_000);
});
