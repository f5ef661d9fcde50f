/**
 * GripSigVerifier: the app's Grip-Sig check with memory. Remembering a valid
 * token must never widen what is accepted: the same tokens pass and fail as
 * with verifyGripSig, expiry included, and bad tokens are never remembered.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GripSigVerifier, signGripSig, verifyGripSig } from '../../protocol/grip-sig.js';

const SECRET = 'a-secret-of-the-app-and-its-proxy';

test('a valid token passes on first and later checks, and is refused once its exp has passed, remembered or not', async () => {
  const t0 = Date.now();
  let now = t0;
  const verifier = new GripSigVerifier(SECRET, () => now);
  const token = await signGripSig(SECRET, t0, 60);
  assert.equal(await verifier.verify(token), true);
  assert.equal(await verifier.verify(token), true);
  now = t0 + 61_000;
  assert.equal(await verifier.verify(token), false);
});

test('tokens of another secret, garbage and no token are refused every time, as verifyGripSig refuses them', async () => {
  const verifier = new GripSigVerifier(SECRET);
  const foreign = await signGripSig('another-secret-entirely');
  for (const bad of [foreign, 'not.a.jwt', '', undefined, 'x'.repeat(5000)]) {
    assert.equal(await verifier.verify(bad), false);
    assert.equal(await verifier.verify(bad), false);
    assert.equal(await verifyGripSig(bad, SECRET), false);
  }
});

test('it remembers at most maxTokens tokens, and a forgotten one still passes by verifying again', async () => {
  const verifier = new GripSigVerifier(SECRET, Date.now, 2);
  const tokens = await Promise.all([1, 2, 3].map((i) => signGripSig(SECRET, Date.now() - i * 1000)));
  for (const token of tokens) assert.equal(await verifier.verify(token), true);
  for (const token of tokens) assert.equal(await verifier.verify(token), true);
});
