/**
 * Clients that read their answers slowly or not at all (docs/protocol.md §1.8):
 * the proxy reads a pass-through answer ahead of a slow client (up to
 * `responseBufferMaxBytes`) so the app's socket goes back to the pool at once,
 * and a client whose write buffer does not drain within `clientWriteTimeoutMs`
 * is disconnected, which cancels whatever it still holds upstream. Bodies are
 * several MiB so they overflow the kernel's socket buffers on loopback.
 */
import assert from 'node:assert/strict';
import type { Agent, ServerResponse } from 'node:http';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { memoryLogger } from '../hardening/raw-http.js';
import { startHarness, waitFor, type Harness } from '../helpers/proxy-harness.js';

const MiB = 1024 * 1024;

function inUse(agent: Agent): number {
  return Object.values(agent.sockets).reduce((n, list) => n + (list?.length ?? 0), 0);
}

/**
 * The app answers `GET /big` with `bytes` bytes. `sent` resolves once the app has handed its whole answer to the
 * kernel; `connectionClosed` once the proxy closed the app's connection (it cancelled the request: a completed
 * answer leaves the connection open in the proxy's keep-alive pool).
 */
function serveBig(h: Harness, bytes: number): { sent: Promise<void>; connectionClosed: Promise<void> } {
  let sent: () => void = () => undefined;
  let closed: () => void = () => undefined;
  const result = {
    sent: new Promise<void>((resolve) => (sent = resolve)),
    connectionClosed: new Promise<void>((resolve) => (closed = resolve)),
  };
  h.app.handle = (_req, res: ServerResponse) => {
    res.once('finish', () => sent());
    res.socket?.once('close', () => closed());
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(bytes) });
    res.end(Buffer.alloc(bytes, 'a'));
  };
  return result;
}

/** A client that sends `GET /big` and reads nothing; also the proxy's end of its connection. */
async function nonReader(h: Harness): Promise<{ client: Socket; proxySide: Socket; sentAt: number }> {
  const proxySide = new Promise<Socket>((resolve) => h.proxy.clientServer.once('connection', resolve));
  const client = connect(Number(new URL(h.clientUrl).port), '127.0.0.1');
  client.pause();
  client.on('error', () => undefined);
  await new Promise((resolve) => client.once('connect', resolve));
  client.write('GET /big HTTP/1.1\r\nHost: localhost\r\n\r\n');
  return { client, proxySide: await proxySide, sentAt: performance.now() };
}

test('a client that stops reading is disconnected after clientWriteTimeoutMs, which cancels the app answer it held, logged once', async (t) => {
  const log = memoryLogger('info');
  const h = await startHarness(t, { clientWriteTimeoutMs: 300, responseBufferMaxBytes: 64 * 1024, logger: log.logger });
  const app = serveBig(h, 32 * MiB);
  const { client, proxySide, sentAt } = await nonReader(h);
  t.after(() => client.destroy());

  // Deadline 5 s: the abort rejects the wait if the proxy never closes the connection.
  await once(proxySide, 'close', { signal: AbortSignal.timeout(5000) });
  const closedAfterMs = performance.now() - sentAt;
  assert.ok(closedAfterMs >= 300, `not before the timeout: closed after ${Math.round(closedAfterMs)} ms`);
  await app.connectionClosed; // the upstream request was cancelled with the client, not left to its idle timeout
  await waitFor(() => inUse(h.proxy.upstreamAgent) === 0, { message: 'no upstream socket in use' });
  client.destroy();

  const warnings = log.lines.filter((l) => l.level === 40);
  assert.equal(warnings.length, 1, JSON.stringify(warnings));
  assert.equal(warnings[0]!.msg, 'client stopped reading its answer; connection closed');
  assert.equal(warnings[0]!.clientAddress, '127.0.0.1');
  assert.equal(typeof warnings[0]!.requestId, 'string');
  assert.equal(warnings[0]!.timeoutMs, 300);
});

test('an answer within responseBufferMaxBytes is read from the app at once although its client reads nothing, so no upstream socket waits for it', async (t) => {
  const h = await startHarness(t, { responseBufferMaxBytes: 16 * MiB, clientWriteTimeoutMs: 60_000 });
  const app = serveBig(h, 8 * MiB);
  const { client, proxySide } = await nonReader(h);
  t.after(() => client.destroy());

  await app.sent;
  await waitFor(() => inUse(h.proxy.upstreamAgent) === 0, { timeoutMs: 3000, message: 'the upstream socket back in the pool' });
  assert.equal(proxySide.destroyed, false, 'the client is still connected (its write timeout is far away)');
  assert.ok(proxySide.writableNeedDrain, 'its answer is still being written');
  client.destroy(); // else the proxy's close() would wait for this connection until its write timeout
});

test('a client that reads slowly but keeps draining is not disconnected, and gets the whole answer', async (t) => {
  // The write timeout is 60 read intervals: a buffer the reader empties at this pace drains well within it even on
  // a loaded machine (with 1 s, CI once saw a drain take longer under the full suite and the reader cut off).
  const h = await startHarness(t, { clientWriteTimeoutMs: 3000, responseBufferMaxBytes: 64 * 1024 });
  const bytes = 4 * MiB;
  serveBig(h, bytes);
  const { client } = await nonReader(h);
  t.after(() => client.destroy());
  let received = 0;
  client.on('data', (chunk: Buffer) => (received += chunk.length));
  client.pause();
  // One read (at most 64 KiB) every 50 ms. Bounded to 20 s.
  // Waits for the next chunk (or the end), at most 2 s, then stops reading again.
  const readOne = async (): Promise<void> => {
    const ac = new AbortController();
    const until = AbortSignal.any([ac.signal, AbortSignal.timeout(2000)]);
    client.resume();
    try {
      await Promise.race([once(client, 'data', { signal: until }), once(client, 'close', { signal: until })]);
    } catch {
      /* no chunk within 2 s: the loop's deadline bounds the retries */
    } finally {
      ac.abort();
      client.pause();
    }
  };
  const deadline = Date.now() + 20_000;
  let reads = 0;
  while (received < bytes && !client.destroyed && Date.now() < deadline) {
    await readOne();
    reads++;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  t.diagnostic(`${reads} reads`);
  assert.equal(client.destroyed, false, 'still connected');
  assert.ok(received > bytes, `the whole answer and its head arrived (${received} bytes)`);
  client.destroy();
});
