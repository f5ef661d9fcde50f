import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createServer, get, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeItemResponse, mergeItemResponse, prepareItem, writeItem, writeResponse, type HeldResponse } from '../../proxy/http/response.js';

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

/** Status line, headers and body exactly as a client receives them when `write(res)` answers its request. */
async function wireAnswer(write: (res: ServerResponse) => void): Promise<{ status: number; reason: string; raw: string[]; body: string }> {
  const server = createServer((_req, res) => write(res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = server.address() as AddressInfo;
    return await new Promise((resolve, reject) => {
      get({ host: '127.0.0.1', port, path: '/' }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => {
          // Date differs between two answers; everything else must match.
          const raw: string[] = [];
          for (let i = 0; i < res.rawHeaders.length; i += 2) {
            if (res.rawHeaders[i]!.toLowerCase() !== 'date') raw.push(`${res.rawHeaders[i]!.toLowerCase()}: ${res.rawHeaders[i + 1]}`);
          }
          resolve({ status: res.statusCode!, reason: res.statusMessage!, raw: raw.sort(), body });
        });
      }).on('error', reject);
    });
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

describe('writeItem (the fan-out path) writes what mergeItemResponse + writeResponse write', () => {
  const items = {
    'a plain item': decodeItemResponse({ body: 'hello' }),
    'status, reason and overriding headers': decodeItemResponse({ code: 201, reason: 'Made', headers: { 'Content-Type': 'text/plain', 'X-New': '1' }, body: 'x' }),
    'ignored Grip-*, hop-by-hop and framing headers': decodeItemResponse({
      headers: [['Grip-Channel', 'x'], ['Connection', 'close'], ['Transfer-Encoding', 'chunked'], ['Content-Length', '999']],
      body: 'b',
    }),
    'a repeated header': decodeItemResponse({ headers: [['Set-Cookie', 'b=2'], ['set-cookie', 'c=3']], body: '' }),
    'a binary body': decodeItemResponse({ 'body-bin': Buffer.from([0, 1, 2, 255]).toString('base64') }),
  };
  for (const [name, item] of Object.entries(items)) {
    test(name, async () => {
      const expected = await wireAnswer((res) => assert.equal(writeResponse(res, mergeItemResponse(HELD, item)), true));
      const actual = await wireAnswer((res) => assert.equal(writeItem(res, HELD, prepareItem(item)), true));
      assert.deepEqual(actual, expected);
    });
  }

  test('an item is prepared once and reused for every subscriber', () => {
    const item = decodeItemResponse({ body: 'x' });
    assert.equal(prepareItem(item), prepareItem(item));
  });

  test('nothing is written to a response that already ended', async () => {
    let second: boolean | undefined;
    await wireAnswer((res) => {
      res.end('first');
      second = writeItem(res, HELD, prepareItem(decodeItemResponse({ body: 'x' })));
    });
    assert.equal(second, false);
  });
});
