/**
 * Scale-out bench (docs/scaleout.md): parked connections and fan-out
 * deliveries per second with 1, 2 and 3 hold proxies on one Redis, one app,
 * clients in separate processes, loopback only, bounded.
 *
 *   npm run bench:scaleout -- [clientsPerWorker=500] [workers=2] [messages=20]
 *
 * Starts its own redis-server on an ephemeral port (never the shared one).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createChatServer } from '../../server/chat-server.js';
import { ChatClient } from '../../test/helpers/chat-client.js';

const SECRET = 'bench-secret-0123456789abcdef';
const [perWorker = 500, workers = 2, messages = 20] = process.argv.slice(2).map(Number);
const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const children: ChildProcess[] = [];
process.on('exit', () => children.forEach((c) => c.kill('SIGKILL')));

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

function lines(child: ChildProcess, onLine: (entry: Record<string, unknown>) => void): void {
  createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      onLine(JSON.parse(line) as Record<string, unknown>);
    } catch {
      /* not JSON */
    }
  });
}

async function until<T>(what: string, ms: number, f: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function run(proxyCount: number): Promise<Record<string, number>> {
  const redisPort = await freePort();
  const redis = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  children.push(redis);
  const redisUrl = `redis://127.0.0.1:${redisPort}`;
  const dir = mkdtempSync(join(tmpdir(), 'comet-bench-scaleout-'));
  await new Promise((r) => setTimeout(r, 200));
  const app = createChatServer({ secret: SECRET, host: '127.0.0.1', port: 0, dbPath: join(dir, 'chat.db'), redisUrl, holdTimeoutS: 60, maxConnectionsPerSession: 100 });
  const appUrl = `http://127.0.0.1:${await app.listen()}`;
  const proxies: Array<{ client: string; control: string }> = [];
  for (let i = 0; i < proxyCount; i++) {
    // Fixed free ports, so no log line is needed to learn them.
    const [cp, ctl] = [await freePort(), await freePort()];
    const proxy = spawn(process.execPath, ['--import', 'tsx', here('../../proxy/main.ts')], {
      env: { PATH: process.env.PATH, GRIP_SECRET: SECRET, PROXY_PORT: String(cp), CONTROL_PORT: String(ctl), APP_URL: appUrl, REDIS_URL: redisUrl, LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    children.push(proxy);
    proxies.push({ client: `http://127.0.0.1:${cp}`, control: `http://127.0.0.1:${ctl}` });
    await until('proxy up', 15_000, async () => ((await fetch(`http://127.0.0.1:${ctl}/health`).catch(() => null))?.ok ? true : undefined));
  }
  const stats = async () =>
    Promise.all(proxies.map(async (p) => (await (await fetch(`${p.control}/stats`, { headers: { authorization: `Bearer ${SECRET}` } })).json()) as { parked: number; deliveries: number }));
  const poster = new ChatClient(appUrl);
  await poster.login('poster');
  await poster.call('POST', '/api/rooms', { name: 'bench' });
  const cursor = await poster.join('bench');

  const total = perWorker * workers;
  let ready = 0;
  let done = 0;
  let lastDoneAt = 0;
  const t0 = Date.now();
  for (let w = 0; w < workers; w++) {
    const child = spawn(process.execPath, ['--import', 'tsx', here('./clients.ts'), proxies.map((p) => p.client).join(','), String(perWorker), String(messages), String(cursor)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(child);
    lines(child, (e) => {
      if (typeof e.ready === 'number') ready += e.ready;
      if (typeof e.done === 'number') {
        done += e.done;
        lastDoneAt = Math.max(lastDoneAt, e.at as number);
      }
    });
  }
  await until('clients logged in', 120_000, async () => (ready === total ? true : undefined));
  const tLogin = Date.now();
  await until('all parked', 60_000, async () => ((await stats()).reduce((n, s) => n + s.parked, 0) >= total ? true : undefined));
  const parkMs = Date.now() - tLogin;
  const before = (await stats()).reduce((n, s) => n + s.deliveries, 0);
  const tPost = Date.now();
  for (let k = 0; k < messages; k++) await poster.post('bench', `m${k}`);
  await until('all delivered', 120_000, async () => (done === total ? true : undefined));
  const fanMs = lastDoneAt - tPost;
  const after = (await stats()).reduce((n, s) => n + s.deliveries, 0);
  const result = {
    proxies: proxyCount,
    clients: total,
    messages,
    parkMs,
    parkedPerS: Math.round((total / parkMs) * 1000),
    fanoutMs: fanMs,
    eventsReceived: total * messages,
    eventsPerS: Math.round(((total * messages) / fanMs) * 1000),
    proxyDeliveries: after - before,
    proxyDeliveriesPerS: Math.round(((after - before) / fanMs) * 1000),
    setupMs: tLogin - t0,
  };
  for (const c of children.splice(0)) c.kill('SIGKILL');
  await app.close();
  rmSync(dir, { recursive: true, force: true });
  return result;
}

const results = [];
for (const n of [1, 2, 3]) {
  const r = await run(n);
  console.log(JSON.stringify(r));
  results.push(r);
}
console.table(results);
process.exit(0);
