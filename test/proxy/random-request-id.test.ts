/**
 * Request ids the proxy makes (proxy/http/random-request-id.ts): `crypto.randomUUID()`'s format, one flat string
 * each, and never the same twice, across batch refills.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { randomRequestId } from '../../proxy/http/random-request-id.js';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test('every id is a version 4 UUID in lower-case hex, and 10,000 ids (many batches) are all different', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 10_000; i++) {
    const id = randomRequestId();
    assert.match(id, UUID_V4);
    seen.add(id);
  }
  assert.equal(seen.size, 10_000);
});

test('the random part varies in every position: each hex digit of 2,000 ids takes many values', () => {
  const ids = Array.from({ length: 2000 }, () => randomRequestId());
  for (let at = 0; at < 36; at++) {
    if (at === 8 || at === 13 || at === 18 || at === 23) continue; // dashes
    const values = new Set(ids.map((id) => id[at]));
    // The version digit is fixed, the variant digit takes 4 values; every other one all 16.
    const expected = at === 14 ? 1 : at === 19 ? 4 : 16;
    assert.equal(values.size, expected, `position ${at}`);
  }
});
