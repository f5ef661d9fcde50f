/**
 * The proxy's memory through a load and after it (issue 14 item 8): starts the proxy as a child process in
 * front of a minimal GRIP app (in this process), parks N long-polls from N keep-alive connections, publishes
 * a few rounds to every room (each client re-polls and parks again), then releases everything, and reads the
 * proxy's resident memory (/proc) and V8 heap (its /metrics) at each step, once RSS has settled.
 *
 *   npx tsx bench/tools/parked-memory.ts [--clients 10000] [--rooms 10] [--rounds 3] [--cycles 2] [--idle-s 20]
 *        [--node-flag=--max-semi-space-size=2]... [--env MALLOC_ARENA_MAX=2]... [--dist] [--probe DIR]
 *        [--workers N] [--gc] [--anonymous]
 *
 * The app holds each poll under the client's own connection ID, as the chat app does (`--anonymous`: none).
 * `--workers N` runs the proxy as N workers and a primary (PROXY_WORKERS); memory is then summed over every
 * proxy process. `--gc` forces a full GC in every proxy process (the lab's handler, bench/lab/force-gc.ts)
 * before each reading, so the rows show what stays reachable; the summary line gives the bytes per parked
 * request: (parked row − started row) / clients, both after that GC.
 *
 * `--dist` runs `dist/proxy/main.js` (run `npm run build` first) instead of the sources through tsx.
 * `--probe DIR` preloads bench/tools/memory-probe.mjs into the proxy: every step then also forces a full GC
 * and reports the heap and RSS after it (what is live, and what a GC gives back), and two allocation profiles
 * are written: `alloc-0` over one full round of the first cycle (publish, N deliveries, N re-polls through
 * the app, N parks) and `alloc-1` over the last publish, N deliveries alone (clients do not re-poll); read
 * them with bench/tools/heapprofile-top.ts. Forced GCs change what follows: compare runs without `--probe`.
 * Loopback only; every wait has a deadline.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { createServer as netServer } from 'node:net';
import { parseArgs } from 'node:util';
import { forceGc, GC_NODE_ARGS } from '../lab/force-gc.js';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '10000' },
    rooms: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '3' },
    cycles: { type: 'string', default: '2' },
    'idle-s': { type: 'string', default: '20' },
    'node-flag': { type: 'string', multiple: true, default: [] },
    env: { type: 'string', multiple: true, default: [] },
    dist: { type: 'boolean', default: false },
    probe: { type: 'string' },
    workers: { type: 'string', default: '1' },
    gc: { type: 'boolean', default: false },
    anonymous: { type: 'boolean', default: false },
  },
});
const positive = (name: string, text: string, min = 1): number => {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}`);
  return n;
};
const N = positive('clients', values.clients);
const ROOMS = positive('rooms', values.rooms);
const ROUNDS = positive('rounds', values.rounds);
const CYCLES = positive('cycles', values.cycles);
const IDLE_MS = positive('idle-s', values['idle-s'], 0) * 1000;
const WORKERS = positive('workers', values.workers);
if (values.probe !== undefined && WORKERS > 1) throw new Error('--probe reads one process: use --gc with --workers');
const SECRET = 'memory-secret-0123456789abcdef';
/** The control API's own credential (the proxy refuses to start without one, and not the Grip-Sig key). */
const CONTROL_SECRET = 'memory-control-0123456789abcdef';
const extraEnv = Object.fromEntries(values.env.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));

const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string | (() => string), check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`);
    await sleep(20);
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

// --- the app: holds every poll whose cursor is the room's last id, else answers with the news ----------------

const lastId = new Array<number>(ROOMS).fill(0);
const app = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://app');
  const room = Number(url.searchParams.get('room'));
  const cursor = Number(url.searchParams.get('cursor'));
  const client = url.searchParams.get('i') ?? '';
  req.resume();
  if (cursor < lastId[room]!) {
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(`{"events":[{"id":${lastId[room]}}]}`);
    return;
  }
  res.writeHead(200, {
    'grip-hold': 'response',
    'grip-channel': `room:${room}; prev-id=${cursor}`,
    'grip-timeout': '300',
    // 21 characters, the size of the chat app's IDs.
    ...(values.anonymous ? {} : { 'grip-connection-id': `conn${client.padStart(17, '0')}` }),
    'content-type': 'application/json',
    'cache-control': 'no-store',
  });
  res.end('{"events":[]}');
});
app.keepAliveTimeout = 65_000;

// --- the proxy, a child process ---------------------------------------------------------------------------

const [clientPort, controlPort] = [await freePort(), await freePort()];
await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
const appPort = (app.address() as { port: number }).port;
const probeDir = values.probe;
if (probeDir !== undefined) {
  mkdirSync(probeDir, { recursive: true });
  rmSync(`${probeDir}/done`, { force: true });
}
const entry = values.dist ? ['dist/proxy/main.js'] : ['--import', 'tsx', 'proxy/main.ts'];
const proxy: ChildProcess = spawn(
  process.execPath,
  [
    ...values['node-flag'],
    ...(probeDir === undefined ? [] : ['--import', './bench/tools/memory-probe.mjs']),
    ...(values.gc ? GC_NODE_ARGS : []), // workers inherit the flags (cluster.fork uses process.execArgv)
    ...entry,
  ],
  {
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
      PROXY_WORKERS: String(WORKERS),
      ...(probeDir === undefined ? {} : { MEMORY_PROBE_DIR: probeDir }),
      ...extraEnv,
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  },
);
const pid = proxy.pid!;
const auth = { authorization: `Bearer ${CONTROL_SECRET}` };
const control = `http://127.0.0.1:${controlPort}`;

/** GET on the control port; a kept-alive socket the proxy closes as it is reused is retried (at most 3 tries). */
async function controlGet(path: string): Promise<Response> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fetch(`${control}${path}`, { headers: auth });
    } catch (err) {
      if (attempt >= 3) throw err;
      await sleep(50);
    }
  }
}

async function stats(): Promise<{ parked: number; deliveries: number; parkedBytes?: number }> {
  return (await (await controlGet('/stats')).json()) as { parked: number; deliveries: number };
}

/** The proxy's processes: the one started and, with workers, its children. */
function proxyPids(): number[] {
  let children: number[] = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    // no children file: one process
  }
  return [pid, ...children];
}

/** VmRSS, VmHWM and RssAnon summed over the proxy's processes, MiB. */
function procMemory(): { rss: number; peak: number; anon: number } {
  const sum = { rss: 0, peak: 0, anon: 0 };
  for (const one of proxyPids()) {
    let status: string;
    try {
      status = readFileSync(`/proc/${one}/status`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) / 1024;
    sum.rss += kb('VmRSS');
    sum.peak += kb('VmHWM');
    sum.anon += kb('RssAnon');
  }
  return sum;
}

/** V8's view, from the proxy's own /metrics (what an operator scrapes). */
async function heapMemory(): Promise<{ heapUsed: number; heapTotal: number; external: number; newSpace: number }> {
  const text = await (await controlGet('/metrics')).text();
  const value = (name: string) => Number(new RegExp(`^comet_proxy_${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN) / MiB;
  return {
    heapUsed: value('nodejs_heap_size_used_bytes'),
    heapTotal: value('nodejs_heap_size_total_bytes'),
    external: value('nodejs_external_memory_bytes'),
    newSpace: value('nodejs_heap_space_size_total_bytes\\{space="new"\\}'),
  };
}

/** Waits until RSS moves less than 1% over 2 s (at most 30 s): V8 and malloc give memory back lazily. */
async function settled(): Promise<void> {
  const deadline = Date.now() + 30_000;
  let previous = procMemory().rss;
  while (Date.now() < deadline) {
    await sleep(2000);
    const now = procMemory().rss;
    if (Math.abs(now - previous) <= previous * 0.01) return;
    previous = now;
  }
}

interface Row {
  step: string;
  parked: number;
  parkedBytes: number;
  rss: number;
  anon: number;
  heapUsed: number;
  heapTotal: number;
  newSpace: number;
  external: number;
  ms?: number;
  /** With `--probe`: after a forced full GC and RSS settling again. */
  afterGc?: { heapUsed: number; heapTotal: number; rss: number };
}
/** With `--gc`: every proxy process collected, then RSS summed once settled. */
async function gcEveryProcess(): Promise<void> {
  if (!values.gc) return;
  const { late } = await forceGc(proxyPids());
  if (late.length > 0) process.stderr.write(`no GC receipt from ${late.join(', ')}\n`);
  await settled();
}
const rows: Row[] = [];
async function sample(step: string, ms?: number): Promise<void> {
  await settled();
  await gcEveryProcess();
  const s = await stats();
  const row: Row = { step, parked: s.parked, parkedBytes: (s.parkedBytes ?? 0) / MiB, ...procMemory(), ...(await heapMemory()) };
  if (ms !== undefined) row.ms = ms;
  if (probeDir !== undefined) {
    await probe('gc');
    const usage = JSON.parse(readFileSync(`${probeDir}/gc-${probes - 1}.json`, 'utf8')) as { heapUsed: number; heapTotal: number };
    await settled(); // V8 unmaps freed pages on a background thread
    row.afterGc = { heapUsed: usage.heapUsed / MiB, heapTotal: usage.heapTotal / MiB, rss: procMemory().rss };
  }
  rows.push(row);
  process.stderr.write(`${step}: rss ${row.rss.toFixed(1)} MiB\n`);
}

// --- the clients: one keep-alive connection each, re-polling after every answer while `repoll` is on ---------

let agent = new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: Infinity });
const cursors = new Array<number>(N).fill(0);
let repoll = true;
let received = 0;
let failures = 0;

function poll(i: number): void {
  const room = i % ROOMS;
  const req = http.get({ host: '127.0.0.1', port: clientPort, path: `/poll?room=${room}&cursor=${cursors[i]}&i=${i}`, agent }, (res) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (c: string) => (body += c));
    res.on('end', () => {
      const id = /"id":(\d+)/.exec(body)?.[1];
      if (id !== undefined) {
        cursors[i] = Number(id);
        received++;
      }
      if (res.statusCode !== 200) retry(i);
      else if (repoll) poll(i);
    });
  });
  req.on('error', () => retry(i));
}

/** A failed poll (reset keep-alive socket, 5xx) polls again after a pause; its cursor loses nothing. */
function retry(i: number): void {
  if (!repoll) return;
  failures++;
  setTimeout(() => poll(i), 100);
}

async function publishAll(): Promise<void> {
  const items = lastId.map((prev, room) => {
    lastId[room] = prev + 1; // "committed" before it is published, as the chat app does
    return { channel: `room:${room}`, id: String(prev + 1), 'prev-id': String(prev), formats: { 'http-response': { headers: { 'content-type': 'application/json' }, body: `{"events":[{"id":${prev + 1},"text":"round ${prev + 1}"}]}` } } };
  });
  const body = JSON.stringify({ items });
  for (let attempt = 1; ; attempt++) {
    try {
      // Sent again only if the connection failed; a repeat would be harmless anyway (same ids: clients have them).
      const res = await fetch(`${control}/publish/`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body });
      if (res.status !== 200) throw new Error(`publish answered ${res.status}`);
      return;
    } catch (err) {
      if (attempt >= 3 || (err as Error).message.startsWith('publish answered')) throw err;
      await sleep(50);
    }
  }
}

let probes = 0;
/** Runs one memory-probe command in the proxy and waits until it is done (nothing without `--probe`). */
async function probe(command: 'gc' | 'sample-start' | 'sample-stop'): Promise<void> {
  if (probeDir === undefined) return;
  writeFileSync(`${probeDir}/command`, command);
  const want = ++probes;
  proxy.kill('SIGUSR2');
  const done = `${probeDir}/done`;
  await until(`the probe to run ${command}`, () => existsSync(done) && Number(readFileSync(done, 'utf8')) >= want, 60_000);
}

try {
  await until('the proxy', async () => (await fetch(`${control}/health`).then((r) => r.status, () => 0)) === 200, 30_000);
  const fds = () => readdirSync(`/proc/${pid}/fd`).length;
  await heapMemory(); // starts the default metrics at once, so every sample has them
  await sample('started');
  const baseFds = fds();

  for (let cycle = 1; cycle <= CYCLES; cycle++) {
    repoll = true;
    received = 0;
    const t0 = performance.now();
    for (let i = 0; i < N; i += 500) {
      for (let j = i; j < Math.min(N, i + 500); j++) poll(j);
      await until(`${Math.min(N, i + 500)} parked`, async () => (await stats()).parked >= Math.min(N, i + 500), 60_000);
    }
    await sample(`cycle ${cycle}: ${N} parked`, performance.now() - t0);

    for (let round = 1; round <= ROUNDS; round++) {
      const profile = cycle === 1 && round === 1;
      if (profile) await probe('sample-start');
      const start = performance.now();
      await publishAll();
      await until(() => `round ${round} delivered and re-parked (received ${received}, failures ${failures})`, async () => received >= N * round && (await stats()).parked >= N, 120_000);
      const ms = performance.now() - start;
      if (profile) await probe('sample-stop');
      await sample(`cycle ${cycle}: round ${round} (${N} delivered, re-parked)`, ms);
    }

    // Release: one last publish answers everyone, and nobody polls again; then the connections close.
    repoll = false;
    const last = cycle === CYCLES;
    if (last) await probe('sample-start');
    const start = performance.now();
    await publishAll();
    await until('the last round delivered', async () => received >= N * (ROUNDS + 1) && (await stats()).parked === 0, 120_000);
    const ms = performance.now() - start;
    if (last) await probe('sample-stop');
    agent.destroy();
    agent = new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: Infinity });
    await until('the client connections to close', () => fds() <= baseFds + 300, 60_000);
    await sample(`cycle ${cycle}: released (last ${N} delivered, connections closed)`, ms);
    if (IDLE_MS > 0) {
      await sleep(IDLE_MS);
      await sample(`cycle ${cycle}: idle ${IDLE_MS / 1000} s more`);
    }
  }
  if (failures > 0) process.stderr.write(`${failures} polls failed\n`);

  const flags = [...values['node-flag'], ...values.env, values.dist ? 'dist' : 'tsx'].join(' ');
  process.stdout.write(`\n${N} clients, ${ROOMS} rooms, ${ROUNDS} rounds, ${CYCLES} cycles; ${flags}\n\n`);
  const gcColumns = probeDir === undefined ? ['', ''] : [' heap used after GC | heap total after GC | RSS after GC |', '---:|---:|---:|'];
  process.stdout.write(`| step | parked | parked MiB | RSS MiB | anon MiB | heap used | heap total | new space | external | ms |${gcColumns[0]}\n`);
  process.stdout.write(`|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|${gcColumns[1]}\n`);
  for (const r of rows) {
    const f = (n: number) => n.toFixed(1);
    const gc = r.afterGc === undefined ? '' : ` ${f(r.afterGc.heapUsed)} | ${f(r.afterGc.heapTotal)} | ${f(r.afterGc.rss)} |`;
    process.stdout.write(`| ${r.step} | ${r.parked} | ${f(r.parkedBytes)} | ${f(r.rss)} | ${f(r.anon)} | ${f(r.heapUsed)} | ${f(r.heapTotal)} | ${f(r.newSpace)} | ${f(r.external)} | ${r.ms === undefined ? '' : r.ms.toFixed(0)} |${gc}\n`);
  }
  process.stdout.write(`\npeak RSS (VmHWM) ${procMemory().peak.toFixed(1)} MiB\n`);
  const started = rows[0]!;
  const parked = rows[1]!;
  const perParked = (mib: number) => ((mib * MiB) / N).toFixed(0);
  process.stdout.write(
    `per parked request (${parked.step} − ${started.step}) / ${N}: RSS ${perParked(parked.rss - started.rss)} B` +
      (parked.afterGc === undefined || started.afterGc === undefined
        ? ''
        : `, after GC: heap used ${perParked(parked.afterGc.heapUsed - started.afterGc.heapUsed)} B, RSS ${perParked(parked.afterGc.rss - started.afterGc.rss)} B`) +
      `; ${WORKERS} proxy process${WORKERS === 1 ? '' : 'es + primary'}${values.gc ? ', after a forced GC in each' : ''}\n`,
  );
} finally {
  repoll = false;
  agent.destroy();
  const exited = new Promise((r) => proxy.once('exit', r));
  proxy.kill('SIGTERM');
  await Promise.race([exited, sleep(10_000)]);
  app.close();
  app.closeAllConnections();
}
