/**
 * Small held bodies are kept once (proxy/http/shared-bodies.ts): every parked request's timeout response and every
 * lease's hold share one copy of equal bytes, in memory of its own rather than a slice that keeps a pool slab alive.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseHoldInstruction, type HoldLimits } from '../../proxy/forward/instruction.js';
import { SHARED_BODY_MAX_BYTES, SHARED_BODIES_MAX, sharedBody, sharedTextBody } from '../../proxy/http/shared-bodies.js';

const LIMITS: HoldLimits = { defaultHoldTimeoutMs: 55_000, minHoldTimeoutMs: 1_000, maxHoldTimeoutMs: 300_000 };

test('equal small bodies are one buffer, of its own memory; different ones stay apart', () => {
  // Slices of one pool slab, as bodies read from sockets and concatenated are.
  const a = Buffer.from('{"events":[]}');
  const b = Buffer.from('{"events":[]}');
  assert.notEqual(a.buffer.byteLength, a.length, 'the input is a pool slice');
  const shared = sharedBody(a);
  assert.equal(sharedBody(b), shared);
  assert.equal(sharedTextBody('{"events":[]}'), shared);
  assert.equal(shared.toString(), '{"events":[]}');
  assert.equal(shared.byteOffset, 0);
  assert.equal(shared.buffer.byteLength, shared.length, 'its own memory, not a slab');
  assert.notEqual(sharedBody(Buffer.from('{"events":[1]}')), shared);
});

test('a body over the size limit is kept as it came', () => {
  const big = Buffer.alloc(SHARED_BODY_MAX_BYTES + 1, 'x');
  assert.equal(sharedBody(big), big);
  assert.notEqual(sharedBody(Buffer.alloc(SHARED_BODY_MAX_BYTES + 1, 'x')), big);
});

test('at most SHARED_BODIES_MAX distinct bodies are remembered, the oldest dropped first', () => {
  const first = sharedTextBody('oldest-body');
  for (let i = 0; i < SHARED_BODIES_MAX; i++) sharedTextBody(`filler-${i}`);
  const again = sharedTextBody('oldest-body');
  assert.notEqual(again, first, 'forgotten, so a new copy');
  assert.equal(again.toString(), 'oldest-body');
  assert.equal(sharedTextBody(`filler-${SHARED_BODIES_MAX - 1}`), sharedTextBody(`filler-${SHARED_BODIES_MAX - 1}`));
});

test('hold instructions with the same timeout body share it', () => {
  const headers = { 'grip-hold': 'response', 'grip-channel': 'room-1', 'content-type': 'application/json' };
  const one = parseHoldInstruction({ statusCode: 200, headers }, Buffer.from('{"events":[],"n":7}'), LIMITS)!;
  const two = parseHoldInstruction({ statusCode: 200, headers }, Buffer.from('{"events":[],"n":7}'), LIMITS)!;
  assert.equal(one.timeoutResponse.body, two.timeoutResponse.body);
  assert.equal(one.timeoutResponse.body.toString(), '{"events":[],"n":7}');
});
