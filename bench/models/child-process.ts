/**
 * Child processes of the lab's targets: spawn with the output in a log file,
 * wait for readiness with a deadline, stop with SIGTERM then SIGKILL.
 *
 * Output goes straight to a file descriptor, never through a pipe to the
 * harness: a harness busy generating load would let a pipe fill, and a server
 * whose logger writes synchronously (the proxy's) would then block on it and
 * look slow. Readiness lines are read back from the file.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, closeSync, constants, existsSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { delimiter, dirname, join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { groupMembers, isAlive, processTree } from './process-tree.js';

export type ChildErrorCode =
  /** The process could not be started (missing binary, bad cwd). */
  | 'LAB_ERR_SPAWN'
  /** It exited before it was ready; `portClash` says whether its log blames a taken port. */
  | 'LAB_ERR_EXITED_EARLY'
  /** It did not become ready before the deadline. */
  | 'LAB_ERR_NOT_READY';

export class ChildProcessError extends Error {
  override name = 'ChildProcessError';
  constructor(
    readonly code: ChildErrorCode,
    message: string,
    /** The log says a port was taken: another process grabbed a port between `freePort()` and the bind. */
    readonly portClash = false,
  ) {
    super(message);
  }
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ChildSpec {
  /** Short name for messages, e.g. `app`. */
  name: string;
  /** Executable path (or a name looked up on PATH). */
  command: string;
  args: readonly string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** stdout and stderr both go here (appended). */
  logPath: string;
  /**
   * Start it in its own process group (setsid), so `stop()` can SIGKILL the
   * whole group: descendants it spawns (nginx workers, Pushpin's services) are
   * caught even if they outlive it. The group also no longer gets the terminal's Ctrl-C,
   * so the harness must stop it. Default false.
   */
  processGroup?: boolean;
}

export interface ManagedChild {
  readonly name: string;
  readonly pid: number;
  readonly logPath: string;
  /** Size of the log file when this process started: its own output begins there (a retry appends to the same file). */
  readonly logStart: number;
  /** Resolves when the process has exited; never rejects. */
  readonly exited: Promise<ExitStatus>;
  /** True until the exit was observed. */
  running(): boolean;
  /**
   * SIGTERM to the process, SIGKILL (to the group with `processGroup`) after `graceMs`, and
   * resolves once the process and every descendant seen at the SIGTERM are
   * gone. Idempotent.
   */
  stop(graceMs?: number): Promise<void>;
}

/** Default wait between SIGTERM and SIGKILL, ms. */
export const STOP_GRACE_MS = 10_000;

const PORT_CLASH = /EADDRINUSE|address already in use/i;

/** True if `logText` blames a port that was already taken (Node, nginx and Rust/condure wordings). */
export function mentionsPortClash(logText: string): boolean {
  return PORT_CLASH.test(logText);
}

/** The last `bytes` of a log file, for error messages. */
export function logTail(path: string, bytes = 2000): string {
  try {
    const text = readFileSync(path, 'utf8');
    return text.length > bytes ? `...${text.slice(-bytes)}` : text;
  } catch {
    return '';
  }
}

function describeExit(status: ExitStatus): string {
  return status.signal !== null ? `signal ${status.signal}` : `code ${status.code}`;
}

/** Starts `spec`; resolves once the OS started it (its pid is known). */
export async function spawnChild(spec: ChildSpec): Promise<ManagedChild> {
  const fd = openSync(spec.logPath, 'a');
  const logStart = fstatSync(fd).size;
  let child: ChildProcess;
  try {
    child = spawn(spec.command, [...spec.args], {
      cwd: spec.cwd,
      env: spec.env,
      stdio: ['ignore', fd, fd],
      detached: spec.processGroup === true,
    });
  } finally {
    // The child holds its own copy of the descriptor.
    closeSync(fd);
  }
  let status: ExitStatus | null = null;
  const exited = new Promise<ExitStatus>((resolve) => {
    child.once('exit', (code, signal) => {
      status = { code, signal };
      resolve(status);
    });
  });
  try {
    await once(child, 'spawn');
  } catch (err) {
    throw new ChildProcessError('LAB_ERR_SPAWN', `${spec.name}: cannot start ${spec.command}: ${(err as Error).message}`);
  }
  const pid = child.pid!;
  const group = spec.processGroup === true;
  const signal = (sig: NodeJS.Signals, target: number): void => {
    try {
      process.kill(target, sig);
    } catch {
      /* already gone */
    }
  };
  let stopping: Promise<void> | null = null;
  const stop = (graceMs = STOP_GRACE_MS): Promise<void> => {
    stopping ??= (async () => {
      // Taken before the signal: once the root exits, its orphans are re-parented and no longer look like its tree.
      const tree = status === null ? processTree([pid]) : [];
      // A group leader that died on its own may have left its group running: stop that too.
      const survivors = (): number[] => [...new Set([...tree.filter(isAlive), ...(group ? groupMembers(pid) : [])])];
      // SIGTERM to the root only: it stops its own children in order (nginx's master, Pushpin's runner), and
      // Pushpin's services treat a second SIGTERM as "crash out now".
      if (status === null) signal('SIGTERM', pid);
      else if (survivors().length > 0) signal('SIGTERM', -pid);
      const deadline = Date.now() + graceMs;
      const timer = setTimeout(() => signal('SIGKILL', group ? -pid : pid), graceMs);
      await exited;
      clearTimeout(timer);
      // Descendants that outlive the root get the rest of the grace period, then SIGKILL (the group, then each pid).
      for (;;) {
        const left = survivors();
        if (left.length === 0) return;
        if (Date.now() >= deadline + 5000) return; // unkillable (uninterruptible sleep): give up rather than hang
        if (Date.now() >= deadline) {
          if (group) signal('SIGKILL', -pid);
          for (const p of left) {
            try {
              process.kill(p, 'SIGKILL');
            } catch {
              /* gone meanwhile */
            }
          }
        }
        await sleep(25);
      }
    })();
    return stopping;
  };
  return {
    name: spec.name,
    pid,
    logPath: spec.logPath,
    logStart,
    exited,
    running: () => status === null,
    stop,
  };
}

/** Stops every child at once (each SIGTERM, then SIGKILL after `graceMs`). */
export async function stopAll(children: readonly ManagedChild[], graceMs = STOP_GRACE_MS): Promise<void> {
  await Promise.all(children.map((c) => c.stop(graceMs)));
}

/** Rejects with `LAB_ERR_EXITED_EARLY` as soon as `child` exits; `dispose` stops watching. */
function exitWatch(child: ManagedChild): { failed: Promise<never>; dispose: () => void } {
  let disposed = false;
  const failed = child.exited.then((status) => {
    if (disposed) return new Promise<never>(() => {});
    const tail = logTail(child.logPath);
    throw new ChildProcessError(
      'LAB_ERR_EXITED_EARLY',
      `${child.name} exited (${describeExit(status)}) before it was ready; log ${child.logPath}:\n${tail}`,
      mentionsPortClash(tail),
    );
  });
  failed.catch(() => {}); // observed by the race below; never an unhandled rejection
  return { failed, dispose: () => void (disposed = true) };
}

/**
 * Resolves with the first non-undefined `match(line)` over the lines `child`
 * writes to its log (from where its output begins). Rejects if the child exits
 * first or after `timeoutMs`.
 */
export async function waitForLogLine<T>(child: ManagedChild, match: (line: string) => T | undefined, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  const watch = exitWatch(child);
  const handle = await open(child.logPath, 'r');
  try {
    let offset = child.logStart;
    let partial = '';
    // A multi-byte character may straddle two reads.
    const decoder = new StringDecoder('utf8');
    const buffer = Buffer.alloc(64 * 1024);
    const scan = async (): Promise<T | undefined> => {
      for (;;) {
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, offset);
        if (bytesRead === 0) return undefined;
        offset += bytesRead;
        const lines = (partial + decoder.write(buffer.subarray(0, bytesRead))).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) {
          const found = match(line);
          if (found !== undefined) return found;
        }
      }
    };
    for (;;) {
      const found = await scan();
      if (found !== undefined) return found;
      if (Date.now() >= deadline) {
        throw new ChildProcessError('LAB_ERR_NOT_READY', `${child.name} not ready within ${timeoutMs} ms; log ${child.logPath}:\n${logTail(child.logPath)}`);
      }
      // The exit may come with the ready line still unread: scan once more before failing.
      const exitedNow = await Promise.race([watch.failed.then(() => false, () => true), sleep(25).then(() => false)]);
      if (exitedNow) {
        const last = await scan();
        if (last !== undefined) return last;
        await watch.failed;
      }
    }
  } finally {
    watch.dispose();
    await handle.close();
  }
}

/** A `waitForLogLine` matcher: the first JSON log line whose `msg` is `msg`, parsed. */
export function jsonLine(msg: string): (line: string) => Record<string, unknown> | undefined {
  return (line) => {
    if (!line.startsWith('{')) return undefined;
    try {
      const parsed = JSON.parse(line) as Record<string, unknown>;
      return parsed.msg === msg ? parsed : undefined;
    } catch {
      return undefined;
    }
  };
}

/**
 * Calls `check` every `intervalMs` until it resolves true; rejects after
 * `timeoutMs` or as soon as one of `children` exits. A `check` that throws
 * counts as not yet.
 */
export async function waitUntil(
  what: string,
  check: () => Promise<boolean>,
  options: { timeoutMs: number; intervalMs?: number; children?: readonly ManagedChild[] },
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  const watches = (options.children ?? []).map(exitWatch);
  try {
    for (;;) {
      const ok = await Promise.race([check().catch(() => false), ...watches.map((w) => w.failed)]);
      if (ok) return;
      if (Date.now() >= deadline) throw new ChildProcessError('LAB_ERR_NOT_READY', `${what} within ${options.timeoutMs} ms`);
      await Promise.race([sleep(options.intervalMs ?? 50), ...watches.map((w) => w.failed)]);
    }
  } finally {
    for (const w of watches) w.dispose();
  }
}

/** True if a TCP connection to `host:port` opens within `timeoutMs`. */
export function portAccepts(port: number, host = '127.0.0.1', timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * A TCP port free on `host` right now (bound to 0, read, released), for servers
 * that need a fixed port in their configuration. Another process may take it
 * before the server binds: `retryOnPortClash` covers that race.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const server = createServer();
  server.listen(0, host);
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Runs `start` again (up to `attempts` times in all) while it fails because a chosen port was taken meanwhile. */
export async function retryOnPortClash<T>(start: () => Promise<T>, attempts = 3): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await start();
    } catch (err) {
      if (i >= attempts || !(err instanceof ChildProcessError && err.portClash)) throw err;
    }
  }
}

/**
 * A clean environment for a server: only what a process needs to run, so
 * nothing from the harness's shell (REDIS_URL, BASE_DOMAIN, NODE_OPTIONS, the
 * test runner's variables) changes how a target behaves.
 */
export function serverEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const key of ['PATH', 'HOME', 'LANG', 'TZ', 'TMPDIR']) {
    const value = process.env[key];
    if (value !== undefined) env[key] = value;
  }
  return { ...env, ...extra };
}

/** The absolute path of executable `name` (a path, or a name on PATH), or null. */
export function findExecutable(name: string): string | null {
  const candidates = name.includes('/') ? [name] : (process.env.PATH ?? '/usr/bin:/bin').split(delimiter).filter(Boolean).map((dir) => join(dir, name));
  for (const path of candidates) {
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      /* next */
    }
  }
  return null;
}

/** GET `url` with a deadline: status and body text. Throws on network errors and timeouts. */
export async function httpGet(url: string, timeoutMs: number, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(timeoutMs) });
  return { status: res.status, text: await res.text() };
}

/**
 * The repository root, found from this module's own path (the first directory
 * upwards holding package.json): `bench/models/` under tsx, `dist/bench/models/`
 * when compiled. For `unavailable()` checks, which get no options.
 */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) return process.cwd();
    dir = up;
  }
  return dir;
}

/** Why the compiled `files` (paths under the repository root) cannot run, or null when all exist. */
export function missingBuild(files: readonly string[]): string | null {
  const root = repoRoot();
  const missing = files.filter((f) => !existsSync(join(root, f)));
  return missing.length === 0 ? null : `${missing.join(', ')} not built (run npm run build)`;
}
