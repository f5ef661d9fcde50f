/**
 * The soak's server processes: the chat app (server/main.ts) and the hold
 * proxy (proxy/main.ts), each a child `node --import tsx` process so it can be
 * stopped with SIGTERM and started again on the same ports (and, for the app,
 * the same SQLite file). Their JSON log lines go to a file per start; the
 * "listening" line says a process is ready.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export interface ServerProcess {
  readonly name: 'app' | 'proxy';
  readonly child: ChildProcess;
  readonly pid: number;
  readonly logPath: string;
  /** Sends SIGTERM and waits for the exit (SIGKILL after `timeoutMs`); resolves with the exit code. */
  stop(timeoutMs?: number): Promise<number | null>;
}

export interface StartSpec {
  name: 'app' | 'proxy';
  /** Repository root: the cwd, where `tsx` and the sources are. */
  root: string;
  script: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  /** The log line's `msg` that means ready. */
  readyMessage: string;
  logPath: string;
  timeoutMs?: number;
}

/** A free TCP port on 127.0.0.1 (bound, read, released): the restarts need fixed ports. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Starts `spec.script` and resolves once it logged `spec.readyMessage`; rejects on exit or timeout. */
export async function startServer(spec: StartSpec): Promise<ServerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(spec.root, spec.script), ...spec.args], {
    cwd: spec.root,
    env: spec.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log = createWriteStream(spec.logPath, { flags: 'a' });
  child.stderr!.pipe(log, { end: false });
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${spec.name} not ready within ${spec.timeoutMs ?? 20_000} ms (log: ${spec.logPath})`)), spec.timeoutMs ?? 20_000);
    void exited.then(([code]) => {
      clearTimeout(timer);
      reject(new Error(`${spec.name} exited with code ${code} before it was ready (log: ${spec.logPath})`));
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      log.write(`${line}\n`);
      if (!line.startsWith('{')) return;
      try {
        if ((JSON.parse(line) as { msg?: string }).msg === spec.readyMessage) {
          clearTimeout(timer);
          resolve();
        }
      } catch {
        /* not a JSON line */
      }
    });
  });
  try {
    await ready;
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  void exited.then(() => log.end());
  return {
    name: spec.name,
    child,
    pid: child.pid!,
    logPath: spec.logPath,
    async stop(timeoutMs = 15_000) {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const [code] = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** Resident set size of a process, bytes, from /proc (Linux); null elsewhere or once it is gone. */
export function rssBytes(pid: number): number | null {
  try {
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}
