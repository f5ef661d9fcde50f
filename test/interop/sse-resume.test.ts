/**
 * SSE resume through stream holds (docs/protocol.md §14.6): the proxy forwards `Last-Event-ID`, the app answers
 * a reconnecting stream with the events it missed and holds it with `prev-id`. A counting test with a proxy
 * restart in the middle: events are appended (and published) before, during and after the outage, and every
 * client gets every event once, in order.
 */
import assert from 'node:assert/strict';
import http, { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import { createHoldProxy, type HoldProxy } from '../../proxy/proxy.js';
import { defer } from '../helpers/app-harness.js';
import { waitFor } from '../helpers/proxy-harness.js';
import { createSseLogApp } from './sse-log-app.js';

const SECRET = 'sse-resume-secret-0123456789';
const CONTROL_SECRET = 'sse-resume-control-0123456789';

/**
 * An EventSource-like reader: follows `url`, sends `Last-Event-ID` when it reconnects, reconnects whenever the
 * stream ends or fails (the proxy restarting), bounded in attempts. Records every id received, in order.
 */
class SseFollower {
  readonly ids: string[] = [];
  connects = 0;
  private lastId: string | undefined;
  private stopped = false;
  private req: http.ClientRequest | null = null;

  constructor(private readonly url: string) {}

  start(): void {
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    this.req?.destroy();
  }

  private connect(): void {
    // Bounded: past 200 connects it stops, and the test's wait for its events fails with what it has.
    if (this.stopped || ++this.connects > 200) return;
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (this.lastId !== undefined) headers['last-event-id'] = this.lastId;
    let buffer = '';
    let reconnected = false;
    // A failed or ended stream reconnects after a short pause (EventSource's retry), once per stream.
    const again = () => {
      if (reconnected) return;
      reconnected = true;
      setTimeout(() => this.connect(), 50);
    };
    const req = httpRequest(this.url, { agent: false, headers }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        res.on('end', again);
        return;
      }
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const id = /^id: (.*)$/m.exec(block)?.[1];
          if (id !== undefined) {
            this.ids.push(id);
            this.lastId = id;
          }
        }
      });
      res.on('end', again);
      res.on('error', again);
      res.on('close', again);
    });
    req.on('error', again);
    req.end();
    this.req = req;
  }
}

async function startProxy(t: TestContext, appPort: number, clientPort = 0, controlPort = 0): Promise<{ proxy: HoldProxy; clientPort: number; controlPort: number }> {
  const proxy = createHoldProxy({
    upstreamUrl: `http://127.0.0.1:${appPort}`,
    secret: SECRET,
    controlSecret: CONTROL_SECRET,
    controlIssuer: 'sse-log-app',
    clientPort,
    controlPort,
  });
  defer(t, () => proxy.close());
  return { proxy, ...(await proxy.listen()) };
}

test('SSE clients resume with Last-Event-ID across a proxy restart: every event once, in order', { timeout: 60_000 }, async (t) => {
  const N = 60;
  const CLIENTS = 4;
  const appServer = http.createServer();
  await new Promise<void>((resolve) => appServer.listen(0, '127.0.0.1', resolve));
  defer(t, () => new Promise<void>((resolve) => {
    appServer.close(() => resolve());
    appServer.closeAllConnections();
  }));
  const appPort = (appServer.address() as AddressInfo).port;
  const first = await startProxy(t, appPort);
  const { clientPort, controlPort } = first;
  const app = createSseLogApp({ gripUrl: `http://127.0.0.1:${controlPort}/?iss=sse-log-app&key=${CONTROL_SECRET}&verify-key=${SECRET}` });
  appServer.on('request', app.handle);

  const followers = Array.from({ length: CLIENTS }, () => new SseFollower(`http://127.0.0.1:${clientPort}/events/room`));
  defer(t, () => followers.forEach((f) => f.stop()));
  followers.forEach((f) => f.start());
  await waitFor(() => first.proxy.stats().streams === CLIENTS, { timeoutMs: 5000, message: 'every follower streaming' });

  const allAt = (n: number) => waitFor(() => followers.every((f) => f.ids.length >= n), { timeoutMs: 10_000, message: `every follower at ${n}` });
  let unpublished = 0;
  let second: HoldProxy | null = null;
  for (let i = 1; i <= N; i++) {
    if (!(await app.append('room', `m${i}`)).published) unpublished++;
    if (i === 20) {
      await allAt(20); // live: these came as chunks
      await first.proxy.close(); // streams end cleanly; followers reconnect and fail until the proxy is back
    }
    if (i === 30) second = (await startProxy(t, appPort, clientPort, controlPort)).proxy;
    if (i % 10 === 0 && i !== 20 && i !== 30) await allAt(i);
  }
  await allAt(N);
  const expected = Array.from({ length: N }, (_, i) => String(i + 1));
  for (const f of followers) assert.deepEqual(f.ids, expected, 'every event once, in order');
  assert.ok(unpublished >= 10, `events appended while the proxy was down were not published (${unpublished})`);
  assert.ok(app.resumed >= CLIENTS, 'the followers resumed with Last-Event-ID, which the proxy forwarded');
  assert.ok(first.proxy.stats().streamChunks >= 20 * CLIENTS, 'live events came as chunks before the restart');
  assert.ok(second!.stats().streamChunks > 0, 'and after it');
});
