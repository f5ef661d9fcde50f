/**
 * Re-poll leases (protocol/lease.ts): the proxy obeys what a lease says, so
 * only a lease signed with the lease key and well-formed in every claim passes.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { bindingDigest, cookieValue, LeaseError, signLease, verifyLease, type LeaseClaims } from '../../protocol/lease.js';

const KEY = 'lease-key-0123456789abcdef';

export function sampleClaims(overrides: Partial<LeaseClaims> = {}): LeaseClaims {
  const now = Date.now() / 1000;
  return {
    cid: 'A'.repeat(21),
    sub: 's1',
    bind: { cookie: 'sid', sha256: bindingDigest('token-1') },
    ch: [['room:general', '42']],
    iat: now,
    exp: now + 60,
    req: { path: '/api/poll', cid: 'cid', cursors: 'rooms', prefix: 'room:' },
    hold: { timeout: 55, headers: { 'content-type': 'application/json' }, body: '{"events":[]}' },
    batch: { prefix: '{"events":[', sep: ',', suffix: ']}', max: 500 },
    ...overrides,
  };
}

test('a lease signed with the key verifies to the same claims', () => {
  const claims = sampleClaims();
  assert.deepEqual(verifyLease(signLease(claims, KEY), KEY), claims);
});

test('a lease signed with another key, or with its payload changed, is refused', () => {
  const token = signLease(sampleClaims(), KEY);
  assert.throws(() => verifyLease(token, 'another-key-0123456789abcdef'), LeaseError);
  const [h, , s] = token.split('.');
  const wider = Buffer.from(JSON.stringify(sampleClaims({ ch: [['room:general', '42'], ['room:secret', '1']] }))).toString('base64url');
  assert.throws(() => verifyLease(`${h}.${wider}.${s}`, KEY), /bad signature/);
  assert.throws(() => verifyLease(`${h}.${wider}`, KEY), LeaseError);
  assert.throws(() => verifyLease('x'.repeat(9000), KEY), /longer than/);
});

test('only the three-part compact form with our HS256 header verifies: any other shape is refused as such', () => {
  const token = signLease(sampleClaims(), KEY);
  const [h, p, s] = token.split('.') as [string, string, string];
  const shapes = [
    `${token}.`,
    `${token}.${s}`,
    `.${token}`,
    `x${token}`,
    `${h}${p}.${s}`,
    `${h}.${p}`,
    h,
    '',
    `${h.slice(1)}.${p}.${s}`,
    `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${p}.${s}`,
  ];
  for (const shape of shapes) assert.throws(() => verifyLease(shape, KEY), /not an HS256 JWS/, JSON.stringify(shape.slice(0, 40)));
  // The signature covers exactly `header.payload`: an empty payload or a moved dot does not verify.
  assert.throws(() => verifyLease(`${h}..${s}`, KEY), /bad signature/);
  assert.throws(() => verifyLease(`${h}.${p.slice(0, -1)}.${p.slice(-1)}${s}`, KEY), /bad signature/);
});

test('a signed lease with a malformed claim is refused with the claim named', () => {
  const cases: Array<[Partial<LeaseClaims>, RegExp]> = [
    [{ cid: 'short' }, /cid/],
    [{ ch: [] }, /ch must list/],
    [{ ch: [['room general', '1']] }, /ch entries/],
    [{ exp: 1, iat: 2 }, /exp must be after iat/],
    [{ req: { path: 'api/poll', cid: 'cid', cursors: 'rooms', prefix: 'room:' } }, /req.path/],
    [{ req: { path: '/api/poll', cid: 'x', cursors: 'x', prefix: 'room:' } }, /two different/],
    [{ hold: { timeout: 55, headers: { 'x-a': 'a\r\nb' }, body: '' } }, /CR, LF/],
    [{ hold: { timeout: 55, headers: { 'bad name': 'a' }, body: '' } }, /header name/],
    [{ batch: { prefix: '[', sep: ',', suffix: ']', max: 0 } }, /batch.max/],
  ];
  for (const [overrides, reason] of cases) {
    assert.throws(() => verifyLease(signLease(sampleClaims(overrides), KEY), KEY), reason, JSON.stringify(overrides));
  }
});

test('bindingDigest is SHA-256 of the UTF-8 value in base64url, as the app and every proxy compute it', () => {
  // FIPS 180-2's "abc" vector, and a value beyond ASCII (hashed as UTF-8 bytes).
  assert.equal(bindingDigest('abc'), 'ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0');
  assert.equal(bindingDigest('h\u00e9llo \u2192'), createHash('sha256').update(Buffer.from('h\u00e9llo \u2192', 'utf8')).digest('base64url'));
  assert.equal(bindingDigest(''), '47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU');
});

test('cookieValue reads a cookie as the app does: first occurrence, quotes removed, percent-decoded', () => {
  assert.equal(cookieValue('a=1; sid=abc; sid=def', 'sid'), 'abc');
  assert.equal(cookieValue('sid="q%20v"', 'sid'), 'q v');
  assert.equal(cookieValue('xsid=1', 'sid'), undefined);
  assert.equal(cookieValue(undefined, 'sid'), undefined);
  assert.equal(cookieValue('sid=%E0%A4%A', 'sid'), undefined);
});
