/**
 * Grip-Last as Pushpin sends it (issue 13 item 5). An app built for Pushpin's
 * re-ask (test/interop/grip-last-app.ts) holds with prev-id = the client's
 * position and answers a re-ask from `Grip-Last`, read as that position.
 * Behind our proxy, with re-asks answered slowly and publishes arriving
 * meanwhile, every client must still get every message once, in order.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import { createHoldProxy } from '../../proxy/proxy.js';
import { defer } from '../helpers/app-harness.js';
import { waitFor } from '../helpers/chat-client.js';
import { request } from '../helpers/proxy-harness.js';
import { createGripLastApp, type LogEntry } from './grip-last-app.js';

const SECRET = 'grip-last-secret-0123456789';
const CONTROL_SECRET = 'grip-last-control-0123456789';

/**
 * Long-polls `channel` from nothing until its cursor reaches `lastId`, as a Pushpin client does (the cursor is the
 * last id received). Returns every id received, in order, duplicates included. Bounded in polls and time.
 */
async function follow(t: TestContext, clientUrl: string, channel: string, lastId: string, timeoutMs: number): Promise<string[]> {
  // Ends with the test even when it failed early, so no poll outlives the proxy.
  const stop = new AbortController();
  defer(t, () => stop.abort());
  const received: string[] = [];
  let cursor = '0';
  const deadline = Date.now() + timeoutMs;
  for (let polls = 0; cursor !== lastId; polls++) {
    if (polls > Number(lastId) * 3 + 20 || Date.now() > deadline) {
      throw new Error(`follow ${channel}: at ${cursor} of ${lastId} after ${polls} polls; received ${received.join(' ')}`);
    }
    const signal = AbortSignal.any([stop.signal, AbortSignal.timeout(Math.max(1, deadline - Date.now()))]);
    const res = await request(`${clientUrl}/log/${channel}?last=${cursor}`, { signal });
    assert.equal(res.status, 200, res.text);
    // A body without items (our proxy's resync answer) means nothing to a Pushpin client: it polls again.
    for (const entry of (res.json() as { items?: LogEntry[] }).items ?? []) {
      received.push(entry.id);
      cursor = entry.id;
    }
  }
  return received;
}

const ids = (n: number): string[] => Array.from({ length: n }, (_, i) => String(i + 1));

test('an app that reads Grip-Last as the client position, re-asked slowly while publishes go on, loses nothing: every client gets each message once, in order', async (t) => {
  const N = 60; // even: messages come in pairs
  const CHANNELS = ['alpha', 'beta'];
  const CLIENTS_PER_CHANNEL = 3;

  // The proxy needs the app's URL and the app the proxy's control URL: listen first, attach the app after.
  const appServer = http.createServer();
  await new Promise<void>((resolve) => appServer.listen(0, '127.0.0.1', resolve));
  // defer: last registered, first run (polls stop, then the proxy, then the app).
  defer(
    t,
    () =>
      new Promise<void>((resolve) => {
        appServer.close(() => resolve());
        appServer.closeAllConnections();
      }),
  );
  const proxy = createHoldProxy({
    upstreamUrl: `http://127.0.0.1:${(appServer.address() as AddressInfo).port}`,
    secret: SECRET,
    controlSecret: CONTROL_SECRET,
    controlIssuer: 'grip-last-app',
    clientPort: 0,
    controlPort: 0,
  });
  defer(t, () => proxy.close());
  const { clientPort, controlPort } = await proxy.listen();
  const clientUrl = `http://127.0.0.1:${clientPort}`;
  // ~100 ms per re-ask: a slow backend, so several publishes land while one is answered.
  const app = createGripLastApp({ gripUrl: `http://127.0.0.1:${controlPort}/?iss=grip-last-app&key=${CONTROL_SECRET}&verify-key=${SECRET}`, reaskDelayMs: 100 });
  appServer.on('request', app.handle);

  const followers = CHANNELS.flatMap((channel) =>
    Array.from({ length: CLIENTS_PER_CHANNEL }, () => ({ channel, received: follow(t, clientUrl, channel, String(N), 60_000) })),
  );
  for (const f of followers) f.received.catch(() => {}); // awaited below; keeps an early failure from going unhandled
  await waitFor(() => proxy.stats().parked === followers.length, 'every client parked');

  // Per channel, messages are posted in pairs by two publishers, logged together, the second one's item reaching
  // the proxy first: parked clients see a prev-id that is not theirs and are re-asked. A pair waits until some
  // client of either channel is parked, so pairs also land while the other clients' slow re-asks are answered.
  await Promise.all(
    CHANNELS.map(async (channel) => {
      for (let i = 1; i <= N; i += 2) {
        await waitFor(() => proxy.stats().parked > 0, 'a client parked');
        const [first, second] = app.log(channel, [`${channel} ${i}`, `${channel} ${i + 1}`]);
        await app.publish(channel, second!);
        await app.publish(channel, first!);
      }
    }),
  );

  for (const f of followers) {
    const got = await f.received;
    const missing = ids(N).filter((id) => !got.includes(id));
    assert.deepEqual(got, ids(N), `a client of ${f.channel}: ${missing.length} of ${N} never received, ${got.length - new Set(got).size} duplicates`);
  }
  const stats = proxy.stats();
  assert.ok(stats.reasks > 0 && app.reasks > 0, 'the run re-asked the app (else it proved nothing)');
  assert.equal(stats.resyncs, 0);
  assert.equal(stats.parked, 0);
  assert.equal(stats.publishes, N * CHANNELS.length);
});
