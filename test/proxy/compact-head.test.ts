import assert from 'node:assert/strict';
import { once } from 'node:events';
import http, { type IncomingMessage } from 'node:http';
import { test } from 'node:test';
import v8 from 'node:v8';
import { compactRequestHead } from '../../proxy/holds/compact-head.js';
import { stripRequestHeaders } from '../../proxy/http/header-filter.js';

// V8's own answer to "is this object a hash table?" (issue 15: a hash table costs ~450 bytes per parked request).
v8.setFlagsFromString('--allow-natives-syntax');
const hasFastProperties = new Function('o', 'return %HasFastProperties(o)') as (o: object) => boolean;

/** A real request as the proxy receives it, through a real socket. */
async function receivedRequest(t: { after: (fn: () => void) => void }): Promise<IncomingMessage> {
  const server = http.createServer();
  t.after(() => server.close());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  const client = http.get({
    host: '127.0.0.1',
    port,
    path: '/poll?room=1',
    agent: false,
    headers: { Connection: 'keep-alive', Cookie: 'sid=abc', 'User-Agent': 'test', Accept: '*/*', 'X-Custom': 'kept', 'Grip-Sig': 'forged' },
  });
  client.on('error', () => {});
  const [req, res] = (await once(server, 'request')) as [IncomingMessage, http.ServerResponse];
  t.after(() => res.end());
  return req;
}

test('a parked request keeps its head in compact form: same headers, in order, no hash table left by forwarding', async (t) => {
  const req = await receivedRequest(t);
  stripRequestHeaders(req.headers); // forwarding deletes in place
  req.headers['x-forwarded-for'] = '127.0.0.1';
  assert.equal(hasFastProperties(req.headers), false, 'the deletes turned the headers into a hash table');
  const before = Object.entries(req.headers);

  compactRequestHead(req);

  assert.equal(hasFastProperties(req.headers), true);
  assert.deepEqual(Object.entries(req.headers), before, 'same names, values and order: a re-ask sends what the first forward sent');
  assert.equal(req.headers['grip-sig'], undefined);
  assert.equal(req.headers.connection, undefined);
  assert.equal(req.method, 'GET');
  assert.equal(req.url, '/poll?room=1');
});

test('compacted heads of requests with the same header names share one hidden class', async (t) => {
  const haveSameMap = new Function('a', 'b', 'return %HaveSameMap(a, b)') as (a: object, b: object) => boolean;
  const [one, two] = [await receivedRequest(t), await receivedRequest(t)];
  for (const req of [one, two]) {
    stripRequestHeaders(req.headers);
    compactRequestHead(req);
  }
  assert.equal(haveSameMap(one.headers, two.headers), true);
});

test('an own __proto__ header (Node never parses one; code may add it) is copied as a header, not made the prototype', async (t) => {
  const req = await receivedRequest(t);
  stripRequestHeaders(req.headers);
  Object.defineProperty(req.headers, '__proto__', { value: 'x', enumerable: true, writable: true, configurable: true });
  const before = Object.entries(req.headers);
  compactRequestHead(req);
  assert.deepEqual(Object.entries(req.headers), before);
  assert.equal(Object.getPrototypeOf(req.headers), Object.prototype);
});

test('a request whose headers were built in final form (the client front) keeps its headers object: no copy', () => {
  const headers = { host: 'h', 'x-request-id': 'id-1' };
  const req = { method: 'GET', url: '/poll', httpVersion: '1.1', headers, rawHeaders: [], compactHeaders: true, socket: null as never };
  compactRequestHead(req);
  assert.equal(req.headers, headers);
  const unmarked = { ...req, compactHeaders: false };
  compactRequestHead(unmarked);
  assert.notEqual(unmarked.headers, headers, 'without the mark it is copied');
  assert.deepEqual(unmarked.headers, headers);
});
