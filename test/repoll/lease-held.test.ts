/**
 * A lease's hold response (docs/protocol.md §13.1), the timeout answer and the base of every delivery of the
 * re-polls it covers: leases with equal holds share one frozen object instead of a copy each (issue 15), and a
 * re-poll parked under a shared hold is answered with exactly that hold. Real proxy and scripted app.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bindingDigest, signLease } from '../../protocol/lease.js';
import { startHarness } from '../helpers/proxy-harness.js';

const LEASE_KEY = 'lease-held-test-key-0123456789abc';

function leaseFor(cid: string, body: string): string {
  const now = Date.now() / 1000;
  return signLease(
    {
      cid,
      sub: `s-${cid}`,
      bind: { cookie: 'sid', sha256: bindingDigest('token-1') },
      ch: [['room:general', '42']],
      iat: now,
      exp: now + 60,
      req: { path: '/api/poll', cid: 'cid', cursors: 'rooms', prefix: 'room:' },
      hold: { timeout: 1, headers: { 'content-type': 'application/json', 'cache-control': 'no-store', 'grip-ignored': 'x' }, body },
      batch: { prefix: '{"events":[', sep: ',', suffix: ']}', max: 500 },
    },
    LEASE_KEY,
  );
}

test('leases with equal hold responses share one frozen object; a different hold gets its own', async (t) => {
  const h = await startHarness(t, { leaseKey: LEASE_KEY });
  const cids = { a: 'A'.repeat(21), b: 'B'.repeat(21), c: 'C'.repeat(21) };
  const bodies = { a: '{"events":[]}', b: '{"events":[]}', c: '{"events":[],"other":true}' };
  h.app.handle = (req, res) => {
    const who = req.url!.slice(1) as keyof typeof cids;
    res.writeHead(200, { 'Content-Type': 'application/json', 'Grip-Lease': leaseFor(cids[who], bodies[who]) });
    res.end('{"events":[]}');
  };
  for (const who of ['a', 'b', 'c']) assert.equal((await h.get(`/${who}`, { headers: { cookie: 'sid=token-1' } })).status, 200);
  const leases = h.proxy.repolls!.leases;
  const [a, b, c] = [cids.a, cids.b, cids.c].map((cid) => leases.lookup(cid)!.held);
  assert.equal(a, b, 'one object for the equal holds');
  assert.notEqual(a, c);
  assert.ok(Object.isFrozen(a) && Object.isFrozen(a!.headers), 'shared, so frozen');
  assert.deepEqual(a!.headers, { 'content-type': 'application/json', 'cache-control': 'no-store' }, 'Grip-* still dropped');
  assert.equal(c!.body.toString(), bodies.c);
});

test('a re-poll parked under a shared hold times out with exactly that hold response', async (t) => {
  const h = await startHarness(t, { leaseKey: LEASE_KEY, minHoldTimeoutMs: 200 });
  const cid = 'D'.repeat(21);
  h.app.handle = (_req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/json', 'Grip-Lease': leaseFor(cid, '{"events":[]}') });
    res.end('{"events":[{"id":42}]}');
  };
  assert.equal((await h.get('/first', { headers: { cookie: 'sid=token-1' } })).status, 200);
  const parksBefore = h.proxy.stats().repollParks;
  const repoll = await h.get(`/api/poll?cid=${cid}&rooms=general:42`, { headers: { cookie: 'sid=token-1' }, signal: AbortSignal.timeout(10_000) });
  assert.equal(h.proxy.stats().repollParks, parksBefore + 1, 'parked by the proxy, not the app');
  assert.equal(repoll.status, 200);
  assert.equal(repoll.text, '{"events":[]}');
  assert.equal(repoll.headers['cache-control'], 'no-store');
  assert.equal(repoll.headers['grip-ignored'], undefined);
});
