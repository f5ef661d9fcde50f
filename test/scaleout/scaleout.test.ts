/**
 * Scale-out over Redis (docs/scaleout.md): three hold proxies and two app
 * processes' worth of apps on one SQLite file, no sticky sessions. Clients
 * switch proxy between polls; messages are posted through both apps; every
 * client must receive exactly its rooms' committed events, in order, counted
 * against the database, also when a proxy is SIGKILLed mid-traffic and when
 * Redis restarts (losing everything) mid-traffic. Each test runs its own
 * redis-server on an ephemeral port.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import type { HoldProxy } from '../../proxy/proxy.js';
import type { ChatServer } from '../../server/chat-server.js';
import type { ProxyStats } from '../../protocol/control-api.js';
import { ChatClient, waitFor } from '../helpers/chat-client.js';
import { committedEvents, controlClient, expectedAfter, faultDataDir, spawnProxy, within } from '../helpers/fault-stack.js';
import { startBusApp, startRedis, startRedisProxy, type TestRedis } from '../helpers/redis-server.js';
import { pollRotating, postSpread } from '../helpers/rotating-poller.js';

const ROOMS = ['red', 'blue', 'green'];
const CLIENTS = 9;

interface Cluster {
  redis: TestRedis;
  apps: ChatServer[];
  appUrls: string[];
  /** Client base URLs, one per proxy. */
  bases: string[];
  controls: ReturnType<typeof controlClient>[];
  inProcess: HoldProxy[];
  kill?: () => Promise<void>;
  dbPath: string;
}

/** Two apps on one database, two in-process proxies and (optionally) one proxy child process, all on one Redis. */
async function startCluster(t: TestContext, withChild: boolean): Promise<Cluster> {
  const redis = await startRedis(t);
  const dbPath = join(faultDataDir(t), 'chat.db');
  const apps: ChatServer[] = [];
  const appUrls: string[] = [];
  for (let i = 0; i < 2; i++) {
    const { app, url } = await startBusApp(t, redis.url, dbPath, { relayIntervalMs: 200, relayPublishTimeoutMs: 1000, relayLeaseMs: 3000 });
    appUrls.push(url);
    apps.push(app);
  }
  const bases: string[] = [];
  const controls: ReturnType<typeof controlClient>[] = [];
  const inProcess: HoldProxy[] = [];
  for (let i = 0; i < 2; i++) {
    const { proxy, base, control } = await startRedisProxy(t, appUrls[i % 2]!, redis.url);
    bases.push(base);
    controls.push(control);
    inProcess.push(proxy);
  }
  const cluster: Cluster = { redis, apps, appUrls, bases, controls, inProcess, dbPath };
  if (withChild) {
    const child = await spawnProxy(t, { APP_URL: appUrls[1]!, REDIS_URL: redis.url });
    bases.push(`http://127.0.0.1:${child.clientPort}`);
    controls.push(controlClient(`http://127.0.0.1:${child.controlPort}`));
    cluster.kill = async () => {
      child.child.kill('SIGKILL');
      await within(child.exited, 10_000, 'the proxy child exit');
    };
  }
  return cluster;
}

async function setUpClients(cluster: Cluster): Promise<{ clients: ChatClient[]; posters: ChatClient[]; start: Map<string, number> }> {
  const clients: ChatClient[] = [];
  for (let i = 0; i < CLIENTS; i++) {
    const c = new ChatClient(cluster.bases[i % cluster.bases.length]!);
    await c.login(`user${i}`);
    clients.push(c);
  }
  for (const room of ROOMS) await clients[0]!.call('POST', '/api/rooms', { name: room });
  for (const c of clients) for (const room of ROOMS) await c.join(room);
  // One poster straight on each app: messages go in through both processes' relays.
  const posters = cluster.appUrls.map((url) => new ChatClient(url));
  for (const [i, p] of posters.entries()) {
    await p.login(`poster${i}`);
    for (const room of ROOMS) await p.join(room);
  }
  const committed = committedEvents(cluster.dbPath);
  const start = new Map(ROOMS.map((r) => [r, committed.get(r)!.at(-1)!]));
  for (const c of clients) for (const room of ROOMS) c.cursors.set(room, start.get(room)!);
  return { clients, posters, start };
}

function post(posters: ChatClient[], count: number, phase: string): Promise<void> {
  return postSpread(posters, ROOMS, count, phase);
}

async function totalStats(controls: ReturnType<typeof controlClient>[]): Promise<ProxyStats[]> {
  return Promise.all(controls.map((c) => c.stats()));
}

/**
 * Waits until every client has as many events per room as committed since `start`, then checks exact equality.
 * `allowResyncs`: after Redis lost its data, a client may get one `queue-lost` resync answer (its pushes may be
 * gone); it keeps its cursors, so its messages must still be exact.
 */
async function assertEveryoneGotEverything(
  cluster: Cluster,
  clients: ChatClient[],
  start: Map<string, number>,
  { allowResyncs = false } = {},
): Promise<void> {
  await Promise.all(cluster.apps.map((a) => a.relay.waitIdle(15_000).catch(() => {})));
  const committed = committedEvents(cluster.dbPath);
  const expected = new Map(ROOMS.map((r) => [r, expectedAfter(committed, r, start.get(r)!)]));
  const complete = () => clients.every((c) => ROOMS.every((r) => c.received.filter((e) => e.room === r).length >= expected.get(r)!.length));
  await waitFor(complete, 'every client to receive every committed message', 30_000);
  for (const [i, c] of clients.entries()) {
    for (const r of ROOMS) {
      assert.deepEqual(c.received.filter((e) => e.room === r).map((e) => e.id), expected.get(r), `client ${i} in ${r}`);
    }
    if (!allowResyncs) assert.equal(c.resyncs, 0, `client ${i} needed no resync answer`);
    else assert.ok(c.resyncs <= 1, `client ${i} was told to resync at most once (${c.resyncs})`);
  }
}

test('three proxies and two apps on Redis: clients switching proxy between polls get every message of their rooms once, in order; a SIGKILLed proxy loses nothing', async (t) => {
  const cluster = await startCluster(t, true);
  const { clients, posters, start } = await setUpClients(cluster);
  const stop = new AbortController();
  const loops = clients.map((c, i) => pollRotating(c, cluster.bases, i, stop.signal));
  try {
    await waitFor(async () => (await totalStats(cluster.controls)).reduce((n, s) => n + s.parked, 0) === CLIENTS, 'every client parked', 15_000);
    await post(posters, 60, 'before');
    const during = post(posters, 60, 'during');
    await cluster.kill!();
    // Its clients now fail there and poll the next proxy; the dead one stays in the rotation like a stale LB entry.
    await during;
    cluster.bases.splice(2, 1);
    cluster.controls.splice(2, 1);
    await post(posters, 60, 'after');
    await assertEveryoneGotEverything(cluster, clients, start);
    const stats = await totalStats(cluster.controls);
    t.diagnostic(`live proxies: ${stats.map((s) => `${s.holds} holds/${s.deliveries} deliveries/${s.reasks} reasks`).join(', ')}`);
    assert.ok(stats.every((s) => s.deliveries > 0), 'every live proxy delivered published items');
    assert.ok(loops.some((l) => l.networkErrors > 0), 'some clients lost their connection to the killed proxy');
  } finally {
    stop.abort();
    await Promise.allSettled(loops.map((l) => l.done));
  }
  for (const l of loops) await l.done; // surfaces an unexpected answer
});

test('a push through any proxy reaches the connection wherever it polls: at once when parked, from the Redis queue when not', async (t) => {
  const cluster = await startCluster(t, false);
  const c = new ChatClient(cluster.bases[0]!);
  await c.login('alice');
  await c.join('lobby');
  const first = await c.poll(); // immediate or held: either way we learn the connection ID
  assert.equal(first.status, 200);
  assert.ok(c.connectionId);
  const item = (text: string) => ({
    items: [{ 'connection-id': c.connectionId, formats: { 'http-response': { headers: { 'content-type': 'text/plain' }, body: text } } }],
  });
  // Not parked: queued in Redis by proxy 2; the next poll, on proxy 1, takes it.
  const queued = await cluster.controls[1]!.call('/push/', item('queued one'));
  assert.equal(queued.status, 200);
  assert.equal(queued.body.queued, 1);
  const r1 = await fetch(`${cluster.bases[0]}${c.pollPath()}`, { headers: { cookie: (c as unknown as { cookie: string }).cookie } });
  assert.equal(await r1.text(), 'queued one');
  // Parked on proxy 2; pushed through proxy 1.
  const parked = fetch(`${cluster.bases[1]}${c.pollPath()}`, { headers: { cookie: (c as unknown as { cookie: string }).cookie } });
  await waitFor(async () => (await cluster.controls[1]!.stats()).parked === 1, 'the poll to park on proxy 2');
  assert.equal((await cluster.controls[0]!.call('/push/', item('pushed live'))).status, 200);
  assert.equal(await (await parked).text(), 'pushed live');
  // Closed through proxy 2: proxy 1 refuses the ID too.
  await cluster.controls[1]!.call('/close/', { items: [{ 'connection-id': c.connectionId }] });
  const refused = await fetch(`${cluster.bases[0]}${c.pollPath()}`, { headers: { cookie: (c as unknown as { cookie: string }).cookie } });
  assert.equal(refused.status, 410);
});

test('Redis restarting (losing every key) mid-traffic loses no message: proxies re-ask their parked requests and count busResyncs', async (t) => {
  const cluster = await startCluster(t, false);
  const { clients, posters, start } = await setUpClients(cluster);
  const stop = new AbortController();
  const loops = clients.map((c, i) => pollRotating(c, cluster.bases, i, stop.signal));
  try {
    await waitFor(async () => (await totalStats(cluster.controls)).reduce((n, s) => n + s.parked, 0) === CLIENTS, 'every client parked', 15_000);
    await post(posters, 40, 'before');
    await cluster.redis.kill();
    await post(posters, 20, 'while Redis is down'); // committed; the relays retry XADD
    await cluster.redis.start();
    await post(posters, 40, 'after');
    await assertEveryoneGotEverything(cluster, clients, start, { allowResyncs: true });
    const stats = await totalStats(cluster.controls);
    t.diagnostic(`queue-lost resync answers: ${clients.reduce((n, c) => n + c.resyncs, 0)}`);
    const busResyncs = stats.reduce((n, s) => n + s.busResyncs, 0);
    t.diagnostic(`busResyncs ${busResyncs}; relay failures ${cluster.apps.map((a) => a.relay.stats.failures).join('/')}`);
    assert.ok(busResyncs >= cluster.controls.length, 'every proxy noticed the lost stream and resynced');
  } finally {
    stop.abort();
    await Promise.allSettled(loops.map((l) => l.done));
  }
  for (const l of loops) await l.done;
});
