/**
 * Fault: the proxy goes away, gracefully (SIGTERM, then a restart) or not at
 * all gracefully (SIGKILL: no answer to parked clients, no goodbye to the app).
 * The proxy runs as its own process (`node --import tsx proxy/main.ts`); the
 * app runs in the test and its outbox relay keeps retrying the control port the
 * proxy reported, on which the new proxy process is started. Clients resume
 * from their cursors: nothing lost, nothing shown twice, counted against the
 * database.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { createChatServer } from '../../server/chat-server.js';
import { request } from '../helpers/proxy-harness.js';
import { startScriptedApp, writeHold } from '../helpers/scripted-app.js';
import { ChatClient, waitFor } from '../helpers/chat-client.js';
import {
  committedEvents,
  controlClient,
  expectedAfter,
  faultDataDir,
  pollUntilStopped,
  postWithRetry,
  raceDeadline,
  rawGet,
  spawnProxy,
  TEST_LEASE_KEY,
  TEST_CONTROL_SECRET,
  TEST_SECRET,
  within,
  type PollLoopReport,
  type ProxyChild,
} from '../helpers/fault-stack.js';

const CLIENTS = 6;
const ROOMS = ['red', 'blue'];
const POSTERS = 3;

/**
 * Runs traffic through a proxy child, calls `stopProxy` on it mid-traffic,
 * posts while it is gone (straight to the app: committed, not publishable),
 * starts a new proxy on the same ports, posts more, then checks every client
 * received exactly the committed sequence of both rooms.
 */
async function survivesProxyLoss(t: TestContext, stopProxy: (proxy: ProxyChild) => Promise<void>): Promise<PollLoopReport[]> {
  const chat = createChatServer({
    secret: TEST_SECRET,
    controlSecret: TEST_CONTROL_SECRET,
    leaseKey: TEST_LEASE_KEY,
    host: '127.0.0.1',
    port: 0,
    dbPath: join(faultDataDir(t), 'chat.db'),
    relayRetryMinMs: 5,
    relayRetryMaxMs: 50,
    relayPublishTimeoutMs: 2000,
  });
  t.after(() => chat.close());
  const appUrl = `http://127.0.0.1:${await chat.listen()}`;
  const first = await spawnProxy(t, { APP_URL: appUrl });
  const controlUrl = `http://127.0.0.1:${first.controlPort}`;
  chat.connectProxy(controlUrl);
  const control = controlClient(controlUrl);
  const base = `http://127.0.0.1:${first.clientPort}`;

  const clients = Array.from({ length: CLIENTS }, () => new ChatClient(base));
  for (const [i, c] of clients.entries()) await c.login(`user${i}`);
  for (const room of ROOMS) await clients[0]!.call('POST', '/api/rooms', { name: room });
  for (const c of clients) for (const room of ROOMS) await c.join(room);
  // A server-side writer that talks to the app directly, so it can post while no proxy runs.
  const bot = new ChatClient(appUrl);
  await bot.login('bot');
  for (const room of ROOMS) await bot.join(room);
  const start = committedEvents(chat.options.dbPath);
  const startCursor = new Map(ROOMS.map((r) => [r, start.get(r)!.at(-1)!]));
  for (const c of clients) for (const room of ROOMS) c.cursors.set(room, startCursor.get(room)!);

  const stop = new AbortController();
  const loops = clients.map((c) => pollUntilStopped(c, stop.signal));
  try {
    const deadline = Date.now() + 30_000;
    let n = 0;
    const postSome = (count: number, phase: string) =>
      Promise.all(
        Array.from({ length: POSTERS }, async (_, p) => {
          for (let k = p; k < count; k += POSTERS) {
            await postWithRetry(clients[(n++ * 5) % CLIENTS]!, ROOMS[k % ROOMS.length]!, `${phase} ${k}`, deadline);
          }
        }),
      );

    await waitFor(async () => (await control.stats()).parked === CLIENTS, 'every client to be parked in the proxy child', 15_000);
    await postSome(15, 'before');
    const during = postSome(15, 'during'); // through the proxy: retried until the new one is up

    await stopProxy(first);
    for (let k = 0; k < 4; k++) await bot.post(ROOMS[k % 2]!, `while the proxy is gone ${k}`);
    assert.ok(chat.store.outbox.count() >= 4, 'committed rows wait in the outbox while no proxy accepts them');

    const second = await spawnProxy(t, {
      APP_URL: appUrl,
      PROXY_PORT: String(first.clientPort),
      CONTROL_PORT: String(first.controlPort),
    });
    assert.deepEqual([second.clientPort, second.controlPort], [first.clientPort, first.controlPort]);
    await during;
    await postSome(15, 'after');
    // Once everyone has caught up and parked in the new proxy, news reaches them by publish again.
    await waitFor(async () => (await control.stats()).parked === CLIENTS, 'every client to be parked in the new proxy', 15_000);
    await bot.post('red', 'to the new proxy');
    await chat.relay.waitIdle(10_000);

    const committed = committedEvents(chat.options.dbPath);
    const expected = new Map(ROOMS.map((r) => [r, expectedAfter(committed, r, startCursor.get(r)!)]));
    assert.ok(ROOMS.reduce((sum, r) => sum + expected.get(r)!.length, 0) >= 50, 'every post committed');
    const complete = () =>
      clients.every((c) => ROOMS.every((r) => c.received.filter((e) => e.room === r).length >= expected.get(r)!.length));
    await waitFor(complete, 'every client to receive every committed message', 20_000);
    stop.abort();
    const reports = await Promise.all(loops);

    for (const [i, c] of clients.entries()) {
      for (const r of ROOMS) {
        assert.deepEqual(c.received.filter((e) => e.room === r).map((e) => e.id), expected.get(r), `client ${i} in ${r}`);
      }
      assert.equal(c.resyncs, 0, `client ${i} needed no resync`);
    }
    const stats = await control.stats();
    t.diagnostic(`new proxy: ${stats.holds} holds, ${stats.deliveries} deliveries, ${stats.reasks} re-asks; relay failures ${chat.relay.stats.failures}`);
    assert.ok(stats.deliveries >= CLIENTS, 'the relay publishes to the new proxy');
    await waitFor(async () => (await control.stats()).parked === 0, 'the aborted polls to be released', 15_000);
    return reports;
  } finally {
    stop.abort();
    await Promise.allSettled(loops);
  }
}

test('after a proxy restart (SIGTERM, then a new process on the same ports) clients resume from their cursors: nothing lost, nothing twice', async (t) => {
  await survivesProxyLoss(t, async (proxy) => {
    proxy.child.kill('SIGTERM');
    assert.equal(await within(proxy.exited, 10_000, 'the proxy exit'), 0, 'graceful shutdown exits 0');
  });
});

test('after the proxy is SIGKILLed and started again on the same ports, clients resume from their cursors: nothing lost, nothing twice', async (t) => {
  const reports = await survivesProxyLoss(t, async (proxy) => {
    proxy.child.kill('SIGKILL');
    assert.equal(await within(proxy.exited, 10_000, 'the proxy exit'), null, 'killed by the signal');
  });
  // Every parked client lost its connection without an answer and came back by itself.
  assert.ok(reports.every((r) => r.networkErrors > 0), 'each client saw the connection drop');
});

test('a SIGTERMed proxy exits at once although clients hold connections open without a request in flight', async (t) => {
  const app = await startScriptedApp();
  t.after(() => app.close());
  app.handle = (req, res) => {
    if (req.url === '/poll') writeHold(res, { channel: 'room:a', body: '{"timeout":true}' });
    else res.end('ok');
  };
  const proxy = await spawnProxy(t, { APP_URL: app.url });
  // A browser's speculative preconnect: a connection that has not sent its first request yet.
  const preconnected = connect(proxy.clientPort, '127.0.0.1');
  preconnected.on('error', () => {});
  await new Promise<void>((resolve) => preconnected.once('connect', () => resolve()));
  t.after(() => preconnected.destroy());
  // A keep-alive connection between two requests.
  const idle = await rawGet(proxy.clientPort, '/page');
  await idle.firstData;
  t.after(() => idle.socket.destroy());
  // And a parked poll, which must get its timeout response.
  const poll = request(`http://127.0.0.1:${proxy.clientPort}/poll`);
  const control = controlClient(`http://127.0.0.1:${proxy.controlPort}`);
  await waitFor(async () => (await control.stats()).parked === 1, 'the poll to be parked', 15_000);

  proxy.child.kill('SIGTERM');
  const code = await raceDeadline(proxy.exited, 5000, 'still running' as const);
  assert.equal(code, 0, 'exited 0 within 5 s instead of waiting for the idle connections to time out (headersTimeout)');
  const answer = await poll;
  assert.equal(answer.text, '{"timeout":true}');
  assert.equal(answer.headers.connection, 'close');
});
