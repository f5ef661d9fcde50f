/**
 * Model 3, Suspend & Push: this repository's hold proxy and chat app as
 * shipped (`dist/proxy/main.js`, `dist/server/main.js`), on loopback. Clients
 * and the publisher both talk to the proxy, like browsers.
 *
 * - `suspend-push`: one proxy and the app, two processes; the app publishes through the proxy's control API and
 *   grants re-poll leases, so the proxy answers a client's re-polls from its channel buffer (docs/protocol.md §13).
 * - `suspend-push-sse`: the same two processes, leases on, whose subscribers read the chat app's SSE stream
 *   (`/api/stream?format=sse`, docs/protocol.md §10.2, held by the proxy as a stream, §14) instead of long-polling:
 *   the streaming transport's cost per delivery beside long-polling's (issue 16).
 * - `suspend-push-plain`: the same without leases: every re-poll crosses the proxy to the app, as the model was
 *   first described (and as this repository ran before leases).
 * - `suspend-push-w2`: the same with the proxy on 2 worker processes (`PROXY_WORKERS=2`, proxy/cluster/): every core of
 *   one host, no Redis.
 * - `suspend-push-x2`, `suspend-push-x3`: scaled out as docs/scaleout.md deploys it: N proxies and the app on a
 *   private `redis-server` (the bus); subscriber i polls proxy i mod N, the publisher posts through the first.
 */
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { connect } from 'node:net';
import {
  findExecutable,
  freePort,
  httpGet,
  jsonLine,
  missingBuild,
  retryOnPortClash,
  serverEnv,
  spawnChild,
  stopAll,
  waitForLogLine,
  type ManagedChild,
} from './child-process.js';
import type { RunningTarget, Target, TargetStartOptions } from './target.js';

/** How long each process may take to log that it listens, ms. */
const READY_TIMEOUT_MS = 20_000;
/** Deadline of one stats read, ms. */
const STATS_TIMEOUT_MS = 2000;

/** `drained()`: how long the proxies' publish counts must stay put with the outbox empty, ms. */
const DRAINED_STILL_MS = 100;

/** Parked-request caps at least this multiple of the load point's subscribers, so the proxy never refuses one. */
const PARKED_HEADROOM = 2;

/** Resolves once `redis-server` on `port` answers PING, or rejects at the deadline. */
async function waitForRedis(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answered = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.setTimeout(500, () => socket.destroy());
      socket.once('connect', () => socket.write('PING\r\n'));
      socket.once('data', (data) => {
        socket.destroy();
        resolve(data.toString().startsWith('+PONG'));
      });
      socket.once('close', () => resolve(false));
      socket.once('error', () => resolve(false));
    });
    if (answered) return;
    if (Date.now() >= deadline) throw new Error(`redis-server on port ${port} did not answer within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Every proxy's `/stats` numbers, in port order; `undefined` when one cannot be read (or has no `parked`). */
async function proxyStats(ports: ReadonlyArray<{ control: number }>, controlSecret: string): Promise<Array<Record<string, number>> | undefined> {
  const all: Array<Record<string, number>> = [];
  for (const port of ports) {
    try {
      const { status, text } = await httpGet(`http://127.0.0.1:${port.control}/stats`, STATS_TIMEOUT_MS, { authorization: `Bearer ${controlSecret}` });
      const stats = status === 200 ? (JSON.parse(text) as Record<string, unknown>) : undefined;
      if (typeof stats?.parked !== 'number') return undefined;
      all.push(Object.fromEntries(Object.entries(stats).filter((entry): entry is [string, number] => typeof entry[1] === 'number')));
    } catch {
      return undefined;
    }
  }
  return all;
}

/** Rows waiting in the app's outbox (read-only, beside the running app: WAL lets it); `undefined` if unreadable now. */
function outboxRows(dbPath: string): number | undefined {
  let db: Database.Database | undefined;
  try {
    db = new Database(dbPath, { readonly: true, fileMustExist: true, timeout: STATS_TIMEOUT_MS });
    return (db.prepare('SELECT count(*) AS n FROM outbox').get() as { n: number }).n;
  } catch {
    return undefined;
  } finally {
    db?.close();
  }
}

async function startOnce(options: TargetStartOptions, proxies: number, leases = true, proxyWorkers = 1): Promise<RunningTarget> {
  const appPort = await freePort();
  const ports: Array<{ client: number; control: number }> = [];
  for (let i = 0; i < proxies; i++) ports.push({ client: await freePort(), control: await freePort() });
  const secret = randomBytes(32).toString('hex');
  const node = process.execPath;
  const scaled = proxies > 1;
  const redisPort = scaled ? await freePort() : 0;
  const redisUrl = `redis://127.0.0.1:${redisPort}`;
  const controlSecret = randomBytes(32).toString('hex');
  const common = {
    GRIP_SECRET: secret,
    CONTROL_SECRET: controlSecret,
    ...(leases ? { LEASE_KEY: randomBytes(32).toString('hex') } : {}),
    // info, not warn: the "listening" lines are at info, and neither process logs per request at info.
    LOG_LEVEL: 'info',
    ...(scaled ? { REDIS_URL: redisUrl } : {}),
  };
  const children: ManagedChild[] = [];
  try {
    let redis: ManagedChild | null = null;
    if (scaled) {
      redis = await spawnChild({
        name: 'redis',
        command: 'redis-server',
        args: ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxclients', '1000'],
        cwd: options.workDir,
        env: serverEnv({}),
        logPath: join(options.workDir, 'redis.log'),
      });
      children.push(redis);
      await waitForRedis(redisPort, READY_TIMEOUT_MS);
    }
    const app = await spawnChild({
      name: 'app',
      command: node,
      args: [...(options.nodeArgs ?? []), join(options.root, 'dist/server/main.js')],
      cwd: options.root,
      env: serverEnv({
        ...common,
        APP_HOST: '127.0.0.1',
        APP_PORT: String(appPort),
        DB_PATH: join(options.workDir, 'chat.db'),
        PROXY_CONTROL_URL: `http://127.0.0.1:${ports[0]!.control}`,
        HOLD_TIMEOUT_S: String(options.holdTimeoutS),
        // The publisher posts far beyond a person's 60/min; a load point creates many sessions from one address.
        POSTS_PER_MINUTE: '0',
        SESSIONS_PER_MINUTE_PER_ADDRESS: '0',
      }),
      logPath: join(options.workDir, 'app.log'),
    });
    children.push(app);
    const proxyChildren: ManagedChild[] = [];
    for (const [i, port] of ports.entries()) {
      const proxy = await spawnChild({
        name: scaled ? `proxy${i + 1}` : 'proxy',
        command: node,
        args: [...(options.nodeArgs ?? []), join(options.root, 'dist/proxy/main.js')],
        cwd: options.root,
        env: serverEnv({
          ...common,
          PROXY_HOST: '127.0.0.1',
          PROXY_PORT: String(port.client),
          CONTROL_HOST: '127.0.0.1',
          CONTROL_PORT: String(port.control),
          APP_URL: `http://127.0.0.1:${appPort}`,
          HOLD_TIMEOUT_MAX_S: String(Math.max(300, options.holdTimeoutS)),
          MAX_PARKED: String(Math.max(15_000, PARKED_HEADROOM * options.maxClients)),
          // Every load client comes from 127.0.0.1: one address holds them all.
          MAX_PARKED_PER_ADDRESS: String(Math.max(1000, PARKED_HEADROOM * options.maxClients)),
          PROXY_WORKERS: String(proxyWorkers),
        }),
        logPath: join(options.workDir, scaled ? `proxy${i + 1}.log` : 'proxy.log'),
      });
      children.push(proxy);
      proxyChildren.push(proxy);
    }
    await Promise.all([
      waitForLogLine(app, jsonLine('chat app listening'), READY_TIMEOUT_MS),
      ...proxyChildren.map((proxy) => waitForLogLine(proxy, jsonLine('listening'), READY_TIMEOUT_MS)),
    ]);

    const clientUrls = ports.map((port) => `http://127.0.0.1:${port.client}`);
    /** The proxies' publish counts as `drained()` last saw them, and since when. */
    const publishCounts = { seen: '', since: 0 };
    const roles: Record<string, number> = {};
    for (const proxy of proxyChildren) roles[proxy.name] = proxy.pid;
    roles.app = app.pid;
    if (redis !== null) roles.redis = redis.pid;
    return {
      clientUrl: clientUrls[0]!,
      clientUrls,
      publishUrl: clientUrls[0]!,
      pids: () => children.map((c) => c.pid),
      roles: () => roles,
      countsParked: true,
      async parked() {
        // Every proxy's own count, parked requests plus open streams (`/stats` counts them apart, docs/protocol.md
        // §14.8): a proxy that cannot tell makes the sum unknown.
        const all = await proxyStats(ports, controlSecret);
        return all?.reduce((sum, stats) => sum + stats.parked! + (stats.streams ?? 0), 0);
      },
      frontDoorStats: () => proxyStats(ports, controlSecret),
      async drained() {
        // The relay deletes an outbox row once the proxy (or Redis) took it; on the bus every proxy then applies the
        // same entries, so equal publish counts that stay put for DRAINED_STILL_MS mean none is still reading one
        // (counts equal but both one entry behind would change within that).
        const outbox = outboxRows(join(options.workDir, 'chat.db'));
        if (outbox === undefined) return undefined;
        const all = outbox > 0 ? [] : await proxyStats(ports, controlSecret);
        if (all === undefined) return undefined;
        const counts = all.map((stats) => stats.publishes).join(',');
        const now = Date.now();
        if (counts !== publishCounts.seen) Object.assign(publishCounts, { seen: counts, since: now });
        return outbox === 0 && all.every((stats) => stats.publishes === all[0]!.publishes) && now - publishCounts.since >= DRAINED_STILL_MS;
      },
      stop: () => stopAll(children),
    };
  } catch (err) {
    await stopAll(children);
    throw err;
  }
}

export const suspendPushTarget: Target = {
  name: 'suspend-push',
  title: 'Suspend & Push',
  kind: 'model',
  protocol: 'chat-long-poll',
  async unavailable() {
    return missingBuild(['dist/server/main.js', 'dist/proxy/main.js']);
  },
  start: (options) => retryOnPortClash(() => startOnce(options, 1)),
};

export const sseSuspendPushTarget: Target = {
  name: 'suspend-push-sse',
  title: 'Suspend & Push, SSE streams',
  kind: 'model',
  protocol: 'chat-sse',
  unavailable: suspendPushTarget.unavailable,
  start: (options) => retryOnPortClash(() => startOnce(options, 1)),
};

export const plainSuspendPushTarget: Target = {
  name: 'suspend-push-plain',
  title: 'Suspend & Push, no leases',
  kind: 'model',
  protocol: 'chat-long-poll',
  unavailable: suspendPushTarget.unavailable,
  start: (options) => retryOnPortClash(() => startOnce(options, 1, false)),
};

/** Suspend & Push with the proxy on `workers` processes of one host (PROXY_WORKERS, docs/scaleout.md "Workers"). */
export function workersSuspendPushTarget(workers: number): Target {
  if (!Number.isInteger(workers) || workers < 2) throw new Error(`a workers target has at least 2 workers, got ${workers}`);
  return {
    name: `suspend-push-w${workers}`,
    title: `Suspend & Push, proxy on ${workers} workers`,
    kind: 'model',
    protocol: 'chat-long-poll',
    unavailable: suspendPushTarget.unavailable,
    start: (options) => retryOnPortClash(() => startOnce(options, 1, true, workers)),
  };
}

/** Suspend & Push scaled out: `proxies` hold proxies and the app over a private Redis (docs/scaleout.md). */
export function scaledSuspendPushTarget(proxies: number): Target {
  if (!Number.isInteger(proxies) || proxies < 2) throw new Error(`a scaled-out target has at least 2 proxies, got ${proxies}`);
  return {
    name: `suspend-push-x${proxies}`,
    title: `Suspend & Push, ${proxies} proxies + Redis`,
    kind: 'model',
    protocol: 'chat-long-poll',
    async unavailable() {
      if (findExecutable('redis-server') === null) return 'redis-server is not installed (apt-get install -y redis-server)';
      return missingBuild(['dist/server/main.js', 'dist/proxy/main.js']);
    },
    start: (options) => retryOnPortClash(() => startOnce(options, proxies)),
  };
}
