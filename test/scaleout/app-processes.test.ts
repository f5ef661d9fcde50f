/**
 * Two real app processes (`server/main.ts`, each a child with its own port, one SQLite file, one Redis)
 * behind two hold proxies, one per app. Clients switch proxy (and so app) between polls; messages are
 * posted through both processes at once. Every client must get every committed event of its rooms
 * exactly once, in order: the relay lease keeps per-room order across processes (docs/scaleout.md).
 */
import { setMaxListeners } from 'node:events';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ChatClient, waitFor } from '../helpers/chat-client.js';
import { backoff, committedEvents, controlClient, expectedAfter, faultDataDir, outboxRows, raceDeadline, TEST_LEASE_KEY, TEST_SECRET } from '../helpers/fault-stack.js';
import { startRedis, startRedisProxy } from '../helpers/redis-server.js';

const APP_MAIN = fileURLToPath(new URL('../../server/main.ts', import.meta.url));
const ROOMS = ['red', 'blue', 'green'];
const CLIENTS = 6;
const MESSAGES = 90;

/** Spawns the app process; resolves with the port from its "chat app listening" log line. SIGKILLed after the test. */
async function spawnApp(t: TestContext, env: Record<string, string>): Promise<number> {
  const child = spawn(process.execPath, ['--import', 'tsx', APP_MAIN], {
    env: {
      PATH: process.env.PATH,
      GRIP_SECRET: TEST_SECRET,
      LEASE_KEY: TEST_LEASE_KEY,
      APP_PORT: '0',
      LOG_LEVEL: 'info',
      HOLD_TIMEOUT_S: '5',
      POSTS_PER_MINUTE: '100000',
      SESSIONS_PER_MINUTE_PER_ADDRESS: '100000',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const lines: string[] = [];
  const rl = createInterface({ input: child.stdout }); // keep draining stdout: the logger writes synchronously
  const listening = new Promise<number>((resolve, reject) => {
    rl.on('line', (line) => {
      lines.push(line);
      try {
        const entry = JSON.parse(line) as { msg?: string; port?: number };
        if (entry.msg === 'chat app listening') resolve(entry.port!);
      } catch {
        /* not JSON */
      }
    });
    void exited.then((code) => reject(new Error(`app child exited (${code}) before listening: ${stderr}${lines.join('\n')}`)));
  });
  const port = await raceDeadline(listening, 15_000, null);
  if (port === null) throw new Error(`app child not listening after 15 s: ${stderr}${lines.join('\n')}`);
  return port;
}

test('two app processes on one SQLite file and one Redis: clients get every message of their rooms once, in order', async (t) => {
  const redis = await startRedis(t);
  const dbPath = join(faultDataDir(t), 'chat.db');
  const appUrls: string[] = [];
  // One after the other, so the second does not race the first one's migrations.
  for (let i = 0; i < 2; i++) appUrls.push(`http://127.0.0.1:${await spawnApp(t, { DB_PATH: dbPath, REDIS_URL: redis.url })}`);
  const bases: string[] = [];
  const controls: ReturnType<typeof controlClient>[] = [];
  for (const upstreamUrl of appUrls) {
    const { base, control } = await startRedisProxy(t, upstreamUrl, redis.url);
    bases.push(base);
    controls.push(control);
  }

  const clients: ChatClient[] = [];
  for (let i = 0; i < CLIENTS; i++) {
    const c = new ChatClient(bases[i % 2]!);
    await c.login(`user${i}`);
    clients.push(c);
  }
  for (const room of ROOMS) await clients[0]!.call('POST', '/api/rooms', { name: room });
  // Each client in two of the three rooms.
  const roomsOf = clients.map((_, i) => ROOMS.filter((_, r) => r !== i % ROOMS.length));
  for (const [i, c] of clients.entries()) for (const room of roomsOf[i]!) await c.join(room);
  const posters = appUrls.map((url) => new ChatClient(url)); // straight on each app process
  for (const [i, p] of posters.entries()) {
    await p.login(`poster${i}`);
    for (const room of ROOMS) await p.join(room);
  }
  const committedAtStart = committedEvents(dbPath);
  const start = new Map(ROOMS.map((r) => [r, committedAtStart.get(r)!.at(-1)!]));
  for (const [i, c] of clients.entries()) for (const room of roomsOf[i]!) c.cursors.set(room, start.get(room)!);

  const stop = new AbortController();
  // Every client's poll in flight listens on this one signal at once: more than the default 10 is expected here.
  setMaxListeners(0, stop.signal);
  const loops = clients.map(async (c, i) => {
    for (let n = 0; n < 20_000 && !stop.signal.aborted; n++) {
      (c as { base: string }).base = bases[(n + i) % 2]!; // a plain round-robin balancer: a different app each poll
      try {
        const r = await c.poll(stop.signal);
        if (r.status === 502 || r.status === 503) await backoff(10);
        else if (r.status !== 200) throw new Error(`poll answered ${r.status}: ${JSON.stringify(r.body)}`);
      } catch (err) {
        if (stop.signal.aborted) return;
        throw err;
      }
    }
  });
  try {
    await waitFor(async () => (await Promise.all(controls.map((k) => k.stats()))).reduce((n, s) => n + s.parked, 0) === CLIENTS, 'every client parked', 15_000);
    // Rounds: both processes commit at once (each relay publishes only while it holds the lease), then every
    // client parks again, so the messages reach clients through the relays and proxies, not from history.
    const parkedAll = async () => (await Promise.all(controls.map((k) => k.stats()))).reduce((n, s) => n + s.parked, 0) === CLIENTS;
    for (let k = 0; k < MESSAGES; k += posters.length) {
      await Promise.all(posters.map((p, i) => (k + i < MESSAGES ? p.post(ROOMS[(k + i) % ROOMS.length]!, `message ${k + i}`) : undefined)));
      await waitFor(parkedAll, `every client parked again after round ${k / posters.length}`, 15_000);
    }
    await waitFor(() => outboxRows(dbPath) === 0, 'both relays to empty the outbox', 15_000);
    const committed = committedEvents(dbPath);
    const expected = new Map(ROOMS.map((r) => [r, expectedAfter(committed, r, start.get(r)!)]));
    assert.equal(ROOMS.reduce((n, r) => n + expected.get(r)!.length, 0), MESSAGES);
    const complete = () => clients.every((c, i) => roomsOf[i]!.every((r) => c.received.filter((e) => e.room === r).length >= expected.get(r)!.length));
    await waitFor(complete, 'every client to receive every committed message', 15_000);
    for (const [i, c] of clients.entries()) {
      for (const r of ROOMS) {
        const got = c.received.filter((e) => e.room === r).map((e) => e.id);
        assert.deepEqual(got, roomsOf[i]!.includes(r) ? expected.get(r) : [], `client ${i} in ${r}`);
      }
      assert.equal(c.resyncs, 0, `client ${i} needed no resync answer`);
    }
    const stats = await Promise.all(controls.map((k) => k.stats()));
    t.diagnostic(`proxies: ${stats.map((s) => `${s.holds} holds/${s.deliveries} deliveries/${s.reasks} reasks`).join(', ')}`);
    assert.ok(stats.every((s) => s.holds > 0), 'both apps answered polls');
    const deliveries = stats.reduce((n, s) => n + s.deliveries, 0);
    assert.ok(deliveries >= MESSAGES, `messages reached parked clients through the relays (${deliveries} deliveries)`);
  } finally {
    stop.abort();
    await Promise.allSettled(loops);
  }
  for (const l of loops) await l;
});
