/**
 * The write-stall watch (proxy/http/write-stall-watch.ts) on a real server and real sockets: it costs nothing
 * while connections wait (no timer, nothing timed: idle CPU, issue 15) and times exactly the sockets a write
 * left full, cutting off the one that does not drain and forgetting the one that does.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type ServerResponse } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { test, type TestContext } from 'node:test';
import { watchWriteStalls, WatchedResponse } from '../../proxy/http/write-stall-watch.js';

const MiB = 1024 * 1024;

/** Timers the test drives: `scheduled` counts timers set; `fire()` runs the pending one. */
function manualTimers() {
  const clock = { ms: 0 };
  let pending: (() => void) | null = null;
  let scheduled = 0;
  return {
    clock,
    get scheduled() {
      return scheduled;
    },
    get pending() {
      return pending !== null;
    },
    fire() {
      const run = pending;
      pending = null;
      run?.();
    },
    timers: {
      now: () => clock.ms,
      setTimeout: (callback: () => void) => {
        scheduled++;
        pending = callback;
        return callback;
      },
      clearTimeout: () => {
        pending = null;
      },
    },
  };
}

async function startServer(t: TestContext, onRequest: (res: ServerResponse) => void) {
  const manual = manualTimers();
  const stalls: number[] = [];
  const server = createServer({ ServerResponse: WatchedResponse }, (req, res) => {
    req.resume();
    onRequest(res);
  });
  const watch = watchWriteStalls(server, { timeoutMs: 1_000, timers: manual.timers, onStall: (_s, ms) => stalls.push(ms) });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    watch.stop();
    server.closeAllConnections();
    server.close();
  });
  const port = (server.address() as AddressInfo).port;
  return { manual, stalls, watch, port };
}

async function client(t: TestContext, port: number, read: boolean): Promise<Socket> {
  const socket = connect(port, '127.0.0.1');
  if (!read) socket.pause();
  socket.on('error', () => undefined);
  t.after(() => socket.destroy());
  await once(socket, 'connect');
  socket.write('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n');
  return socket;
}

test('200 connections waiting for their answers: no timer runs, nothing is timed', { timeout: 30_000 }, async (t) => {
  const parked: ServerResponse[] = [];
  const { manual, watch, port } = await startServer(t, (res) => parked.push(res));
  await Promise.all(Array.from({ length: 200 }, () => client(t, port, true)));
  const deadline = Date.now() + 10_000;
  while (parked.length < 200 && Date.now() < deadline) await new Promise((r) => setImmediate(r));
  assert.equal(parked.length, 200);
  assert.equal(manual.scheduled, 0, 'no sweep timer while nothing is written');
  assert.equal(watch.watched, 0);
  // Small answers never fill a buffer: still nothing timed.
  for (const res of parked) res.end('ok');
  assert.equal(watch.watched, 0);
  assert.equal(manual.scheduled, 0);
});

test('an answer that fills the buffer of a client that reads nothing is timed and cut off once; a reader is forgotten when it drains', { timeout: 30_000 }, async (t) => {
  const { manual, stalls, watch, port } = await startServer(t, (res) => {
    res.writeHead(200, { 'content-length': String(16 * MiB) });
    res.end(Buffer.alloc(16 * MiB, 'a'));
  });
  const stuck = await client(t, port, false);
  const deadline = Date.now() + 10_000;
  while (watch.watched < 1 && Date.now() < deadline) await new Promise((r) => setImmediate(r));
  assert.equal(watch.watched, 1, 'the full socket is timed');
  assert.ok(manual.pending, 'and the sweep timer runs');

  // A second client reads everything: timed while full, forgotten when it drains.
  const reader = await client(t, port, true);
  let received = 0;
  reader.on('data', (chunk: Buffer) => (received += chunk.length));
  while (received < 16 * MiB && Date.now() < deadline) await new Promise((r) => setImmediate(r));
  assert.ok(received >= 16 * MiB, `the reader got ${received} bytes`);
  while (watch.watched > 1 && Date.now() < deadline) await new Promise((r) => setImmediate(r));
  assert.equal(watch.watched, 1, 'the drained reader is no longer timed');

  manual.clock.ms = 999;
  manual.fire();
  assert.equal(stalls.length, 0, 'not before the timeout');
  manual.clock.ms = 1_000;
  manual.fire();
  assert.deepEqual(stalls, [1_000]);
  assert.equal(watch.watched, 0, 'cut off and forgotten');
  stuck.resume(); // reading now, it finds its connection closed
  await once(stuck, 'close');
  assert.equal(manual.pending, false, 'nothing left to time: the timer stops');
});
