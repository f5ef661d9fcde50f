/**
 * `proxy/main.ts` as a child process with several workers (docs/scaleout.md "Workers"), on ephemeral ports:
 * its ports from the primary's "listening" line, `/stats` (summed, with `workers` by pid) and control calls.
 *
 * Deadlines follow progress, not the clock alone: each process of a cluster compiles the TypeScript sources (tsx)
 * before it logs a line, which took 13-20 s for three processes on the 2-core machine shared with other test runs
 * and longer when it is loaded. A start fails only when no process made progress (a worker listening, the primary
 * listening) for STARTUP_STEP_MS, naming what it still waited for; a test's timeout is the starts it does plus
 * its own work (`clusterTestTimeout`), so a hang fails the test that hangs, not its neighbours.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { request, TEST_CONTROL_SECRET, TEST_SECRET, type HttpResult } from './proxy-harness.js';

export const PROXY_MAIN = fileURLToPath(new URL('../../proxy/main.ts', import.meta.url));
const AUTH = { authorization: `Bearer ${TEST_CONTROL_SECRET}` };

export interface WorkerStats {
  pid: number;
  parked: number;
  holds: number;
  deliveries: number;
  leases: number;
  repollAnswers: number;
  repollParks: number;
}
export interface Stats {
  parked: number;
  holds: number;
  deliveries: number;
  publishes: number;
  pushes: number;
  queuedItems: number;
  leases: number;
  workers: WorkerStats[];
}

export interface Cluster {
  child: ChildProcess;
  client: string;
  control: string;
  stats(): Promise<Stats>;
  call(path: string, body: unknown): Promise<HttpResult>;
  exited: Promise<number | null>;
  /** Every line the processes wrote on stdout so far (their JSON log lines). */
  output(): readonly string[];
}

/** Longest a cluster's start (or a replacement worker's) may go without progress, ms: one process's start under load. */
export const STARTUP_STEP_MS = 30_000;

/** The longest a start of the primary and `workers` workers can take: one step each (they start in parallel). */
export function startupBudgetMs(workers = 2): number {
  return (workers + 1) * STARTUP_STEP_MS;
}

/**
 * A test's timeout: `starts` cluster starts (and replacement workers, counted as starts of one) within their
 * budget, plus `workMs` for what the test itself does.
 */
export function clusterTestTimeout(workMs: number, starts = 1, workers = 2): number {
  return starts * startupBudgetMs(workers) + workMs;
}

/** Polls `check` every 20 ms until it is true; fails after `timeoutMs`. */
export async function until(check: () => Promise<boolean> | boolean, message: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  for (let i = 0; i < 10_000; i++) {
    // A check that fails (a /stats call on a connection handed to a dying worker) is asked again.
    if (await Promise.resolve().then(check).then((ok) => ok, (err: unknown) => ((last = err), false))) return;
    if (Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`not within ${timeoutMs} ms: ${message}${last === null ? '' : ` (last error: ${String(last)})`}`);
}

/** Spawns the proxy with PROXY_WORKERS=2 (unless `env` says otherwise); SIGKILLed after the test if still running. */
export async function startWorkers(
  t: TestContext,
  appUrl: string,
  env: Record<string, string> = {},
  { startupStepMs = STARTUP_STEP_MS }: { startupStepMs?: number } = {},
): Promise<Cluster> {
  const child = spawn(process.execPath, ['--import', 'tsx', PROXY_MAIN], {
    env: {
      PATH: process.env.PATH,
      GRIP_SECRET: TEST_SECRET,
      CONTROL_SECRET: TEST_CONTROL_SECRET,
      APP_URL: appUrl,
      PROXY_PORT: '0',
      CONTROL_PORT: '0',
      PROXY_WORKERS: '2',
      LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const workers = Number(env.PROXY_WORKERS ?? '2');
  const lines: string[] = [];
  const workersListening = new Set<number>();
  let progressAt = Date.now();
  const ports = await new Promise<{ clientPort: number; controlPort: number }>((resolve, reject) => {
    const waitingFor = () =>
      `${workersListening.size} of ${workers} workers listening, then the primary's "listening" line; ` +
      `stderr: ${stderr.slice(-2000)}\nstdout: ${lines.slice(-20).join('\n')}`;
    // Checked every second: fails once nothing moved for a whole step.
    const watch = setInterval(() => {
      if (Date.now() - progressAt < startupStepMs) return;
      clearInterval(watch);
      reject(new Error(`the cluster made no progress for ${startupStepMs} ms, waiting for ${waitingFor()}`));
    }, Math.min(1000, startupStepMs / 4));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      lines.push(line);
      let entry: { msg?: string; pid?: number; clientPort: number; controlPort: number };
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch {
        return; // not JSON
      }
      if (entry.msg === 'worker listening' && entry.pid !== undefined && !workersListening.has(entry.pid)) {
        workersListening.add(entry.pid);
        progressAt = Date.now();
      } else if (entry.msg === 'listening') {
        clearInterval(watch);
        resolve(entry);
      }
    });
    void exited.then((code) => {
      clearInterval(watch);
      reject(new Error(`proxy exited (${code}) before listening, with ${waitingFor()}`));
    });
  });
  const control = `http://127.0.0.1:${ports.controlPort}`;
  return {
    child,
    client: `http://127.0.0.1:${ports.clientPort}`,
    control,
    exited,
    output: () => lines,
    // Bounded: round-robin never answers a connection the primary handed to a worker as it died (performance.md).
    stats: async () => (await request(`${control}/stats`, { headers: AUTH, signal: AbortSignal.timeout(3000) })).json() as Stats,
    call: (path, body) =>
      request(control + path, {
        method: 'POST',
        headers: { ...AUTH, 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(5000),
      }),
  };
}

