/**
 * How many requests the proxy parks (docs/protocol.md §4): in total
 * (`maxParked`) and per client address (`maxParkedPerAddress`), with the
 * address taken from the socket unless `trustForwardedFor` is set. Beyond a cap
 * the hold is answered 503 `PROXY_ERR_TOO_MANY_PARKED` with `Retry-After`
 * instead of being parked, and the app sees exactly one client address.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { resolveProxyOptions } from '../../proxy/options.js';
import { jsonFormat, startHarness, TEST_CONTROL_SECRET, TEST_SECRET, type HttpResult } from '../helpers/proxy-harness.js';
import { writeHold } from '../helpers/scripted-app.js';

function codeOf(res: HttpResult): string {
  return (res.json() as { code: string }).code;
}

function tooMany(res: HttpResult, retryAfterS: string): void {
  assert.equal(res.status, 503);
  assert.equal(codeOf(res), 'PROXY_ERR_TOO_MANY_PARKED');
  assert.deepEqual(Object.keys(res.json() as object).sort(), ['code', 'message']);
  assert.equal(res.headers['retry-after'], retryAfterS);
}

describe('parking caps', { timeout: 10_000 }, () => {
  test('beyond maxParked a hold is answered 503 PROXY_ERR_TOO_MANY_PARKED with Retry-After instead of being parked', async (t) => {
    const h = await startHarness(t, { maxParked: 2, parkedRetryAfterS: 7 });
    h.app.handle = (_req, res) => writeHold(res, { channel: 'room:a' });
    const first = h.get('/poll');
    const second = h.get('/poll');
    await h.waitParked(2);
    tooMany(await h.get('/poll'), '7');
    assert.equal(h.proxy.stats().parked, 2, 'the refused hold was not parked');
    assert.equal(h.app.requests.length, 3, 'the app was asked; only the parking was refused');

    // Room again: the parked two are answered, and the next poll parks.
    const published = await h.control('/publish/', { items: [{ channel: 'room:a', formats: jsonFormat({ n: 1 }) }] });
    assert.equal((published.json() as { delivered: number }).delivered, 2);
    assert.equal((await first).status, 200);
    assert.equal((await second).status, 200);
    const third = h.get('/poll');
    await h.waitParked(1);
    await h.control('/publish/', { items: [{ channel: 'room:a', formats: jsonFormat({ n: 2 }) }] });
    assert.equal((await third).text, '{"n":2}');
  });

  test('beyond maxParkedPerAddress one address is refused while others still park (trustForwardedFor)', async (t) => {
    const h = await startHarness(t, { maxParkedPerAddress: 2, trustForwardedFor: true });
    h.app.handle = (_req, res) => writeHold(res, { channel: 'room:a' });
    const from = (address: string) => ({ headers: { 'x-forwarded-for': `10.9.9.9, ${address}` } });
    const parked = [h.get('/poll', from('198.51.100.1')), h.get('/poll', from('198.51.100.1'))];
    await h.waitParked(2);
    tooMany(await h.get('/poll', from('198.51.100.1')), '5');
    // The same address written as IPv4-mapped IPv6 is the same client.
    tooMany(await h.get('/poll', from('::ffff:198.51.100.1')), '5');
    parked.push(h.get('/poll', from('198.51.100.2')));
    await h.waitParked(3);
    await h.control('/publish/', { items: [{ channel: 'room:a', formats: jsonFormat({}) }] });
    for (const res of await Promise.all(parked)) assert.equal(res.status, 200);
    assert.equal(h.proxy.stats().parked, 0);
  });

  test('without trustForwardedFor a client\'s X-Forwarded-For is ignored: every request counts for its socket address', async (t) => {
    const h = await startHarness(t, { maxParkedPerAddress: 1 });
    h.app.handle = (_req, res) => writeHold(res, { channel: 'room:a' });
    const parked = h.get('/poll', { headers: { 'x-forwarded-for': '198.51.100.1' } });
    await h.waitParked(1);
    tooMany(await h.get('/poll', { headers: { 'x-forwarded-for': '198.51.100.2' } }), '5');
    await h.control('/publish/', { items: [{ channel: 'room:a', formats: jsonFormat({}) }] });
    assert.equal((await parked).status, 200);
  });

  test('a new hold under a parked connection ID takes its place even at the cap; a refused one leaves it parked', async (t) => {
    const h = await startHarness(t, { maxParked: 1 });
    const cid = 'V1StGXR8_Z5jdHi6B-myT';
    h.app.handle = (req, res) => writeHold(res, req.url === '/other' ? { channel: 'room:b' } : { connectionId: cid, channel: 'room:a', body: `{"url":"${req.url}"}` });
    const older = h.get('/poll?n=1');
    await h.waitParked(1);
    tooMany(await h.get('/other'), '5');
    assert.equal(h.proxy.stats().parked, 1);
    const newer = h.get('/poll?n=2');
    assert.equal((await older).text, '{"url":"/poll?n=1"}', 'the older request was answered with its timeout response');
    await h.waitParked(1);
    await h.control('/push/', { items: [{ 'connection-id': cid, formats: jsonFormat({ pushed: true }) }] });
    assert.equal((await newer).text, '{"pushed":true}');
  });

  test('the app gets one X-Forwarded-For address: the socket\'s, or with trustForwardedFor the right-most entry', async (t) => {
    const plain = await startHarness(t);
    await plain.get('/x', { headers: { 'x-forwarded-for': '203.0.113.7, 203.0.113.8' } });
    assert.equal(plain.app.requests[0]!.headers['x-forwarded-for'], '127.0.0.1');

    const trusting = await startHarness(t, { trustForwardedFor: true });
    await trusting.get('/x', { headers: { 'x-forwarded-for': '203.0.113.7, 203.0.113.8' } });
    assert.equal(trusting.app.requests[0]!.headers['x-forwarded-for'], '203.0.113.8');
    await trusting.get('/x', { headers: { 'x-forwarded-for': 'not-an-address' } });
    assert.equal(trusting.app.requests[1]!.headers['x-forwarded-for'], '127.0.0.1', 'a right-most entry that is no address is ignored');
  });

  test('every cap is an option with a default, validated before anything opens', () => {
    const base = { upstreamUrl: 'http://127.0.0.1:8081', secret: TEST_SECRET, controlSecret: TEST_CONTROL_SECRET };
    const o = resolveProxyOptions(base);
    assert.deepEqual(
      [o.maxParked, o.maxParkedPerAddress, o.trustForwardedFor, o.parkedRetryAfterS],
      [15_000, 1_000, false, 5],
    );
    assert.throws(() => resolveProxyOptions({ ...base, maxParked: 0 }), /maxParked must be an integer >= 1, got 0/);
    assert.throws(() => resolveProxyOptions({ ...base, maxParkedPerAddress: 1.5 }), /maxParkedPerAddress must be an integer >= 1/);
    assert.throws(() => resolveProxyOptions({ ...base, parkedRetryAfterS: 0 }), /parkedRetryAfterS must be an integer 1-86400/);
    assert.throws(() => resolveProxyOptions({ ...base, trustForwardedFor: 1 as unknown as boolean }), /trustForwardedFor must be true or false/);
  });
});
