/**
 * `npm start` under a chat load (issue 15): runs a built launcher (`<root>/dist/launcher/main.js`,
 * so a checkout of main and this branch can be compared), signs in --clients sessions spread over
 * --rooms rooms, keeps each one long-polling its room, posts --rate messages a second for
 * --duration-s, and prints the CPU each process of the launcher's tree used (from /proc, % of one
 * core) and the post-to-delivery latency (p50, p99) measured in this process.
 *
 *   npx tsx bench/tools/launcher-load.ts --root . [--clients 2000] [--rooms 100] [--rate 100] [--duration-s 20]
 *
 * Loopback only; every wait has a deadline. The load generator's own CPU is not in the figures.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ChatClient } from '../../test/helpers/chat-client.js';
import { commandLine, descendantPids } from '../../test/helpers/processes.js';

const { values } = parseArgs({
  options: {
    root: { type: 'string', default: '.' },
    clients: { type: 'string', default: '2000' },
    rooms: { type: 'string', default: '100' },
    rate: { type: 'string', default: '100' },
    'duration-s': { type: 'string', default: '20' },
  },
});
const root = resolve(values.root);
const CLIENTS = Number(values.clients);
const ROOMS = Number(values.rooms);
const RATE = Number(values.rate);
const DURATION_S = Number(values['duration-s']);
for (const [name, v] of Object.entries({ CLIENTS, ROOMS, RATE, DURATION_S })) {
  if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a positive integer`);
}
const CLK_TCK = 100;

const dataDir = mkdtempSync(join(tmpdir(), 'launcher-load-'));
const launcher = spawn(process.execPath, [join(root, 'dist/launcher/main.js')], {
  cwd: root,
  env: {
    ...process.env,
    PROXY_PORT: '0',
    APP_PORT: '0',
    CONTROL_PORT: '0',
    DB_PATH: join(dataDir, 'chat.db'),
    LOG_LEVEL: 'warn',
    // One loopback address for every client: lift the per-address limits meant for the internet.
    MAX_PARKED_PER_ADDRESS: '1000000',
    SESSIONS_PER_MINUTE_PER_ADDRESS: '1000000',
    POSTS_PER_MINUTE: '1000000',
  },
  stdio: ['ignore', 'pipe', 'inherit'],
});
const stopLauncher = (): void => {
  if (launcher.exitCode === null) launcher.kill('SIGTERM');
};
process.on('exit', stopLauncher);

function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms))),
  ]).finally(() => clearTimeout(timer));
}

const base = await withDeadline(
  new Promise<string>((resolveBase) => {
    let out = '';
    launcher.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /running at (http:\/\/\S+?)\/ /.exec(out);
      if (m) resolveBase(m[1]!);
    });
  }),
  60_000,
  'the launcher',
);

/** utime + stime in ticks for each process of the launcher's tree, named by its entry point. */
function cpuTicks(): Map<string, number> {
  const ticks = new Map<string, number>();
  for (const pid of [launcher.pid!, ...descendantPids(launcher.pid!)]) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const name = /(launcher|server|proxy)\/main\.js/.exec(commandLine(pid))?.[1] ?? String(pid);
      ticks.set(name, (ticks.get(name) ?? 0) + Number(f[11]) + Number(f[12]));
    } catch {
      // Exited while we looked.
    }
  }
  return ticks;
}

// Setup: sessions in batches, each joins one room (round robin).
const rooms = Array.from({ length: ROOMS }, (_, i) => `load${i}`);
const owner = new ChatClient(base);
await owner.login('owner');
for (const room of rooms) await owner.call('POST', '/api/rooms', { name: room });
const clients: ChatClient[] = [];
const setupDeadline = Date.now() + 300_000;
for (let i = 0; i < CLIENTS; i += 100) {
  if (Date.now() > setupDeadline) throw new Error('setup took longer than 300 s');
  const batch = Array.from({ length: Math.min(100, CLIENTS - i) }, (_, j) => new ChatClient(base));
  await Promise.all(
    batch.map(async (c, j) => {
      await c.login(`u${i + j}`);
      c.cursors.clear();
      await c.join(rooms[(i + j) % ROOMS]!);
    }),
  );
  clients.push(...batch);
}
process.stderr.write(`setup: ${CLIENTS} clients in ${ROOMS} rooms\n`);

const latencies: number[] = [];
let errors = 0;
const statuses = new Map<string, number>();
const tally = (k: string): void => void statuses.set(k, (statuses.get(k) ?? 0) + 1);
let running = true;
const loops = clients.map(async (c) => {
  while (running) {
    try {
      const r = await c.poll();
      const now = Date.now();
      if (r.status !== 200) {
        errors++;
        tally(`${r.status} ${(r.body as { code?: string } | null)?.code ?? ''}`);
      }
      for (const ev of (r.body?.events ?? []) as { type: string; text?: string }[]) {
        const sent = ev.type === 'message' ? Number(ev.text?.split(' ')[0]) : NaN;
        if (Number.isFinite(sent)) latencies.push(now - sent);
      }
    } catch (err) {
      if (!running) return; // The launcher stopping at the end aborts every parked poll.
      errors++;
      tally((err as Error).message);
    }
  }
});

// Warm-up, then the measured window: posts at RATE/s from one poster per room.
const posters = rooms.map((room, i) => ({ room, client: clients[i % clients.length]! }));
const warmupMs = 3000;
await new Promise((r) => setTimeout(r, warmupMs));
latencies.length = 0;
const before = cpuTicks();
const started = Date.now();
let posted = 0;
let postErrors = 0;
const interval = 1000 / RATE;
while (Date.now() - started < DURATION_S * 1000) {
  const due = Math.floor((Date.now() - started) / interval);
  while (posted < due) {
    const p = posters[posted % posters.length]!;
    posted++;
    p.client.post(p.room, `${Date.now()} load`).catch(() => postErrors++);
  }
  await new Promise((r) => setTimeout(r, 5));
}
const elapsedS = (Date.now() - started) / 1000;
const after = cpuTicks();
running = false;
stopLauncher();
await withDeadline(new Promise((r) => launcher.once('exit', r)), 30_000, 'the launcher to stop');
await withDeadline(Promise.allSettled(loops), 30_000, 'the polls to end');
rmSync(dataDir, { recursive: true, force: true });

latencies.sort((a, b) => a - b);
const q = (p: number): number => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
const cpu = [...after].map(([name, t]) => `${name} ${(((t - (before.get(name) ?? 0)) / CLK_TCK / elapsedS) * 100).toFixed(0)}%`);
console.log(
  `${CLIENTS} clients, ${ROOMS} rooms, ${RATE} msg/s for ${elapsedS.toFixed(1)} s: posted ${posted} (${postErrors} failed), ` +
    `${latencies.length} deliveries, p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, poll errors ${errors} ${JSON.stringify([...statuses])}; CPU of one core: ${cpu.join(', ')}`,
);
process.exit(0);
