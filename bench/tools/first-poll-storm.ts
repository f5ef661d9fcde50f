/**
 * A first-poll storm against a real stack (issue 13 item 4): starts the app and the
 * proxy as two child processes on a temp database, creates N sessions, then sends N
 * first polls (`GET /api/poll?rooms=lobby:<last id>`, no `cid`) at once, each on its own
 * socket, and prints the time until the proxy has all N parked and the app's CPU time
 * spent meanwhile (per poll). Nothing is published, so every poll parks.
 *
 *   npx tsx bench/tools/first-poll-storm.ts [--polls 2000] [--cpu-prof DIR] [--proxy-prof DIR] [--proxy-heap-prof DIR] [--dist DIR]
 *
 * `--cpu-prof DIR` profiles the app (node --cpu-prof); `--proxy-prof DIR` profiles the proxy over the storm alone
 * (bench/tools/window-profiler.mjs); read either with bench/tools/cpuprofile-top.ts. `--proxy-heap-prof DIR`
 * samples the proxy's allocations over the storm instead (`window-<pid>.heapprofile`, bench/tools/heapprofile-top.ts). `--dist DIR` runs the proxy
 * and app of a build (`DIR/proxy/main.js`, `DIR/server/main.js`, e.g. an older checkout's `dist`) instead of the
 * sources, for same-run pairs. The line printed also has the proxy's CPU and the machine's listen-queue drops
 * (bench/lab/listen-overflows.ts) over the storm.
 * Keep N modest on a shared machine: the storm is short, session creation is the slow part.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { listenOverflows } from '../lab/listen-overflows.js';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { polls: { type: 'string', default: '2000' }, 'cpu-prof': { type: 'string' }, 'proxy-prof': { type: 'string' }, 'proxy-heap-prof': { type: 'string' }, dist: { type: 'string' } },
});
const dist = values.dist === undefined ? undefined : resolve(values.dist);
const N = Number(values.polls);
if (!Number.isInteger(N) || N < 1) throw new Error('--polls must be a positive integer');

const SECRET = 'storm-secret-0123456789abcdef';
const CONTROL_SECRET = 'storm-control-secret-0123456789';
const LEASE_KEY = 'storm-lease-key-fedcba987654321';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** user + system CPU of a process so far, ms (Linux /proc; clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

function request(port: number, path: string, init: { method?: string; cookie?: string; body?: unknown; agent?: http.Agent } = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const body = init.body === undefined ? undefined : JSON.stringify(init.body);
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: init.method ?? 'GET',
        agent: init.agent ?? agent,
        headers: {
          ...(body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }),
          ...(init.cookie === undefined ? {} : { cookie: init.cookie }),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** `role`'s program: the build's under `--dist`, else the source through tsx. */
function start(role: 'proxy' | 'server', env: NodeJS.ProcessEnv, nodeArgs: string[] = [], wrapper: string[] = []): ChildProcess {
  const program = dist === undefined ? ['--import', 'tsx', ...wrapper, `${role}/main.ts`] : [...wrapper, join(dist, role, 'main.js')];
  const child = spawn(process.execPath, [...nodeArgs, ...program], {
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  return child;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

const dir = mkdtempSync(join(tmpdir(), 'first-poll-storm-'));
const [appPort, proxyPort, controlPort] = [await freePort(), await freePort(), await freePort()];
const children: ChildProcess[] = [];
try {
  const appEnv = { GRIP_SECRET: SECRET, CONTROL_SECRET, LEASE_KEY, APP_PORT: String(appPort), DB_PATH: join(dir, 'chat.db'), PROXY_CONTROL_URL: `http://127.0.0.1:${controlPort}` };
  // Sessions are made by a first app process; the storm runs against a second one (same database), so its
  // CPU time and profile cover the storm alone.
  let app = start('server', appEnv);
  children.push(app);
  if (values['proxy-prof'] !== undefined && values['proxy-heap-prof'] !== undefined) throw new Error('--proxy-prof and --proxy-heap-prof: one at a time');
  const proxyProfDir = values['proxy-prof'] ?? values['proxy-heap-prof'];
  const heapProf = values['proxy-heap-prof'] !== undefined;
  const proxyProf = proxyProfDir === undefined ? [] : ['bench/tools/window-profiler.mjs', ...(heapProf ? ['--heap'] : []), proxyProfDir];
  const proxy = start('proxy', {
    GRIP_SECRET: SECRET,
    CONTROL_SECRET,
    LEASE_KEY,
    PROXY_PORT: String(proxyPort),
    CONTROL_PORT: String(controlPort),
    APP_URL: `http://127.0.0.1:${appPort}`,
    MAX_PARKED_PER_ADDRESS: String(N + 100),
    MAX_PARKED: String(N + 100),
  }, [], proxyProf);
  children.push(proxy);
  await waitFor('the app', async () => (await request(appPort, '/api/rooms')).status > 0, 20_000);
  await waitFor('the proxy', async () => (await request(proxyPort, '/api/rooms')).status !== 502, 20_000);
  const stats = async (): Promise<{ parked: number }> => {
    const res = await fetch(`http://127.0.0.1:${controlPort}/stats`, { headers: { authorization: `Bearer ${CONTROL_SECRET}` } });
    return (await res.json()) as { parked: number };
  };

  // Sessions, 64 at a time.
  const cookies: string[] = [];
  for (let i = 0; i < N; i += 64) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(64, N - i) }, (_, j) => request(proxyPort, '/api/session', { method: 'POST', body: { nick: `s${i + j}` } })),
    );
    for (const res of batch) {
      if (res.status !== 201 && res.status !== 200) throw new Error(`POST /api/session answered ${res.status}: ${res.body}`);
      cookies.push(String(res.headers['set-cookie']![0]!.split(';')[0]));
    }
  }
  await stop(app);
  app = start('server', appEnv, values['cpu-prof'] === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', values['cpu-prof']]);
  children.push(app);
  await waitFor('the app again', async () => (await request(appPort, '/api/rooms')).status > 0, 20_000);
  const rooms = JSON.parse((await request(proxyPort, '/api/rooms', { cookie: cookies[0]! })).body) as { rooms?: Array<{ name: string; lastEventId: number }> } | Array<{ name: string; lastEventId: number }>;
  const list = Array.isArray(rooms) ? rooms : rooms.rooms ?? [];
  const lobby = list.find((r) => r.name === 'lobby');
  if (lobby === undefined) throw new Error('no lobby in GET /api/rooms');

  // The storm: N first polls, each on a socket of its own, sent in one tick.
  const stormAgent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
  const cpu0 = cpuMs(app.pid!);
  const proxyCpu0 = cpuMs(proxy.pid!);
  const overflows0 = await listenOverflows();
  if (proxyProf.length > 0) proxy.kill('SIGUSR2'); // starts the window profile
  const t0 = performance.now();
  let errors = 0;
  let answered = 0;
  /** What the errors were: a status with the body's error code, or a socket error's code. */
  const errorKinds = new Map<string, number>();
  const countError = (kind: string) => {
    errors++;
    errorKinds.set(kind, (errorKinds.get(kind) ?? 0) + 1);
  };
  const polls = cookies.map((cookie) =>
    request(proxyPort, `/api/poll?rooms=lobby:${lobby.lastEventId}`, { cookie, agent: stormAgent }).then(
      (res) => {
        answered++;
        if (res.status !== 200) countError(`${res.status} ${/"code":"([A-Z_]+)"/.exec(res.body)?.[1] ?? ''}`.trim());
      },
      (err: NodeJS.ErrnoException) => {
        countError(err.code ?? err.message);
      },
    ),
  );
  await waitFor('all polls parked', async () => (await stats()).parked + answered >= N, 120_000);
  const parkedMs = performance.now() - t0;
  const cpu = cpuMs(app.pid!) - cpu0;
  const proxyCpu = cpuMs(proxy.pid!) - proxyCpu0;
  const overflows1 = await listenOverflows();
  if (proxyProf.length > 0) proxy.kill('SIGUSR2'); // writes it
  process.stdout.write(
    `${N} first polls: all parked in ${parkedMs.toFixed(0)} ms (${((N / parkedMs) * 1000).toFixed(0)}/s), ` +
      `errors ${errors}${errors > 0 ? ` (${[...errorKinds].map(([kind, n]) => `${kind}: ${n}`).join(', ')})` : ''}, answered early ${answered}, app CPU ${cpu} ms (${((cpu * 1000) / N).toFixed(0)} µs/poll), ` +
      `proxy CPU ${proxyCpu} ms (${((proxyCpu * 1000) / N).toFixed(0)} µs/poll), ` +
      `listen-queue drops ${overflows0 === undefined || overflows1 === undefined ? '?' : overflows1 - overflows0} (machine-wide)\n`,
  );
  if (proxyProf.length > 0) {
    const file = join(resolve(proxyProfDir!), `window-${proxy.pid}.${heapProf ? 'heapprofile' : 'cpuprofile'}`);
    await waitFor('the proxy profile', async () => existsSync(file), 30_000);
  }
  stormAgent.destroy();
  void polls;
} finally {
  agent.destroy();
  for (const child of children.reverse()) await stop(child);
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
