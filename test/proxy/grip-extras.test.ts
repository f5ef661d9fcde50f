/**
 * The rest of GRIP in the proxy (issue 16 item 3), case by case: the parsers
 * of Grip-Set-Meta, Grip-Link, channel filters and application/grip-instruct
 * (pure), the delivery filters (pure), and through a real proxy and scripted
 * app what the side-by-side test (test/interop/grip-features.test.ts) cannot
 * show: refusals, a dropped item moving the hold's cursor, item meta
 * validation, JSON-P in basic mode and around the proxy's own answers.
 */
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { runInNewContext } from 'node:vm';
import { describe, test } from 'node:test';
import { translateGripInstruct } from '../../proxy/forward/grip-instruct.js';
import { InstructionError, parseHoldInstruction, type HoldLimits } from '../../proxy/forward/instruction.js';
import { filtersDrop } from '../../proxy/holds/delivery-filters.js';
import { proxyOptionsFromEnv } from '../../proxy/config.js';
import { resolveProxyOptions, type ProxyOptionsInput } from '../../proxy/options.js';
import { bindingDigest, signLease } from '../../protocol/lease.js';
import { startHarness, TEST_CONTROL_SECRET, TEST_SECRET, type Harness } from '../helpers/proxy-harness.js';
import { writeHold } from '../helpers/scripted-app.js';

const LIMITS: HoldLimits = { defaultHoldTimeoutMs: 55_000, minHoldTimeoutMs: 1_000, maxHoldTimeoutMs: 300_000 };

function parse(headers: IncomingHttpHeaders, body = '') {
  return parseHoldInstruction({ statusCode: 200, headers: { 'grip-hold': 'response', ...headers } }, Buffer.from(body), LIMITS);
}

function refused(fn: () => unknown, code: string, message?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof InstructionError, String(err));
    assert.equal(err.code, code);
    if (message) assert.match(err.message, message);
    return true;
  });
}

function instruct(doc: unknown, headers: IncomingHttpHeaders = {}, statusCode = 200) {
  const body = Buffer.from(typeof doc === 'string' ? doc : JSON.stringify(doc));
  return translateGripInstruct({ statusCode, headers: { 'content-type': 'application/grip-instruct', ...headers } }, body);
}

describe('instruction headers beyond hold and channel', () => {
  test('Grip-Set-Meta: entries from repeated and comma-separated values, quoted values, parameters ignored', () => {
    const instruction = parse({ 'grip-channel': 'c', 'grip-set-meta': ['user=ada, room="a, b"', 'role=admin; ignored=1'] });
    assert.deepEqual(instruction?.meta, { user: 'ada', room: 'a, b', role: 'admin' });
    assert.equal(parse({ 'grip-channel': 'c' })?.meta, undefined);
  });

  test('Grip-Set-Meta: an empty entry, a bad key, or too many keys is a bad instruction', () => {
    refused(() => parse({ 'grip-set-meta': 'user=ada,,x=1' }), 'PROXY_ERR_BAD_INSTRUCTION', /cannot be empty/);
    refused(() => parse({ 'grip-set-meta': '"user"=ada' }), 'PROXY_ERR_BAD_INSTRUCTION');
    refused(() => parse({ 'grip-set-meta': Array.from({ length: 17 }, (_, i) => `k${i}=v`).join(', ') }), 'PROXY_ERR_BAD_INSTRUCTION', /16 keys/);
  });

  test('channel filters: the three delivery filters kept in order, unknown names dropped, content and HTTP filters refused, at most 5', () => {
    const instruction = parse({ 'grip-channel': 'a; filter=skip-self; filter=no-such; filter=require-sub, b; filter=nope' });
    assert.deepEqual(instruction?.channels, [{ name: 'a', filters: ['skip-self', 'require-sub'] }, { name: 'b' }]);
    refused(() => parse({ 'grip-channel': 'a; filter=build-id' }), 'PROXY_ERR_UNSUPPORTED_INSTRUCTION', /build-id/);
    refused(() => parse({ 'grip-channel': 'a; filter=http-check' }), 'PROXY_ERR_UNSUPPORTED_INSTRUCTION');
    refused(() => parse({ 'grip-channel': `a${'; filter=skip-self'.repeat(6)}` }), 'PROXY_ERR_BAD_INSTRUCTION', /too many filters/);
  });

  test('Grip-Link on a response hold: validated, then ignored', () => {
    assert.ok(parse({ 'grip-link': '</next?x=1>; rel=next; timeout=30' }));
    assert.ok(parse({ 'grip-link': '<https://example.test/next>' })); // no parameter: skipped, as by Pushpin
    refused(() => parse({ 'grip-link': 'next; rel=next' }), 'PROXY_ERR_BAD_INSTRUCTION', /<URL>/);
    refused(() => parse({ 'grip-link': '<>; rel=next' }), 'PROXY_ERR_BAD_INSTRUCTION');
    refused(() => parse({ 'grip-link': '</n>; rel=next; timeout=-1' }), 'PROXY_ERR_BAD_INSTRUCTION', /timeout/);
  });

  test('Grip-Expose-Headers: a name that is not a token is a bad instruction; Grip-* never pass even when named', () => {
    refused(() => parse({ 'grip-expose-headers': 'X A' }), 'PROXY_ERR_BAD_INSTRUCTION');
    const instruction = parse({ 'grip-expose-headers': 'Grip-Channel, X-A', 'grip-channel': 'c', 'x-a': '1', 'x-b': '2' });
    assert.deepEqual(instruction?.timeoutResponse.headers, { 'x-a': '1' });
  });
});

describe('application/grip-instruct', () => {
  test('hold, channels with prev-id and filters, timeout, meta and the response template become the header form', () => {
    const { head, body } = instruct(
      {
        hold: { channels: [{ name: 'a', 'prev-id': '7', filters: ['skip-self'] }, { name: 'b' }], timeout: 30, meta: { user: 'ada' } },
        response: { code: 202, reason: 'Later', headers: [['Content-Type', 'text/plain'], ['Grip-Hold', 'stream']], body: 'wait' },
      },
      { 'grip-channel': 'c', 'x-dropped': '1' },
    );
    const instruction = parseHoldInstruction(head, body, LIMITS)!;
    assert.deepEqual(instruction.channels, [{ name: 'c' }, { name: 'a', prevId: '7', filters: ['skip-self'] }, { name: 'b' }]);
    assert.equal(instruction.timeoutMs, 30_000);
    assert.deepEqual(instruction.meta, { user: 'ada' });
    assert.deepEqual(instruction.timeoutResponse, { code: 202, reason: 'Later', headers: { 'content-type': 'text/plain' }, body: Buffer.from('wait') });
  });

  test('body-bin is base64; a JSON code replaces Grip-Status; no `hold` means no hold', () => {
    const { head, body } = instruct({ response: { code: 203, 'body-bin': Buffer.from([0, 1, 2]).toString('base64') } }, { 'grip-status': '404' });
    assert.equal(parseHoldInstruction(head, body, LIMITS), null);
    assert.equal(head.statusCode, 203);
    assert.equal(head.headers['grip-status'], undefined);
    assert.deepEqual([...body], [0, 1, 2]);
  });

  test('malformed bodies are refused with PROXY_ERR_BAD_GRIP_INSTRUCT', () => {
    const bad = 'PROXY_ERR_BAD_GRIP_INSTRUCT';
    refused(() => instruct({ hold: { channels: [] } }, {}, 201), bad, /status must be 200/);
    refused(() => instruct('{"hold":'), bad, /not JSON/);
    refused(() => instruct('[1]'), bad, /object/);
    refused(() => instruct({ hold: 'x' }), bad);
    refused(() => instruct({ hold: {} }), bad, /channels/);
    refused(() => instruct({ hold: { channels: [{}] } }), bad, /name is required/);
    refused(() => instruct({ hold: { channels: [{ name: 'a,b' }] } }), bad);
    refused(() => instruct({ hold: { channels: [{ name: 'a', filters: [1] }] } }), bad);
    refused(() => instruct({ hold: { channels: [], timeout: 1.5 } }), bad, /timeout/);
    refused(() => instruct({ hold: { channels: [], meta: { user: 1 } } }), bad, /meta/);
    refused(() => instruct({ response: { code: 'x' } }), bad);
    refused(() => instruct({ response: { headers: [['X-A']] } }), bad);
    refused(() => instruct({ response: { headers: { 'X-A': 'a\r\nb' } } }), bad);
    refused(() => instruct({ response: { body: 5 } }), bad);
    refused(() => instruct({ response: { 'body-bin': '###' } }), bad);
    refused(() => instruct({ response: [] }), bad);
  });
});

describe('delivery filters (Pushpin filter.cpp)', () => {
  const on = (filters: string[]) => ({ name: 'a', filters });
  test('skip-self: hold user and item sender both set and equal', () => {
    assert.equal(filtersDrop(on(['skip-self']), { user: 'ada' }, { sender: 'ada' }, []), true);
    assert.equal(filtersDrop(on(['skip-self']), { user: 'ada' }, { sender: 'bob' }, []), false);
    assert.equal(filtersDrop(on(['skip-self']), { user: '' }, { sender: '' }, []), false);
    assert.equal(filtersDrop(on(['skip-self']), undefined, { sender: 'ada' }, []), false);
  });
  test('skip-users: the hold user in the item comma list', () => {
    assert.equal(filtersDrop(on(['skip-users']), { user: 'ada' }, { skip_users: 'bob, ada' }, []), true);
    assert.equal(filtersDrop(on(['skip-users']), { user: 'ada' }, { skip_users: 'adam' }, []), false);
  });
  test('require-sub: the hold must be on the named channel', () => {
    const channels = [{ name: 'a' }, { name: 'b' }];
    assert.equal(filtersDrop(on(['require-sub']), undefined, { require_sub: 'c' }, channels), true);
    assert.equal(filtersDrop(on(['require-sub']), undefined, { require_sub: 'b' }, channels), false);
    assert.equal(filtersDrop({ name: 'a' }, { user: 'ada' }, { sender: 'ada' }, channels), false, 'no filters, no drop');
  });
});

test('JSON-P options: off by default, extended by default when on; a parameter name needing escapes or an unknown mode stops the proxy', () => {
  const base = { upstreamUrl: 'http://127.0.0.1:1', secret: TEST_SECRET, controlSecret: TEST_CONTROL_SECRET } as ProxyOptionsInput;
  assert.equal(resolveProxyOptions(base).jsonpCallbackParam, undefined);
  assert.equal(resolveProxyOptions({ ...base, jsonpCallbackParam: 'callback' }).jsonpMode, 'extended');
  const fromEnv = resolveProxyOptions(proxyOptionsFromEnv({ GRIP_SECRET: TEST_SECRET, CONTROL_SECRET: TEST_CONTROL_SECRET, JSONP_CALLBACK_PARAM: 'cb', JSONP_MODE: 'basic' }, []));
  assert.deepEqual([fromEnv.jsonpCallbackParam, fromEnv.jsonpMode], ['cb', 'basic']);
  assert.throws(() => resolveProxyOptions(proxyOptionsFromEnv({ GRIP_SECRET: TEST_SECRET, CONTROL_SECRET: TEST_CONTROL_SECRET, JSONP_MODE: 'x' }, [])), { code: 'PROXY_ERR_BAD_OPTION' });
  for (const bad of [{ jsonpCallbackParam: '' }, { jsonpCallbackParam: 'a&b' }, { jsonpCallbackParam: 'x'.repeat(65) }, { jsonpMode: 'full' }]) {
    assert.throws(() => resolveProxyOptions({ ...base, ...bad } as ProxyOptionsInput), { code: 'PROXY_ERR_BAD_OPTION' }, JSON.stringify(bad));
  }
});

describe('through the proxy', { timeout: 20_000 }, () => {
  async function parkedPoll(h: Harness, path: string) {
    const poll = h.get(path, { signal: AbortSignal.timeout(10_000) });
    await h.waitParked(1);
    // Wrapped: an async function returning the promise itself would wait for the answer.
    return { poll };
  }

  test('a dropped item moves the hold past it (Pushpin): the next item, whose prev-id is the dropped one, is delivered without a re-ask', async (t) => {
    const h = await startHarness(t);
    h.app.handle = (_req, res) => writeHold(res, { channel: 'room; prev-id=1; filter=skip-self', headers: { 'Grip-Set-Meta': 'user=ada' } });
    const { poll } = await parkedPoll(h, '/poll');
    const own = { channel: 'room', id: '2', 'prev-id': '1', meta: { sender: 'ada' }, formats: { 'http-response': { body: 'own' } } };
    const r1 = await h.control('/publish/', { items: [own] });
    assert.deepEqual(r1.json(), { delivered: 0, queued: 0, dropped: 0, reasked: 0 });
    assert.equal(h.proxy.stats().parked, 1, 'still parked after its own item');
    const other = { channel: 'room', id: '3', 'prev-id': '2', meta: { sender: 'bob' }, formats: { 'http-response': { body: 'other' } } };
    assert.equal(((await h.control('/publish/', { items: [other] })).json() as { delivered: number }).delivered, 1);
    assert.equal((await poll).text, 'other');
    assert.equal(h.app.requests.length, 1, 'no re-ask');
  });

  test('a lease granted with a hold that has channel filters or meta is not taken: its re-polls keep going to the app, which filters', async (t) => {
    const leaseKey = 'grip-extras-lease-key-0123456789';
    const h = await startHarness(t, { leaseKey });
    const now = Date.now() / 1000;
    const lease = signLease(
      {
        cid: 'A'.repeat(21),
        sub: 's1',
        bind: { cookie: 'sid', sha256: bindingDigest('token-1') },
        ch: [['room:general', '42']],
        iat: now,
        exp: now + 60,
        req: { path: '/api/poll', cid: 'cid', cursors: 'rooms', prefix: 'room:' },
        hold: { timeout: 55, headers: { 'content-type': 'application/json' }, body: '{"events":[]}' },
        batch: { prefix: '{"events":[', sep: ',', suffix: ']}', max: 500 },
      },
      leaseKey,
    );
    const scripts: Record<string, Record<string, string>> = {
      '/filtered': { 'Grip-Channel': 'room:general; filter=skip-self' },
      '/meta': { 'Grip-Channel': 'room:general', 'Grip-Set-Meta': 'user=ada' },
      '/plain': { 'Grip-Channel': 'room:general' },
    };
    h.app.handle = (req, res) => writeHold(res, { timeoutS: 1, headers: { 'Grip-Lease': lease, ...scripts[req.url]! } });
    for (const path of ['/filtered', '/meta']) {
      await h.get(path, { headers: { cookie: 'sid=token-1' }, signal: AbortSignal.timeout(5000) });
      assert.equal(h.proxy.stats().leases, 0, path);
    }
    await h.get('/plain', { headers: { cookie: 'sid=token-1' }, signal: AbortSignal.timeout(5000) });
    assert.equal(h.proxy.stats().leases, 1, 'the same lease without filters is taken');
  });

  test('item meta must be an object of short strings: else 400 PROXY_ERR_INVALID_ITEM, nothing delivered', async (t) => {
    const h = await startHarness(t);
    for (const meta of ['ada', { sender: 1 }, { sender: 'x'.repeat(1025) }, Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v']))]) {
      const res = await h.control('/publish/', { items: [{ channel: 'c', meta, formats: { 'http-response': { body: 'x' } } }] });
      assert.equal(res.status, 400, JSON.stringify(meta).slice(0, 40));
      assert.equal((res.json() as { code: string }).code, 'PROXY_ERR_INVALID_ITEM');
      assert.match((res.json() as { message: string }).message, /items\[0\]\.meta/);
    }
  });

  test('a Grip-Link rel=next without Grip-Hold is refused: 502 PROXY_ERR_UNSUPPORTED_INSTRUCTION; without rel=next the answer passes', async (t) => {
    const h = await startHarness(t);
    h.app.handle = (req, res) => {
      res.writeHead(200, { 'Grip-Link': req.url === '/paged' ? '</p2>; rel=next' : '</gone>; rel=gone', 'Content-Type': 'text/plain', 'X-A': 'a' });
      res.end('page 1');
    };
    const paged = await h.get('/paged');
    assert.equal(paged.status, 502);
    assert.equal((paged.json() as { code: string }).code, 'PROXY_ERR_UNSUPPORTED_INSTRUCTION');
    const plain = await h.get('/plain');
    assert.equal(plain.status, 200);
    assert.equal(plain.text, 'page 1');
    assert.equal(plain.headers['x-a'], 'a');
    assert.equal(plain.headers['grip-link'], undefined);
  });

  test('a malformed application/grip-instruct answer is 502 PROXY_ERR_BAD_GRIP_INSTRUCT and parks nothing', async (t) => {
    const h = await startHarness(t);
    h.app.handle = (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/grip-instruct; charset=utf-8' });
      res.end('{"hold": {"channels": "room"}}');
    };
    const res = await h.get('/poll');
    assert.equal(res.status, 502);
    assert.equal((res.json() as { code: string }).code, 'PROXY_ERR_BAD_GRIP_INSTRUCT');
    assert.equal(h.proxy.stats().parked, 0);
  });

  test('JSON-P basic mode: the body alone, one trailing newline dropped; the app never sees the callback parameter', async (t) => {
    const h = await startHarness(t, { jsonpCallbackParam: 'cb', jsonpMode: 'basic' });
    h.app.handle = (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end('{"x":1}\n');
    };
    const res = await h.get('/data?a=1&cb=window.got&b=%20');
    assert.equal(res.text, '/**/window.got({"x":1});\n');
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.equal(h.app.requests[0]!.url, '/data?a=1&b=%20');
    // Only GET: a POST with the parameter is a plain request, forwarded as sent.
    const post = await h.get('/data?cb=f', { method: 'POST', body: '' });
    assert.equal(post.text, '{"x":1}\n');
    assert.equal(h.app.requests[1]!.url, '/data?cb=f');
  });

  test('JSON-P: a pass-through answer larger than heldResponseMaxBytes reaches the callback as a 502', async (t) => {
    const h = await startHarness(t, { jsonpCallbackParam: 'callback', heldResponseMaxBytes: 1000 });
    h.app.handle = (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end('x'.repeat(5000));
    };
    const res = await h.get('/big?callback=f');
    let got: { code: number; body: string } | undefined;
    runInNewContext(res.text, { f: (v: { code: number; body: string }) => (got = v) });
    assert.equal(got!.code, 502);
    assert.equal((JSON.parse(got!.body) as { code: string }).code, 'PROXY_ERR_UPSTREAM_UNAVAILABLE');
    assert.equal((await h.get('/big')).text.length, 5000, 'without JSON-P it streams whole');
  });

  test("JSON-P wraps the proxy's own answers too: a held request's timeout and an error reach the callback with their code", async (t) => {
    const h = await startHarness(t, { jsonpCallbackParam: 'callback', minHoldTimeoutMs: 1 });
    h.app.handle = (req, res) => {
      if (req.url.startsWith('/bad')) {
        res.writeHead(200, { 'Grip-Hold': 'sideways' });
        res.end();
        return;
      }
      writeHold(res, { channel: 'c', timeoutS: 0.05, status: '304', body: '' });
    };
    const got = (text: string) => {
      let value: { code: number; body: string } | undefined;
      runInNewContext(text, { f: (v: { code: number; body: string }) => (value = v) });
      return value!;
    };
    const timeout = await h.get('/poll?callback=f');
    assert.equal(timeout.status, 200);
    assert.equal(got(timeout.text).code, 304);
    const error = await h.get('/bad?callback=f');
    assert.equal(error.status, 200);
    assert.equal(got(error.text).code, 502);
    assert.equal((JSON.parse(got(error.text).body) as { code: string }).code, 'PROXY_ERR_BAD_INSTRUCTION');
  });

  test('Upgrade: any spelling of websocket is refused with 501; another upgrade token is forwarded as a plain request', async (t) => {
    const h = await startHarness(t);
    const ws = await h.get('/x', { headers: { connection: 'upgrade', upgrade: 'WebSocket' } });
    assert.equal(ws.status, 501);
    assert.equal((ws.json() as { code: string }).code, 'PROXY_ERR_UPGRADE_UNSUPPORTED');
    assert.equal(h.app.requests.length, 0);
    const other = await h.get('/x', { headers: { connection: 'upgrade', upgrade: 'h2c' } });
    assert.equal(other.status, 200);
    assert.equal(h.app.requests.length, 1);
  });
});
