/**
 * The proxy's memory through a load and after it (issue 14 item 8): starts the proxy as a child process in
 * front of a minimal GRIP app (in this process), parks N long-polls from N keep-alive connections, publishes
 * a few rounds to every room (each client re-polls and parks again), then releases everything, and reads the
 * proxy's resident memory (/proc) and V8 heap (its /metrics) at each step, once RSS has settled.
 *
 *   npx tsx bench/tools/parked-memory.ts [--clients 10000] [--rooms 10] [--rounds 3] [--cycles 2] [--idle-s 20]
 *        [--node-flag=--max-semi-space-size=2]... [--env MALLOC_ARENA_MAX=2]... [--dist] [--probe DIR]
 *        [--workers N] [--gc] [--anonymous] [--lease] [--proxy FILE]
 *
 * The app holds each poll under the client's own connection ID, as the chat app does (`--anonymous`: none).
 * `--lease`: the app also grants re-poll leases (docs/protocol.md §13), as the chat app does: the first polls are
 * still the app's (node:http parses them, the client front may take them over before they park), the re-polls
 * after each round the proxy's alone.
 * `--workers N` runs the proxy as N workers and a primary (PROXY_WORKERS); memory is then summed over every
 * proxy process. `--gc` forces a full GC in every proxy process (the lab's handler, bench/lab/force-gc.ts)
 * before each reading, so the rows show what stays reachable; the summary line gives the bytes per parked
 * request: (parked row − started row) / clients, both after that GC.
 *
 * With `--gc` each proxy process also reports its own reading after its GC (bench/tools/process-memory-probe.mjs):
 * a second table gives, per process (primary and workers apart), RSS, heap used and total, external memory and
 * V8's heap spaces (reserved / used), and each process's growth per parked request.
 *
 * `--dist` runs `dist/proxy/main.js` (run `npm run build` first) instead of the sources through tsx; `--proxy
 * FILE` another build's (e.g. a worktree of the commit before a change) for same-run before/after pairs.
 * The clients, the app and the proxy's start are bench/tools/parked-clients.ts (shared with delivery-floor.ts).
 * `--probe DIR` preloads bench/tools/memory-probe.mjs into the proxy: every step then also forces a full GC
 * and reports the heap and RSS after it (what is live, and what a GC gives back), and two allocation profiles
 * are written: `alloc-0` over one full round of the first cycle (publish, N deliveries, N re-polls through
 * the app, N parks) and `alloc-1` over the last publish, N deliveries alone (clients do not re-poll); read
 * them with bench/tools/heapprofile-top.ts. Forced GCs change what follows: compare runs without `--probe`.
 * Loopback only; every wait has a deadline.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { forceGc, GC_NODE_ARGS } from '../lab/force-gc.js';
import { envFlags, sleep, startParkedBench, until } from './parked-clients.js';

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
    proxy: { type: 'string' },
    probe: { type: 'string' },
    workers: { type: 'string', default: '1' },
    gc: { type: 'boolean', default: false },
    anonymous: { type: 'boolean', default: false },
    lease: { type: 'boolean', default: false },
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

const MiB = 1024 * 1024;
const probeDir = values.probe;
if (probeDir !== undefined) {
  mkdirSync(probeDir, { recursive: true });
  rmSync(`${probeDir}/done`, { force: true });
}
/** With `--gc`, every proxy process reports its own memory and V8 heap spaces after each forced GC. */
const perProcessDir = join(tmpdir(), `comet-parked-memory-${process.pid}`);
const entry = values.proxy !== undefined ? [values.proxy] : values.dist ? ['dist/proxy/main.js'] : ['--import', 'tsx', 'proxy/main.ts'];
const bench = await startParkedBench({
  clients: N,
  rooms: ROOMS,
  anonymous: values.anonymous,
  workers: WORKERS,
  ...(values.lease ? { leaseKey: 'parked-memory-lease-key-0123456789' } : {}),
  proxyArgv: [
    ...values['node-flag'],
    ...(probeDir === undefined ? [] : ['--import', './bench/tools/memory-probe.mjs']),
    // Workers inherit the flags (cluster.fork uses process.execArgv); the per-process probe after the GC handler.
    ...(values.gc ? [...GC_NODE_ARGS, '--import', './bench/tools/process-memory-probe.mjs'] : []),
    ...entry,
  ],
  env: {
    ...(probeDir === undefined ? {} : { MEMORY_PROBE_DIR: probeDir }),
    ...(values.gc ? { PROCESS_MEMORY_DIR: perProcessDir } : {}),
    ...envFlags(values.env),
  },
});
const { proxy, pid, clients } = bench;
const proxyPids = bench.pids;

/** VmRSS, VmHWM and RssAnon of one process, MiB (null once it exited). */
function oneProcMemory(one: number): { rss: number; peak: number; anon: number } | null {
  let status: string;
  try {
    status = readFileSync(`/proc/${one}/status`, 'utf8');
  } catch {
    return null; // exited meanwhile
  }
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) / 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM'), anon: kb('RssAnon') };
}

/** VmRSS, VmHWM and RssAnon summed over the proxy's processes, MiB. */
function procMemory(): { rss: number; peak: number; anon: number } {
  const sum = { rss: 0, peak: 0, anon: 0 };
  for (const one of proxyPids()) {
    const m = oneProcMemory(one);
    if (m === null) continue;
    sum.rss += m.rss;
    sum.peak += m.peak;
    sum.anon += m.anon;
  }
  return sum;
}

/** What one proxy process reported after a forced GC (bench/tools/process-memory-probe.mjs), with its RSS. */
interface ProcessReading {
  pid: number;
  role: string;
  rss: number;
  anon: number;
  memoryUsage: { heapUsed: number; heapTotal: number; external: number; arrayBuffers: number };
  spaces: Record<string, { size: number; used: number; physical: number }>;
}
/** Each process's report of the GC just forced (its seq moved past `before`), waited for at most 5 s. */
async function perProcess(before: Map<number, number>): Promise<ProcessReading[]> {
  const read = (one: number): (Omit<ProcessReading, 'pid' | 'rss' | 'anon'> & { seq: number }) | null => {
    try {
      return JSON.parse(readFileSync(join(perProcessDir, `${one}.json`), 'utf8'));
    } catch {
      return null;
    }
  };
  const readings: ProcessReading[] = [];
  for (const one of proxyPids()) {
    let r = read(one);
    const deadline = Date.now() + 5000;
    while ((r === null || r.seq <= (before.get(one) ?? 0)) && Date.now() < deadline) {
      await sleep(20);
      r = read(one);
    }
    const m = oneProcMemory(one);
    if (r === null || m === null) continue;
    readings.push({ pid: one, role: r.role, rss: m.rss, anon: m.anon, memoryUsage: r.memoryUsage, spaces: r.spaces });
  }
  return readings;
}
function perProcessSeqs(): Map<number, number> {
  const seqs = new Map<number, number>();
  for (const one of proxyPids()) {
    try {
      seqs.set(one, (JSON.parse(readFileSync(join(perProcessDir, `${one}.json`), 'utf8')) as { seq: number }).seq);
    } catch {
      seqs.set(one, 0);
    }
  }
  return seqs;
}

/** V8's view, from the proxy's own /metrics (what an operator scrapes). */
async function heapMemory(): Promise<{ heapUsed: number; heapTotal: number; external: number; newSpace: number }> {
  const text = await (await bench.controlGet('/metrics')).text();
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
  /** With `--gc`: each process's own reading after its GC, RSS once settled. */
  processes?: ProcessReading[];
}
/** With `--gc`: every proxy process collected, then RSS summed once settled; each one's own reading. */
async function gcEveryProcess(): Promise<ProcessReading[] | undefined> {
  if (!values.gc) return undefined;
  const seqs = perProcessSeqs();
  const { late } = await forceGc(proxyPids());
  if (late.length > 0) process.stderr.write(`no GC receipt from ${late.join(', ')}\n`);
  await settled();
  return perProcess(seqs);
}
const rows: Row[] = [];
async function sample(step: string, ms?: number): Promise<void> {
  await settled();
  const processes = await gcEveryProcess();
  const s = await bench.stats();
  const row: Row = { step, parked: s.parked, parkedBytes: (s.parkedBytes ?? 0) / MiB, ...procMemory(), ...(await heapMemory()) };
  if (ms !== undefined) row.ms = ms;
  if (processes !== undefined) row.processes = processes;
  if (probeDir !== undefined) {
    await probe('gc');
    const usage = JSON.parse(readFileSync(`${probeDir}/gc-${probes - 1}.json`, 'utf8')) as { heapUsed: number; heapTotal: number };
    await settled(); // V8 unmaps freed pages on a background thread
    row.afterGc = { heapUsed: usage.heapUsed / MiB, heapTotal: usage.heapTotal / MiB, rss: procMemory().rss };
  }
  rows.push(row);
  process.stderr.write(`${step}: rss ${row.rss.toFixed(1)} MiB; failed polls so far ${clients.failures} (${[...clients.failureReasons].map(([why, n]) => `${n} ${why}`).join(', ') || 'none'})\n`);
}

/**
 * Each process after its GC, MiB: RSS, heap used/total, external, and V8's spaces as reserved (size) / resident (physical) / used; then
 * each process's growth per parked request between the first two rows, bytes.
 */
function printPerProcess(all: Row[]): void {
  const f = (n: number) => (n / MiB).toFixed(1);
  const space = (r: ProcessReading, name: string) => {
    const sp = r.spaces[name];
    return sp === undefined ? '' : `${f(sp.size)} / ${f(sp.physical)} / ${f(sp.used)}`;
  };
  process.stdout.write(`\nPer process, after each one's forced GC (MiB; spaces: reserved / resident / used):\n\n`);
  process.stdout.write('| step | process | RSS | anon | heap used | heap total | external | new space | old space | code space | large objects |\n');
  process.stdout.write('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n');
  for (const row of all) {
    for (const r of row.processes ?? []) {
      const m = r.memoryUsage;
      process.stdout.write(
        `| ${row.step} | ${r.role} ${r.pid} | ${r.rss.toFixed(1)} | ${r.anon.toFixed(1)} | ${f(m.heapUsed)} | ${f(m.heapTotal)} | ${f(m.external)} | ` +
          `${space(r, 'new_space')} | ${space(r, 'old_space')} | ${space(r, 'code_space')} | ${space(r, 'large_object_space')} |\n`,
      );
    }
  }
  const [a, b] = [all[0]?.processes ?? [], all[1]?.processes ?? []];
  const per = (x: number) => ((x * MiB) / N).toFixed(0);
  const perB = (x: number) => (x / N).toFixed(0);
  for (const after of b) {
    const before = a.find((r) => r.pid === after.pid);
    if (before === undefined) continue;
    const newSpace = (r: ProcessReading) => r.spaces.new_space?.size ?? 0;
    process.stdout.write(
      `${after.role} ${after.pid} per parked request (${all[1]!.step} − ${all[0]!.step}): RSS ${per(after.rss - before.rss)} B, ` +
        `heap used ${perB(after.memoryUsage.heapUsed - before.memoryUsage.heapUsed)} B, heap total ${perB(after.memoryUsage.heapTotal - before.memoryUsage.heapTotal)} B ` +
        `(new space ${perB(newSpace(after) - newSpace(before))} B), external ${perB(after.memoryUsage.external - before.memoryUsage.external)} B; ` +
        `RSS at ${all[0]!.step} ${before.rss.toFixed(1)} MiB\n`,
    );
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
  await bench.ready();
  // Summed over the processes: with workers the client connections are the workers' sockets.
  const fds = () => proxyPids().reduce((n, one) => n + (existsSync(`/proc/${one}/fd`) ? readdirSync(`/proc/${one}/fd`).length : 0), 0);
  await heapMemory(); // starts the default metrics at once, so every sample has them
  await sample('started');
  const baseFds = fds();

  for (let cycle = 1; cycle <= CYCLES; cycle++) {
    clients.repoll = true;
    clients.retry = true;
    clients.received = 0;
    const t0 = performance.now();
    await clients.parkAll();
    await sample(`cycle ${cycle}: ${N} parked`, performance.now() - t0);

    for (let round = 1; round <= ROUNDS; round++) {
      const profile = cycle === 1 && round === 1;
      if (profile) await probe('sample-start');
      const start = performance.now();
      await bench.publish();
      await until(() => `round ${round} delivered and re-parked (received ${clients.received}, failures ${clients.failures})`, async () => clients.received >= N * round && (await bench.parked()) >= N, 120_000);
      const ms = performance.now() - start;
      if (profile) await probe('sample-stop');
      await sample(`cycle ${cycle}: round ${round} (${N} delivered, re-parked)`, ms);
    }

    // Release: one last publish answers everyone, and nobody polls again; then the connections close.
    clients.repoll = false;
    clients.retry = false;
    const last = cycle === CYCLES;
    if (last) await probe('sample-start');
    const start = performance.now();
    await bench.publish();
    await until('the last round delivered', async () => clients.received >= N * (ROUNDS + 1) && (await bench.parked()) === 0, 120_000);
    const ms = performance.now() - start;
    if (last) await probe('sample-stop');
    clients.disconnect();
    await until('the client connections to close', () => fds() <= baseFds + 300, 60_000);
    await sample(`cycle ${cycle}: released (last ${N} delivered, connections closed)`, ms);
    if (IDLE_MS > 0) {
      await sleep(IDLE_MS);
      await sample(`cycle ${cycle}: idle ${IDLE_MS / 1000} s more`);
    }
  }
  if (clients.failures > 0) process.stderr.write(`${clients.failures} polls failed: ${[...clients.failureReasons].map(([why, n]) => `${n} ${why}`).join(', ')}\n`);

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
  if (values.gc) printPerProcess(rows);
} finally {
  await bench.close();
  rmSync(perProcessDir, { recursive: true, force: true });
}
