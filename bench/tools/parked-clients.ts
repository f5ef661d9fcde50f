/**
 * The setup bench/tools/delivery-floor.ts and bench/tools/parked-memory.ts share: a minimal GRIP app in this
 * process, the proxy as a child process in front of it (one process, or a primary and `PROXY_WORKERS` workers),
 * and N clients on N keep-alive connections that each park one long-poll.
 *
 * - **The app** holds every poll whose cursor is its room's last id (channel `room:<r>`, client i in room
 *   i % rooms), under the client's own 21-character connection ID as the chat app does (none with
 *   `anonymous`), and answers a poll behind with the news. With `leaseKey` it also grants a re-poll lease
 *   (docs/protocol.md §13) and the clients poll in the lease's shape (`/poll?cid=..&c=room:<r>:<cursor>`), so the
 *   proxy answers their re-polls itself.
 * - **The clients**, each on its own keep-alive socket, re-poll after a delivery while `repoll` is on; a failed poll (reset socket, non-200) is
 *   counted by reason and polled again 100 ms later while `retry` is on; an empty answer (a hold timeout) polls
 *   again while either is on. Its cursor loses nothing.
 * - **The proxy's processes** (`pids`): the one started and, with workers, its children; their CPU (every
 *   thread's schedstat) and the control API (`/stats` is summed over the workers by the primary).
 *
 * Loopback only; every wait has a deadline.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { createServer as netServer } from 'node:net';
import { bindingDigest, signLease, type LeaseClaims } from '../../protocol/lease.js';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every `stepMs` until true; throws naming `what` after `timeoutMs`. */
export async function until(what: string | (() => string), check: () => boolean | Promise<boolean>, timeoutMs: number, stepMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`);
    await sleep(stepMs);
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = netServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** `--env NAME=VALUE` flags as an object. */
export function envFlags(pairs: readonly string[]): Record<string, string> {
  return Object.fromEntries(pairs.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
}

export interface ParkedBenchOptions {
  clients: number;
  rooms: number;
  /** Hold without a connection ID. */
  anonymous?: boolean;
  /** The app grants re-poll leases signed with this key (also given to the proxy as LEASE_KEY). */
  leaseKey?: string;
  /** PROXY_WORKERS (1: one process). */
  workers: number;
  /** What follows `node`: flags, preloads and the entry script. */
  proxyArgv: readonly string[];
  /** The Node binary that runs the proxy (default: this process's), e.g. another release for a runtime pair. */
  nodePath?: string;
  /** More proxy environment, over the defaults. */
  env?: Record<string, string>;
  /** The proxy's stderr: inherited (default) or piped (a window profiler reports through it). */
  stderr?: 'inherit' | 'pipe';
}

export interface Clients {
  /** Poll again after a delivery. */
  repoll: boolean;
  /** Poll again after a failure (100 ms later). */
  retry: boolean;
  received: number;
  failures: number;
  /** Failures by reason: an HTTP status or a socket error code. */
  failureReasons: Map<string, number>;
  /** performance.now() at the last delivery. */
  lastReceiptAt: number;
  poll(i: number): void;
  /** Opens every client's poll, 500 at a time, each batch parked before the next. */
  parkAll(): Promise<void>;
  /** Closes every client connection (and starts a fresh agent). */
  disconnect(): void;
}

export interface ParkedBench {
  proxy: ChildProcess;
  pid: number;
  control: string;
  clients: Clients;
  /** The proxy's processes: the one started and, with workers, its children. */
  pids(): number[];
  /** CPU time of every proxy process so far, ms (every thread's /proc schedstat). */
  cpuMs(): number;
  /**
   * Context switches of every proxy process's main thread so far (/proc status): voluntary ones are the event
   * loop going to sleep in epoll with nothing to do (one per wake-up), involuntary ones a preemption by another
   * runnable process (the cores are shared with the load generator).
   */
  switches(): { voluntary: number; involuntary: number };
  /** GET on the control port; a kept-alive socket the proxy closes as it is reused is retried (3 tries). */
  controlGet(path: string): Promise<Response>;
  stats(): Promise<{ parked: number; deliveries: number; parkedBytes?: number; repollParks?: number; repollToApp?: number }>;
  /** Parked now, or -1 if the call failed. */
  parked(): Promise<number>;
  /** Publishes the next item to every room (the app has "committed" it first, as the chat app does). */
  publish(): Promise<void>;
  /**
   * Pushes one item to every client's connection ID (`/push/`, 1,000 IDs a call): an answer carrying the client's
   * own cursor, so it counts as a delivery and the client re-polls where it was.
   */
  push(): Promise<void>;
  /** The proxy answering /health (30 s at most). */
  ready(): Promise<void>;
  /** SIGTERM to the proxy (SIGKILL after `graceMs`), then the app closed. */
  close(graceMs?: number): Promise<void>;
}

const SECRET = 'parked-secret-0123456789abcdef';
/** The control API's own credential (the proxy refuses to start without one, and not the Grip-Sig key). */
const CONTROL_SECRET = 'parked-control-0123456789abcdef';
const connectionId = (i: number): string => `conn${String(i).padStart(17, '0')}`;

export async function startParkedBench(options: ParkedBenchOptions): Promise<ParkedBench> {
  const { clients: N, rooms: ROOMS, leaseKey } = options;
  const lastId = new Array<number>(ROOMS).fill(0);

  /** What the chat app grants (server/routes/): the proxy answers this client's next polls itself. */
  function leaseFor(i: number, room: number): string {
    const nowS = Date.now() / 1000;
    const claims: LeaseClaims = {
      cid: connectionId(i),
      sub: `user${i}`,
      bind: { cookie: 'sid', sha256: bindingDigest(`s${i}`) },
      ch: [[`room:${room}`, String(lastId[room])]],
      iat: nowS,
      exp: nowS + 3600,
      req: { path: '/poll', cid: 'cid', cursors: 'c', prefix: '' },
      hold: { timeout: 300, headers: { 'content-type': 'application/json', 'cache-control': 'no-store' }, body: '{"events":[]}' },
      batch: { prefix: '{"events":[', sep: ',', suffix: ']}', max: 100 },
    };
    return signLease(claims, leaseKey!);
  }

  const app = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://app');
    const cid = url.searchParams.get('cid');
    const i = cid === null ? Number(url.searchParams.get('i')) : Number(cid.slice(4));
    const room = i % ROOMS;
    const c = url.searchParams.get('c');
    const cursor = Number(c === null ? url.searchParams.get('cursor') : c.slice(c.lastIndexOf(':') + 1));
    req.resume();
    if (cursor < lastId[room]!) {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(`{"events":[{"id":${lastId[room]}}]}`);
      return;
    }
    res.writeHead(200, {
      'grip-hold': 'response',
      'grip-channel': `room:${room}; prev-id=${cursor}`,
      'grip-timeout': '300',
      ...(options.anonymous ? {} : { 'grip-connection-id': connectionId(i) }),
      ...(leaseKey === undefined ? {} : { 'grip-lease': leaseFor(i, room) }),
      'content-type': 'application/json',
      'cache-control': 'no-store',
    });
    res.end('{"events":[]}');
  });
  app.keepAliveTimeout = 65_000;

  const [clientPort, controlPort] = [await freePort(), await freePort()];
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
  const appPort = (app.address() as { port: number }).port;
  const stdio: StdioOptions = ['ignore', 'inherit', options.stderr ?? 'inherit'];
  const proxy: ChildProcess = spawn(options.nodePath ?? process.execPath, [...options.proxyArgv], {
    env: {
      ...process.env,
      GRIP_SECRET: SECRET,
      CONTROL_SECRET,
      PROXY_PORT: String(clientPort),
      CONTROL_PORT: String(controlPort),
      APP_URL: `http://127.0.0.1:${appPort}`,
      MAX_PARKED: String(N + 100),
      MAX_PARKED_PER_ADDRESS: String(N + 100),
      LOG_LEVEL: 'warn',
      PROXY_WORKERS: String(options.workers),
      ...(leaseKey === undefined ? {} : { LEASE_KEY: leaseKey }),
      ...options.env,
    },
    stdio,
  });
  const pid = proxy.pid!;
  let exitedWith: string | undefined;
  proxy.once('exit', (code, signal) => {
    exitedWith = String(code ?? signal);
    if (code !== 0 && code !== null) process.stderr.write(`the proxy exited with ${code}\n`);
  });
  const auth = { authorization: `Bearer ${CONTROL_SECRET}` };
  const control = `http://127.0.0.1:${controlPort}`;

  function pids(): number[] {
    let children: number[] = [];
    try {
      children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      // no children file: one process
    }
    return [pid, ...children];
  }

  function cpuMs(): number {
    let ns = 0;
    for (const one of pids()) {
      let tasks: string[] = [];
      try {
        tasks = readdirSync(`/proc/${one}/task`);
      } catch {
        continue; // exited
      }
      for (const tid of tasks) {
        try {
          ns += Number(readFileSync(`/proc/${one}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
        } catch {
          // the thread ended between the listing and the read
        }
      }
    }
    return ns / 1e6;
  }

  function switches(): { voluntary: number; involuntary: number } {
    const sum = { voluntary: 0, involuntary: 0 };
    for (const one of pids()) {
      try {
        const status = readFileSync(`/proc/${one}/task/${one}/status`, 'utf8');
        sum.voluntary += Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
        sum.involuntary += Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
      } catch {
        // exited
      }
    }
    return sum;
  }

  async function controlGet(path: string): Promise<Response> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fetch(`${control}${path}`, { headers: auth });
      } catch (err) {
        if (attempt >= 3) throw err;
        await sleep(50);
      }
    }
  }
  const stats: ParkedBench['stats'] = async () => (await (await controlGet('/stats')).json()) as Awaited<ReturnType<ParkedBench['stats']>>;
  async function parked(): Promise<number> {
    try {
      return (await stats()).parked;
    } catch {
      return -1;
    }
  }

  async function publish(): Promise<void> {
    const items = lastId.map((prev, room) => {
      lastId[room] = prev + 1;
      return {
        channel: `room:${room}`,
        id: String(prev + 1),
        'prev-id': String(prev),
        formats: { 'http-response': { headers: { 'content-type': 'application/json' }, body: `{"events":[{"id":${prev + 1},"text":"round ${prev + 1}"}]}` } },
      };
    });
    const body = JSON.stringify({ items });
    for (let attempt = 1; ; attempt++) {
      try {
        // Sent again only if the connection failed; a repeat would be harmless anyway (same ids: clients have them).
        const res = await fetch(`${control}/publish/`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body });
        await res.arrayBuffer();
        if (res.status !== 200) throw new Error(`publish answered ${res.status}`);
        return;
      } catch (err) {
        if (attempt >= 3 || (err as Error).message.startsWith('publish answered')) throw err;
        await sleep(50);
      }
    }
  }

  async function push(): Promise<void> {
    for (let from = 0; from < N; from += 1000) {
      const items = [];
      for (let i = from; i < Math.min(N, from + 1000); i++) {
        const body = `{"events":[{"id":${cursors[i]},"pushed":true}]}`;
        items.push({ 'connection-id': connectionId(i), formats: { 'http-response': { headers: { 'content-type': 'application/json' }, body } } });
      }
      const res = await fetch(`${control}/push/`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ items }) });
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`push answered ${res.status}`);
    }
  }

  // One keep-alive socket per client, as a browser tab's poll (and the lab's clients): with a shared pool a client's
  // re-poll would ride whichever socket is free, landing on another worker than the one holding its lease.
  let agents = new Array<http.Agent | undefined>(N);
  const agentOf = (i: number): http.Agent => (agents[i] ??= new http.Agent({ keepAlive: true, maxSockets: 1 }));
  const cursors = new Array<number>(N).fill(0);
  const clients: Clients = {
    repoll: true,
    retry: true,
    received: 0,
    failures: 0,
    failureReasons: new Map(),
    lastReceiptAt: 0,
    poll,
    async parkAll() {
      for (let i = 0; i < N; i += 500) {
        const want = Math.min(N, i + 500);
        for (let j = i; j < want; j++) poll(j);
        await until(() => `${want} parked (failures ${clients.failures})`, async () => (await parked()) >= want, 60_000);
      }
    },
    disconnect() {
      for (const agent of agents) agent?.destroy();
      agents = new Array<http.Agent | undefined>(N);
    },
  };
  function fail(i: number, reason: string): void {
    clients.failures++;
    clients.failureReasons.set(reason, (clients.failureReasons.get(reason) ?? 0) + 1);
    if (clients.retry) setTimeout(() => poll(i), 100);
  }
  function poll(i: number): void {
    const room = i % ROOMS;
    const path =
      leaseKey === undefined ? `/poll?i=${i}&cursor=${cursors[i]}` : `/poll?cid=${connectionId(i)}&c=room:${room}:${cursors[i]}`;
    const headers = leaseKey === undefined ? {} : { cookie: `sid=s${i}` };
    const req = http.get({ host: '127.0.0.1', port: clientPort, path, headers, agent: agentOf(i) }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        if (res.statusCode !== 200) return fail(i, String(res.statusCode));
        const id = /"id":(\d+)/.exec(body)?.[1];
        if (id === undefined) {
          if (clients.repoll || clients.retry) poll(i); // a hold timeout's empty answer
          return;
        }
        cursors[i] = Number(id);
        clients.received++;
        clients.lastReceiptAt = performance.now();
        if (clients.repoll) poll(i);
      });
    });
    req.on('error', (err: NodeJS.ErrnoException) => fail(i, err.code ?? err.message));
  }

  return {
    proxy,
    pid,
    control,
    clients,
    pids,
    cpuMs,
    switches,
    controlGet,
    stats,
    parked,
    publish,
    push,
    // A proxy that exits while starting (a bad flag, a taken port) fails the run at once, not after the deadline.
    ready: () =>
      until('the proxy', async () => {
        if (exitedWith !== undefined) throw new Error(`the proxy exited (${exitedWith}) before it was ready`);
        return (await fetch(`${control}/health`).then((r) => r.status, () => 0)) === 200;
      }, 30_000),
    async close(graceMs = 10_000) {
      clients.repoll = false;
      clients.retry = false;
      clients.disconnect();
      if (proxy.exitCode === null && proxy.signalCode === null) {
        const exited = new Promise((r) => proxy.once('exit', r));
        proxy.kill('SIGTERM');
        await Promise.race([exited, sleep(graceMs)]);
        if (proxy.exitCode === null && proxy.signalCode === null) proxy.kill('SIGKILL');
      }
      app.close();
      app.closeAllConnections();
    },
  };
}
