/**
 * The `chat-sse` lab client (bench/lab/clients/chat-sse.ts) against a scripted stream server on a real socket:
 * it reads the `hello` frame's connection ID, counts each stamped event once, ignores keep-alive comments,
 * counts a `resync` frame and reopens from its cursor (with the `cid`) whenever a stream ends, one request per
 * (re)connection. The end-to-end run against our proxy and app is test/bench/models/suspend-push-sse.test.ts.
 */
import assert from 'node:assert/strict';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { ChatSseSubscriber } from '../../../bench/lab/clients/chat-sse.js';
import { DeliverySink } from '../../../bench/lab/clients/subscriber.js';
import { verifyRecord } from '../../../bench/lab/verify.js';
import { formatStamp } from '../../../bench/lab/workload.js';
import { waitFor } from '../../helpers/chat-client.js';

const frame = (id: number, seq: number): string =>
  `id: ${id}\ndata: ${JSON.stringify({ id, room: 'r', type: 'message', text: formatStamp({ seq, sentAtMs: performance.now() }), at: new Date().toISOString() })}\n\n`;
const hello = (cid: string): string => `event: hello\ndata: ${JSON.stringify({ connectionId: cid })}\n\n`;

test('chat-sse: hello, keep-alive, resync, reopen from the cursor with the cid: every event once, in order', async (t) => {
  const urls: string[] = [];
  const open: ServerResponse[] = [];
  const server = createServer((req, res) => {
    urls.push(req.url ?? '');
    open.push(res);
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
    if (urls.length === 1) {
      // Split mid-frame, a keep-alive comment, a join (not a message), then the proxy's resync and the end.
      const first = hello('c1') + frame(3, 1) + ':\n\n' + `id: 4\ndata: {"id":4,"room":"r","type":"join"}\n\n` + frame(5, 2);
      res.write(first.slice(0, 30));
      res.write(first.slice(30));
      res.end('event: resync\ndata: reconnect\n\n');
    } else if (urls.length === 2) {
      // A stream cut at the first batch (a complete response): the client reopens from where it got to.
      res.end(hello('c1') + frame(6, 3));
    } else {
      res.write(hello('c1') + frame(7, 4));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const res of open) res.destroy();
    server.close();
  });
  const sink = new DeliverySink();
  const client = new ChatSseSubscriber({
    index: 0,
    room: 'r',
    clientUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    localAddress: undefined,
    requestTimeoutMs: 5000,
    shortPollIntervalMs: 1000,
    sink,
  });
  client.skipTo(2);
  t.after(() => client.stop());
  client.start();
  await waitFor(() => sink.deliveries >= 4, 'four deliveries', 5000);
  assert.deepEqual(urls, ['/api/stream?rooms=r:2&format=sse', '/api/stream?rooms=r:5&format=sse&cid=c1', '/api/stream?rooms=r:6&format=sse&cid=c1']);
  assert.equal(sink.resyncs, 1);
  assert.equal(sink.errors, 0);
  assert.equal(client.http.requests, 3, 'one request per stream (re)connection');
  client.stop();
  await client.finished();
  const verdict = verifyRecord(client.record, 4);
  assert.deepEqual([verdict.deliveries, verdict.lost, verdict.duplicated, verdict.outOfOrder], [4, 0, 0, 0]);
});
