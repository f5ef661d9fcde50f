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
 * `--push` delivers each round with `/push/` to every client's connection ID (1,000 a call) instead of one publish:
 * with workers, each delivery is then a take from the primary and its `delivered` report (docs/scaleout.md).
 *
 * `--workers N` runs the proxy as a primary and N workers (PROXY_WORKERS): CPU is then every proxy process's, and
 * a profile is written per process (bench/tools/window-profile-preload.mjs). The app, the clients and the
 * proxy's start are bench/tools/parked-clients.ts (shared with parked-memory.ts).
 *
 *   npm run build && npx tsx bench/tools/delivery-floor.ts [--clients 5000] [--rounds 5] [--warmup 2] [--idle-s 10] [--settle-s 1]
 *        [--lease] [--push] [--workers N] [--cpu-prof DIR | --heap-prof DIR] [--proxy dist/proxy/main.js] [--env NAME=VALUE]... [--node-flag=FLAG]... [--node PATH]
 *
 * Loopback only; every wait has a deadline.
 */
import { parseArgs } from 'node:util';
import { envFlags, sleep, startParkedBench, until } from './parked-clients.js';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '5000' },
    rounds: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '2' },
    'idle-s': { type: 'string', default: '10' },
    /** Seconds between the last park and the idle window: V8 keeps collecting the parking's garbage for tens of seconds. */
    'settle-s': { type: 'string', default: '1' },
    lease: { type: 'boolean', default: false },
    push: { type: 'boolean', default: false },
    workers: { type: 'string', default: '1' },
    'cpu-prof': { type: 'string' },
    'heap-prof': { type: 'string' },
    // Another build's proxy (e.g. a worktree of the commit before a change) for same-run before/after pairs.
    proxy: { type: 'string', default: 'dist/proxy/main.js' },
    env: { type: 'string', multiple: true, default: [] },
    // Node/V8 flags for the proxy (and its workers, which inherit execArgv), e.g. --node-flag=--trace-deopt.
    'node-flag': { type: 'string', multiple: true, default: [] },
    // Another Node binary for the proxy (its workers run the same), for a runtime pair in one run.
    node: { type: 'string' },
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
const SETTLE_MS = Number(values['settle-s']) * 1000;
if (!Number.isFinite(SETTLE_MS) || SETTLE_MS < 0) throw new Error('--settle-s must be a number of seconds >= 0');
const WORKERS = positive('workers', values.workers);
const LEASED = values.lease;
const PUSH = values.push;
const PROFILE_DIR = values['cpu-prof'] ?? values['heap-prof'];

// With workers the window profiler is preloaded (`--import`): they inherit it through process.execArgv, and each
// process profiles itself into PROFILE_DIR (its own file, by pid) on the SIGUSR2s sent to every one.
const proxyArgv = [
  ...values['node-flag'],
  ...(PROFILE_DIR === undefined
    ? [values.proxy]
    : WORKERS > 1
      ? ['--import', './bench/tools/window-profile-preload.mjs', values.proxy]
      : ['bench/tools/window-profiler.mjs', ...(values['heap-prof'] === undefined ? [] : ['--heap']), PROFILE_DIR, values.proxy]),
];
const bench = await startParkedBench({
  clients: N,
  rooms: 1,
  workers: WORKERS,
  ...(LEASED ? { leaseKey: 'floor-lease-key-0123456789abcdef' } : {}),
  proxyArgv,
  ...(values.node === undefined ? {} : { nodePath: values.node }),
  env: {
    ...(PROFILE_DIR === undefined || WORKERS === 1 ? {} : { WINDOW_PROFILE_DIR: PROFILE_DIR, WINDOW_PROFILE_HEAP: values['heap-prof'] === undefined ? '0' : '1' }),
    ...envFlags(values.env),
  },
  stderr: PROFILE_DIR === undefined ? 'inherit' : 'pipe',
});
const { proxy, clients } = bench;
let profilesWritten = 0;
proxy.stderr?.on('data', (chunk: Buffer) => {
  profilesWritten += chunk.toString().split('window profile written').length - 1;
  process.stderr.write(chunk);
});
/** Starts or ends the window profile in every proxy process. */
const signalProfilers = (): void => {
  for (const one of bench.pids()) process.kill(one, 'SIGUSR2');
};

try {
  await bench.ready();
  await clients.parkAll();
  await sleep(SETTLE_MS); // let the parking's garbage be collected before the idle window
  const idle0 = bench.cpuMs();
  const t0 = performance.now();
  await sleep(IDLE_MS);
  const idleMsPerS = (bench.cpuMs() - idle0) / ((performance.now() - t0) / 1000);

  const perRound: Array<{ cpuMsPer1000: number; lastMs: number; wakeupsPer1000: number; preemptionsPer1000: number }> = [];
  const profiling = PROFILE_DIR !== undefined;
  // With leases the clients re-poll at once (the window includes it); without, they wait for the round's end.
  clients.repoll = LEASED;
  for (let round = 1; round <= WARMUP + ROUNDS; round++) {
    if (profiling && round === WARMUP + 1) signalProfilers(); // start the window profile
    clients.received = 0;
    const cpu0 = bench.cpuMs();
    const switches0 = bench.switches();
    const start = performance.now();
    await (PUSH ? bench.push() : bench.publish());
    await until(() => `round ${round} delivered (${clients.received}/${N})`, () => clients.received >= N, 60_000, 10);
    if (LEASED) await until(() => `re-parked in round ${round}`, async () => (await bench.parked()) >= N, 60_000, 10);
    const cpuMs = bench.cpuMs() - cpu0;
    const switches1 = bench.switches();
    if (round > WARMUP) {
      perRound.push({
        cpuMsPer1000: (cpuMs / N) * 1000,
        lastMs: clients.lastReceiptAt - start,
        wakeupsPer1000: ((switches1.voluntary - switches0.voluntary) / N) * 1000,
        preemptionsPer1000: ((switches1.involuntary - switches0.involuntary) / N) * 1000,
      });
    }
    if (!LEASED) {
      for (let i = 0; i < N; i++) clients.poll(i);
      await until(() => `re-parked after round ${round}`, async () => (await bench.parked()) >= N, 60_000, 10);
    }
  }
  if (profiling) {
    const processes = bench.pids().length;
    signalProfilers();
    await until(() => `${processes} window profiles written (${profilesWritten})`, () => profilesWritten >= processes, 10_000);
  }
  const stats = await bench.stats();
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  process.stdout.write(
    `${N} parked: idle ${idleMsPerS.toFixed(2)} ms CPU/s over ${IDLE_MS / 1000} s; ` +
      `delivery CPU ms/1,000 per round ${perRound.map((r) => r.cpuMsPer1000.toFixed(1)).join(', ')} (median ${median(perRound.map((r) => r.cpuMsPer1000)).toFixed(1)}); ` +
      `last delivery ms ${perRound.map((r) => r.lastMs.toFixed(0)).join(', ')} (median ${median(perRound.map((r) => r.lastMs)).toFixed(0)}); ` +
      `main-thread context switches per 1,000 deliveries, median: voluntary (wake-ups) ${median(perRound.map((r) => r.wakeupsPer1000)).toFixed(0)}, ` +
      `involuntary (preempted) ${median(perRound.map((r) => r.preemptionsPer1000)).toFixed(0)}; failures ${clients.failures}${clients.failures === 0 ? '' : ` (${[...clients.failureReasons].map(([why, n]) => `${n} ${why}`).join(', ')})`}` +
      (LEASED ? `; leased re-polls parked ${stats.repollParks}, to the app ${stats.repollToApp}` : '') +
      '\n',
  );
} catch (err) {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
} finally {
  await bench.close();
  // Failed polls retry on timers: leave now rather than keep polling a proxy that is gone.
  process.exit();
}
