/**
 * The hold proxy's per-delivery and idle cost alone (issue 15, docs/performance.md "Issue 15"): starts
 * `dist/proxy/main.js` as a child process in front of a minimal GRIP app (in this process, holding every poll
 * on one channel under its own connection ID, as the chat app does), parks N long-polls from N keep-alive
 * connections, then
 *
 * 1. **idle**: samples the proxy's CPU (every thread's schedstat, ns) over `--idle-s` seconds with nothing
 *    happening: ms of CPU per second;
 * 2. **fan-out**: `--warmup` rounds (not counted: the JIT is still compiling the path), then `--rounds` publishes of one item to every parked request; the clients do not poll again until
 *    the round is over, so the proxy CPU between the publish and the last receipt is the delivery path alone
 *    (ms per 1,000 deliveries), then they re-park (not counted).
 *
 * With `--lease` the app grants re-poll leases (docs/protocol.md §13) and every client polls again as soon as its
 * answer arrives, as the lab's clients do: a round's window is then one delivery plus one leased re-poll parked
 * by the proxy alone, per client, and ends when every client is parked again. `--cpu-prof DIR` writes a V8 CPU
 * profile of the counted rounds only (window-profiler.mjs), not of the setup; `--heap-prof DIR` a sampling heap
 * profile of everything they allocate, garbage included.
 *
 *   npm run build && npx tsx bench/tools/delivery-floor.ts [--clients 5000] [--rounds 5] [--warmup 2] [--idle-s 10]
 *        [--lease] [--cpu-prof DIR | --heap-prof DIR] [--proxy dist/proxy/main.js] [--env NAME=VALUE]...
 *
 * Loopback only; every wait has a deadline.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { createServer as netServer } from 'node:net';
import { parseArgs } from 'node:util';
import { bindingDigest, signLease, type LeaseClaims } from '../../protocol/lease.js';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '5000' },
    rounds: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '2' },
    'idle-s': { type: 'string', default: '10' },
    lease: { type: 'boolean', default: false },
    'cpu-prof': { type: 'string' },
    'heap-prof': { type: 'string' },
    // Another build's proxy (e.g. a worktree of the commit before a change) for same-run before/after pairs.
    proxy: { type: 'string', default: 'dist/proxy/main.js' },
    env: { type: 'string', multiple: true, default: [] },
  },
});
const positive = (name: string, text: string): number => {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be an integer >= 1`);
  return n;
};
const N = positive('clients', values.clients);
const ROUNDS = positive('rounds', values.rounds);
const WARMUP = Number(values.warmup);
if (!Number.isInteger(WARMUP) || WARMUP < 0) throw new Error('--warmup must be an integer >= 0');
const IDLE_MS = positive('idle-s', values['idle-s']) * 1000;
const LEASED = values.lease;
const PROFILE_DIR = values['cpu-prof'] ?? values['heap-prof'];
const SECRET = 'floor-secret-0123456789abcdef';
const LEASE_KEY = 'floor-lease-key-0123456789abcdef';
const CONTROL_SECRET = 'floor-control-0123456789abcdef';
const extraEnv = Object.fromEntries(values.env.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: () => string, check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`);
    await sleep(10);
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = netServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

// --- the app: holds a poll whose cursor is the last id, else answers with the news ----------------------------

let lastId = 0;
const connectionId = (i: string) => `conn${i.padStart(17, '0')}`; // 21 characters, as the chat app's
/** What the chat app grants (server/routes/): the proxy answers this client's next polls itself. */
function leaseFor(i: string): string {
  const nowS = Date.now() / 1000;
  const claims: LeaseClaims = {
    cid: connectionId(i),
    sub: `user${i}`,
    bind: { cookie: 'sid', sha256: bindingDigest(`s${i}`) },
    ch: [['room', String(lastId)]],
    iat: nowS,
    exp: nowS + 3600,
    req: { path: '/poll', cid: 'cid', cursors: 'c', prefix: '' },
    hold: { timeout: 300, headers: { 'content-type': 'application/json', 'cache-control': 'no-store' }, body: '{"events":[]}' },
    batch: { prefix: '{"events":[', sep: ',', suffix: ']}', max: 100 },
  };
  return signLease(claims, LEASE_KEY);
}
const app = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://app');
  const i = url.searchParams.get('i') ?? url.searchParams.get('cid')?.slice(4).replace(/^0+(?=.)/, '') ?? '';
  const cursor = Number(url.searchParams.get('cursor') ?? url.searchParams.get('c')?.slice('room:'.length));
  req.resume();
  if (cursor < lastId) {
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(`{"events":[{"id":${lastId}}]}`);
    return;
  }
  res.writeHead(200, {
    'grip-hold': 'response',
    'grip-channel': `room; prev-id=${cursor}`,
    'grip-connection-id': connectionId(i),
    ...(LEASED ? { 'grip-lease': leaseFor(i) } : {}),
    'grip-timeout': '300',
    'content-type': 'application/json',
    'cache-control': 'no-store',
  });
  res.end('{"events":[]}');
});
app.keepAliveTimeout = 65_000;

const [clientPort, controlPort] = [await freePort(), await freePort()];
await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
const appPort = (app.address() as { port: number }).port;
const proxyArgs = PROFILE_DIR === undefined ? [values.proxy] : ['bench/tools/window-profiler.mjs', ...(values['heap-prof'] === undefined ? [] : ['--heap']), PROFILE_DIR, values.proxy];
const proxy: ChildProcess = spawn(process.execPath, proxyArgs, {
  env: {
    ...process.env,
    GRIP_SECRET: SECRET,
    CONTROL_SECRET,
    PROXY_PORT: String(clientPort),
    CONTROL_PORT: String(controlPort),
    APP_URL: `http://127.0.0.1:${appPort}`,
    MAX_PARKED: String(N + 100),
    MAX_PARKED_PER_ADDRESS: String(N + 100),
    LOG_LEVEL: 'warn',
    ...(LEASED ? { LEASE_KEY } : {}),
    ...extraEnv,
  },
  stdio: ['ignore', 'inherit', PROFILE_DIR === undefined ? 'inherit' : 'pipe'],
});
proxy.stderr?.on('data', (chunk: Buffer) => process.stderr.write(chunk));
const pid = proxy.pid!;
const auth = { authorization: `Bearer ${CONTROL_SECRET}` };
proxy.once('exit', (code) => {
  if (code !== 0 && code !== null) process.stderr.write(`the proxy exited with ${code}\n`);
});
const control = `http://127.0.0.1:${controlPort}`;

/** The proxy's CPU time so far, ms: every thread's time on a CPU (/proc/PID/task/TID/schedstat, ns). */
function proxyCpuMs(): number {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return ns / 1e6;
}

/** Parked now; -1 when the stats call failed (a loaded machine resets a connection now and then: asked again). */
async function parked(): Promise<number> {
  try {
    const res = await fetch(`${control}/stats`, { headers: auth });
    return ((await res.json()) as { parked: number }).parked;
  } catch {
    return -1;
  }
}

const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: Infinity });
const cursors = new Array<number>(N).fill(0);
let received = 0;
let failures = 0;
let lastReceiptAt = 0;

let repoll = false;
function poll(i: number): void {
  const path = LEASED ? `/poll?cid=${connectionId(String(i))}&c=room:${cursors[i]}` : `/poll?i=${i}&cursor=${cursors[i]}`;
  const headers = LEASED ? { cookie: `sid=s${i}` } : {};
  const req = http.get({ host: '127.0.0.1', port: clientPort, path, headers, agent }, (res) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (c: string) => (body += c));
    res.on('end', () => {
      const id = /"id":(\d+)/.exec(body)?.[1];
      if (res.statusCode !== 200 || id === undefined) {
        failures++;
        setTimeout(() => poll(i), 100);
        return;
      }
      cursors[i] = Number(id);
      received++;
      lastReceiptAt = performance.now();
      if (repoll) poll(i);
    });
  });
  req.on('error', () => {
    failures++;
    setTimeout(() => poll(i), 100);
  });
}

async function parkAll(): Promise<void> {
  for (let i = 0; i < N; i += 500) {
    for (let j = i; j < Math.min(N, i + 500); j++) poll(j);
    const want = Math.min(N, i + 500);
    await until(() => `${want} parked`, async () => (await parked()) >= want, 60_000);
  }
}

async function publish(): Promise<void> {
  lastId++;
  const item = { channel: 'room', id: String(lastId), 'prev-id': String(lastId - 1), formats: { 'http-response': { headers: { 'content-type': 'application/json' }, body: `{"events":[{"id":${lastId},"text":"round ${lastId}"}]}` } } };
  const res = await fetch(`${control}/publish/`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ items: [item] }) });
  if (res.status !== 200) throw new Error(`publish answered ${res.status}`);
  await res.arrayBuffer();
}

try {
  await until(() => 'the proxy', async () => (await fetch(`${control}/health`).then((r) => r.status, () => 0)) === 200, 30_000);
  await parkAll();
  await sleep(1000); // let the parking's garbage be collected before the idle window
  const idle0 = proxyCpuMs();
  const t0 = performance.now();
  await sleep(IDLE_MS);
  const idleMsPerS = (proxyCpuMs() - idle0) / ((performance.now() - t0) / 1000);

  const perRound: Array<{ cpuMsPer1000: number; lastMs: number }> = [];
  const profiling = PROFILE_DIR !== undefined;
  // With leases the clients re-poll at once (the window includes it); without, they wait for the round's end.
  repoll = LEASED;
  for (let round = 1; round <= WARMUP + ROUNDS; round++) {
    if (profiling && round === WARMUP + 1) proxy.kill('SIGUSR2'); // start the window profile
    received = 0;
    const cpu0 = proxyCpuMs();
    const start = performance.now();
    await publish();
    await until(() => `round ${round} delivered (${received}/${N})`, () => received >= N, 60_000);
    if (LEASED) await until(() => `re-parked in round ${round}`, async () => (await parked()) >= N, 60_000);
    const cpuMs = proxyCpuMs() - cpu0;
    if (round > WARMUP) perRound.push({ cpuMsPer1000: (cpuMs / N) * 1000, lastMs: lastReceiptAt - start });
    if (!LEASED) {
      for (let i = 0; i < N; i++) poll(i);
      await until(() => `re-parked after round ${round}`, async () => (await parked()) >= N, 60_000);
    }
  }
  if (profiling) {
    const written = new Promise<void>((resolve) => proxy.stderr?.once('data', () => resolve()));
    proxy.kill('SIGUSR2');
    await Promise.race([written, sleep(10_000)]);
  }
  const stats = (await (await fetch(`${control}/stats`, { headers: auth })).json()) as { repollParks: number; repollToApp: number };
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  process.stdout.write(
    `${N} parked: idle ${idleMsPerS.toFixed(2)} ms CPU/s over ${IDLE_MS / 1000} s; ` +
      `delivery CPU ms/1,000 per round ${perRound.map((r) => r.cpuMsPer1000.toFixed(1)).join(', ')} (median ${median(perRound.map((r) => r.cpuMsPer1000)).toFixed(1)}); ` +
      `last delivery ms ${perRound.map((r) => r.lastMs.toFixed(0)).join(', ')} (median ${median(perRound.map((r) => r.lastMs)).toFixed(0)}); failures ${failures}` +
      (LEASED ? `; leased re-polls parked ${stats.repollParks}, to the app ${stats.repollToApp}` : '') +
      '\n',
  );
} catch (err) {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
} finally {
  agent.destroy();
  proxy.kill('SIGTERM');
  app.close();
  app.closeAllConnections();
  // Failed polls retry on timers: leave now rather than keep polling a proxy that is gone.
  process.exit();
}
