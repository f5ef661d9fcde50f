/**
 * Re-poll leases on a proxy of two workers (docs/protocol.md §13, docs/scaleout.md "Workers"), with the real
 * app in this process and the proxy as a child: each worker holds the leases the app granted through it and
 * answers leased re-polls from its channel buffer; a revocation sent to either worker ends the lease on both
 * within a second, and the next poll goes to the app. Polls use a new connection each, so they land on both
 * workers.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { createChatServer } from '../../server/chat-server.js';
import { ChatClient, type ChatEvent } from '../helpers/chat-client.js';
import { faultDataDir, TEST_CONTROL_SECRET, TEST_LEASE_KEY, TEST_SECRET } from '../helpers/fault-stack.js';
import { request } from '../helpers/proxy-harness.js';
import { clusterTestTimeout, startWorkers, STARTUP_STEP_MS, until, type Cluster } from '../helpers/worker-cluster.js';

async function stack(t: TestContext) {
  const app = createChatServer({
    secret: TEST_SECRET,
    controlSecret: TEST_CONTROL_SECRET,
    leaseKey: TEST_LEASE_KEY,
    host: '127.0.0.1',
    port: 0,
    dbPath: join(faultDataDir(t), 'chat.db'),
    holdTimeoutS: 10,
    relayRetryMinMs: 5,
    relayRetryMaxMs: 100,
  });
  t.after(() => app.close());
  const appUrl = `http://127.0.0.1:${await app.listen()}`;
  let appPolls = 0;
  app.server.on('request', (req) => {
    if (req.url?.startsWith('/api/poll')) appPolls++;
  });
  const proxy = await startWorkers(t, appUrl, { LEASE_KEY: TEST_LEASE_KEY });
  app.connectProxy(proxy.control);
  return { proxy, appPolls: () => appPolls };
}

/** One poll of `client` on a connection of its own (so on either worker), recording events like ChatClient.poll. */
async function rawPoll(proxy: Cluster, client: ChatClient): Promise<ChatEvent[]> {
  const cookie = (client as unknown as { cookie: string }).cookie;
  const res = await request(proxy.client + client.pollPath(), { headers: { cookie }, signal: AbortSignal.timeout(15_000) });
  assert.equal(res.status, 200, res.text);
  const cid = res.headers['comet-connection-id'];
  if (typeof cid === 'string') client.connectionId = cid;
  const events = ((res.json() as { events?: ChatEvent[] }).events ?? []);
  for (const ev of events) if (ev.id > (client.cursors.get(ev.room) ?? 0)) client.cursors.set(ev.room, ev.id);
  return events;
}

/** Ada's poll parks (on whichever worker takes it), Bob posts: Ada gets exactly that message. */
async function roundTrip(proxy: Cluster, ada: ChatClient, bob: ChatClient, text: string): Promise<void> {
  const parked = (await proxy.stats()).parked;
  const answer = rawPoll(proxy, ada);
  await until(async () => (await proxy.stats()).parked > parked, 'ada parked');
  await bob.post('lobby', text);
  assert.deepEqual((await answer).map((e) => e.text), [text]);
}

test('leases held on both workers answer re-polls from either buffer; a revocation reaches both within 1 s', { timeout: clusterTestTimeout(60_000) }, async (t) => {
  const { proxy, appPolls } = await stack(t);
  const ada = new ChatClient(proxy.client);
  const bob = new ChatClient(proxy.client);
  const adaUser = await ada.login('ada');
  await bob.login('bob');
  await ada.join('lobby');

  // Round trips until the app has granted a lease through each worker (bounded).
  for (let i = 0; i < 30; i++) {
    await roundTrip(proxy, ada, bob, `lease ${i}`);
    if ((await proxy.stats()).workers.every((w) => w.leases === 1)) break;
  }
  const leased = await proxy.stats();
  assert.deepEqual(leased.workers.map((w) => w.leases), [1, 1], 'a lease on each worker');
  assert.equal(leased.leases, 2, 'summed');

  // Leased: parked re-polls and a client behind by three messages are answered without the app, on either worker.
  const granted = appPolls();
  for (let i = 0; i < 4; i++) await roundTrip(proxy, ada, bob, `leased ${i}`);
  const publishes = (await proxy.stats()).publishes;
  for (const text of ['a', 'b', 'c']) await bob.post('lobby', text);
  // The relay publishes after the commit: wait until both workers have applied the three (each counts them).
  await until(async () => (await proxy.stats()).publishes >= publishes + 2 * 3, 'three publishes applied on both workers');
  assert.deepEqual((await rawPoll(proxy, ada)).map((e) => e.text), ['a', 'b', 'c']);
  assert.equal(appPolls(), granted, 'no leased re-poll reached the app');
  const answered = await proxy.stats();
  assert.ok(answered.workers.every((w) => w.repollParks + w.repollAnswers > 0), 'both workers answered leased re-polls');

  const sent = Date.now();
  const revoked = await proxy.call('/revoke/', { items: [{ subject: `s${adaUser.id}` }] });
  assert.equal(revoked.status, 200);
  await until(async () => (await proxy.stats()).workers.every((w) => w.leases === 0), 'both workers to drop the lease', 1000);
  t.diagnostic(`revocation reached both workers in ${Date.now() - sent} ms`);
  const before = appPolls();
  await roundTrip(proxy, ada, bob, 'after revoke');
  assert.equal(appPolls(), before + 1, 'the next poll went to the app');
});

test('a replacement worker learns the revocations still in force before it listens: a lease they refuse stays refused', { timeout: clusterTestTimeout(60_000 + STARTUP_STEP_MS) }, async (t) => {
  const { proxy, appPolls } = await stack(t);
  const ada = new ChatClient(proxy.client);
  const bob = new ChatClient(proxy.client);
  const adaUser = await ada.login('ada');
  await bob.login('bob');
  await ada.join('lobby');
  // Every lease of Ada's issued in the next minute is refused (issued-before may be ahead, protocol §13.4).
  const revoked = await proxy.call('/revoke/', { items: [{ subject: `s${adaUser.id}`, 'issued-before': Date.now() + 60_000 }] });
  assert.equal(revoked.status, 200);
  const [victim] = (await proxy.stats()).workers.map((w) => w.pid);
  process.kill(victim!, 'SIGKILL');
  await until(async () => {
    const s = await proxy.stats();
    return s.workers.length === 2 && !s.workers.some((w) => w.pid === victim);
  }, 'a replacement worker', STARTUP_STEP_MS);

  // Polls on both workers (the replacement included): every one goes to the app, no worker keeps a lease.
  const before = appPolls();
  let rounds = 0;
  for (let i = 0; i < 30; i++) {
    await roundTrip(proxy, ada, bob, `refused ${i}`);
    rounds++;
    const s = await proxy.stats();
    assert.deepEqual(s.workers.map((w) => w.leases), [0, 0], 'no worker holds the refused lease');
    if (rounds >= 6 && s.workers.every((w) => w.holds > 0)) break;
  }
  assert.equal(appPolls(), before + rounds, 'every poll went to the app');
});
