/**
 * `proxy/main.ts` as a child process with several workers (docs/scaleout.md "Workers"), on ephemeral ports:
 * its ports from the primary's "listening" line, `/stats` (summed, with `workers` by pid) and control calls.
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
export async function startWorkers(t: TestContext, appUrl: string, env: Record<string, string> = {}): Promise<Cluster> {
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
  const lines: string[] = [];
  const listening = new Promise<{ clientPort: number; controlPort: number }>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      lines.push(line);
      try {
        const entry = JSON.parse(line) as { msg?: string; clientPort: number; controlPort: number };
        if (entry.msg === 'listening') resolve(entry);
      } catch {
        /* not JSON */
      }
    });
    void exited.then((code) => reject(new Error(`proxy exited (${code}) before listening: ${stderr}${lines.join('\n')}`)));
  });
  let timer: NodeJS.Timeout | undefined;
  // Three processes compiling TypeScript (tsx) on a 2-core machine shared with other test runs took 13-20 s to listen.
  const ports = await Promise.race([
    listening,
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`not listening after 45 s: ${stderr}${lines.join('\n')}`)), 45_000))),
  ]).finally(() => clearTimeout(timer));
  const control = `http://127.0.0.1:${ports.controlPort}`;
  return {
    child,
    client: `http://127.0.0.1:${ports.clientPort}`,
    control,
    exited,
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

