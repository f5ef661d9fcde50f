import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { jsonFormat, startHarness, waitFor } from '../helpers/proxy-harness.js';
import { writeHold } from '../helpers/scripted-app.js';

const CID = 'V1StGXR8_Z5jdHi6B-myT';
const OTHER_CID = 'xxxxxxxxxxxxxxxxxxxx1';

function noGripHeaders(headers: Record<string, unknown>): void {
  const grip = Object.keys(headers).filter((h) => h.toLowerCase().startsWith('grip-'));
  assert.deepEqual(grip, [], 'no Grip-* header may reach a client');
}

describe('publishing to parked requests', { timeout: 10_000 }, () => {
  test('a publish delivers to every request parked on the channel, merged onto its held response', async (t) => {
    const h = await startHarness(t);
    h.app.handle = (_req, res) =>
      writeHold(res, {
        channel: 'room:general; prev-id=1',
        headers: { 'Comet-Connection-Id': CID, 'X-Held': 'held' },
        body: '{"events":[]}',
      });
    const first = h.get('/poll');
    const second = h.get('/poll');
    await h.waitParked(2);

    const published = await h.control('/publish/', {
      items: [
        {
          channel: 'room:general',
          id: '2',
          'prev-id': '1',
          formats: {
            'http-response': {
              code: 201,
              headers: { 'Content-Type': 'application/json; charset=utf-8', 'x-held': 'from-item', 'Grip-Evil': '1' },
              body: '{"events":[2]}',
            },
          },
        },
      ],
    });
    assert.equal(published.status, 200);
    assert.deepEqual(published.json(), { delivered: 2, queued: 0, dropped: 0, reasked: 0 });

    for (const res of [await first, await second]) {
      assert.equal(res.status, 201);
      assert.equal(res.statusMessage, 'Created');
      assert.equal(res.text, '{"events":[2]}');
      assert.equal(res.headers['content-type'], 'application/json; charset=utf-8');
      assert.equal(res.headers['content-length'], String(Buffer.byteLength('{"events":[2]}')));
      assert.equal(res.headers['comet-connection-id'], CID, 'held headers are the base');
      assert.equal(res.headers['x-held'], 'from-item', 'item headers override held ones case-insensitively');
      noGripHeaders(res.headers);
    }
    assert.equal(h.proxy.stats().parked, 0);
    assert.equal(h.proxy.stats().deliveries, 2);
  });

  test('a body-bin item is base64-decoded and the default status is 200 OK', async (t) => {
    const h = await startHarness(t);
    h.app.handle = (_req, res) => writeHold(res, { channel: 'bin' });
    const poll = h.get('/poll');
    await h.waitParked(1);
    await h.control('/publish/', { items: [{ channel: 'bin', formats: { 'http-response': { 'body-bin': Buffer.from([0, 1, 255]).toString('base64') } } }] });
    const res = await poll;
    assert.equal(res.status, 200);
    assert.equal(res.statusMessage, 'OK');
    assert.deepEqual([...res.body], [0, 1, 255]);
  });

  test('an item whose id equals the request prev-id is skipped and the request stays parked', async (t) => {
    const h = await startHarness(t);
    h.app.handle = (_req, res) => writeHold(res, { channel: 'room:general; prev-id=5' });
    const poll = h.get('/poll');
    await h.waitParked(1);

    const skipped = await h.control('/publish/', { items: [{ channel: 'room:general', id: '5', formats: jsonFormat({ n: 5 }) }] });
    assert.deepEqual(skipped.json(), { delivered: 0, queued: 0, dropped: 0, reasked: 0 });
    assert.equal(h.proxy.stats().parked, 1);

    await h.control('/publish/', { items: [{ channel: 'room:general', id: '6', 'prev-id': '5', formats: jsonFormat({ n: 6 }) }] });
    assert.deepEqual((await poll).json(), { n: 6 });
    assert.equal(h.app.requests.length, 1, 'no re-ask was needed');
  });

  test('a publish on another channel does not touch the parked request', async (t) => {
    const h = await startHarness(t);
    h.app.handle = (_req, res) => writeHold(res, { channel: 'a' });
    void h.get('/poll');
    await h.waitParked(1);
    const res = await h.control('/publish/', { items: [{ channel: 'b', formats: jsonFormat({}) }] });
    assert.deepEqual(res.json(), { delivered: 0, queued: 0, dropped: 0, reasked: 0 });
    assert.equal(h.proxy.stats().parked, 1);
  });
});

describe('timeouts', { timeout: 10_000 }, () => {
  test('a timeout answers the held response with the Grip-Status code and reason, without Grip-* headers', async (t) => {
    const h = await startHarness(t, { minHoldTimeoutMs: 0 });
    h.app.handle = (_req, res) =>
      writeHold(res, { channel: 'room:x', timeoutS: 0.05, status: '202 Held Back', headers: { 'X-Custom': 'yes' }, body: '{"events":[],"held":true}' });
    const res = await h.get('/poll');
    assert.equal(res.status, 202);
    assert.equal(res.statusMessage, 'Held Back');
    assert.equal(res.headers['x-custom'], 'yes');
    assert.equal(res.headers['content-type'], 'application/json');
    assert.equal(res.text, '{"events":[],"held":true}');
    noGripHeaders(res.headers);
    const stats = h.proxy.stats();
    assert.equal(stats.timeouts, 1);
    assert.equal(stats.parked, 0);
    assert.equal(stats.holds, 1);
  });
});

describe('connection IDs', { timeout: 10_000 }, () => {
  test('a push to a parked connection ID delivers to it', async (t) => {
    const h = await startHarness(t);
    h.app.handle = (_req, res) => writeHold(res, { connectionId: CID, headers: { 'X-Base': 'held' } });
    const poll = h.get('/poll');
    await h.waitParked(1);
    const pushed = await h.control('/push/', { items: [{ 'connection-id': CID, formats: jsonFormat({ dm: 'hi' }) }] });
    assert.deepEqual(pushed.json(), { delivered: 1, queued: 0, dropped: 0, reasked: 0 });
    const res = await poll;
    assert.deepEqual(res.json(), { dm: 'hi' });
    assert.equal(res.headers['x-base'], 'held');
  });

  test('pushes while not parked are queued and the next holds are answered at once, oldest first', async (t) => {
    const h = await startHarness(t);
    h.app.handle = (_req, res) => writeHold(res, { connectionId: CID, channel: 'room:a' });
    const pushed = await h.control('/push', {
      items: [
        { 'connection-id': CID, formats: jsonFormat({ n: 1 }) },
        { 'connection-id': CID, formats: jsonFormat({ n: 2 }) },
      ],
    });
    assert.deepEqual(pushed.json(), { delivered: 0, queued: 2, dropped: 0, reasked: 0 });
    assert.equal(h.proxy.stats().queuedItems, 2);

    assert.deepEqual((await h.get('/poll')).json(), { n: 1 });
    assert.deepEqual((await h.get('/poll')).json(), { n: 2 });
    const stats = h.proxy.stats();
    assert.equal(stats.queuedItems, 0);
    assert.equal(stats.queuedBytes, 0);

    void h.get('/poll');
    await h.waitParked(1); // the queue is empty: the third poll parks
  });

  test('a queue overflow drops the items and the next hold gets the resync answer', async (t) => {
    const h = await startHarness(t, { queueMaxItems: 2 });
    h.app.handle = (_req, res) => writeHold(res, { connectionId: CID, channel: ['room:a', 'room:b'] });
    const pushed = await h.control('/push/', {
      items: [1, 2, 3].map((n) => ({ 'connection-id': CID, formats: jsonFormat({ n }) })),
    });
    assert.deepEqual(pushed.json(), { delivered: 0, queued: 2, dropped: 3, reasked: 0 });

    const res = await h.get('/poll');
    assert.equal(res.status, 200);
    assert.equal(res.headers['comet-resync'], 'queue-overflow');
    assert.equal(res.headers['cache-control'], 'no-store');
    assert.equal(res.headers['content-type'], 'application/json; charset=utf-8');
    assert.deepEqual(res.json(), { resync: { reason: 'queue-overflow', channels: ['room:a', 'room:b'] } });
    assert.equal(h.proxy.stats().resyncs, 1);
    assert.equal(h.proxy.stats().dropped, 3);

    void h.get('/poll');
    await h.waitParked(1); // resync taken: the next poll parks normally
  });

  test('queued items that outlive the queue TTL turn into a queue-expired resync', async (t) => {
    const clock = { ms: Date.now() };
    const h = await startHarness(t, {
      queueTtlMs: 1_000,
      timers: { setTimeout: (fn, ms) => setTimeout(fn, ms), clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout), now: () => clock.ms },
    });
    h.app.handle = (_req, res) => writeHold(res, { connectionId: CID });
    await h.control('/push/', { items: [{ 'connection-id': CID, formats: jsonFormat({ late: true }) }] });
    clock.ms += 1_000;
    const res = await h.get('/poll');
    assert.equal(res.headers['comet-resync'], 'queue-expired');
    assert.deepEqual(res.json(), { resync: { reason: 'queue-expired', channels: [] } });
  });

  test('a close answers the parked request with 410 and later holds on that ID get 410', async (t) => {
    const h = await startHarness(t);
    h.app.handle = (_req, res) => writeHold(res, { connectionId: CID });
    const poll = h.get('/poll');
    await h.waitParked(1);

    const closed = await h.control('/close/', { items: [{ 'connection-id': CID }] });
    assert.deepEqual(closed.json(), { delivered: 1, queued: 0, dropped: 0, reasked: 0 });
    const res = await poll;
    assert.equal(res.status, 410);
    assert.equal((res.json() as { code: string }).code, 'PROXY_ERR_CONNECTION_CLOSED');

    const again = await h.get('/poll');
    assert.equal(again.status, 410);
    assert.equal((again.json() as { code: string }).code, 'PROXY_ERR_CONNECTION_CLOSED');
    assert.equal(h.proxy.stats().parked, 0);

    const pushed = await h.control('/push/', { items: [{ 'connection-id': CID, formats: jsonFormat({}) }] });
    assert.deepEqual(pushed.json(), { delivered: 0, queued: 0, dropped: 1, reasked: 0 }, 'a push to a closed ID is dropped');
  });

  test('a close with a response answers the parked request with it and discards the queue', async (t) => {
    const h = await startHarness(t);
    await h.control('/push/', { items: [{ 'connection-id': OTHER_CID, formats: jsonFormat({ queued: true }) }] });
    const closedQueue = await h.control('/close/', { items: [{ 'connection-id': OTHER_CID }] });
    assert.deepEqual(closedQueue.json(), { delivered: 0, queued: 0, dropped: 1, reasked: 0 });

    h.app.handle = (_req, res) => writeHold(res, { connectionId: CID });
    const poll = h.get('/poll');
    await h.waitParked(1);
    await h.control('/close/', { items: [{ 'connection-id': CID, formats: jsonFormat({ bye: true }, { code: 200 }) }] });
    assert.deepEqual((await poll).json(), { bye: true });
  });

  test('a second hold on the same connection ID answers the first with its timeout response', async (t) => {
    const h = await startHarness(t);
    let n = 0;
    h.app.handle = (_req, res) => writeHold(res, { connectionId: CID, body: JSON.stringify({ poll: ++n }) });
    const first = h.get('/poll');
    await h.waitParked(1);
    const second = h.get('/poll');
    assert.deepEqual((await first).json(), { poll: 1 });
    await h.waitParked(1);
    await h.control('/push/', { items: [{ 'connection-id': CID, formats: jsonFormat({ to: 'second' }) }] });
    assert.deepEqual((await second).json(), { to: 'second' });
  });

  test('a client that goes away while parked is forgotten at once and later pushes are queued', async (t) => {
    const h = await startHarness(t);
    h.app.handle = (_req, res) => writeHold(res, { connectionId: CID, channel: 'room:a' });
    const abort = new AbortController();
    const poll = h.get('/poll', { signal: abort.signal });
    await h.waitParked(1);
    abort.abort();
    await assert.rejects(poll);
    await waitFor(() => h.proxy.stats().parked === 0, { message: 'the aborted request to leave the registry' });
    assert.equal(h.proxy.stats().clientAborts, 1);

    const pushed = await h.control('/push/', { items: [{ 'connection-id': CID, formats: jsonFormat({ kept: true }) }] });
    assert.deepEqual(pushed.json(), { delivered: 0, queued: 1, dropped: 0, reasked: 0 });
    const published = await h.control('/publish/', { items: [{ channel: 'room:a', formats: jsonFormat({}) }] });
    assert.deepEqual(published.json(), { delivered: 0, queued: 0, dropped: 0, reasked: 0 });
    assert.deepEqual((await h.get('/poll')).json(), { kept: true });
  });
});

describe('stats', { timeout: 10_000 }, () => {
  test('stats count connections, queued items and bytes, and channels with a known last id', async (t) => {
    const h = await startHarness(t);
    h.app.handle = (_req, res) => writeHold(res, { connectionId: CID });
    void h.get('/poll');
    await h.waitParked(1);
    await h.control('/push/', { items: [{ 'connection-id': OTHER_CID, formats: { 'http-response': { body: 'abcd' } } }] });
    await h.control('/publish/', { items: [{ channel: 'c1', id: '1', formats: jsonFormat({}) }, { channel: 'c2', formats: jsonFormat({}) }] });
    const stats = h.proxy.stats();
    assert.equal(stats.parked, 1);
    assert.equal(stats.connections, 2);
    assert.equal(stats.queuedItems, 1);
    assert.equal(stats.queuedBytes, 4);
    assert.equal(stats.channels, 1);
    assert.equal(stats.publishes, 2);
    assert.equal(stats.pushes, 1);
  });
});
