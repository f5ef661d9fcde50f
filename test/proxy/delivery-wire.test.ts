/**
 * A published item as it reaches parked clients on the wire (docs/protocol.md §6, the header order; issue 15):
 * byte for byte the same for every subscriber held with one held response but its own `X-Request-Id`, and right
 * for HTTP/1.0 clients, HEAD requests, pipelined keep-alive requests, a client gone before delivery and a
 * client's `Connection: close`. The guard for any change to the fan-out write path. Raw sockets, a real proxy and app.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { test, type TestContext } from 'node:test';
import { writeHold } from '../helpers/scripted-app.js';
import { jsonFormat, startHarness, waitFor, type Harness } from '../helpers/proxy-harness.js';

/** Every poll is held on channel `c` with the same template (an app's own X-Request-Id included: ours replaces it). */
async function holdingHarness(t: TestContext): Promise<Harness> {
  const h = await startHarness(t);
  h.app.handle = (_req, res) => writeHold(res, { channel: 'c', timeoutS: 60, headers: { 'Cache-Control': 'no-store', 'X-Request-Id': 'from-app', 'X-Held': 'yes' } });
  return h;
}

interface RawClient {
  socket: Socket;
  /** Everything received so far, latin1. */
  text(): string;
  closed: Promise<void>;
}

async function rawClient(t: TestContext, h: Harness): Promise<RawClient> {
  const socket = connect(Number(new URL(h.clientUrl).port), '127.0.0.1');
  t.after(() => socket.destroy());
  let received = '';
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => (received += chunk));
  socket.on('error', () => undefined);
  const closed = once(socket, 'close').then(() => undefined);
  await once(socket, 'connect');
  return { socket, text: () => received, closed };
}

async function publish(h: Harness, id: string, body: unknown): Promise<unknown> {
  const res = await h.control('/publish/', { items: [{ channel: 'c', id, formats: jsonFormat(body, { headers: { 'Content-Type': 'application/json', 'X-Item': id } }) }] });
  assert.equal(res.status, 200, res.text);
  return res.json();
}

/** The response head's lines without Date (it differs by the second). */
function headLines(response: string): string[] {
  return response.split('\r\n\r\n')[0]!.split('\r\n').filter((line) => !/^date:/i.test(line));
}

test('every subscriber gets the same bytes but its own X-Request-Id, last before Content-Length; the app\'s id never leaks', { timeout: 30_000 }, async (t) => {
  const h = await holdingHarness(t);
  const clients = [await rawClient(t, h), await rawClient(t, h), await rawClient(t, h)];
  clients.forEach((c, i) => c.socket.write(`GET /poll HTTP/1.1\r\nHost: localhost\r\nX-Request-Id: client-${i}\r\n\r\n`));
  await h.waitParked(3);
  assert.deepEqual(await publish(h, '1', { n: 1 }), { delivered: 3, queued: 0, dropped: 0, reasked: 0 });
  await waitFor(() => clients.every((c) => c.text().endsWith('{"n":1}')), { timeoutMs: 5000, message: 'every answer' });
  const heads = clients.map((c) => headLines(c.text()));
  assert.deepEqual(heads[0], [
    'HTTP/1.1 200 OK',
    'cache-control: no-store',
    'x-held: yes',
    'content-type: application/json', // the item's, which replaces the held one
    'x-item: 1',
    'x-request-id: client-0',
    'content-length: 7',
    'Connection: keep-alive',
    'Keep-Alive: timeout=5',
  ]);
  for (let i = 1; i < 3; i++) assert.deepEqual(heads[i], heads[0]!.map((line) => line.replace('client-0', `client-${i}`)));
  // A second publish to the same template reuses nothing stale: the new item's headers and body.
  clients.forEach((c, i) => c.socket.write(`GET /poll HTTP/1.1\r\nHost: localhost\r\nX-Request-Id: again-${i}\r\n\r\n`));
  await h.waitParked(3);
  await publish(h, '2', { n: 22 });
  await waitFor(() => clients.every((c) => c.text().endsWith('{"n":22}')), { timeoutMs: 5000, message: 'every second answer' });
  for (const [i, c] of clients.entries()) {
    const second = c.text().slice(c.text().indexOf('HTTP/1.1', 10));
    assert.ok(second.includes('x-item: 2\r\n') && second.includes(`x-request-id: again-${i}\r\n`) && second.includes('content-length: 8\r\n'), second);
  }
});

test('an HTTP/1.0 client gets an HTTP/1.1 answer with Content-Length, and the connection closes after it', { timeout: 30_000 }, async (t) => {
  const h = await holdingHarness(t);
  const c = await rawClient(t, h);
  c.socket.write('GET /poll HTTP/1.0\r\nHost: localhost\r\n\r\n');
  await h.waitParked(1);
  await publish(h, '1', { n: 1 });
  await c.closed;
  const lines = headLines(c.text());
  assert.equal(lines[0], 'HTTP/1.1 200 OK');
  assert.ok(lines.includes('content-length: 7'));
  assert.ok(lines.includes('Connection: close'), lines.join('\n'));
  assert.ok(c.text().endsWith('{"n":1}'));
});

test('a HEAD poll gets the head with the item\'s Content-Length and no body, and its connection serves the next request', { timeout: 30_000 }, async (t) => {
  const h = await holdingHarness(t);
  const c = await rawClient(t, h);
  c.socket.write('HEAD /poll HTTP/1.1\r\nHost: localhost\r\n\r\n');
  await h.waitParked(1);
  await publish(h, '1', { n: 1 });
  await waitFor(() => c.text().includes('\r\n\r\n'), { timeoutMs: 5000, message: 'the head' });
  assert.ok(headLines(c.text()).includes('content-length: 7'));
  c.socket.write('GET /poll HTTP/1.1\r\nHost: localhost\r\n\r\n');
  await h.waitParked(1);
  await publish(h, '2', { n: 2 });
  await waitFor(() => c.text().endsWith('{"n":2}'), { timeoutMs: 5000, message: 'the second answer' });
  const responses = c.text().split('HTTP/1.1 ').slice(1);
  assert.equal(responses.length, 2);
  assert.ok(responses[0]!.endsWith('\r\n\r\n'), 'the HEAD answer has no body');
});

test('pipelined keep-alive polls on one socket are answered in order: the first with its held answer, the second with the item', { timeout: 30_000 }, async (t) => {
  const h = await holdingHarness(t);
  const c = await rawClient(t, h);
  c.socket.write('GET /poll?n=1 HTTP/1.1\r\nHost: localhost\r\nX-Request-Id: first\r\n\r\nGET /poll?n=2 HTTP/1.1\r\nHost: localhost\r\nX-Request-Id: second\r\n\r\n');
  await h.waitParked(1);
  await waitFor(() => c.text().includes('{"events":[]}'), { timeoutMs: 5000, message: 'the first, released' });
  await publish(h, '1', { n: 1 });
  await waitFor(() => c.text().endsWith('{"n":1}'), { timeoutMs: 5000, message: 'the second, delivered' });
  const text = c.text();
  assert.ok(text.indexOf('x-request-id: first') < text.indexOf('{"events":[]}'));
  assert.ok(text.indexOf('{"events":[]}') < text.indexOf('x-request-id: second'));
  assert.ok(text.indexOf('x-request-id: second') < text.indexOf('{"n":1}'));
});

test('a client gone before the publish gets nothing written, is not counted delivered, and the others are answered', { timeout: 30_000 }, async (t) => {
  const h = await holdingHarness(t);
  const gone = await rawClient(t, h);
  const stays = await rawClient(t, h);
  gone.socket.write('GET /poll HTTP/1.1\r\nHost: localhost\r\n\r\n');
  stays.socket.write('GET /poll HTTP/1.1\r\nHost: localhost\r\n\r\n');
  await h.waitParked(2);
  gone.socket.destroy();
  await h.waitParked(1);
  assert.deepEqual(await publish(h, '1', { n: 1 }), { delivered: 1, queued: 0, dropped: 0, reasked: 0 });
  await waitFor(() => stays.text().endsWith('{"n":1}'), { timeoutMs: 5000, message: 'the staying client' });
  assert.equal(gone.text(), '');
});

test('a client that sent Connection: close gets the item with Connection: close, then the connection ends', { timeout: 30_000 }, async (t) => {
  const h = await holdingHarness(t);
  const c = await rawClient(t, h);
  c.socket.write('GET /poll HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
  await h.waitParked(1);
  await publish(h, '1', { n: 1 });
  await c.closed;
  assert.ok(headLines(c.text()).includes('Connection: close'));
  assert.ok(c.text().endsWith('{"n":1}'));
});

/** Every write the proxy makes to its client sockets from now on: whether vectored, and the bytes (latin1). */
function recordSocketWrites(h: Harness): Array<{ vectored: boolean; text: string }> {
  const writes: Array<{ vectored: boolean; text: string }> = [];
  const asText = (chunk: unknown, encoding?: string) =>
    typeof chunk === 'string' ? Buffer.from(chunk, (encoding ?? 'utf8') as BufferEncoding).toString('latin1') : Buffer.from(chunk as Uint8Array).toString('latin1');
  // The client front (when on) owns the client sockets; node:http then writes through a bridge to them.
  (h.proxy.clientFront?.listener ?? h.proxy.clientServer).on('connection', (socket: Socket & { _writeGeneric: (writev: boolean, data: unknown, encoding: string, cb: unknown) => unknown }) => {
    // Observed, not replaced: the real write runs.
    const original = socket._writeGeneric.bind(socket);
    socket._writeGeneric = (writev, data, encoding, cb) => {
      const text = writev ? (data as Array<{ chunk: unknown; encoding: string }>).map((c) => asText(c.chunk, c.encoding)).join('') : asText(data, encoding);
      writes.push({ vectored: writev, text });
      return original(writev, data, encoding, cb);
    };
  });
  return writes;
}

test('each delivered item leaves in one socket write of head and body (not a vectored write), a binary body byte for byte', { timeout: 30_000 }, async (t) => {
  const h = await holdingHarness(t);
  const writes = recordSocketWrites(h);
  const c = await rawClient(t, h);
  c.socket.write('GET /poll HTTP/1.1\r\nHost: localhost\r\n\r\n');
  await h.waitParked(1);
  // Every byte value, and bytes that are not UTF-8: the body must not be re-encoded on its way.
  const bytes = Buffer.from([...Array(256).keys(), 0xc3, 0x28, 0xff, 0x00]);
  const res = await h.control('/publish/', { items: [{ channel: 'c', id: '1', formats: { 'http-response': { headers: { 'Content-Type': 'application/octet-stream' }, 'body-bin': bytes.toString('base64') } } }] });
  assert.equal(res.status, 200, res.text);
  await waitFor(() => c.text().length >= bytes.length && c.text().endsWith(bytes.toString('latin1')), { timeoutMs: 5000, message: 'the binary answer' });
  assert.ok(headLines(c.text()).includes(`content-length: ${bytes.length}`));
  assert.equal(writes.length, 1, JSON.stringify(writes.map((w) => ({ vectored: w.vectored, length: w.text.length }))));
  assert.equal(writes[0]!.vectored, false);
  assert.equal(writes[0]!.text, c.text());
});

test('a held request that times out is answered in one socket write too', { timeout: 30_000 }, async (t) => {
  const h = await startHarness(t);
  h.app.handle = (_req, res) => writeHold(res, { channel: 'c', timeoutS: 1, headers: { 'X-Held': 'yes' }, body: 'é-held' });
  const writes = recordSocketWrites(h);
  const c = await rawClient(t, h);
  c.socket.write('GET /poll HTTP/1.1\r\nHost: localhost\r\n\r\n');
  await waitFor(() => c.text().endsWith(Buffer.from('é-held').toString('latin1')), { timeoutMs: 10_000, message: 'the timeout answer' });
  assert.ok(headLines(c.text()).includes(`content-length: ${Buffer.byteLength('é-held')}`));
  assert.deepEqual(writes.map((w) => w.vectored), [false], JSON.stringify(writes));
});
