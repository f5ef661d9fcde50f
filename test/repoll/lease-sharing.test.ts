/**
 * Leases of one app carry the same hold, batch envelope and request shape for every client: the lease table keeps
 * one copy of each and one hold response, shared by every lease with equal parts (proxy/repoll/lease-table.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { bindingDigest, signLease, type LeaseClaims } from '../../protocol/lease.js';
import type { ClientRequest } from '../../proxy/http/client-message.js';
import { LeaseTable } from '../../proxy/repoll/lease-table.js';

const KEY = 'lease-sharing-test-key-0123456789abcdef';

function claims(cid: string, sid: string, body = '{"events":[]}'): LeaseClaims {
  const now = Math.floor(Date.now() / 1000);
  return {
    cid,
    sub: `s-${sid}`,
    bind: { cookie: 'sid', sha256: bindingDigest(sid) },
    ch: [['room:general', '7']],
    iat: now,
    exp: now + 60,
    req: { path: '/api/poll', cid: 'cid', cursors: 'rooms', prefix: 'room:' },
    hold: { timeout: 55, headers: { 'content-type': 'application/json; charset=utf-8' }, body },
    batch: { prefix: '{"events":[', sep: ',', suffix: ']}', max: 100 },
  };
}

function requestWithCookie(sid: string): ClientRequest {
  return { method: 'GET', url: '/api/poll', httpVersion: '1.1', headers: { cookie: `sid=${sid}` }, rawHeaders: [], socket: {} as ClientRequest['socket'] };
}

test('leases with equal hold, batch and request shape share them and their hold response; a different hold does not', () => {
  const table = new LeaseTable({ leaseKey: KEY, maxLeases: 100, maxLifetimeMs: 3_600_000, maxRevocations: 100, now: () => Date.now(), logger: pino({ level: 'silent' }) });
  const grant = (c: LeaseClaims, sid: string) => {
    const lease = table.grant(signLease(c, KEY), requestWithCookie(sid));
    assert.ok(typeof lease !== 'string', `granted: ${String(lease)}`);
    return lease;
  };
  const a = grant(claims('V1StGXR8_Z5jdHi6B-myA', 'a'), 'a');
  const b = grant(claims('V1StGXR8_Z5jdHi6B-myB', 'b'), 'b');
  assert.equal(a.held, b.held, 'one hold response');
  assert.equal(a.claims.hold, b.claims.hold);
  assert.equal(a.claims.batch, b.claims.batch);
  assert.equal(a.claims.req, b.claims.req);
  assert.notEqual(a.claims.bind, b.claims.bind, 'what is per client stays per client');
  assert.equal(a.held.body.toString(), '{"events":[]}');
  assert.equal(a.held.headers['content-type'], 'application/json; charset=utf-8');

  const c = grant(claims('V1StGXR8_Z5jdHi6B-myC', 'c', '{"events":[],"x":1}'), 'c');
  assert.notEqual(c.held, a.held);
  assert.equal(c.held.body.toString(), '{"events":[],"x":1}');
  assert.equal(c.claims.batch, a.claims.batch, 'the batch is still shared');
});
