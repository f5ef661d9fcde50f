/**
 * The proxy's CPU per first poll, two builds side by side (issue 15: the storm of first polls). One app (the
 * `--app` build) behind both proxies (`--old`, `--new`: `DIST/proxy/main.js`); each proxy's clients get their
 * own sessions. A round sends first polls through one proxy, each on a socket of its own (as in the storm),
 * reads the proxy's CPU from the schedstat of each of its threads (ns) until all are parked (`/stats`), then
 * closes the sockets and waits until nothing is parked; rounds alternate which build goes first, the first
 * two warm up. Interleaved rounds see the same machine load where whole storms, minutes apart, do not.
 *
 *   npx tsx bench/tools/first-poll-proxy-ab.ts --old /tmp/old/dist --new dist [--app dist] [--rounds 24] [--sessions 600]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { CONTROL_SECRET, cpuMs, freePort, LEASE_KEY, request, SECRET, sharedAgent } from './first-poll-ab-lib.js';

const { values } = parseArgs({
  options: {
    old: { type: 'string' },
    new: { type: 'string' },
    app: { type: 'string', default: 'dist' },
    rounds: { type: 'string', default: '24' },
    sessions: { type: 'string', default: '600' },
  },
});
if (values.old === undefined || values.new === undefined) throw new Error('--old DIST and --new DIST are required');
const dists: Record<'old' | 'new', string> = { old: values.old, new: values.new };
const ROUNDS = Number(values.rounds);
const S = Number(values.sessions);
if (!Number.isInteger(ROUNDS) || ROUNDS < 3 || ROUNDS > 38) throw new Error('--rounds must be 3-38');
if (!Number.isInteger(S) || S < 2 || S % 2 !== 0) throw new Error('--sessions must be an even integer >= 2');

type Build = 'old' | 'new';

/** Polls `check` every 20 ms until it holds; throws after `timeoutMs`. */
async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const children: ChildProcess[] = [];
const dir = mkdtempSync(join(tmpdir(), 'first-poll-proxy-ab-'));
const env = { ...process.env, LOG_LEVEL: 'warn', GRIP_SECRET: SECRET, CONTROL_SECRET, LEASE_KEY };

function start(program: string, extra: NodeJS.ProcessEnv): ChildProcess {
  const child = spawn(process.execPath, [program], { env: { ...env, ...extra }, stdio: ['ignore', 'inherit', 'inherit'] });
  children.push(child);
  return child;
}

async function sessions(appPort: number, prefix: string): Promise<string[]> {
  const cookies: string[] = [];
  for (let i = 0; i < S; i += 50) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(50, S - i) }, (_, j) => request(appPort, '/api/session', { method: 'POST', body: { nick: `${prefix}${i + j}` } })),
    );
    for (const res of batch) {
      if (res.status !== 201 && res.status !== 200) throw new Error(`POST /api/session answered ${res.status}: ${res.body}`);
      cookies.push(String(res.headers['set-cookie']![0]!.split(';')[0]));
    }
  }
  return cookies;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

try {
  const appPort = await freePort();
  start(join(resolve(values.app), 'server/main.js'), {
    APP_PORT: String(appPort),
    DB_PATH: join(dir, 'chat.db'),
    PROXY_CONTROL_URL: `http://127.0.0.1:${await freePort()}`,
  });
  await waitFor('the app', async () => (await request(appPort, '/api/rooms')).status > 0);
  const proxies = {} as Record<Build, { port: number; control: number; pid: number; cookies: string[] }>;
  for (const build of ['old', 'new'] as const) {
    const port = await freePort();
    const control = await freePort();
    const child = start(join(resolve(dists[build]), 'proxy/main.js'), {
      PROXY_PORT: String(port),
      CONTROL_PORT: String(control),
      APP_URL: `http://127.0.0.1:${appPort}`,
      MAX_PARKED_PER_ADDRESS: String(S),
      MAX_PARKED: String(S),
    });
    await waitFor(`the ${build} proxy`, async () => (await request(port, '/api/rooms')).status !== 502);
    // Sessions of its own: a session issues at most 20 connection IDs.
    proxies[build] = { port, control, pid: child.pid!, cookies: await sessions(appPort, build) };
  }
  const rooms = JSON.parse((await request(appPort, '/api/rooms', { cookie: proxies.old.cookies[0]! })).body) as
    | { rooms?: Array<{ name: string; lastEventId: number }> }
    | Array<{ name: string; lastEventId: number }>;
  const lobby = (Array.isArray(rooms) ? rooms : rooms.rooms ?? []).find((r) => r.name === 'lobby');
  if (lobby === undefined) throw new Error('no lobby in GET /api/rooms');
  const parked = async (control: number) =>
    (JSON.parse((await request(control, '/stats', { authorization: `Bearer ${CONTROL_SECRET}` })).body) as { parked: number }).parked;

  const perPollUs: Record<Build, number[]> = { old: [], new: [] };
  let answered = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const order: Build[] = round % 2 === 0 ? ['old', 'new'] : ['new', 'old'];
    for (const build of order) {
      const proxy = proxies[build];
      const half = proxy.cookies.length / 2;
      const cookies = Math.floor(round / 2) % 2 === 0 ? proxy.cookies.slice(0, half) : proxy.cookies.slice(half);
      const storm = new http.Agent({ keepAlive: false, maxSockets: Infinity });
      let early = 0;
      const cpu0 = cpuMs(proxy.pid);
      const polls = cookies.map((cookie) =>
        request(proxy.port, `/api/poll?rooms=lobby:${lobby.lastEventId}`, { cookie, agent: storm }).then(
          () => void early++,
          () => undefined, // the socket closed below
        ),
      );
      await waitFor('every poll parked', async () => (await parked(proxy.control)) + early >= cookies.length);
      const cpu1 = cpuMs(proxy.pid);
      if (round >= 2) perPollUs[build].push(((cpu1 - cpu0) * 1000) / cookies.length);
      answered += early;
      for (const socket of Object.values(storm.sockets).flat()) socket?.destroy();
      storm.destroy();
      await waitFor('every poll released', async () => (await parked(proxy.control)) === 0);
      await Promise.allSettled(polls);
    }
  }
  const { old: o, new: n } = perPollUs;
  const won = o.filter((x, i) => n[i]! < x).length;
  process.stdout.write(
    `proxy CPU per first poll, ${o.length} counted rounds of ${S / 2}: ` +
      `old median ${median(o).toFixed(0)} mean ${mean(o).toFixed(0)} µs, new median ${median(n).toFixed(0)} mean ${mean(n).toFixed(0)} µs, ` +
      `new/old of means ${(mean(n) / mean(o)).toFixed(3)}, rounds new < old ${won}/${o.length}, answered instead of parked ${answered}\n` +
      `old ${o.map((x) => x.toFixed(0)).join(' ')}\nnew ${n.map((x) => x.toFixed(0)).join(' ')}\n`,
  );
} finally {
  sharedAgent.destroy();
  for (const child of children.reverse()) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
  rmSync(dir, { recursive: true, force: true });
}
