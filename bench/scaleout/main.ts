/**
 * Scale-out bench (docs/scaleout.md): parked connections per second and
 * fan-out deliveries per second with 1, 2 and 3 hold proxies on one Redis and
 * one app, clients in separate processes, loopback only, every wait bounded.
 *
 *   npm run bench:scaleout -- [--clients 2000] [--workers 2] [--rounds 5] [--proxies 1,2,3]
 *
 * Per proxy count (a fresh stack each time, same client count):
 *  setup (untimed)  own redis-server (ephemeral port, no persistence), the app as a child process,
 *                   sessions + one room + every join through the app, the room's cursor read after
 *                   all joins, then (once the relay has put the last join on the bus) N proxies as
 *                   child processes, so no join event flows through a proxy during the timed phases.
 *  park (timed)     client processes open every long-poll with that cursor, spread round robin over
 *                   the proxies; time until the proxies' /stats `parked` sums to the client count.
 *  fan-out (timed)  per round, with every client parked, ONE message is posted to the app; time from
 *                   the post to the last client's receipt (clients report receipt instants over IPC).
 *                   deliveries/s = clients / that time; p50/p99 publish-to-receipt. Between rounds
 *                   the bench waits until every client is parked again. Medians over the rounds.
 * Every client must get every round's message exactly once (lost/dup reported, must be 0).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';

const { values: args } = parseArgs({
  options: {
    clients: { type: 'string', default: '2000' },
    workers: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '5' },
    proxies: { type: 'string', default: '1,2,3' },
  },
});
const CLIENTS = Number(args.clients);
const WORKERS = Number(args.workers);
const ROUNDS = Number(args.rounds);
const PROXY_COUNTS = args.proxies.split(',').map(Number);
if (!(CLIENTS > 0 && WORKERS > 0 && ROUNDS > 0 && PROXY_COUNTS.every((n) => n > 0 && n <= 8))) throw new Error('bad arguments');
// 20,000 open files per process (../shared/NOTES.md): keep each load process well below.
if (Math.ceil(CLIENTS / WORKERS) > 15_000) throw new Error('more than 15,000 clients per worker process: add --workers');

const SECRET = 'bench-secret-0123456789abcdef';
const CONTROL_SECRET = 'bench-control-secret-0123456789';
const ROOM = 'bench';
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const children = new Set<ChildProcess>();
const killAll = () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  children.clear();
};
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => (killAll(), process.exit(130)));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Polls `f` every `everyMs` until it returns a value; throws after `ms`. */
async function until<T>(what: string, ms: number, f: () => Promise<T | undefined>, everyMs = 20): Promise<T> {
  const end = Date.now() + ms;
  for (let i = 0; ; i++) {
    const v = await f().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms: ${what}`);
    await sleep(everyMs);
  }
}

function child(script: string, env: NodeJS.ProcessEnv, ipc = false): ChildProcess {
  const c = spawn(process.execPath, ['--import', 'tsx', join(ROOT, script)], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, ...env },
    stdio: ipc ? ['ignore', 'inherit', 'inherit', 'ipc'] : ['ignore', 'ignore', 'inherit'],
  });
  children.add(c);
  return c;
}

/** Bounded-concurrency map. */
async function pool<T, R>(items: T[], width: number, f: (t: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await f(items[i]!, i);
      }
    }),
  );
  return out;
}

async function api(base: string, method: string, path: string, sid?: string, body?: unknown): Promise<{ status: number; body: any; sid?: string }> {
  const headers: Record<string, string> = {};
  if (sid) headers.cookie = `sid=${sid}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
  const cookie = res.headers.getSetCookie().map((c) => c.split(';')[0]!).find((c) => c.startsWith('sid='));
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null, sid: cookie?.slice(4) };
}

async function session(appUrl: string, nick: string): Promise<string> {
  const r = await api(appUrl, 'POST', '/api/session', undefined, { nick });
  if (r.status !== 201 || !r.sid) throw new Error(`login ${nick}: ${r.status}`);
  return r.sid;
}

const quantile = (sorted: number[], q: number) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!);
const median = (xs: number[]) => quantile([...xs].sort((a, b) => a - b), 0.5);

interface RoundResult {
  round: number;
  received: number;
  fanoutMs: number;
  deliveriesPerS: number;
  p50Ms: number;
  p99Ms: number;
  reparkMs: number;
  proxyDeliveries: number;
  reasks: number;
}

async function run(proxyCount: number) {
  const tSetup = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'comet-bench-scaleout-'));
  let redis: Redis | null = null;
  try {
    // --- setup (untimed) ---------------------------------------------------
    const redisPort = await freePort();
    const redisProc = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    children.add(redisProc);
    const redisUrl = `redis://127.0.0.1:${redisPort}`;
    redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
    redis.on('error', () => {}); // refused until redis-server listens; `until` retries
    await until('redis up', 5_000, async () => ((await redis!.connect().then(() => redis!.ping())) === 'PONG' ? true : undefined), 50);

    const appPort = await freePort();
    const appUrl = `http://127.0.0.1:${appPort}`;
    child('server/main.ts', {
      GRIP_SECRET: SECRET,
      APP_HOST: '127.0.0.1',
      APP_PORT: String(appPort),
      DB_PATH: join(dir, 'chat.db'),
      REDIS_URL: redisUrl,
      HOLD_TIMEOUT_S: '120', // longer than a run: no timeout re-polls during the timed phases
      LOG_LEVEL: 'warn',
    });
    await until('app up', 20_000, async () => ((await fetch(`${appUrl}/api/rooms`)).status > 0 ? true : undefined), 100);

    const posterSid = await session(appUrl, 'poster');
    if ((await api(appUrl, 'POST', '/api/rooms', posterSid, { name: ROOM })).status !== 201) throw new Error('create room');
    await api(appUrl, 'POST', `/api/rooms/${ROOM}/join`, posterSid);
    const sids = await pool(Array.from({ length: CLIENTS }, (_, i) => i), 32, async (i) => {
      const sid = await session(appUrl, `c${i}`);
      const j = await api(appUrl, 'POST', `/api/rooms/${ROOM}/join`, sid);
      if (j.status !== 200) throw new Error(`join ${i}: ${j.status}`);
      return sid;
    });
    // The room's cursor after every join: a member joining again adds no event and answers it.
    const cursor = (await api(appUrl, 'POST', `/api/rooms/${ROOM}/join`, posterSid)).body.cursor as number;
    // Wait until the relay has put the last join on the bus; proxies started after that skip the backlog.
    await until('relay drained the joins', 60_000, async () => {
      const last = (await redis!.xrevrange('comet:bus', '+', '-', 'COUNT', 1))[0];
      return last && last[1].join(' ').includes(`"id":"${cursor}"`) ? true : undefined;
    }, 50);

    const proxies: Array<{ client: string; control: string }> = [];
    for (let i = 0; i < proxyCount; i++) {
      const [cp, ctl] = [await freePort(), await freePort()];
      child('proxy/main.ts', {
        GRIP_SECRET: SECRET,
        CONTROL_SECRET,
        PROXY_PORT: String(cp),
        CONTROL_PORT: String(ctl),
        APP_URL: appUrl,
        REDIS_URL: redisUrl,
        MAX_PARKED: '20000',
        MAX_PARKED_PER_ADDRESS: '20000',
        LOG_LEVEL: 'warn',
      });
      proxies.push({ client: `http://127.0.0.1:${cp}`, control: `http://127.0.0.1:${ctl}` });
    }
    for (const p of proxies) await until('proxy up', 20_000, async () => ((await fetch(`${p.control}/health`)).ok ? true : undefined), 100);
    const stats = () =>
      Promise.all(
        proxies.map(async (p) => (await (await fetch(`${p.control}/stats`, { headers: { authorization: `Bearer ${CONTROL_SECRET}` }, signal: AbortSignal.timeout(5_000) })).json()) as Record<string, number>),
      );
    const sum = (all: Array<Record<string, number>>, k: string) => all.reduce((n, s) => n + (s[k] ?? 0), 0);
    const allParked = async () => (sum(await stats(), 'parked') >= CLIENTS ? true : undefined);

    // Client processes: worker w holds clients w, w+W, ...; client i starts on proxy i mod N.
    const workers: ChildProcess[] = [];
    const roundTimes = new Map<number, number[]>();
    const roundReports = new Map<number, number>();
    const finals: Array<Record<string, any>> = [];
    let readyCount = 0;
    for (let w = 0; w < WORKERS; w++) {
      const c = child('bench/scaleout/clients.ts', {}, true);
      workers.push(c);
      c.on('message', (m: any) => {
        if (m.type === 'ready') readyCount++;
        else if (m.type === 'round') {
          roundTimes.set(m.round, [...(roundTimes.get(m.round) ?? []), ...m.times]);
          roundReports.set(m.round, (roundReports.get(m.round) ?? 0) + 1);
        } else if (m.type === 'final') finals.push(m);
      });
      const mine = sids.map((sid, i) => ({ sid, proxy: i % proxyCount })).filter((_, i) => i % WORKERS === w);
      c.send({ type: 'init', proxies: proxies.map((p) => p.client), clients: mine, room: ROOM, cursor, localAddress: `127.0.0.${2 + w}`, maxPollsPerClient: 10 * ROUNDS + 100 });
    }
    await until('client processes ready', 30_000, async () => (readyCount === WORKERS ? true : undefined));
    const setupMs = Date.now() - tSetup;

    // --- park (timed) --------------------------------------------------------
    const tPark = now();
    for (const c of workers) c.send({ type: 'start' });
    await until(`${CLIENTS} parked`, 60_000, allParked, 10);
    const parkMs = now() - tPark;

    // --- fan-out (timed), one message per round ------------------------------------
    const rounds: RoundResult[] = [];
    for (let k = 1; k <= ROUNDS; k++) {
      const before = await stats();
      const tPost = now();
      const posted = await api(appUrl, 'POST', `/api/rooms/${ROOM}/messages`, posterSid, { text: `r${k}` });
      if (posted.status !== 201) throw new Error(`post r${k}: ${posted.status}`);
      try {
        await until(`round ${k} received`, 30_000, async () => (roundReports.get(k) === WORKERS ? true : undefined), 5);
      } catch {
        for (const c of workers) c.send({ type: 'flush', round: k });
        await until(`round ${k} flush`, 5_000, async () => (roundReports.get(k) === WORKERS ? true : undefined), 5);
      }
      const lat = (roundTimes.get(k) ?? []).map((t) => t - tPost).sort((a, b) => a - b);
      const fanoutMs = lat.length ? lat[lat.length - 1]! : NaN;
      const tRepark = now();
      await until(`round ${k}: all parked again`, 60_000, allParked, 10);
      const reparkMs = now() - tRepark;
      const after = await stats();
      rounds.push({
        round: k,
        received: lat.length,
        fanoutMs: Math.round(fanoutMs),
        deliveriesPerS: Math.round((lat.length / fanoutMs) * 1000),
        p50Ms: Math.round(quantile(lat, 0.5)),
        p99Ms: Math.round(quantile(lat, 0.99)),
        reparkMs: Math.round(reparkMs),
        proxyDeliveries: sum(after, 'deliveries') - sum(before, 'deliveries'),
        reasks: sum(after, 'reasks') - sum(before, 'reasks'),
      });
    }
    await sleep(300); // a late duplicate would show up in the final tally
    const finalStats = await stats();
    for (const c of workers) c.send({ type: 'stop' });
    await until('client finals', 10_000, async () => (finals.length === WORKERS ? true : undefined));

    let lost = 0;
    let dup = 0;
    for (let k = 1; k <= ROUNDS; k++) {
      const got = finals.reduce((n, f) => n + (f.perRound[k]?.got ?? 0), 0);
      lost += CLIENTS - got;
      dup += finals.reduce((n, f) => n + (f.perRound[k]?.dup ?? 0), 0);
    }
    const clientTotals = Object.fromEntries(
      ['polls', 'answers200', 'emptyAnswers', 'errors', 'non200', 'resyncs', 'dupEvents', 'otherEvents', 'unknownMessages'].map((k) => [k, finals.reduce((n, f) => n + (f[k] ?? 0), 0)]),
    );
    return {
      proxies: proxyCount,
      clients: CLIENTS,
      clientProcesses: WORKERS,
      rounds: ROUNDS,
      setupMs,
      parkMs: Math.round(parkMs),
      parkedPerS: Math.round((CLIENTS / parkMs) * 1000),
      fanoutMsMedian: median(rounds.map((r) => r.fanoutMs)),
      deliveriesPerSMedian: median(rounds.map((r) => r.deliveriesPerS)),
      p50MsMedian: median(rounds.map((r) => r.p50Ms)),
      p99MsMedian: median(rounds.map((r) => r.p99Ms)),
      lost,
      dup,
      perRound: rounds,
      parkedPerProxy: finalStats.map((s) => s.parked),
      proxyTotals: Object.fromEntries(['holds', 'publishes', 'deliveries', 'reasks', 'resyncs', 'timeouts', 'dropped', 'busResyncs'].map((k) => [k, sum(finalStats, k)])),
      clientTotals,
    };
  } finally {
    redis?.disconnect();
    killAll();
    await sleep(300);
    rmSync(dir, { recursive: true, force: true });
  }
}

const started = new Date();
const results = [];
for (const n of PROXY_COUNTS) {
  process.stderr.write(`scaleout: ${n} prox${n === 1 ? 'y' : 'ies'}, ${CLIENTS} clients in ${WORKERS} processes, ${ROUNDS} rounds...\n`);
  const r = await run(n);
  process.stderr.write(`${JSON.stringify({ ...r, perRound: undefined })}\n`);
  results.push(r);
}

const NOTE = `All processes (redis, app, proxies, ${WORKERS} client processes) share this machine's ${cpus().length} cores: with few cores, the numbers show the overhead of the scale-out path (Redis bus, shared queues) rather than horizontal gains.`;
console.log(`\nscale-out bench: ${CLIENTS} clients in ${WORKERS} client processes, one room, ${ROUNDS} rounds of one message (medians over rounds)\n`);
console.table(
  results.map((r) => ({
    proxies: r.proxies,
    'parked/s': r.parkedPerS,
    'park ms': r.parkMs,
    'deliveries/s': r.deliveriesPerSMedian,
    'fan-out ms': r.fanoutMsMedian,
    'p50 ms': r.p50MsMedian,
    'p99 ms': r.p99MsMedian,
    lost: r.lost,
    dup: r.dup,
  })),
);
console.log(NOTE);
const outDir = join(ROOT, 'bench/results');
mkdirSync(outDir, { recursive: true });
const outPath = join(outDir, `scaleout-${started.toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(outPath, `${JSON.stringify({ startedAt: started.toISOString(), node: process.version, cpus: cpus().length, args: { clients: CLIENTS, workers: WORKERS, rounds: ROUNDS, proxies: PROXY_COUNTS }, note: NOTE, results }, null, 2)}\n`);
console.log(`written: ${outPath}`);
const failed = results.some((r) => r.lost !== 0 || r.dup !== 0);
process.exit(failed ? 1 : 0);
