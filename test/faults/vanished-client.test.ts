/**
 * Fault: a push for a client that vanished (its tab closed, its network
 * dropped) between or during polls. The proxy keeps the pushes for its next
 * poll with that connection ID; if it does not come back within `queueTtlMs`,
 * the pushes expire and that next poll gets the explicit resync answer instead
 * of silently missing them. Time is the proxy's injected clock.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ProxyTimers } from '../../proxy/options.js';
import { rawGet } from '../helpers/fault-stack.js';
import { jsonFormat, startHarness, waitFor } from '../helpers/proxy-harness.js';
import { writeHold } from '../helpers/scripted-app.js';

const CID = 'vanishedClient0000001';

/** Real timers with a clock the test moves by hand. */
function manualClock(): ProxyTimers & { advance(ms: number): void } {
  let now = 1_000_000;
  return {
    setTimeout: (callback, ms) => setTimeout(callback, ms),
    clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
    now: () => now,
    advance: (ms) => {
      now += ms;
    },
  };
}

test('pushes to an ID whose client vanished while parked are queued and delivered in order on its next polls', async (t) => {
  const h = await startHarness(t);
  h.app.handle = (_req, res) => writeHold(res, { channel: 'room:a', connectionId: CID, body: '{"timeout":true}' });
  const client = await rawGet(Number(new URL(h.clientUrl).port), '/poll');
  await h.waitParked(1);
  client.socket.destroy();
  await waitFor(() => h.proxy.stats().parked === 0, { timeoutMs: 5000, message: 'the vanished client to be unparked' });

  for (const n of [1, 2, 3]) {
    const res = await h.control('/push/', { items: [{ 'connection-id': CID, formats: jsonFormat({ n }) }] });
    assert.deepEqual(res.json(), { delivered: 0, queued: 1, dropped: 0, reasked: 0 });
  }
  assert.equal(h.proxy.stats().queuedItems, 3);

  // The client comes back: one queued item per answer, oldest first, each at once.
  for (const n of [1, 2, 3]) assert.deepEqual((await h.get('/poll')).json(), { n });
  assert.equal(h.proxy.stats().queuedItems, 0);
  const fourth = h.get('/poll');
  await h.waitParked(1);
  await h.control('/push/', { items: [{ 'connection-id': CID, formats: jsonFormat({ n: 4 }) }] });
  assert.deepEqual((await fourth).json(), { n: 4 });
  assert.equal(h.proxy.stats().resyncs, 0);
});

test('pushes queued longer than queueTtlMs expire into a queue-expired resync answer on the next poll', async (t) => {
  const clock = manualClock();
  const h = await startHarness(t, { timers: clock, queueTtlMs: 30_000, resyncTtlMs: 600_000 });
  h.app.handle = (_req, res) => writeHold(res, { channel: 'room:a', connectionId: CID, body: '{"timeout":true}' });

  const queued = await h.control('/push/', { items: [{ 'connection-id': CID, formats: jsonFormat({ n: 1 }) }] });
  assert.equal((queued.json() as { queued: number }).queued, 1);
  clock.advance(29_999);
  h.proxy.registry.sweep();
  assert.equal(h.proxy.stats().queuedItems, 1, 'not expired before the TTL');
  clock.advance(1);
  h.proxy.registry.sweep();
  const stats = h.proxy.stats();
  assert.equal(stats.queuedItems, 0, 'expired at the TTL');
  assert.equal(stats.dropped, 1);

  const res = await h.get('/poll');
  assert.equal(res.status, 200);
  assert.equal(res.headers['comet-resync'], 'queue-expired');
  assert.deepEqual(res.json(), { resync: { reason: 'queue-expired', channels: ['room:a'] } });
  assert.equal(h.proxy.stats().resyncs, 1);
  assert.equal(h.proxy.stats().connections, 0, 'the resync was taken: nothing kept for the ID');

  // The resync is given once: the poll after it parks as usual.
  const after = h.get('/poll');
  await h.waitParked(1);
  await h.control('/push/', { items: [{ 'connection-id': CID, formats: jsonFormat({ n: 2 }) }] });
  assert.deepEqual((await after).json(), { n: 2 });
});

test('an expired queue whose client never comes back is forgotten after resyncTtlMs', async (t) => {
  const clock = manualClock();
  const h = await startHarness(t, { timers: clock, queueTtlMs: 1_000, resyncTtlMs: 10_000 });
  await h.control('/push/', { items: [{ 'connection-id': CID, formats: jsonFormat({ n: 1 }) }] });
  clock.advance(1_000);
  h.proxy.registry.sweep();
  assert.equal(h.proxy.stats().connections, 1, 'the resync is kept for the client for a while');
  clock.advance(10_000);
  h.proxy.registry.sweep();
  assert.equal(h.proxy.stats().connections, 0, 'and then forgotten: a vanished client costs no memory forever');
});

test('with a short real queue TTL, the sweep expires the queue on its own and the next poll gets the resync', async (t) => {
  const h = await startHarness(t, { queueTtlMs: 30, sweepIntervalMs: 10 });
  h.app.handle = (_req, res) => writeHold(res, { connectionId: CID, body: '{"timeout":true}' });
  await h.control('/push/', { items: [{ 'connection-id': CID, formats: jsonFormat({ n: 1 }) }] });
  await waitFor(() => h.proxy.stats().dropped === 1, { timeoutMs: 5000, message: 'the sweep to expire the queued push' });
  const res = await h.get('/poll');
  assert.equal(res.headers['comet-resync'], 'queue-expired');
});
