import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCursor, parseRoomCursors, POLL_MAX_ROOMS } from '../../server/cursors.js';

test('a cursor is a canonical non-negative safe integer in decimal', () => {
  assert.equal(parseCursor('0'), 0);
  assert.equal(parseCursor('42'), 42);
  assert.equal(parseCursor(String(Number.MAX_SAFE_INTEGER)), Number.MAX_SAFE_INTEGER);
  for (const bad of ['', '-1', '+1', '01', '1.5', '1e3', '0x10', ' 1', '1 ', 'abc', '9007199254740992', 'Infinity']) {
    assert.equal(parseCursor(bad), null, bad);
  }
});

test('rooms parse into name and cursor pairs in the order given', () => {
  assert.deepEqual(parseRoomCursors('general:42,random:0'), [
    { room: 'general', cursor: 42 },
    { room: 'random', cursor: 0 },
  ]);
});

test(`up to ${POLL_MAX_ROOMS} rooms are accepted and one more is refused`, () => {
  const list = (n: number): string => Array.from({ length: n }, (_, i) => `r${i}:0`).join(',');
  assert.equal(parseRoomCursors(list(POLL_MAX_ROOMS)).length, POLL_MAX_ROOMS);
  assert.throws(() => parseRoomCursors(list(POLL_MAX_ROOMS + 1)), { code: 'APP_ERR_BAD_CURSOR' });
});

test('malformed rooms values are APP_ERR_BAD_CURSOR', () => {
  for (const bad of [undefined, '', ['a:1', 'b:2'], { a: '1' }, 'general', 'general:', ':3', 'general:-1', 'general:1.5', 'general:abc', 'a:1,a:2', 'a:1,', 'Bad:1', 'a:1:2']) {
    assert.throws(() => parseRoomCursors(bad), { code: 'APP_ERR_BAD_CURSOR' }, JSON.stringify(bad));
  }
});
