/**
 * The client front's encoded item answers (http/front/item-answer.ts, issue 15) are byte for byte what the
 * `writeHead` path writes for the same item, held response and request: status line, headers in order, the
 * request's `X-Request-Id`, `Content-Length`, `Date`, `Connection`/`Keep-Alive`, the body; for HTTP/1.0,
 * `Connection: close`, HEAD, bodyless statuses and a closing front too. A real ClientFront on port 0 serves
 * every request itself: `?via=encoded` answers with `writeItem`, `?via=head` with `writeItemHead`.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { test, type TestContext } from 'node:test';
import { ClientFront } from '../../proxy/http/front/client-front.js';
import type { FrontResponse } from '../../proxy/http/front/front-response.js';
import { assignRequestId } from '../../proxy/http/request-id.js';
import { systemTimers } from '../../proxy/options.js';
import { decodeItemResponse, prepareItem, writeItem, writeItemHead, type HeldResponse, type ItemResponse, type PreparedItem } from '../../proxy/http/response.js';
import { waitFor } from '../helpers/proxy-harness.js';

interface Case {
  held: HeldResponse;
  item: PreparedItem;
}

interface Front {
  port: number;
  front: ClientFront;
  /** What the next requests are answered with. */
  use(held: HeldResponse, item: ItemResponse): void;
  /** The prepared item answers use now. */
  item(): PreparedItem;
  /** Requests with `?park` wait here instead of being answered. */
  parked: Array<{ via: string; res: FrontResponse }>;
  answer(via: string, res: FrontResponse): boolean;
  /** Client sockets, destroyed before the front closes. */
  sockets: Socket[];
}

async function startFront(t: TestContext): Promise<Front> {
  const server = createServer();
  let current: Case | null = null;
  const parked: Front['parked'] = [];
  const answer = (via: string, res: FrontResponse): boolean => {
    const { held, item } = current!;
    return via === 'encoded' ? writeItem(res, held, item) : writeItemHead(res, held, item);
  };
  const front = new ClientFront({
    server,
    maxHeaderBytes: 16 * 1024,
    headersTimeoutMs: 60_000,
    keepAliveTimeoutMs: 5000,
    timers: systemTimers,
    mayServe: () => true,
    serve: (req, res) => {
      assignRequestId(req, res);
      const via = /[?&]via=(\w+)/.exec(req.url)![1]!;
      if (req.url.includes('park')) parked.push({ via, res });
      else answer(via, res);
      return true;
    },
    releasePipelined: () => undefined,
    answered: () => undefined,
    writeFilled: () => undefined,
  });
  await front.listen(0, '127.0.0.1');
  const sockets: Socket[] = [];
  // Clients first: the listener's close waits for every connection.
  t.after(async () => {
    for (const socket of sockets) socket.destroy();
    await front.close();
  });
  return {
    port: (front.listener.address() as AddressInfo).port,
    front,
    use: (held, item) => (current = { held, item: prepareItem(item) }),
    item: () => current!.item,
    parked,
    answer,
    sockets,
  };
}

interface Exchange {
  /** Everything the client received, latin1. */
  text: string;
  /** The connection was closed by the front after the answer. */
  closed: boolean;
}

/** Sends `head` (its target's `{via}` filled in) on a new connection; resolves once a whole answer (or the close) is in. */
async function exchange(f: Front, head: string, via: string, ready: (text: string) => boolean = complete): Promise<Exchange> {
  const socket = connect(f.port, '127.0.0.1');
  f.sockets.push(socket);
  let text = '';
  let closed = false;
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => (text += chunk));
  socket.on('error', () => undefined);
  socket.on('close', () => (closed = true));
  await once(socket, 'connect');
  socket.write(head.replace('{via}', via));
  await waitFor(() => closed || ready(text), { timeoutMs: 5000, message: `the ${via} answer` });
  // An answer that says `Connection: close` must be followed by the close: wait for it (on a loaded machine the
  // FIN can arrive turns after the answer's bytes). A keep-alive answer's connection is seen as it is now.
  if (!closed && /\r\nconnection: close\r\n/i.test(text)) await waitFor(() => closed, { timeoutMs: 5000, message: `the ${via} connection's close` });
  if (!closed) await waitFor(() => closed || socket.readableLength === 0, { timeoutMs: 5000, message: 'the socket read' });
  return { text, closed };
}

/** A whole Content-Length framed answer is in (a HEAD or bodyless answer: the head alone). */
function complete(text: string): boolean {
  const end = text.indexOf('\r\n\r\n');
  if (end === -1) return false;
  const length = /\r\ncontent-length: (\d+)\r\n/i.exec(text.slice(0, end + 2));
  const bodyless = /^HTTP\/1\.1 (1\d\d|204|304) /.test(text);
  return bodyless || text.length >= end + 4 + Number(length?.[1] ?? 0);
}

/** The Date value varies by the second: the same line, in the same place, with the value masked. */
function masked(text: string): string {
  return text.replace(/\r\nDate: \w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT\r\n/, '\r\nDate: <date>\r\n');
}

async function sameBytes(f: Front, head: string, ready?: (text: string) => boolean): Promise<Exchange> {
  const byHead = await exchange(f, head, 'head', ready);
  const encoded = await exchange(f, head, 'encoded', ready);
  assert.equal(masked(encoded.text), masked(byHead.text));
  assert.equal(encoded.closed, byHead.closed, 'the connection ends (or not) alike');
  return encoded;
}

const HELD: HeldResponse = {
  code: 202,
  reason: 'Held',
  headers: {
    'content-type': 'application/json',
    'content-length': '13',
    'cache-control': 'no-store',
    'comet-connection-id': 'abc',
    'x-request-id': 'from-the-app',
    'grip-channel': 'never-sent',
    'set-cookie': ['a=1', 'b=2'],
  },
  body: Buffer.from('{"events":[]}'),
};

const GET = 'GET /poll?via={via} HTTP/1.1\r\nHost: localhost\r\nX-Request-Id: client-1\r\n\r\n';

test('a keep-alive answer: held headers the item does not replace, the item\'s, the request id, length, Date, Keep-Alive', { timeout: 30_000 }, async (t) => {
  const f = await startFront(t);
  f.use(HELD, decodeItemResponse({ headers: { 'Content-Type': 'text/plain', 'X-Item': '1', 'X-Request-Id': 'item-id' }, body: 'hello' }));
  const got = await sameBytes(f, GET);
  assert.ok(f.item().encoded, 'the encoded path answered (not a fall-back to writeHead)');
  assert.equal(got.closed, false);
  assert.equal(
    masked(got.text),
    'HTTP/1.1 200 OK\r\ncache-control: no-store\r\ncomet-connection-id: abc\r\nset-cookie: a=1\r\nset-cookie: b=2\r\n' +
      'content-type: text/plain\r\nx-item: 1\r\nx-request-id: client-1\r\ncontent-length: 5\r\nDate: <date>\r\n' +
      'Connection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\nhello',
  );
});

test('status, reason, repeated item headers, Grip-Expose-Headers and every byte value of a binary body are the same', { timeout: 30_000 }, async (t) => {
  const f = await startFront(t);
  const bytes = Buffer.from([...Array(256).keys(), 0xc3, 0x28]);
  f.use(HELD, {
    code: 201,
    reason: 'Made Here',
    headers: [['Set-Cookie', 'c=3'], ['set-cookie', 'd=4'], ['Grip-Expose-Headers', 'cache-control'], ['X-Latin', 'caf\u00e9']],
    body: bytes,
  });
  const got = await sameBytes(f, GET);
  assert.ok(got.text.startsWith('HTTP/1.1 201 Made Here\r\n'));
  assert.ok(!got.text.includes('cache-control'), 'hidden by the item');
  assert.ok(got.text.endsWith(bytes.toString('latin1')));
});

test('an empty body, an empty reason and an unknown status', { timeout: 30_000 }, async (t) => {
  const f = await startFront(t);
  f.use(HELD, { code: 299, reason: '', headers: [], body: Buffer.alloc(0) });
  const got = await sameBytes(f, GET);
  assert.ok(got.text.startsWith('HTTP/1.1 299 \r\n'));
  assert.ok(got.text.endsWith('\r\n\r\n'));
});

test('a held or item Date replaces the one Node would add', { timeout: 30_000 }, async (t) => {
  const f = await startFront(t);
  const date = 'Tue, 01 Dec 2026 00:00:00 GMT';
  f.use({ ...HELD, headers: { ...HELD.headers, date } }, decodeItemResponse({ body: 'x' }));
  const fromHeld = await sameBytes(f, GET);
  assert.equal(fromHeld.text.match(/date: /gi)?.length, 1);
  f.use(HELD, decodeItemResponse({ headers: { Date: date }, body: 'x' }));
  const fromItem = await sameBytes(f, GET);
  assert.ok(fromItem.text.includes(`\r\ndate: ${date}\r\n`));
  assert.equal(fromItem.text.match(/date: /gi)?.length, 1);
});

test('HTTP/1.0 without keep-alive, and a Connection: close request, get Connection: close and the connection ends', { timeout: 30_000 }, async (t) => {
  const f = await startFront(t);
  f.use(HELD, decodeItemResponse({ body: 'x' }));
  const old = await sameBytes(f, 'GET /poll?via={via} HTTP/1.0\r\nHost: localhost\r\nX-Request-Id: client-1\r\n\r\n');
  assert.equal(old.closed, true);
  assert.ok(old.text.includes('\r\nConnection: close\r\n\r\nx'));
  const closing = await sameBytes(f, 'GET /poll?via={via} HTTP/1.1\r\nHost: localhost\r\nX-Request-Id: client-1\r\nConnection: close\r\n\r\n');
  assert.equal(closing.closed, true);
  const kept = await sameBytes(f, 'GET /poll?via={via} HTTP/1.0\r\nHost: localhost\r\nX-Request-Id: client-1\r\nConnection: keep-alive\r\n\r\n');
  assert.equal(kept.closed, false);
  assert.ok(kept.text.includes('\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\nx'));
});

test('HEAD and a 204 item get the head with the item\'s Content-Length and no body', { timeout: 30_000 }, async (t) => {
  const f = await startFront(t);
  f.use(HELD, decodeItemResponse({ body: 'hello' }));
  const head = await sameBytes(f, 'HEAD /poll?via={via} HTTP/1.1\r\nHost: localhost\r\nX-Request-Id: client-1\r\n\r\n', (text) => text.endsWith('\r\n\r\n'));
  assert.ok(head.text.endsWith('\r\n\r\n') && head.text.includes('\r\ncontent-length: 5\r\n'));
  f.use(HELD, decodeItemResponse({ code: 204, body: 'ignored' }));
  const none = await sameBytes(f, GET);
  assert.ok(none.text.startsWith('HTTP/1.1 204 No Content\r\n') && none.text.endsWith('\r\n\r\n'));
});

test('one item answers requests holding different held responses, and keep-alive, close and HEAD requests in turn, each as writeHead would', { timeout: 30_000 }, async (t) => {
  // One publish meets requests holding different responses (two lease shapes on one channel) and wanting different
  // endings: the item is encoded once, and every answer must still be its own request's.
  const f = await startFront(t);
  const item = decodeItemResponse({ headers: { 'X-Item': '1' }, body: 'shared' });
  const other: HeldResponse = { code: 200, reason: 'OK', headers: { 'content-type': 'text/plain', 'x-other': 'yes' }, body: Buffer.from('timeout') };
  const close = 'GET /poll?via={via} HTTP/1.0\r\nHost: localhost\r\nX-Request-Id: client-2\r\n\r\n';
  const head = 'HEAD /poll?via={via} HTTP/1.1\r\nHost: localhost\r\nX-Request-Id: client-3\r\n\r\n';
  for (const held of [HELD, other, HELD, other]) {
    f.use(held, item);
    const kept = await sameBytes(f, GET);
    assert.equal(kept.text.includes('\r\nx-other: yes\r\n'), held === other, kept.text);
    assert.equal(kept.text.includes('\r\ncomet-connection-id: abc\r\n'), held === HELD, kept.text);
    assert.ok(kept.text.endsWith('Keep-Alive: timeout=5\r\n\r\nshared'), kept.text);
    const closed = await sameBytes(f, close);
    assert.ok(closed.text.includes('\r\nx-request-id: client-2\r\n') && closed.text.endsWith('\r\nConnection: close\r\n\r\nshared'), closed.text);
    const bodyless = await sameBytes(f, head, (text) => text.endsWith('\r\n\r\n'));
    assert.ok(bodyless.text.endsWith('\r\ncontent-length: 6\r\nDate: ' + bodyless.text.split('\r\nDate: ')[1]!.split('\r\n')[0] + '\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n'), bodyless.text);
  }
  assert.ok(f.item().encoded, 'the encoded path answered (not a fall-back to writeHead)');
});

test('an answer written while the front closes says Connection: close and ends its connection', { timeout: 30_000 }, async (t) => {
  const f = await startFront(t);
  f.use(HELD, decodeItemResponse({ body: 'x' }));
  const head = 'GET /poll?park&via={via} HTTP/1.1\r\nHost: localhost\r\nX-Request-Id: client-1\r\n\r\n';
  const answers = ['head', 'encoded'].map((via) => exchange(f, head, via, () => false));
  await waitFor(() => f.parked.length === 2, { timeoutMs: 5000, message: 'both parked' });
  const closed = f.front.close();
  for (const { via, res } of f.parked) assert.equal(f.answer(via, res), true);
  const [byHead, encoded] = await Promise.all(answers);
  await closed;
  assert.equal(masked(encoded!.text), masked(byHead!.text));
  assert.ok(encoded!.text.includes('\r\nConnection: close\r\n\r\nx'));
  assert.equal(encoded!.closed, true);
});

test('a header writeHead refuses is refused the same way: nothing written, the connection destroyed', { timeout: 30_000 }, async (t) => {
  const f = await startFront(t);
  f.use({ ...HELD, headers: { 'x-bad': 'a\u0001b' } }, decodeItemResponse({ body: 'x' }));
  const held = await sameBytes(f, GET);
  assert.deepEqual(held, { text: '', closed: true });
  f.use(HELD, decodeItemResponse({ headers: { 'X-Wide': '\u0100' }, body: 'x' }));
  const item = await sameBytes(f, GET);
  assert.deepEqual(item, { text: '', closed: true });
});
