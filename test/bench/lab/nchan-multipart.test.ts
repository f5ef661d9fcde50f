/**
 * Nchan's batched long-poll answers (`nchan_longpoll_multipart_response on`):
 * the lab's Nchan client must read every message of a multipart/mixed body, in
 * order, or it would count Nchan's batched deliveries as lost.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { multipartBodies, multipartBoundary } from '../../../bench/lab/clients/nchan-long-poll.js';

test('the boundary is read from a multipart/mixed content type, quoted or not; other types have none', () => {
  assert.equal(multipartBoundary('multipart/mixed; boundary=ysj6WU89OK.nqYl'), 'ysj6WU89OK.nqYl');
  assert.equal(multipartBoundary('multipart/mixed; boundary="a b"'), 'a b');
  assert.equal(multipartBoundary('text/plain;charset=UTF-8'), null);
  assert.equal(multipartBoundary(undefined), null);
});

test('every part body of an Nchan multipart answer comes out, in order, without its headers or the CRLF before the next delimiter', () => {
  // As Nchan 1.3.6 sent it here for two messages published while the subscriber was away.
  const b = 'ysj6WU89OK.nqYlqh2Pcl1gGmSJTRBOQ';
  const body = `--${b}\r\nContent-Type: text/plain;charset=UTF-8\r\n\r\nlab:2:1.5\r\n--${b}\r\nContent-Type: text/plain;charset=UTF-8\r\n\r\nlab:3:2.5\r\n--${b}--\r\n`;
  assert.deepEqual(multipartBodies(body, b), ['lab:2:1.5', 'lab:3:2.5']);
});

test('a part whose body contains CRLFs keeps them, and a preamble before the first delimiter is ignored', () => {
  const body = 'preamble\r\n--X\r\nA: 1\r\n\r\nline 1\r\nline 2\r\n--X--';
  assert.deepEqual(multipartBodies(body, 'X'), ['line 1\r\nline 2']);
});
