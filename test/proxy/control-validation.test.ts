import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ItemValidationError, parseCloseBody, parsePublishBody, parsePushBody } from '../../proxy/control/control-validation.js';

const CID = 'V1StGXR8_Z5jdHi6B-myT';

function rejects(fn: () => unknown, message: string): void {
  assert.throws(fn, (err: unknown) => err instanceof ItemValidationError && err.message === message);
}

describe('parsePublishBody', () => {
  test('turns items into commands with decoded responses', () => {
    const [item] = parsePublishBody({
      items: [
        {
          channel: 'room:a',
          id: '2',
          'prev-id': '1',
          formats: {
            'http-response': { code: 201, reason: 'Made', headers: [['X-A', '1'], ['X-A', '2']], body: 'hé' },
            'ws-message': { content: 'ignored' },
          },
        },
      ],
    });
    assert.deepEqual(item, {
      channel: 'room:a',
      id: '2',
      prevId: '1',
      action: 'send',
      response: { code: 201, reason: 'Made', headers: [['X-A', '1'], ['X-A', '2']], body: Buffer.from('hé') },
    });
  });

  test('a hint needs no body and carries no response', () => {
    const [item] = parsePublishBody({ items: [{ channel: 'a', formats: { 'http-response': { action: 'hint' } } }] });
    assert.deepEqual(item, { channel: 'a', action: 'hint', response: null });
  });

  test('http-stream items become stream commands with nothing for parked requests (docs/protocol.md §14.3)', () => {
    const [send, bin, close, both] = parsePublishBody({
      items: [
        { channel: 'a', id: '2', 'prev-id': '1', formats: { 'http-stream': { content: 'data: x\n\n' } } },
        { channel: 'a', formats: { 'http-stream': { 'content-bin': 'AAH/' } } },
        { channel: 'a', formats: { 'http-stream': { action: 'close', content: '' } } },
        { channel: 'a', formats: { 'http-stream': { content: 's' }, 'http-response': { body: 'r' } } },
      ],
    });
    assert.deepEqual(send, { channel: 'a', id: '2', prevId: '1', action: 'none', response: null, stream: { action: 'send', content: Buffer.from('data: x\n\n') } });
    assert.deepEqual([...bin!.stream!.content], [0, 1, 255]);
    assert.deepEqual(close, { channel: 'a', action: 'none', response: null, stream: { action: 'close', content: Buffer.alloc(0) } });
    assert.equal(both!.action, 'send');
    assert.deepEqual(both!.stream, { action: 'send', content: Buffer.from('s') });
  });

  test('an http-response close is accepted and, as in Pushpin, carries nothing for parked requests', () => {
    assert.deepEqual(parsePublishBody({ items: [{ channel: 'a', formats: { 'http-response': { action: 'close' } } }] }), []);
  });

  test('body-bin is base64-decoded', () => {
    const [item] = parsePublishBody({ items: [{ channel: 'a', formats: { 'http-response': { 'body-bin': 'AAH/' } } }] });
    assert.deepEqual([...item!.response!.body], [0, 1, 255]);
  });

  const bad: Array<[string, unknown, string]> = [
    ['a body that is not an object', [], 'body must be a JSON object with an "items" array'],
    ['items that are not an array', { items: {} }, 'body must be a JSON object with an "items" array'],
    ['an item that is not an object', { items: [7] }, 'items[0] must be an object'],
    ['a bad channel', { items: [{ channel: 'a b', formats: { 'http-response': { body: '' } } }] }, 'items[0].channel must be 1-128 characters from A-Z a-z 0-9 _ . : @ / + ! # $ % & * ^ | ~ -'],
    ['a bad id', { items: [{ channel: 'a', id: '', formats: { 'http-response': { body: '' } } }] }, 'items[0].id must be 1-128 characters from A-Z a-z 0-9 _ . : @ / + ! # $ % & * ^ | ~ - ='],
    ['no formats', { items: [{ channel: 'a' }] }, 'items[0].formats must be an object'],
    ['no format at all', { items: [{ channel: 'a', formats: {} }] }, 'items[0].formats.http-response is required (the item names no format)'],
    ['an unknown action', { items: [{ channel: 'a', formats: { 'http-response': { action: 'refresh', body: '' } } }] }, 'items[0].formats.http-response.action must be "send", "hint" or "close"'],
    ['an http-stream hint', { items: [{ channel: 'a', formats: { 'http-stream': { action: 'hint' } } }] }, 'items[0].formats.http-stream.action must be "send" or "close"'],
    ['an http-stream send without content', { items: [{ channel: 'a', formats: { 'http-stream': {} } }] }, 'items[0].formats.http-stream needs content or content-bin'],
    ['an http-stream with content and content-bin', { items: [{ channel: 'a', formats: { 'http-stream': { content: 'a', 'content-bin': 'YQ==' } } }] }, 'items[0].formats.http-stream must not have both content and content-bin'],
    ['a code out of range', { items: [{ channel: 'a', formats: { 'http-response': { code: 99, body: '' } } }] }, 'items[0].formats.http-response.code must be an integer 100-999'],
    ['a fractional code', { items: [{ channel: 'a', formats: { 'http-response': { code: 200.5, body: '' } } }] }, 'items[0].formats.http-response.code must be an integer 100-999'],
    ['a reason with a newline', { items: [{ channel: 'a', formats: { 'http-response': { reason: 'a\nb', body: '' } } }] }, 'items[0].formats.http-response.reason must be a string without control characters'],
    ['a header value with a newline', { items: [{ channel: 'a', formats: { 'http-response': { headers: { 'X-A': 'a\r\nInjected: 1' }, body: '' } } }] }, 'items[0].formats.http-response.headers.X-A must be a valid header name and value'],
    ['a header name with a space', { items: [{ channel: 'a', formats: { 'http-response': { headers: [['X A', '1']], body: '' } } }] }, 'items[0].formats.http-response.headers[0] must be a valid header name and value'],
    ['a header pair of three', { items: [{ channel: 'a', formats: { 'http-response': { headers: [['a', 'b', 'c']], body: '' } } }] }, 'items[0].formats.http-response.headers[0] must be a [name, value] pair of strings'],
    ['headers as a string', { items: [{ channel: 'a', formats: { 'http-response': { headers: 'X: 1', body: '' } } }] }, 'items[0].formats.http-response.headers must be an object or a list of [name, value] pairs'],
    ['a body that is not a string', { items: [{ channel: 'a', formats: { 'http-response': { body: 5 } } }] }, 'items[0].formats.http-response.body must be a string'],
    ['invalid base64', { items: [{ channel: 'a', formats: { 'http-response': { 'body-bin': 'a$==' } } }] }, 'items[0].formats.http-response.body-bin must be a base64 string'],
    ['both bodies', { items: [{ channel: 'a', formats: { 'http-response': { body: '', 'body-bin': '' } } }] }, 'items[0].formats.http-response must not have both body and body-bin'],
    ['send without a body', { items: [{ channel: 'a', formats: { 'http-response': { code: 200 } } }] }, 'items[0].formats.http-response needs body or body-bin'],
  ];
  for (const [what, body, message] of bad) {
    test(`${what} is rejected with a message naming the field`, () => rejects(() => parsePublishBody(body), message));
  }
});

describe('parsePushBody', () => {
  test('turns items into push commands', () => {
    assert.deepEqual(parsePushBody({ items: [{ 'connection-id': CID, id: 'm1', formats: { 'http-response': { body: 'x' } } }] }), [
      { connectionId: CID, id: 'm1', response: { headers: [], body: Buffer.from('x') } },
    ]);
  });

  test('a push cannot be a hint', () => {
    rejects(
      () => parsePushBody({ items: [{ 'connection-id': CID, formats: { 'http-response': { action: 'hint' } } }] }),
      'items[0].formats.http-response.action must be "send"',
    );
  });

  test('a push needs a valid connection ID', () => {
    rejects(() => parsePushBody({ items: [{ formats: { 'http-response': { body: '' } } }] }), 'items[0].connection-id must be a connection ID (21 characters from A-Z a-z 0-9 _ -)');
  });
});

describe('parseCloseBody', () => {
  test('formats are optional; a given response is decoded', () => {
    assert.deepEqual(
      parseCloseBody({
        items: [
          { 'connection-id': CID },
          { 'connection-id': CID, formats: {} },
          { 'connection-id': CID, formats: { 'http-response': { code: 204, body: '' } } },
        ],
      }),
      [{ connectionId: CID }, { connectionId: CID }, { connectionId: CID, response: { code: 204, headers: [], body: Buffer.alloc(0) } }],
    );
  });

  test('a close response is validated like any other', () => {
    rejects(
      () => parseCloseBody({ items: [{ 'connection-id': CID, formats: { 'http-response': { code: 'x', body: '' } } }] }),
      'items[0].formats.http-response.code must be an integer 100-999',
    );
  });
});

describe('item statuses: only final statuses whose framing is valid (issue 14 item 5)', () => {
  const format = (code: unknown, body: Record<string, string>) => ({ 'http-response': { code, ...body } });
  const parsers: Array<[string, (f: unknown) => unknown]> = [
    ['publish', (f) => parsePublishBody({ items: [{ channel: 'a', formats: f }] })],
    ['push', (f) => parsePushBody({ items: [{ 'connection-id': CID, formats: f }] })],
    ['close', (f) => parseCloseBody({ items: [{ 'connection-id': CID, formats: f }] })],
  ];
  const refused: Array<[string, unknown, Record<string, string>, RegExp]> = [
    ['100 Continue', 100, { body: 'x' }, /code 100 is informational/],
    ['101 Switching Protocols', 101, { body: 'x' }, /code 101 is informational/],
    ['103 Early Hints without a body', 103, { body: '' }, /code 103 is informational/],
    ['199, the last informational code', 199, { body: '' }, /code 199 is informational/],
    ['"101" written as text, as GRIP libraries send codes', '101', { body: 'x' }, /code 101 is informational/],
    ['204 with a body', 204, { body: 'x' }, /code 204 cannot carry a body/],
    ['204 with a binary body', 204, { 'body-bin': 'AA==' }, /code 204 cannot carry a body/],
    ['304 with a body', 304, { body: '{"events":[]}' }, /code 304 cannot carry a body/],
    ['600, beyond the HTTP status range', 600, { body: 'x' }, /code 600 is not an HTTP status/],
    ['999', 999, { body: '' }, /code 999 is not an HTTP status/],
  ];
  for (const [what, code, body, message] of refused) {
    test(`${what} is refused with PROXY_ERR_INVALID_STATUS in publish, push and close items`, () => {
      for (const [kind, parse] of parsers) {
        assert.throws(
          () => parse(format(code, body)),
          (err: unknown) =>
            err instanceof ItemValidationError &&
            err.code === 'PROXY_ERR_INVALID_STATUS' &&
            err.message.startsWith('items[0].formats.http-response.code ') &&
            message.test(err.message),
          `${kind}: ${what}`,
        );
      }
    });
  }

  test('final statuses are accepted, 204 and 304 with an empty body included', () => {
    const accepted: Array<[unknown, Record<string, string>]> = [
      [200, { body: 'x' }],
      [204, { body: '' }],
      ['204', { body: '' }],
      [304, { 'body-bin': '' }],
      [205, { body: '' }],
      [404, { body: 'x' }],
      [599, { body: 'x' }],
    ];
    for (const [code, body] of accepted) {
      for (const [kind, parse] of parsers) assert.doesNotThrow(() => parse(format(code, body)), `${kind}: ${String(code)}`);
    }
  });
});

describe('connection IDs per call (issue 14 item 2)', () => {
  const ids = (n: number, repeat = 1) => Array.from({ length: n * repeat }, (_, i) => `c${i % n}`.padEnd(21, '_'));
  test('a push or close naming more distinct IDs than allowed is refused with PROXY_ERR_TOO_MANY_IDS; repeats count once', () => {
    const push = (list: string[]) => ({ items: list.map((id) => ({ 'connection-id': id, formats: { 'http-response': { body: 'x' } } })) });
    assert.equal(parsePushBody(push(ids(3, 4)), 3).length, 12, 'four items each to three IDs');
    for (const parse of [() => parsePushBody(push(ids(4)), 3), () => parseCloseBody({ items: ids(4).map((id) => ({ 'connection-id': id })) }, 3)]) {
      assert.throws(parse, (err: unknown) =>
        err instanceof ItemValidationError && err.code === 'PROXY_ERR_TOO_MANY_IDS' && err.message === 'body names 4 distinct connection IDs; one call may name at most 3');
    }
  });
});
