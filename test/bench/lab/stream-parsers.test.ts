import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { IframeParser } from '../../../bench/lab/clients/forever-iframe.js';
import { type SseEvent, SseParser } from '../../../bench/lab/clients/sse.js';

/** Feeds `text` to `push` in chunks of `size` characters, collecting every output. */
function inChunks<T>(text: string, size: number, push: (chunk: string) => T[]): T[] {
  const out: T[] = [];
  for (let i = 0; i < text.length; i += size) out.push(...push(text.slice(i, i + size)));
  return out;
}

describe('the SSE client parser', () => {
  const STREAM =
    ': padding\r\n\r\n' +
    'id: 7\r\ndata: {"id":7,"text":"a"}\r\n\r\n' +
    'id:8\ndata: line one\ndata: line two\n\n' +
    'event: ping\rdata\r\r' +
    'id: 9\n\n' +
    'data: no blank line yet';

  const EXPECTED: SseEvent[] = [
    { id: '7', data: '{"id":7,"text":"a"}', event: '' },
    { id: '8', data: 'line one\nline two', event: '' },
    { id: undefined, data: '', event: 'ping' },
    { id: '9', data: '', event: '' },
  ];

  test('events come out whole whatever the chunking, with CRLF, LF and CR line ends and comments skipped', () => {
    for (const size of [1, 2, 3, 5, 8, 13, STREAM.length]) {
      const parser = new SseParser();
      assert.deepEqual(inChunks(STREAM, size, (c) => parser.push(c)), EXPECTED, `chunks of ${size}`);
    }
  });

  test('a CR at the end of one chunk and a LF at the start of the next are one line end', () => {
    const parser = new SseParser();
    assert.deepEqual(parser.push('data: x\r'), []);
    assert.deepEqual(parser.push('\n\r'), [{ id: undefined, data: 'x', event: '' }]);
    assert.deepEqual(parser.push('\ndata: y\n\n'), [{ id: undefined, data: 'y', event: '' }]);
  });
});

describe('the forever-iframe client parser', () => {
  const padding = `<!DOCTYPE html><html><body>${' '.repeat(1024)}`;
  const DOC =
    padding +
    '<script>parent.comet({"id":1,"text":"\\u003cb>hi\\u003c/b>"})</script>' +
    '<script>parent.comet(null)</script>' +
    '<script>document.domain="x";</script>' +
    '<script>parent.comet({"id":2,"text":"paren ) inside"});</script>' +
    '<script>parent.comet({"id":3';

  test('payloads come out whole whatever the chunking; keepalives and other scripts are dropped', () => {
    for (const size of [1, 2, 7, 64, DOC.length]) {
      const parser = new IframeParser();
      assert.deepEqual(
        inChunks(DOC, size, (c) => parser.push(c)),
        [
          { id: 1, text: '<b>hi</b>' },
          { id: 2, text: 'paren ) inside' },
        ],
        `chunks of ${size}`,
      );
      assert.deepEqual(parser.push(',"text":"c"})</script>'), [{ id: 3, text: 'c' }]);
    }
  });

  test('a malformed chunk is an error (the client reconnects from its cursor)', () => {
    assert.throws(() => new IframeParser().push('<script>parent.comet({"id":1}</script>'), /malformed/);
  });
});
