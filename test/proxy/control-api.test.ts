import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SignJWT } from 'jose';
import { signGripSig } from '../../protocol/grip-sig.js';
import { jsonFormat, request, startHarness, TEST_CONTROL_SECRET, TEST_SECRET } from '../helpers/proxy-harness.js';
import { writeHold } from '../helpers/scripted-app.js';

const ITEMS = { items: [{ channel: 'room:a', formats: jsonFormat({}) }] };

/** The default control issuer (`controlIssuer`). */
const CONTROL_ISS = 'comet-chat-publisher';

/** A control JWT as GRIP publishers send it: `iss` and `exp`, HS256 with `key`. */
function controlJwt(exp: number, key = TEST_CONTROL_SECRET): Promise<string> {
  return new SignJWT({ iss: CONTROL_ISS, exp }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(key));
}

function codeOf(res: { json(): unknown }): string {
  return (res.json() as { code: string }).code;
}

describe('control API authentication', { timeout: 10_000 }, () => {
  test('a call without Authorization gets 401 with a {code, message} body', async (t) => {
    const h = await startHarness(t);
    const res = await h.control('/publish/', ITEMS, { token: null });
    assert.equal(res.status, 401);
    const body = res.json() as { code: string; message: string };
    assert.deepEqual(Object.keys(body).sort(), ['code', 'message']);
    assert.equal(body.code, 'PROXY_ERR_UNAUTHORIZED');
    assert.equal(res.headers['www-authenticate'], 'Bearer');
  });

  test('a wrong secret, a JWT signed with another secret and an expired JWT get 401', async (t) => {
    const h = await startHarness(t);
    const key = new TextEncoder().encode(TEST_CONTROL_SECRET);
    const now = Math.floor(Date.now() / 1000);
    const otherJwt = await controlJwt(now + 600, 'another-secret-0123456789');
    const expiredJwt = await controlJwt(now - 3600);
    const noExpJwt = await new SignJWT({ iss: CONTROL_ISS }).setProtectedHeader({ alg: 'HS256' }).sign(key);
    for (const token of ['wrong-secret-0123456789', `${TEST_CONTROL_SECRET}x`, otherJwt, expiredJwt, noExpJwt]) {
      const res = await h.control('/publish/', ITEMS, { token });
      assert.equal(res.status, 401, `token ${token.slice(0, 12)}… must be refused`);
      assert.equal(codeOf(res), 'PROXY_ERR_UNAUTHORIZED');
    }
    const basic = await request(`${h.controlUrl}/stats`, { headers: { authorization: `Basic ${Buffer.from(`x:${TEST_CONTROL_SECRET}`).toString('base64')}` } });
    assert.equal(basic.status, 401);
  });

  test('the control secret and an unexpired control JWT signed with it are accepted; the Grip-Sig key and its tokens are not', async (t) => {
    const h = await startHarness(t);
    assert.equal((await h.control('/publish/', ITEMS)).status, 200);
    assert.equal((await h.control('/publish/', ITEMS, { token: await controlJwt(Math.floor(Date.now() / 1000) + 600) })).status, 200);
    assert.equal((await h.control('/publish/', ITEMS, { token: TEST_SECRET })).status, 401);
    assert.equal((await h.control('/publish/', ITEMS, { token: await signGripSig(TEST_SECRET) })).status, 401);
    assert.equal(h.proxy.stats().publishes, 2);
  });

  test('GET /health needs no authentication; GET /stats does', async (t) => {
    const h = await startHarness(t);
    const health = await request(`${h.controlUrl}/health`);
    assert.equal(health.status, 200);
    assert.deepEqual(health.json(), { ok: true });
    assert.equal((await request(`${h.controlUrl}/stats`)).status, 401);
    const stats = await request(`${h.controlUrl}/stats`, { headers: { authorization: `Bearer ${TEST_CONTROL_SECRET}` } });
    assert.equal(stats.status, 200);
    assert.deepEqual(Object.keys(stats.json() as object).sort(), [
      'bufferedItems', 'busResyncs', 'channels', 'clientAborts', 'connections', 'deliveries', 'dropped', 'frontTakeovers', 'holds', 'leases', 'parked', 'parkedBytes',
      'pipelineReleases', 'publishes', 'pushes', 'queuedBytes', 'queuedItems', 'reasking', 'reasks', 'repollAnswers', 'repollParks',
      'repollToApp', 'resyncs', 'streamChunks', 'streamKeepAlives', 'streamResyncs', 'streams', 'timeouts',
    ]);
  });
});

describe('control API requests', { timeout: 10_000 }, () => {
  test('the write endpoints answer with and without the trailing slash', async (t) => {
    const h = await startHarness(t);
    for (const path of ['/publish/', '/publish', '/push/', '/push', '/close/', '/close']) {
      const res = await h.control(path, { items: [] });
      assert.equal(res.status, 200, path);
      assert.deepEqual(res.json(), { delivered: 0, queued: 0, dropped: 0, reasked: 0 });
    }
  });

  test('/revoke/ answers how many leases it ended, needs the control credential, and refuses an item naming nobody', async (t) => {
    const h = await startHarness(t);
    for (const path of ['/revoke/', '/revoke']) {
      const res = await h.control(path, { items: [{ subject: 's1' }, { 'connection-id': 'A'.repeat(21), 'issued-before': Date.now() }] });
      assert.equal(res.status, 200, path);
      assert.deepEqual(res.json(), { revoked: 0 });
    }
    const anonymous = await request(`${h.controlUrl}/revoke/`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"items":[]}' });
    assert.equal(anonymous.status, 401);
    for (const item of [{}, { subject: '' }, { 'connection-id': 'short' }, { subject: 's1', 'issued-before': Date.now() + 3 * 86_400_000 }]) {
      const res = await h.control('/revoke/', { items: [item] });
      assert.equal(res.status, 400, JSON.stringify(item));
      assert.equal(codeOf(res), 'PROXY_ERR_INVALID_ITEM');
    }
  });

  test('an unknown path gets 404 and a wrong method gets 405 with Allow', async (t) => {
    const h = await startHarness(t);
    const missing = await h.control('/publishx/', ITEMS);
    assert.equal(missing.status, 404);
    assert.equal(codeOf(missing), 'PROXY_ERR_NOT_FOUND');
    const wrong = await h.control('/publish/', ITEMS, { method: 'PUT' });
    assert.equal(wrong.status, 405);
    assert.equal(codeOf(wrong), 'PROXY_ERR_METHOD_NOT_ALLOWED');
    assert.equal(wrong.headers.allow, 'POST');
    const postStats = await h.control('/stats', {});
    assert.equal(postStats.status, 405);
    assert.equal(postStats.headers.allow, 'GET, HEAD');
  });

  test('a body that is not application/json gets 415', async (t) => {
    const h = await startHarness(t);
    const res = await h.control('/publish/', ITEMS, { contentType: 'text/plain' });
    assert.equal(res.status, 415);
    assert.equal(codeOf(res), 'PROXY_ERR_UNSUPPORTED_MEDIA_TYPE');
    const withCharset = await h.control('/publish/', ITEMS, { contentType: 'application/json; charset=utf-8' });
    assert.equal(withCharset.status, 200);
  });

  test('a body over controlBodyMaxBytes gets 413', async (t) => {
    const h = await startHarness(t, { controlBodyMaxBytes: 256 });
    const big = { items: [{ channel: 'room:a', formats: jsonFormat({ pad: 'x'.repeat(300) }) }] };
    const res = await h.control('/publish/', big);
    assert.equal(res.status, 413);
    assert.equal(codeOf(res), 'PROXY_ERR_BODY_TOO_LARGE');
    // Without Content-Length the limit is enforced while reading.
    const chunked = await request(`${h.controlUrl}/publish/`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_CONTROL_SECRET}`, 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
      body: JSON.stringify(big),
    });
    assert.equal(chunked.status, 413);
    assert.equal(h.proxy.stats().publishes, 0);
  });

  test('malformed JSON gets 400 PROXY_ERR_BAD_JSON', async (t) => {
    const h = await startHarness(t);
    const res = await h.control('/publish/', '{"items": [');
    assert.equal(res.status, 400);
    assert.equal(codeOf(res), 'PROXY_ERR_BAD_JSON');
  });

  test('one invalid item rejects the whole call with its index and field, and nothing is delivered', async (t) => {
    const h = await startHarness(t);
    h.app.handle = (_req, res) => writeHold(res, { channel: 'room:a' });
    void h.get('/poll');
    await h.waitParked(1);

    const res = await h.control('/publish/', {
      items: [
        { channel: 'room:a', id: '1', formats: jsonFormat({ first: true }) },
        { channel: 'room:a', formats: jsonFormat({}) },
        { channel: 'room:a', formats: { 'http-response': { code: 1000, body: '' } } },
      ],
    });
    assert.equal(res.status, 400);
    const body = res.json() as { code: string; message: string };
    assert.equal(body.code, 'PROXY_ERR_INVALID_ITEM');
    assert.equal(body.message, 'items[2].formats.http-response.code must be an integer 100-999');
    const stats = h.proxy.stats();
    assert.equal(stats.parked, 1, 'the parked request is untouched');
    assert.equal(stats.publishes, 0);
    assert.equal(stats.channels, 0, 'no cursor moved');
  });

  test('an item with an interim status or a body its status forbids is refused 400 PROXY_ERR_INVALID_STATUS before any item is delivered', async (t) => {
    const h = await startHarness(t);
    const cid = 'V1StGXR8_Z5jdHi6B-myT';
    h.app.handle = (_req, res) => writeHold(res, { channel: 'room:a', connectionId: cid });
    const poll = h.get('/poll');
    await h.waitParked(1);
    const calls: Array<[string, unknown]> = [
      ['/publish/', { items: [{ channel: 'room:a', formats: jsonFormat({ first: true }) }, { channel: 'room:a', formats: { 'http-response': { code: 101, body: 'x' } } }] }],
      ['/publish/', { items: [{ channel: 'room:a', formats: { 'http-response': { code: '100', body: '' } } }] }],
      ['/push/', { items: [{ 'connection-id': cid, formats: jsonFormat({ first: true }) }, { 'connection-id': cid, formats: { 'http-response': { code: 204, body: 'x' } } }] }],
      ['/close/', { items: [{ 'connection-id': cid, formats: { 'http-response': { code: 304, body: 'x' } } }] }],
    ];
    for (const [path, body] of calls) {
      const res = await h.control(path, body);
      assert.equal(res.status, 400, `${path} ${JSON.stringify(body)}`);
      assert.equal(codeOf(res), 'PROXY_ERR_INVALID_STATUS');
    }
    const stats = h.proxy.stats();
    assert.equal(stats.parked, 1, 'the parked request is untouched');
    assert.deepEqual([stats.publishes, stats.pushes, stats.deliveries, stats.queuedItems, stats.channels], [0, 0, 0, 0, 0]);
    // The client still gets a whole, well-framed answer from the next valid item.
    const ok = await h.control('/push/', { items: [{ 'connection-id': cid, formats: { 'http-response': { code: 204, body: '' } } }] });
    assert.deepEqual(ok.json(), { delivered: 1, queued: 0, dropped: 0, reasked: 0 });
    const answer = await poll;
    assert.equal(answer.status, 204);
    assert.equal(answer.body.length, 0);
  });

  test('an invalid push item queues nothing', async (t) => {
    const h = await startHarness(t);
    const res = await h.control('/push/', {
      items: [
        { 'connection-id': 'V1StGXR8_Z5jdHi6B-myT', formats: jsonFormat({}) },
        { 'connection-id': 'not-an-id', formats: jsonFormat({}) },
      ],
    });
    assert.equal(res.status, 400);
    assert.match((res.json() as { message: string }).message, /^items\[1\]\.connection-id/);
    assert.equal(h.proxy.stats().queuedItems, 0);
  });
});
