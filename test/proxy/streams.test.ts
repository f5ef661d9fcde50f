/**
 * Stream holds (docs/protocol.md §14): `Grip-Hold: stream` written at once without a length, `http-stream`
 * publishes as chunks, `action: close`, `Grip-Keep-Alive`, prev-id order, the parking caps, shutdown, and a
 * reader that stops reading (bounded, ended with the hold's resync data). Real proxy, real scripted app,
 * real sockets.
 */
import assert from 'node:assert/strict';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { test, type TestContext } from 'node:test';
import { startHarness, waitFor, type Harness } from '../helpers/proxy-harness.js';
import { writeHold } from '../helpers/scripted-app.js';

interface StreamClient {
  res: IncomingMessage;
  /** Everything received so far, as text. */
  text(): string;
  /** Resolves when the response ended normally, rejects if it was cut off. */
  ended: Promise<void>;
  isEnded(): boolean;
}

/** Opens a stream through the proxy; resolves once the head has arrived. Destroyed when the test ends. */
function openStream(t: TestContext, url: string, headers: Record<string, string> = {}): Promise<StreamClient> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent: false, headers }, (res) => {
      const chunks: Buffer[] = [];
      let done = false;
      const ended = new Promise<void>((resolveEnd, rejectEnd) => {
        res.on('end', () => {
          done = true;
          resolveEnd();
        });
        res.on('error', rejectEnd);
        res.on('close', () => {
          if (!done) rejectEnd(new Error(`stream cut off after ${Buffer.concat(chunks).length} bytes`));
        });
      });
      ended.catch(() => {});
      res.on('data', (c: Buffer) => chunks.push(c));
      resolve({ res, text: () => Buffer.concat(chunks).toString('utf8'), ended, isEnded: () => done });
    });
    req.on('error', reject);
    t.after(() => req.destroy());
    req.end();
  });
}

/** The app holds every request as a stream on `channel` with `headers` (Grip-Keep-Alive etc.) and `body`. */
function streamApp(h: Harness, { channel = 'news', body = 'hello\n', headers = {} as Record<string, string> } = {}): void {
  h.app.handle = (_req, res) => {
    res.writeHead(200, { 'Grip-Hold': 'stream', 'Grip-Channel': channel, 'Content-Type': 'text/plain', 'X-App': 'yes', ...headers });
    res.end(body);
  };
}

function streamItem(channel: string, content: string, extra: Record<string, unknown> = {}, format: Record<string, unknown> = {}) {
  return { channel, ...extra, formats: { 'http-stream': { content, ...format } } };
}

async function publish(h: Harness, items: unknown[]): Promise<Record<string, number>> {
  const res = await h.control('/publish/', { items });
  assert.equal(res.status, 200, res.text);
  return res.json() as Record<string, number>;
}

const waitStreams = (h: Harness, n: number) => waitFor(() => h.proxy.stats().streams === n, { message: `${n} open stream(s)` });

test('a stream hold answers at once with the app head and body, chunked; each http-stream publish is a chunk; close ends it', async (t) => {
  const h = await startHarness(t);
  streamApp(h);
  const s = await openStream(t, `${h.clientUrl}/s`);
  assert.equal(s.res.statusCode, 200);
  assert.equal(s.res.headers['transfer-encoding'], 'chunked');
  assert.equal(s.res.headers['content-length'], undefined);
  assert.equal(s.res.headers['x-app'], 'yes');
  assert.equal(s.res.headers['grip-hold'], undefined, 'Grip-* never reaches a client');
  await waitFor(() => s.text() === 'hello\n', { message: 'the initial body' });
  await waitStreams(h, 1);
  assert.equal(h.proxy.stats().parked, 0, 'a stream is not a parked response');

  const counts = await publish(h, [streamItem('news', 'one\n'), streamItem('news', 'two\n'), streamItem('other', 'not mine\n')]);
  assert.equal(counts.delivered, 2);
  await waitFor(() => s.text() === 'hello\none\ntwo\n', { message: 'two chunks' });
  assert.equal(s.isEnded(), false, 'the stream stays open');

  await publish(h, [streamItem('news', '', {}, { action: 'close' })]);
  await s.ended;
  assert.equal(s.text(), 'hello\none\ntwo\n');
  await waitStreams(h, 0);
  const stats = h.proxy.stats();
  assert.equal(stats.streamChunks, 2);
  assert.equal(stats.publishes, 4);
});

test('GET /stats and GET /metrics count open streams, chunks and keep-alives', async (t) => {
  const h = await startHarness(t);
  streamApp(h);
  const s = await openStream(t, `${h.clientUrl}/s`);
  await waitStreams(h, 1);
  await publish(h, [streamItem('news', 'a')]);
  await waitFor(() => s.text() === 'hello\na', { message: 'the chunk' });
  const stats = (await h.control('/stats', '', { method: 'GET' })).json() as Record<string, number>;
  assert.equal(stats.streams, 1);
  assert.equal(stats.streamChunks, 1);
  assert.equal(stats.streamKeepAlives, 0);
  assert.equal(stats.streamResyncs, 0);
  const metrics = (await h.control('/metrics', '', { method: 'GET' })).text;
  assert.match(metrics, /^comet_proxy_streams 1$/m);
  assert.match(metrics, /^comet_proxy_stream_chunks_total 1$/m);
  assert.match(metrics, /^comet_proxy_stream_resyncs_total 0$/m);
});

test('an item with both formats goes to streams as a chunk and to parked requests as a response', async (t) => {
  const h = await startHarness(t);
  h.app.handle = (req, res) => {
    if (req.url === '/s') res.writeHead(200, { 'Grip-Hold': 'stream', 'Grip-Channel': 'both' }).end();
    else writeHold(res, { channel: 'both' });
  };
  const s = await openStream(t, `${h.clientUrl}/s`);
  const poll = h.get('/poll');
  await h.waitParked(1);
  await waitStreams(h, 1);
  const counts = await publish(h, [{ channel: 'both', formats: { 'http-stream': { content: 'chunk\n' }, 'http-response': { body: 'whole' } } }]);
  assert.equal(counts.delivered, 2);
  assert.equal((await poll).text, 'whole');
  await waitFor(() => s.text() === 'chunk\n', { message: 'the chunk' });
});

test('an HTTP/1.0 client gets a close-delimited stream: no chunked framing, ended by closing the connection', async (t) => {
  const h = await startHarness(t);
  streamApp(h, { body: 'start;' });
  const socket = connect(Number(new URL(h.clientUrl).port), '127.0.0.1');
  t.after(() => socket.destroy());
  let received = '';
  socket.on('data', (c: Buffer) => (received += c.toString('latin1')));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.write('GET /s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n');
  await waitFor(() => received.endsWith('start;'), { message: 'the head and first bytes' });
  await publish(h, [streamItem('news', 'a;')]);
  await waitFor(() => received.endsWith('start;a;'), { message: 'the chunk, unframed' });
  await publish(h, [streamItem('news', '', {}, { action: 'close' })]);
  await closed;
  const [head, body] = received.split('\r\n\r\n');
  assert.match(head!, /^HTTP\/1\.1 200 /);
  assert.doesNotMatch(head!, /transfer-encoding/i);
  assert.doesNotMatch(head!, /content-length/i);
  assert.equal(body, 'start;a;');
});

test('a request pipelined behind a stream ends it (docs §4 step 0), and is then answered on the same connection', async (t) => {
  const h = await startHarness(t);
  h.app.handle = (req, res) => {
    if (req.url === '/s') res.writeHead(200, { 'Grip-Hold': 'stream', 'Grip-Channel': 'news' }).end('open;');
    else res.writeHead(200, { 'content-type': 'text/plain' }).end('second');
  };
  const socket = connect(Number(new URL(h.clientUrl).port), '127.0.0.1');
  t.after(() => socket.destroy());
  let received = '';
  socket.on('data', (c: Buffer) => (received += c.toString('latin1')));
  socket.write('GET /s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  await waitStreams(h, 1);
  socket.write('GET /next HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  await waitFor(() => received.endsWith('6\r\nsecond\r\n0\r\n\r\n'), { message: 'the pipelined answer' });
  assert.match(received, /\r\n5\r\nopen;\r\n0\r\n\r\nHTTP\/1\.1 200 OK\r\n/, 'the stream ended with its terminating chunk, then the next answer');
  assert.equal(h.proxy.stats().streams, 0);
});

test('a request pipelined before the app answered never opens a stream: the first bytes are a complete answer, then the next one', async (t) => {
  const h = await startHarness(t);
  h.app.handle = (req, res) => {
    if (req.url === '/s') res.writeHead(200, { 'Grip-Hold': 'stream', 'Grip-Channel': 'news' }).end('open;');
    else res.writeHead(200, { 'content-type': 'text/plain' }).end('second');
  };
  const socket = connect(Number(new URL(h.clientUrl).port), '127.0.0.1');
  t.after(() => socket.destroy());
  let received = '';
  socket.on('data', (c: Buffer) => (received += c.toString('latin1')));
  socket.write('GET /s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /next HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  await waitFor(() => received.endsWith('6\r\nsecond\r\n0\r\n\r\n'), { message: 'the pipelined answer' });
  assert.match(received, /^HTTP\/1\.1 200 OK\r\n[^]*content-length: 5\r\n[^]*\r\n\r\nopen;HTTP\/1\.1 200 OK\r\n/i);
  assert.equal(h.proxy.stats().streams, 0);
});

test('Grip-Keep-Alive (idle): the data is written when the stream has been idle for the timeout, and a chunk restarts the wait', async (t) => {
  const h = await startHarness(t);
  streamApp(h, { body: '', headers: { 'Grip-Keep-Alive': '\\n; format=cstring; timeout=1' } });
  const started = Date.now();
  const s = await openStream(t, `${h.clientUrl}/s`);
  await waitFor(() => s.text() === '\n', { timeoutMs: 3000, message: 'the first keep-alive' });
  assert.ok(Date.now() - started >= 900, `keep-alive after ${Date.now() - started} ms, not before the 1 s timeout`);
  // Chunks back to back for 1.5 s: an idle keep-alive never fires while they come (an interval one would).
  const busyUntil = Date.now() + 1500;
  let chunks = 0;
  while (Date.now() < busyUntil && chunks < 5000) {
    await publish(h, [streamItem('news', 'x')]);
    chunks++;
    await waitFor(() => s.text().length === 1 + chunks, { message: `chunk ${chunks}` });
  }
  assert.equal(s.text(), '\n' + 'x'.repeat(chunks), 'no keep-alive while chunks flow');
  await waitFor(() => s.text().endsWith('x\n'), { timeoutMs: 3000, message: 'a keep-alive once they stop' });
  assert.ok(h.proxy.stats().streamKeepAlives >= 2);
});

test('Grip-Keep-Alive (interval, base64): written every timeout whatever else was written', async (t) => {
  const h = await startHarness(t);
  streamApp(h, { body: '', headers: { 'Grip-Keep-Alive': `${Buffer.from(':ka\n').toString('base64')}; format=base64; timeout=1; mode=interval` } });
  const s = await openStream(t, `${h.clientUrl}/s`);
  await waitStreams(h, 1);
  // Back-to-back chunks would keep an idle keep-alive from ever firing; an interval one fires anyway.
  const deadline = Date.now() + 3000;
  for (let i = 1; i <= 5000 && Date.now() < deadline && !s.text().includes(':ka\n'); i++) {
    await publish(h, [streamItem('news', '.')]);
    await waitFor(() => s.text().split('.').length - 1 === i, { message: `chunk ${i}` });
  }
  assert.ok(s.text().includes(':ka\n'), `an interval keep-alive among the chunks: ${JSON.stringify(s.text())}`);
});

test('prev-id on a stream: in-order items are written; an item past a gap ends the stream with its Grip-Stream-Resync data', async (t) => {
  const h = await startHarness(t);
  streamApp(h, { channel: 'log; prev-id=1', body: 'event 1\n', headers: { 'Grip-Stream-Resync': 'event: resync\\n\\n; format=cstring' } });
  const s = await openStream(t, `${h.clientUrl}/s`);
  await waitStreams(h, 1);
  await publish(h, [
    streamItem('log', 'event 1 again\n', { id: '1' }), // the client has it: skipped
    streamItem('log', 'event 2\n', { id: '2', 'prev-id': '1' }),
    streamItem('log', 'event 3\n', { id: '3', 'prev-id': '2' }),
  ]);
  await waitFor(() => s.text() === 'event 1\nevent 2\nevent 3\n', { message: 'items 2 and 3' });
  await publish(h, [streamItem('log', 'event 5\n', { id: '5', 'prev-id': '4' })]);
  await s.ended;
  assert.equal(s.text(), 'event 1\nevent 2\nevent 3\nevent: resync\n\n');
  await waitStreams(h, 0);
  assert.equal(h.proxy.stats().streamResyncs, 1);
});

test("a stream held behind its channel's last published id is re-asked with Grip-Last before it opens", async (t) => {
  const h = await startHarness(t);
  await publish(h, [streamItem('log', 'seven\n', { id: '7', 'prev-id': '6' })]); // nobody listens yet
  h.app.handle = (req, res) => {
    const last = req.headers['grip-last'] === undefined ? '5' : '7';
    res.writeHead(200, { 'Grip-Hold': 'stream', 'Grip-Channel': `log; prev-id=${last}` }).end(`from ${last}\n`);
  };
  const s = await openStream(t, `${h.clientUrl}/s`);
  await waitFor(() => s.text() === 'from 7\n', { message: 'the answer to the re-ask' });
  assert.equal(h.app.requests.length, 2);
  assert.equal(h.app.requests[1]!.headers['grip-last'], 'log; last-id=5');
  await publish(h, [streamItem('log', 'eight\n', { id: '8', 'prev-id': '7' })]);
  await waitFor(() => s.text() === 'from 7\neight\n', { message: 'the next item' });
});

test('a stream the app keeps holding behind its channel gets the reask-limit resync answer after maxReasks re-asks', async (t) => {
  const h = await startHarness(t, { maxReasks: 2 });
  await publish(h, [streamItem('log', 'nine\n', { id: '9', 'prev-id': '8' })]);
  h.app.handle = (_req, res) => {
    res.writeHead(200, { 'Grip-Hold': 'stream', 'Grip-Channel': 'log; prev-id=3' }).end('stale\n');
  };
  const res = await h.get('/s');
  assert.equal(res.status, 200);
  assert.equal(res.headers['comet-resync'], 'reask-limit');
  assert.deepEqual(res.json(), { resync: { reason: 'reask-limit', channels: ['log'] } });
  assert.equal(h.app.requests.length, 3, 'the first answer and two re-asks');
  assert.equal(h.proxy.stats().streams, 0);
});

test("channel filters apply to streams: skip-self drops the sender's own items (its position still moves past them)", async (t) => {
  const h = await startHarness(t);
  h.app.handle = (req, res) => {
    const user = req.url === '/s/ada' ? 'ada' : 'bob';
    res.writeHead(200, { 'Grip-Hold': 'stream', 'Grip-Channel': 'room; prev-id=0; filter=skip-self', 'Grip-Set-Meta': `user=${user}` }).end();
  };
  const ada = await openStream(t, `${h.clientUrl}/s/ada`);
  const bob = await openStream(t, `${h.clientUrl}/s/bob`);
  await waitStreams(h, 2);
  await publish(h, [
    streamItem('room', 'from ada;', { id: '1', 'prev-id': '0', meta: { sender: 'ada' } }),
    streamItem('room', 'from bob;', { id: '2', 'prev-id': '1', meta: { sender: 'bob' } }),
  ]);
  await waitFor(() => ada.text() === 'from bob;' && bob.text() === 'from ada;', { message: 'each gets the other one only' });
  assert.equal(h.proxy.stats().streams, 2, 'no gap: the dropped item moved each position');
});

test('a stream hold answering a JSON-P request is refused (502 PROXY_ERR_UNSUPPORTED_INSTRUCTION inside the script): a script is one answer', async (t) => {
  const h = await startHarness(t, { jsonpCallbackParam: 'callback' });
  streamApp(h);
  const res = await h.get('/s?callback=cb');
  assert.equal(res.status, 200);
  assert.match(res.text, /^\/\*\*\/cb\(\{"code": 502, /);
  assert.match(res.text, /PROXY_ERR_UNSUPPORTED_INSTRUCTION/);
  assert.equal(h.proxy.stats().streams, 0);
});

test('an application/grip-instruct body can hold a stream, with its keep-alive (Pushpin\'s JSON form)', async (t) => {
  const h = await startHarness(t);
  h.app.handle = (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/grip-instruct' });
    res.end(JSON.stringify({
      hold: { mode: 'stream', channels: [{ name: 'news' }], 'keep-alive': { content: 'ka\n', timeout: 1 } },
      response: { headers: { 'content-type': 'text/plain' }, body: 'open\n' },
    }));
  };
  const s = await openStream(t, `${h.clientUrl}/s`);
  assert.equal(s.res.headers['content-type'], 'text/plain');
  await waitStreams(h, 1);
  await publish(h, [streamItem('news', 'one\n')]);
  await waitFor(() => s.text() === 'open\none\nka\n', { timeoutMs: 3000, message: 'the first bytes, the chunk, then the keep-alive' });
});

test('streams count against maxParked with parked responses, both ways', async (t) => {
  const h = await startHarness(t, { maxParked: 1 });
  h.app.handle = (req, res) => {
    if (req.url === '/s') res.writeHead(200, { 'Grip-Hold': 'stream', 'Grip-Channel': 'c' }).end();
    else writeHold(res, { channel: 'c' });
  };
  const s = await openStream(t, `${h.clientUrl}/s`);
  await waitStreams(h, 1);
  const refused = await h.get('/poll');
  assert.equal(refused.status, 503);
  assert.match(refused.text, /PROXY_ERR_TOO_MANY_PARKED/);
  await publish(h, [streamItem('c', '', {}, { action: 'close' })]);
  await s.ended;
  const poll = h.get('/poll');
  await h.waitParked(1);
  const second = await openStream(t, `${h.clientUrl}/s`);
  assert.equal(second.res.statusCode, 503);
  assert.ok(second.res.headers['retry-after']);
  await publish(h, [{ channel: 'c', formats: { 'http-response': { body: 'done' } } }]);
  assert.equal((await poll).text, 'done');
});

test('shutdown ends every stream cleanly: the client sees a complete response, not a cut-off one', async (t) => {
  const h = await startHarness(t);
  streamApp(h);
  const s = await openStream(t, `${h.clientUrl}/s`);
  await waitStreams(h, 1);
  await h.proxy.close();
  await s.ended; // rejects if the stream was cut off instead of ended
  assert.equal(s.text(), 'hello\n');
});

test('a reader that stops reading is ended once its unsent bytes pass streamMaxBufferedBytes, with the resync data; memory stays bounded', async (t) => {
  const MAX = 64 * 1024;
  const h = await startHarness(t, { streamMaxBufferedBytes: MAX });
  streamApp(h, { body: '', headers: { 'Grip-Stream-Resync': 'RESYNC; format=raw' } });
  const s = await openStream(t, `${h.clientUrl}/s`);
  s.res.pause(); // never reads again
  s.res.socket.pause();
  await waitStreams(h, 1);
  const chunk = 'x'.repeat(32 * 1024);
  const heapBefore = process.memoryUsage().heapUsed;
  let publishes = 0;
  // Loopback buffers a few MB in the kernel before Node's own buffer fills; bounded by count.
  while (h.proxy.stats().streams === 1) {
    assert.ok(publishes < 1000, 'the stream was never ended');
    await publish(h, [streamItem('news', chunk), streamItem('news', chunk)]);
    publishes += 2;
  }
  assert.equal(h.proxy.stats().streamResyncs, 1);
  // Past the end, more publishes find no stream: nothing more is kept for this reader.
  for (let i = 0; i < 50; i++) assert.equal((await publish(h, [streamItem('news', chunk)])).delivered, 0);
  const grew = process.memoryUsage().heapUsed - heapBefore;
  assert.ok(grew < 64 * 1024 * 1024, `heap grew ${grew} bytes`);
  // The reader reads again: what was buffered arrives, then the resync data, then the end.
  s.res.socket.resume();
  s.res.resume();
  await s.ended;
  assert.ok(s.text().endsWith('RESYNC'), `the resync data is the last thing written: ...${JSON.stringify(s.text().slice(-20))} of ${s.text().length}`);
  assert.ok(s.text().length <= publishes * chunk.length + 'RESYNC'.length, 'nothing published after the end was written');
});

test('bad stream instructions are 502 PROXY_ERR_BAD_INSTRUCTION and open nothing', async (t) => {
  const h = await startHarness(t);
  for (const keepAlive of ['', '\\q; format=cstring', 'x; timeout=0', 'x; mode=sometimes', 'x; format=hex', 'x; timeout=1.5']) {
    streamApp(h, { headers: { 'Grip-Keep-Alive': keepAlive } });
    const res = await h.get('/s');
    assert.equal(res.status, 502, `${JSON.stringify(keepAlive)}: ${res.text}`);
    assert.match(res.text, /PROXY_ERR_BAD_INSTRUCTION/);
  }
  streamApp(h, { headers: { 'Grip-Stream-Resync': '***; format=base64' } });
  assert.equal((await h.get('/s')).status, 502);
  assert.equal(h.proxy.stats().streams, 0);
});

test('publish: http-stream items are validated (400), and an http-response close is accepted and leaves a parked request parked, as in Pushpin', async (t) => {
  const h = await startHarness(t);
  for (const [format, problem] of [
    [{ action: 'hint' }, /http-stream\.action must be "send" or "close"/],
    [{ content: 'a', 'content-bin': 'YQ==' }, /must not have both content and content-bin/],
    [{}, /needs content or content-bin/],
    [{ 'content-bin': '***' }, /content-bin must be a base64 string/],
    [{ content: 7 }, /content must be a string/],
  ] as const) {
    const res = await h.control('/publish/', { items: [{ channel: 'c', formats: { 'http-stream': format } }] });
    assert.equal(res.status, 400, JSON.stringify(format));
    assert.match((res.json() as { message: string }).message, problem);
  }
  h.app.handle = (_req, res) => writeHold(res, { channel: 'c', timeoutS: 30 });
  const poll = h.get('/poll');
  await h.waitParked(1);
  const counts = await publish(h, [{ channel: 'c', formats: { 'http-response': { action: 'close' } } }]);
  assert.equal(counts.delivered, 0);
  assert.equal(h.proxy.stats().parked, 1);
  await publish(h, [{ channel: 'c', formats: { 'http-response': { body: 'then this' } } }]);
  assert.equal((await poll).text, 'then this');
});
