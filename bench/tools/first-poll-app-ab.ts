/**
 * The app's CPU per first poll, two builds side by side (issue 15: the storm of first polls). Starts each
 * build's app (`DIST/server/main.js`) on a temp database, makes `--sessions` sessions in each, then sends
 * rounds of first polls through the proxy's eyes (a valid `Grip-Sig`, so each answer is a hold instruction
 * with a lease, as in the storm), half the sessions per round, alternating which build goes first, and reads
 * each app's CPU over its own round from the schedstat of each of its threads (ns resolution).
 * On a shared machine a whole storm moves by +-30% from run to run; rounds of a few hundred polls
 * interleaved every few seconds see the same load, so the per-round comparison (and the count of rounds
 * won) carries where storm pairs cannot. The first two rounds warm up and are not counted.
 *
 *   npx tsx bench/tools/first-poll-app-ab.ts --old /tmp/old/dist --new dist [--rounds 38] [--sessions 600]
 *
 * A session issues at most 20 connection IDs (maxConnectionsPerSession), so rounds <= 38 with half the
 * sessions each. Every answer is checked: 200 with `Grip-Hold: response` and a `Grip-Lease`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { CONTROL_SECRET, cpuMs, freePort, LEASE_KEY, request, SECRET, sharedAgent } from './first-poll-ab-lib.js';
import { signGripSig } from '../../protocol/grip-sig.js';

const { values } = parseArgs({
  options: { old: { type: 'string' }, new: { type: 'string' }, rounds: { type: 'string', default: '38' }, sessions: { type: 'string', default: '600' } },
});
if (values.old === undefined || values.new === undefined) throw new Error('--old DIST and --new DIST are required');
const oldDist = values.old;
const newDist = values.new;
const ROUNDS = Number(values.rounds);
const S = Number(values.sessions);
if (!Number.isInteger(ROUNDS) || ROUNDS < 3 || ROUNDS > 38) throw new Error('--rounds must be 3-38');
if (!Number.isInteger(S) || S < 2 || S % 2 !== 0) throw new Error('--sessions must be an even integer >= 2');
type Build = 'old' | 'new';

async function waitUntilUp(port: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await request(port, '/api/rooms');
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`the app on port ${port} did not come up within 30 s`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

const children: ChildProcess[] = [];
const dirs: string[] = [];

/** One build's app on a fresh database, with `S` sessions and the lobby's last event id. */
async function startApp(dist: string): Promise<{ port: number; pid: number; cookies: string[]; lastEventId: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'first-poll-app-ab-'));
  dirs.push(dir);
  const port = await freePort();
  const env = {
    ...process.env,
    LOG_LEVEL: 'warn',
    GRIP_SECRET: SECRET,
    CONTROL_SECRET,
    LEASE_KEY,
    APP_PORT: String(port),
    DB_PATH: join(dir, 'chat.db'),
    // Nothing is published; the relay's target only has to be a URL.
    PROXY_CONTROL_URL: `http://127.0.0.1:${await freePort()}`,
  };
  const child = spawn(process.execPath, [join(resolve(dist), 'server/main.js')], { env, stdio: ['ignore', 'inherit', 'inherit'] });
  children.push(child);
  await waitUntilUp(port);
  const cookies: string[] = [];
  for (let i = 0; i < S; i += 50) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(50, S - i) }, (_, j) => request(port, '/api/session', { method: 'POST', body: { nick: `u${i + j}` } })),
    );
    for (const res of batch) {
      if (res.status !== 201 && res.status !== 200) throw new Error(`POST /api/session answered ${res.status}: ${res.body}`);
      cookies.push(String(res.headers['set-cookie']![0]!.split(';')[0]));
    }
  }
  const rooms = JSON.parse((await request(port, '/api/rooms', { cookie: cookies[0]! })).body) as
    | { rooms?: Array<{ name: string; lastEventId: number }> }
    | Array<{ name: string; lastEventId: number }>;
  const lobby = (Array.isArray(rooms) ? rooms : rooms.rooms ?? []).find((r) => r.name === 'lobby');
  if (lobby === undefined) throw new Error('no lobby in GET /api/rooms');
  return { port, pid: child.pid!, cookies, lastEventId: lobby.lastEventId };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

try {
  const apps = { old: await startApp(oldDist), new: await startApp(newDist) };
  const gripSig = await signGripSig(SECRET);
  const perPollUs: Record<Build, number[]> = { old: [], new: [] };
  let unexpected = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const order: Build[] = round % 2 === 0 ? ['old', 'new'] : ['new', 'old'];
    for (const build of order) {
      const app = apps[build];
      // Halves alternate every two rounds, so a session's IDs stay under its cap of 20.
      const half = app.cookies.length / 2;
      const cookies = Math.floor(round / 2) % 2 === 0 ? app.cookies.slice(0, half) : app.cookies.slice(half);
      const cpu0 = cpuMs(app.pid);
      const answers = await Promise.all(cookies.map((cookie) => request(app.port, `/api/poll?rooms=lobby:${app.lastEventId}`, { cookie, gripSig })));
      const cpu1 = cpuMs(app.pid);
      for (const a of answers) {
        if (a.status !== 200 || a.headers['grip-hold'] !== 'response' || typeof a.headers['grip-lease'] !== 'string') unexpected++;
      }
      if (round >= 2) perPollUs[build].push(((cpu1 - cpu0) * 1000) / cookies.length);
    }
  }
  const { old: o, new: n } = perPollUs;
  const won = o.filter((x, i) => n[i]! < x).length;
  process.stdout.write(
    `app CPU per first poll (hold + lease), ${o.length} counted rounds of ${S / 2}: ` +
      `old median ${median(o).toFixed(0)} mean ${mean(o).toFixed(0)} µs, new median ${median(n).toFixed(0)} mean ${mean(n).toFixed(0)} µs, ` +
      `new/old of means ${(mean(n) / mean(o)).toFixed(3)}, rounds new < old ${won}/${o.length}, unexpected answers ${unexpected}\n` +
      `old ${o.map((x) => x.toFixed(0)).join(' ')}\nnew ${n.map((x) => x.toFixed(0)).join(' ')}\n`,
  );
} finally {
  sharedAgent.destroy();
  for (const child of children) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
}
