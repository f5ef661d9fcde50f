import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decodeItemResponse, mergeItemResponse, type HeldResponse } from '../../proxy/response.js';

const HELD: HeldResponse = {
  code: 202,
  reason: 'Held',
  headers: {
    'content-type': 'application/json',
    'content-length': '13',
    'cache-control': 'no-store',
    'comet-connection-id': 'abc',
    'set-cookie': ['a=1'],
  },
  body: Buffer.from('{"events":[]}'),
};

describe('mergeItemResponse', () => {
  test('the item status defaults to 200 with the standard reason, and the held status is not reused', () => {
    const merged = mergeItemResponse(HELD, decodeItemResponse({ body: 'x' }));
    assert.equal(merged.code, 200);
    assert.equal(merged.reason, undefined);
  });

  test('held headers are the base, minus Content-Length, and item headers override them case-insensitively', () => {
    const merged = mergeItemResponse(
      HELD,
      decodeItemResponse({ code: 200, reason: 'Fine', headers: { 'Content-Type': 'text/plain', 'X-New': '1' }, body: 'hello' }),
    );
    assert.deepEqual(merged, {
      code: 200,
      reason: 'Fine',
      headers: {
        'content-type': 'text/plain',
        'cache-control': 'no-store',
        'comet-connection-id': 'abc',
        'set-cookie': ['a=1'],
        'x-new': '1',
      },
      body: Buffer.from('hello'),
    });
  });

  test('Grip-*, hop-by-hop and framing headers of the item are ignored', () => {
    const merged = mergeItemResponse(
      HELD,
      decodeItemResponse({
        headers: [['Grip-Channel', 'x'], ['Connection', 'close'], ['Transfer-Encoding', 'chunked'], ['Content-Length', '999']],
        body: 'b',
      }),
    );
    assert.deepEqual(Object.keys(merged.headers).sort(), ['cache-control', 'comet-connection-id', 'content-type', 'set-cookie']);
  });

  test('a header repeated in the item replaces the held one once and keeps every item value', () => {
    const merged = mergeItemResponse(HELD, decodeItemResponse({ headers: [['Set-Cookie', 'b=2'], ['set-cookie', 'c=3']], body: '' }));
    assert.deepEqual(merged.headers['set-cookie'], ['b=2', 'c=3']);
  });
});
