/**
 * A private redis-server for one test (never the machine's shared one on 6379):
 * an ephemeral loopback port, no persistence, killed after the test. `restart()`
 * kills it (SIGKILL: its data is gone, as after a crash) and starts a new one on
 * the same port. `pause()`/`resume()` SIGSTOP/SIGCONT it: a Redis that is slow
 * (connections stay open, nothing answers) rather than gone; teardown resumes
 * it before killing.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect, createServer } from 'node:net';
import type { TestContext } from 'node:test';
import { createHoldProxy, type HoldProxy } from '../../proxy/proxy.js';
import { createChatServer, type ChatServer } from '../../server/chat-server.js';
import type { AppOptions } from '../../server/options.js';
import { controlClient, TEST_CONTROL_SECRET, TEST_LEASE_KEY, TEST_SECRET } from './fault-stack.js';

export interface TestRedis {
  port: number;
  url: string;
  /** SIGKILLs the server and waits for it to exit. */
  kill(): Promise<void>;
  /** Starts a server again on the same port (after `kill`). */
  start(): Promise<void>;
  /** kill() then start(). */
  restart(): Promise<void>;
  /** SIGSTOPs the server: sockets stay open, commands get no answer until `resume()`. */
  pause(): void;
  /** SIGCONTs a paused server (a no-op otherwise). */
  resume(): void;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** One PING over a raw socket; true on +PONG. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (chunk) => done(chunk.toString().startsWith('+PONG')));
  });
}

export async function startRedis(t: TestContext): Promise<TestRedis> {
  const port = await freePort();
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();

  async function start(): Promise<void> {
    const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: 'ignore',
    });
    child = proc;
    exited = new Promise((resolve) => proc.once('exit', () => resolve()));
    for (let i = 0; i < 200; i++) {
      if (await ping(port)) return;
      if (proc.exitCode !== null) throw new Error(`redis-server exited (${proc.exitCode}) on port ${port}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    throw new Error(`redis-server on port ${port} did not answer PING within 5 s`);
  }

  let paused = false;
  function pause(): void {
    const proc = child;
    if (proc === null || proc.exitCode !== null || proc.signalCode !== null) throw new Error('redis-server is not running');
    proc.kill('SIGSTOP');
    paused = true;
  }
  function resume(): void {
    const proc = child;
    if (!paused) return;
    paused = false;
    if (proc !== null && proc.exitCode === null && proc.signalCode === null) proc.kill('SIGCONT');
  }

  async function kill(): Promise<void> {
    resume(); // a stopped server would still die of SIGKILL, but never leave it stopped for anyone else
    const proc = child;
    if (proc === null || proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGKILL');
    await exited;
  }

  t.after(kill);
  await start();
  return { port, url: `redis://127.0.0.1:${port}`, kill, start, restart: async () => (await kill(), start()), pause, resume };
}

/** An in-process hold proxy on the Redis bus, on ephemeral loopback ports, closed after the test; `overrides` win. */
export async function startRedisProxy(
  t: TestContext,
  upstreamUrl: string,
  redisUrl: string,
  overrides: Record<string, unknown> = {},
): Promise<{ proxy: HoldProxy; base: string; control: ReturnType<typeof controlClient>; controlUrl: string }> {
  const proxy = createHoldProxy({
    secret: TEST_SECRET,
    controlSecret: TEST_CONTROL_SECRET,
    leaseKey: TEST_LEASE_KEY,
    upstreamUrl,
    clientHost: '127.0.0.1',
    clientPort: 0,
    controlHost: '127.0.0.1',
    controlPort: 0,
    redisUrl,
    ...overrides,
  });
  t.after(() => proxy.close());
  const { clientPort, controlPort } = await proxy.listen();
  const controlUrl = `http://127.0.0.1:${controlPort}`;
  return { proxy, base: `http://127.0.0.1:${clientPort}`, control: controlClient(controlUrl), controlUrl };
}

/** A chat app started by `startBusApp`, and the URL it listens on. */
export interface BusApp {
  app: ChatServer;
  url: string;
}

/**
 * A chat app on this test's Redis bus and SQLite file, as docs/scaleout.md deploys one (several may share
 * `dbPath`), with the test secrets and quick relay retries; `overrides` win. Closed after the test.
 */
export async function startBusApp(t: TestContext, redisUrl: string, dbPath: string, overrides: Partial<AppOptions> = {}): Promise<BusApp> {
  const app = createChatServer({
    secret: TEST_SECRET,
    leaseKey: TEST_LEASE_KEY,
    host: '127.0.0.1',
    port: 0,
    dbPath,
    redisUrl,
    holdTimeoutS: 5,
    relayRetryMinMs: 5,
    relayRetryMaxMs: 100,
    ...overrides,
  });
  t.after(() => app.close());
  return { app, url: `http://127.0.0.1:${await app.listen()}` };
}
