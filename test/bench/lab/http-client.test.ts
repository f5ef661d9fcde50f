import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import { describe, test, type TestContext } from 'node:test';
import { HttpClient, RequestAbortedError, RequestTimeoutError } from '../../../bench/lab/http-client.js';

/** A plain node:http server on an ephemeral loopback port that tallies the bytes of its own sockets. */
async function startServer(t: TestContext, handler: http.RequestListener): Promise<{ base: string; serverBytes: () => number }> {
  const server = http.createServer(handler);
  const sockets = new Set<net.Socket>();
  let closed = 0;
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => {
      sockets.delete(socket);
      closed += socket.bytesRead + socket.bytesWritten;
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const { port } = server.address() as net.AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    serverBytes: () => [...sockets].reduce((sum, s) => sum + s.bytesRead + s.bytesWritten, closed),
  };
}

describe('the lab HTTP client', () => {
  test('counts requests and the bytes of its keep-alive socket once, headers included, and keeps cookies', async (t) => {
    const seenCookies: Array<string | undefined> = [];
    const { base, serverBytes } = await startServer(t, (req, res) => {
      seenCookies.push(req.headers.cookie);
      res.setHeader('set-cookie', 'sid=abc123; HttpOnly; Path=/');
      res.end('x'.repeat(100));
    });
    const client = new HttpClient({ baseUrl: base, localAddress: '127.0.0.3', requestTimeoutMs: 2_000 });
    t.after(() => client.stop());
    for (let i = 0; i < 3; i++) {
      const answer = await client.request('/hello', i === 0 ? { method: 'POST', json: { nick: 'a' } } : {});
      assert.equal(answer.status, 200);
      assert.equal(answer.body.length, 100);
    }
    assert.equal(client.requests, 3);
    assert.deepEqual(seenCookies, [undefined, 'sid=abc123', 'sid=abc123']);
    assert.equal(client.cookie('sid'), 'abc123');
    // Both ends of one socket see the same bytes; three answers of 100 body bytes plus headers.
    assert.equal(client.bytes(), serverBytes());
    assert.ok(client.bytes() > 300);
    const before = client.bytes();
    client.stop();
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(client.bytes(), before, 'a closed socket keeps counting its final bytes, once');
  });

  test('a request unanswered past its timeout fails with RequestTimeoutError; stop() aborts an open one', async (t) => {
    const { base } = await startServer(t, () => {
      /* never answers */
    });
    const client = new HttpClient({ baseUrl: base, requestTimeoutMs: 100 });
    await assert.rejects(client.request('/slow'), RequestTimeoutError);
    let sent = false;
    const open = client.request('/slow', { timeoutMs: 5_000, onSent: () => (sent = true) });
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(sent, true);
    client.stop();
    await assert.rejects(open, RequestAbortedError);
    await assert.rejects(client.request('/after'), RequestAbortedError);
  });

  test('a stream hands over 200 chunks as they come and ends with the server; its timeout is the longest silence', async (t) => {
    const { base } = await startServer(t, (req, res) => {
      if (req.url === '/missing') {
        res.statusCode = 404;
        res.end('nope');
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain' });
      let n = 0;
      const timer = setInterval(() => {
        res.write(`chunk${n}\n`);
        if (++n === 4) {
          clearInterval(timer);
          if (req.url === '/ends') res.end();
        }
      }, 40);
      res.on('close', () => clearInterval(timer));
    });
    const client = new HttpClient({ baseUrl: base, requestTimeoutMs: 100 });
    t.after(() => client.stop());
    let text = '';
    const answer = await client.stream('/ends', {}, (chunk) => (text += chunk));
    assert.equal(answer.status, 200);
    assert.equal(text, 'chunk0\nchunk1\nchunk2\nchunk3\n', 'four chunks 40 ms apart do not trip a 100 ms silence timeout');
    await assert.rejects(client.stream('/stays-open', {}, () => undefined), RequestTimeoutError);
    const missing = await client.stream('/missing', {}, () => assert.fail('a 404 body is not a stream'));
    assert.equal(missing.status, 404);
    assert.equal(missing.body, 'nope');
  });
});
