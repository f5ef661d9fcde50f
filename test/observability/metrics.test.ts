import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SignJWT } from 'jose';
import { signGripSig } from '../../protocol/grip-sig.js';
import { parsePromText, sampleValue, type Sample } from '../../bench/lab/soak/prom-text.js';
import { jsonFormat, request, startHarness, TEST_CONTROL_SECRET, TEST_SECRET, waitFor, type Harness } from '../helpers/proxy-harness.js';
import { writeHold } from '../helpers/scripted-app.js';

const CID = 'V1StGXR8_Z5jdHi6B-myT';

async function scrape(h: Harness, token: string | null = TEST_CONTROL_SECRET): Promise<{ status: number; type: string; samples: Sample[]; text: string }> {
  const res = await request(`${h.controlUrl}/metrics`, token === null ? {} : { headers: { authorization: `Bearer ${token}` } });
  return {
    status: res.status,
    type: String(res.headers['content-type']),
    text: res.text,
    samples: res.status === 200 ? parsePromText(res.text) : [],
  };
}

/** The value of `name{labels}`; fails the test when the series is missing. */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const v = sampleValue(samples, name, labels);
  assert.notEqual(v, undefined, `series ${name}${JSON.stringify(labels)} is exposed`);
  return v!;
}

describe('GET /metrics', { timeout: 15_000 }, () => {
  test('after a scripted scenario the counters, gauges, histograms and error codes say what happened', async (t) => {
    const h = await startHarness(t, { minHoldTimeoutMs: 0 });
    h.app.handle = (req, res) => {
      if (req.url === '/poll-a') writeHold(res, { channel: 'room:a' });
      else if (req.url === '/poll-short') writeHold(res, { channel: 'room:b', timeoutS: 0.05 });
      else if (req.url === '/poll-abort') writeHold(res, { channel: 'room:c' });
      else {
        res.writeHead(200, { 'grip-hold': 'websocket' }); // a hold mode the proxy does not support
        res.end();
      }
    };

    // Two parked polls, one publish: two deliveries.
    const polls = [h.get('/poll-a'), h.get('/poll-a')];
    await h.waitParked(2);
    await h.control('/publish/', { items: [{ channel: 'room:a', id: '1', formats: jsonFormat({ n: 1 }) }] });
    for (const poll of polls) assert.deepEqual((await poll).json(), { n: 1 });
    // One timeout.
    assert.equal((await h.get('/poll-short')).status, 200);
    // One client that goes away while parked.
    const abort = new AbortController();
    const aborted = h.get('/poll-abort', { signal: abort.signal }).catch(() => 'aborted');
    await h.waitParked(1);
    abort.abort();
    assert.equal(await aborted, 'aborted');
    await waitFor(() => h.proxy.stats().clientAborts === 1 && h.proxy.stats().parked === 0, { message: 'the abort to be seen' });
    // One push for a connection that is not parked: queued.
    await h.control('/push/', { items: [{ 'connection-id': CID, formats: jsonFormat('hello') }] });
    // Three error answers: two on the control side, one on the client side.
    assert.equal((await h.control('/publish/', { items: [] }, { token: null })).status, 401);
    assert.equal((await h.control('/publish/', '{not json')).status, 400);
    assert.equal((await h.get('/bad')).status, 502);

    const { status, type, samples } = await scrape(h);
    assert.equal(status, 200);
    assert.match(type, /^text\/plain; version=0\.0\.4/);

    assert.equal(value(samples, 'comet_proxy_parked'), 0);
    assert.equal(value(samples, 'comet_proxy_reasking'), 0);
    assert.equal(value(samples, 'comet_proxy_queue_items'), 1);
    assert.equal(value(samples, 'comet_proxy_queue_bytes'), Buffer.byteLength('"hello"'));
    assert.equal(value(samples, 'comet_proxy_holds_total'), 4);
    assert.equal(value(samples, 'comet_proxy_publishes_total'), 1);
    assert.equal(value(samples, 'comet_proxy_pushes_total'), 1);
    assert.equal(value(samples, 'comet_proxy_deliveries_total'), 2);
    assert.equal(value(samples, 'comet_proxy_timeouts_total'), 1);
    assert.equal(value(samples, 'comet_proxy_client_aborts_total'), 1);
    assert.equal(value(samples, 'comet_proxy_reasks_total'), 0);
    assert.equal(value(samples, 'comet_proxy_resyncs_total'), 0);
    assert.equal(value(samples, 'comet_proxy_dropped_total'), 0);

    const held = 'comet_proxy_hold_duration_seconds';
    assert.equal(value(samples, `${held}_count`, { outcome: 'delivered' }), 2);
    assert.equal(value(samples, `${held}_count`, { outcome: 'timeout' }), 1);
    assert.equal(value(samples, `${held}_count`, { outcome: 'aborted' }), 1);
    assert.ok(value(samples, `${held}_sum`, { outcome: 'timeout' }) >= 0.045, 'the timed-out hold lasted its 50 ms');
    assert.equal(value(samples, `${held}_bucket`, { outcome: 'timeout', le: '+Inf' }), 1);

    const write = 'comet_proxy_publish_to_write_seconds';
    assert.equal(value(samples, `${write}_count`, { kind: 'publish' }), 2);
    assert.ok(value(samples, `${write}_sum`, { kind: 'publish' }) > 0);
    assert.equal(sampleValue(samples, `${write}_count`, { kind: 'push' }), undefined, 'the push was queued, not written');

    assert.equal(value(samples, 'comet_proxy_errors_total', { code: 'PROXY_ERR_UNAUTHORIZED' }), 1);
    assert.equal(value(samples, 'comet_proxy_errors_total', { code: 'PROXY_ERR_BAD_JSON' }), 1);
    assert.equal(value(samples, 'comet_proxy_errors_total', { code: 'PROXY_ERR_BAD_INSTRUCTION' }), 1);
    assert.equal(value(samples, 'comet_proxy_errors_total', { code: 'PROXY_ERR_UPSTREAM_UNAVAILABLE' }), 0, 'known codes start at 0');

    assert.ok(value(samples, 'comet_proxy_process_resident_memory_bytes') > 0, 'default process metrics, prefixed');
    assert.ok(samples.some((s) => s.name === 'comet_proxy_nodejs_eventloop_lag_seconds'));

    // A second scrape does not count anything twice.
    const again = (await scrape(h)).samples;
    assert.equal(value(again, 'comet_proxy_deliveries_total'), 2);
    assert.equal(value(again, 'comet_proxy_holds_total'), 4);
  });

  test('it needs the control Bearer secret (or a control JWT signed with it), like /stats; a Grip-Sig does not open it', async (t) => {
    const h = await startHarness(t);
    const anonymous = await scrape(h, null);
    assert.equal(anonymous.status, 401);
    assert.equal((JSON.parse(anonymous.text) as { code: string }).code, 'PROXY_ERR_UNAUTHORIZED');
    assert.equal((await scrape(h, 'wrong-secret-0123456789')).status, 401);
    assert.equal((await scrape(h, await signGripSig(TEST_SECRET))).status, 401);
    const controlJwt = await new SignJWT({ iss: 'comet-chat-publisher' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('10m').sign(new TextEncoder().encode(TEST_CONTROL_SECRET));
    assert.equal((await scrape(h, controlJwt)).status, 200);
    const post = await h.control('/metrics', '', { method: 'POST' });
    assert.equal(post.status, 405);
    // The refusals above are counted, and visible to an authorised scrape.
    assert.equal(value((await scrape(h)).samples, 'comet_proxy_errors_total', { code: 'PROXY_ERR_UNAUTHORIZED' }), 3);
  });

  test('two proxies in one process keep their own registries', async (t) => {
    const one = await startHarness(t);
    const two = await startHarness(t);
    one.app.handle = (_req, res) => writeHold(res, { channel: 'room:a' });
    const poll = one.get('/poll');
    await one.waitParked(1);
    await one.control('/publish/', { items: [{ channel: 'room:a', formats: jsonFormat({}) }] });
    await poll;

    assert.match(await one.proxy.metrics.registry.getSingleMetricAsString('comet_proxy_deliveries_total'), /^comet_proxy_deliveries_total 1$/m);
    assert.match(await two.proxy.metrics.registry.getSingleMetricAsString('comet_proxy_deliveries_total'), /^comet_proxy_deliveries_total 0$/m);
    assert.equal(value((await scrape(two)).samples, 'comet_proxy_publishes_total'), 0);
  });

  test('each delivery is in the next scrape: hold and publish-to-write counts go up by one per delivery, scrape after scrape', async (t) => {
    const h = await startHarness(t);
    h.app.handle = (_req, res) => writeHold(res, { channel: 'room:s' });
    const counts = async (): Promise<[number, number]> => {
      const samples = (await scrape(h)).samples;
      return [
        sampleValue(samples, 'comet_proxy_hold_duration_seconds_count', { outcome: 'delivered' }) ?? 0,
        sampleValue(samples, 'comet_proxy_publish_to_write_seconds_count', { kind: 'publish' }) ?? 0,
      ];
    };
    assert.deepEqual(await counts(), [0, 0]);
    for (let n = 1; n <= 3; n++) {
      const poll = h.get('/p');
      await h.waitParked(1);
      await h.control('/publish/', { items: [{ channel: 'room:s', id: String(n), formats: jsonFormat({ n }) }] });
      assert.deepEqual((await poll).json(), { n });
      assert.deepEqual(await counts(), [n, n], `after delivery ${n}`);
    }
  });

  test('the parked gauge follows requests as they park and leave', async (t) => {
    const h = await startHarness(t);
    h.app.handle = (_req, res) => writeHold(res, { channel: 'room:g' });
    const polls = [h.get('/p'), h.get('/p'), h.get('/p')];
    await h.waitParked(3);
    assert.match(await h.proxy.metrics.registry.getSingleMetricAsString('comet_proxy_parked'), /^comet_proxy_parked 3$/m);
    await h.control('/publish/', { items: [{ channel: 'room:g', formats: jsonFormat({}) }] });
    await Promise.all(polls);
    assert.match(await h.proxy.metrics.registry.getSingleMetricAsString('comet_proxy_parked'), /^comet_proxy_parked 0$/m);
  });
});
