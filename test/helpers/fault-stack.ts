/**
 * Helpers for the fault tests (test/faults/): a stack whose app can be stopped
 * and restarted on the same port and SQLite file under a running proxy, the
 * proxy as a child process (so it can be SIGKILLed) restartable on the ports it
 * reported, counting timers, socket counts, a retrying poll loop and poster,
 * and the committed truth read back from the database.
 *
 * Every wait here is on an event or a poll with a deadline; every loop is
 * bounded; every server, child and temp dir is torn down through `t.after`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { Server as NetServer } from 'node:net';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import type { ControlResult, ProxyStats } from '../../protocol/control-api.js';
import type { ProxyOptions, ProxyTimers } from '../../proxy/options.js';
import { createHoldProxy, type HoldProxy } from '../../proxy/proxy.js';
import { createChatServer, type ChatServer } from '../../server/chat-server.js';
import type { AppOptions } from '../../server/options.js';
import type { ChatClient } from './chat-client.js';
import { TEST_CONTROL_SECRET, TEST_LEASE_KEY, TEST_SECRET } from './stack.js';

export { TEST_CONTROL_SECRET, TEST_LEASE_KEY, TEST_SECRET };

const PROXY_MAIN = fileURLToPath(new URL('../../proxy/main.ts', import.meta.url));

/** A temp dir for a database, removed after the test. */
export function faultDataDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'comet-fault-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Resolves after `ms` (a retry backoff, never a wait for a condition). */
export function backoff(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves with `value` from `promise`, or with `onTimeout` if `ms` passes first (the timer is cleared either way). */
export async function raceDeadline<T, U>(promise: Promise<T>, ms: number, onTimeout: U): Promise<T | U> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<U>((resolve) => {
    timer = setTimeout(() => resolve(onTimeout), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves like `promise`; rejects naming `what` if it takes longer than `ms`, so a hang fails fast and says why. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  const settled = await raceDeadline(promise.then((value) => ({ value })), ms, null);
  if (settled === null) throw new Error(`${what} did not happen within ${ms} ms`);
  return settled.value;
}

/** Open connections of a server (node:http's, or the proxy's client front listener, which owns the client sockets). */
export function connectionCount(server: Server | NetServer): Promise<number> {
  return new Promise((resolve, reject) => server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
}

/** Control API calls with the test control secret against `controlUrl` (`http://127.0.0.1:PORT`). */
export function controlClient(controlUrl: string) {
  const auth = { authorization: `Bearer ${TEST_CONTROL_SECRET}` };
  return {
    async stats(): Promise<ProxyStats> {
      const res = await fetch(`${controlUrl}/stats`, { headers: auth });
      if (res.status !== 200) throw new Error(`stats answered ${res.status}`);
      return (await res.json()) as ProxyStats;
    },
    async call(path: string, body: unknown): Promise<{ status: number; body: ControlResult }> {
      const res = await fetch(`${controlUrl}${path}`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as ControlResult };
    },
  };
}

// --- a raw client socket ---------------------------------------------------------

/** One HTTP request on a raw socket, so a test can stop reading or cut the connection at any byte. */
export interface RawClient {
  socket: Socket;
  /** Bytes received so far. */
  received(): number;
  /** Everything received so far, as latin1 text. */
  text(): string;
  /** Resolves at the first byte of the answer. */
  firstData: Promise<void>;
  /** Resolves once the socket is closed (by either side). */
  closed: Promise<void>;
}

/** Connects to 127.0.0.1:`port` and writes `GET path` with `headers`. */
export async function rawGet(port: number, path: string, headers: Record<string, string> = {}): Promise<RawClient> {
  const socket = connect(port, '127.0.0.1');
  const chunks: Buffer[] = [];
  let bytes = 0;
  let onFirst!: () => void;
  const firstData = new Promise<void>((resolve) => (onFirst = resolve));
  socket.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    bytes += chunk.length;
    onFirst();
  });
  socket.on('error', () => {}); // resets are the point of these tests
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const head = Object.entries({ host: '127.0.0.1', ...headers }).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  socket.write(`GET ${path} HTTP/1.1\r\n${head}\r\n`);
  return {
    socket,
    received: () => bytes,
    text: () => Buffer.concat(chunks).toString('latin1'),
    firstData,
    closed,
  };
}

// --- timers ------------------------------------------------------------------

/** Real timers that count the handles still pending (set, not yet fired or cleared). */
export interface CountingTimers extends ProxyTimers {
  /** Timers set and neither fired nor cleared. */
  live(): number;
}

export function countingTimers(): CountingTimers {
  const pending = new Set<NodeJS.Timeout>();
  return {
    setTimeout(callback, ms) {
      const handle: NodeJS.Timeout = setTimeout(() => {
        pending.delete(handle);
        callback();
      }, ms);
      pending.add(handle);
      return handle;
    },
    clearTimeout(handle) {
      pending.delete(handle as NodeJS.Timeout);
      clearTimeout(handle as NodeJS.Timeout);
    },
    now: () => Date.now(),
    live: () => pending.size,
  };
}

// --- a stack whose app restarts ------------------------------------------------

export interface RestartableStack {
  /** `http://127.0.0.1:CLIENT_PORT` (the proxy). */
  base: string;
  appPort: number;
  controlUrl: string;
  dbPath: string;
  proxy: HoldProxy;
  /** The chat server currently running (or the last one, once stopped). */
  readonly chat: ChatServer;
  /** Stops the running app (relay, server, database). */
  stopApp(): Promise<void>;
  /** Starts a new app on the same port and database file, relaying to the same control port. */
  startApp(): Promise<ChatServer>;
}

export interface RestartableOverrides {
  app?: Partial<AppOptions>;
  proxy?: Partial<ProxyOptions>;
}

/**
 * App (createChatServer) + in-process hold proxy, wired like launcher/embedded.ts,
 * except that the app can be stopped and started again on the same port and
 * SQLite file while the proxy keeps running.
 */
export async function startRestartableStack(t: TestContext, overrides: RestartableOverrides = {}): Promise<RestartableStack> {
  const dbPath = join(faultDataDir(t), 'chat.db');
  const appOptions = {
    secret: TEST_SECRET,
    controlSecret: TEST_CONTROL_SECRET,
    leaseKey: TEST_LEASE_KEY,
    host: '127.0.0.1',
    dbPath,
    // A restart must cost milliseconds of relay latency, not seconds.
    relayRetryMinMs: 5,
    relayRetryMaxMs: 50,
    ...overrides.app,
  };
  let chat = createChatServer({ ...appOptions, port: 0 });
  let proxy: HoldProxy | null = null;
  t.after(async () => {
    await proxy?.close();
    await chat.close();
  });
  const appPort = await chat.listen();
  proxy = createHoldProxy({
    secret: TEST_SECRET,
    controlSecret: TEST_CONTROL_SECRET,
    leaseKey: TEST_LEASE_KEY,
    upstreamUrl: `http://127.0.0.1:${appPort}`,
    clientHost: '127.0.0.1',
    clientPort: 0,
    controlHost: '127.0.0.1',
    controlPort: 0,
    ...overrides.proxy,
  });
  const { clientPort, controlPort } = await proxy.listen();
  const controlUrl = `http://127.0.0.1:${controlPort}`;
  chat.connectProxy(controlUrl);

  return {
    base: `http://127.0.0.1:${clientPort}`,
    appPort,
    controlUrl,
    dbPath,
    proxy,
    get chat() {
      return chat;
    },
    stopApp: () => chat.close(),
    async startApp() {
      chat = createChatServer({ ...appOptions, port: appPort, controlUrl });
      await chat.listen();
      return chat;
    },
  };
}

// --- the proxy as a child process ------------------------------------------------

export interface ProxyChild {
  child: ChildProcess;
  clientPort: number;
  controlPort: number;
  /** Every stdout line so far (JSON log lines), for diagnostics. */
  lines: string[];
  /** Resolves with the exit code (null if killed by a signal) once the process has exited. */
  exited: Promise<number | null>;
}

/**
 * Spawns `node --import tsx proxy/main.ts` with `env` (plus PATH, GRIP_SECRET and CONTROL_SECRET),
 * waits for its "listening" log line and returns the ports it reported. Ports
 * default to 0; pass PROXY_PORT/CONTROL_PORT to restart on the same ones. The
 * child is SIGKILLed after the test if it is still running.
 */
export async function spawnProxy(t: TestContext, env: Record<string, string>, timeoutMs = 15_000): Promise<ProxyChild> {
  const child = spawn(process.execPath, ['--import', 'tsx', PROXY_MAIN], {
    env: { PATH: process.env.PATH, GRIP_SECRET: TEST_SECRET, CONTROL_SECRET: TEST_CONTROL_SECRET, LEASE_KEY: TEST_LEASE_KEY, PROXY_PORT: '0', CONTROL_PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const lines: string[] = [];
  // Keep reading stdout for the child's whole life: its logger writes synchronously,
  // so a full pipe would block it.
  const rl = createInterface({ input: child.stdout! });
  const listening = new Promise<{ clientPort: number; controlPort: number }>((resolve, reject) => {
    rl.on('line', (line) => {
      lines.push(line);
      try {
        const entry = JSON.parse(line) as { msg?: string; clientPort?: number; controlPort?: number };
        if (entry.msg === 'listening') resolve({ clientPort: entry.clientPort!, controlPort: entry.controlPort! });
      } catch {
        /* not JSON: keep it for diagnostics only */
      }
    });
    void exited.then((code) => reject(new Error(`proxy child exited (${code}) before listening: ${stderr}${lines.join('\n')}`)));
  });
  const ports = await raceDeadline(listening, timeoutMs, null);
  if (ports === null) throw new Error(`proxy child not listening after ${timeoutMs} ms: ${stderr}${lines.join('\n')}`);
  return { child, ...ports, lines, exited };
}

// --- clients under faults --------------------------------------------------------------

/** What a poll loop saw besides normal answers. */
export interface PollLoopReport {
  /** Answers by status, e.g. {200: 40, 502: 3}. */
  statuses: Record<number, number>;
  /** Requests that failed on the network (connection refused or reset). */
  networkErrors: number;
}

/**
 * Long-polls with `client` until `stop` aborts, like a browser tab: after a 502,
 * 503 or a network error it backs off briefly and re-polls from its cursors.
 * Any other non-200 answer fails the loop. Bounded by `maxPolls`.
 */
export async function pollUntilStopped(client: ChatClient, stop: AbortSignal, maxPolls = 20_000): Promise<PollLoopReport> {
  const report: PollLoopReport = { statuses: {}, networkErrors: 0 };
  for (let n = 0; n < maxPolls && !stop.aborted; n++) {
    let status: number;
    try {
      status = (await client.poll(stop)).status;
    } catch (err) {
      if (stop.aborted) break;
      report.networkErrors++;
      await backoff(10);
      continue;
    }
    report.statuses[status] = (report.statuses[status] ?? 0) + 1;
    if (status === 502 || status === 503) await backoff(10);
    else if (status !== 200) throw new Error(`poll answered ${status}`);
  }
  return report;
}

/**
 * Posts `text`, retrying after 502/503 or a network error until `deadlineMs`
 * (epoch ms). A retried post may have committed twice (the first answer was
 * lost), which is why counting checks compare with the database, not with answers.
 */
export async function postWithRetry(client: ChatClient, room: string, text: string, deadlineMs: number): Promise<void> {
  for (;;) {
    try {
      const r = await client.call('POST', `/api/rooms/${room}/messages`, { text });
      if (r.status === 201) return;
      if (r.status !== 502 && r.status !== 503) throw new Error(`post answered ${r.status}: ${JSON.stringify(r.body)}`);
    } catch (err) {
      if (!(err instanceof TypeError)) throw err; // fetch's network failures are TypeErrors
    }
    if (Date.now() > deadlineMs) throw new Error(`post ${JSON.stringify(text)} did not go through before the deadline`);
    await backoff(10);
  }
}

/** The committed truth: every event id per room name, in id order, read from the database file. */
export function committedEvents(dbPath: string): Map<string, number[]> {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    const rows = db
      .prepare('SELECT e.id AS id, r.name AS room FROM events e JOIN rooms r ON r.id = e.room_id ORDER BY e.id')
      .all() as Array<{ id: number; room: string }>;
    const byRoom = new Map<string, number[]>();
    for (const { id, room } of rows) {
      let ids = byRoom.get(room);
      if (ids === undefined) byRoom.set(room, (ids = []));
      ids.push(id);
    }
    return byRoom;
  } finally {
    db.close();
  }
}

/** Rows waiting in the outbox (committed, not yet accepted by a proxy), read from the database file. */
export function outboxRows(dbPath: string): number {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    return (db.prepare('SELECT COUNT(*) AS n FROM outbox').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

/** The committed event ids of `room` after `cursor`. */
export function expectedAfter(committed: Map<string, number[]>, room: string, cursor: number): number[] {
  return (committed.get(room) ?? []).filter((id) => id > cursor);
}
