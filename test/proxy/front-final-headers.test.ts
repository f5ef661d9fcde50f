/**
 * The headers a leased re-poll served by the client front keeps (proxy/http/front/final-headers.ts), built in one
 * object, against the four steps node:http's path takes on one object (request id written in, forwarding's
 * deletes, X-Forwarded-For added): same names, values and order, on many generated header sets; and no hash
 * table for parking to copy.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import v8 from 'node:v8';
import type { IncomingHttpHeaders } from 'node:http';
import { finalRequestHeaders } from '../../proxy/http/front/final-headers.js';
import { stripRequestHeaders } from '../../proxy/http/header-filter.js';
import { isSafeRequestId } from '../../protocol/request-id.js';
import { prng as seeded } from '../../bench/lib/prng.js';

v8.setFlagsFromString('--allow-natives-syntax');
const hasFastProperties = new Function('o', 'return %HasFastProperties(o)') as (o: object) => boolean;

const NAMES = [
  'host', 'cookie', 'connection', 'keep-alive', 'te', 'trailer', 'proxy-authorization', 'proxy-connection', 'x-request-id',
  'x_request_id', 'x-forwarded-for', 'x-forwarded-proto', 'x_forwarded_host', 'forwarded', 'x-real-ip', 'grip-sig', 'grip_last',
  'x-custom', 'accept', 'user-agent', 'content-length', '123', 'upgrade', 'x-other',
];
const CONNECTION_VALUES = ['keep-alive', 'close', 'x-custom', 'cookie, x-custom', 'host', 'x-request-id', 'content-length', 'Accept , X-OTHER', '123', ''];
const REQUEST_IDS = ['client.chosen_ID-1', 'has space', 'x'.repeat(65), ''];

/** A parsed head's headers, as the front's parser builds them: one store per name, in order. */
function generatedHeaders(random: () => number): IncomingHttpHeaders {
  const headers: IncomingHttpHeaders = {};
  const count = Math.floor(random() * 9);
  for (let i = 0; i < count; i++) {
    const name = NAMES[Math.floor(random() * NAMES.length)]!;
    if (headers[name] !== undefined) continue;
    headers[name] =
      name === 'connection'
        ? CONNECTION_VALUES[Math.floor(random() * CONNECTION_VALUES.length)]!
        : name === 'x-request-id'
          ? REQUEST_IDS[Math.floor(random() * REQUEST_IDS.length)]!
          : `v${i}`;
  }
  return headers;
}

test('on 5,000 generated header sets the final headers are what the request id, forwarding strip and X-Forwarded-For steps made, in order', () => {
  const random = seeded(15);
  const forged = { count: -1 };
  for (let n = 0; n < 5000; n++) {
    const parsed = generatedHeaders(random);
    const sent = parsed['x-request-id'];
    const id = isSafeRequestId(sent) ? sent : 'a-new-request-id';
    // node:http's path, on one object: assignRequestId, stripRequestHeaders, then Repolls.act's X-Forwarded-For.
    const steps: IncomingHttpHeaders = { ...parsed };
    steps['x-request-id'] = id;
    const removed = stripRequestHeaders(steps);
    steps['x-forwarded-for'] = '127.0.0.7';

    const final = finalRequestHeaders(parsed, id, '127.0.0.7', forged);
    assert.deepEqual(Object.entries(final), Object.entries(steps), JSON.stringify(parsed));
    assert.equal(forged.count, removed, JSON.stringify(parsed));
  }
});

test('the final headers are a compact object (no delete made them a hash table), so parking does not copy them', () => {
  const parsed: IncomingHttpHeaders = { host: '127.0.0.1:8080', cookie: 'sid=s1', connection: 'keep-alive', 'grip-sig': 'forged' };
  const final = finalRequestHeaders(parsed, 'id-1', '127.0.0.1', { count: 0 });
  assert.equal(hasFastProperties(final), true);
  assert.deepEqual(Object.entries(final), [
    ['host', '127.0.0.1:8080'],
    ['cookie', 'sid=s1'],
    ['x-request-id', 'id-1'],
    ['x-forwarded-for', '127.0.0.1'],
  ]);
});
