/**
 * Clients that read their answers slowly or not at all (docs/protocol.md §1.7):
 * the proxy reads a pass-through answer ahead of a slow client (up to
 * `responseBufferMaxBytes`) so the app's socket goes back to the pool at once,
 * and a client whose write buffer does not drain within `clientWriteTimeoutMs`
 * is disconnected, which cancels whatever it still holds upstream. Bodies are
 * several MiB so they overflow the kernel's socket buffers on loopback.
 */
import assert from 'node:assert/strict';
import type { Agent, ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
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
  client.write('GET /big HTTP/1.1\r\nHost: x\r\n\r\n');
  return { client, proxySide: await proxySide, sentAt: performance.now() };
}

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
