/**
 * Model 3, Suspend & Push: this repository's hold proxy and chat app as
 * shipped (`dist/proxy/main.js`, `dist/server/main.js`), two processes on
 * loopback. Clients and the publisher both talk to the proxy, like browsers;
 * the app publishes through the proxy's control API.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import {
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

/** Parked-request caps at least this multiple of the load point's subscribers, so the proxy never refuses one. */
const PARKED_HEADROOM = 2;

async function startOnce(options: TargetStartOptions): Promise<RunningTarget> {
  const [appPort, proxyPort, controlPort] = [await freePort(), await freePort(), await freePort()];
  const secret = randomBytes(32).toString('hex');
  const node = process.execPath;
  const common = {
    GRIP_SECRET: secret,
    // info, not warn: the "listening" lines are at info, and neither process logs per request at info.
    LOG_LEVEL: 'info',
  };
  const children: ManagedChild[] = [];
  try {
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
        PROXY_CONTROL_URL: `http://127.0.0.1:${controlPort}`,
        HOLD_TIMEOUT_S: String(options.holdTimeoutS),
        // The publisher posts far beyond a person's 60/min; a load point creates many sessions from one address.
        POSTS_PER_MINUTE: '0',
        SESSIONS_PER_MINUTE_PER_ADDRESS: '0',
      }),
      logPath: join(options.workDir, 'app.log'),
    });
    children.push(app);
    const proxy = await spawnChild({
      name: 'proxy',
      command: node,
      args: [...(options.nodeArgs ?? []), join(options.root, 'dist/proxy/main.js')],
      cwd: options.root,
      env: serverEnv({
        ...common,
        PROXY_HOST: '127.0.0.1',
        PROXY_PORT: String(proxyPort),
        CONTROL_HOST: '127.0.0.1',
        CONTROL_PORT: String(controlPort),
        APP_URL: `http://127.0.0.1:${appPort}`,
        HOLD_TIMEOUT_MAX_S: String(Math.max(300, options.holdTimeoutS)),
        MAX_PARKED: String(Math.max(15_000, PARKED_HEADROOM * options.maxClients)),
        // Every load client comes from 127.0.0.1: one address holds them all.
        MAX_PARKED_PER_ADDRESS: String(Math.max(1000, PARKED_HEADROOM * options.maxClients)),
      }),
      logPath: join(options.workDir, 'proxy.log'),
    });
    children.push(proxy);
    await Promise.all([
      waitForLogLine(app, jsonLine('chat app listening'), READY_TIMEOUT_MS),
      waitForLogLine(proxy, jsonLine('listening'), READY_TIMEOUT_MS),
    ]);

    const clientUrl = `http://127.0.0.1:${proxyPort}`;
    return {
      clientUrl,
      publishUrl: clientUrl,
      pids: () => [proxy.pid, app.pid],
      roles: () => ({ proxy: proxy.pid, app: app.pid }),
      async parked() {
        try {
          const { status, text } = await httpGet(`http://127.0.0.1:${controlPort}/stats`, STATS_TIMEOUT_MS, { authorization: `Bearer ${secret}` });
          const parked = status === 200 ? (JSON.parse(text) as { parked?: unknown }).parked : undefined;
          return typeof parked === 'number' ? parked : undefined;
        } catch {
          return undefined;
        }
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
  start: (options) => retryOnPortClash(() => startOnce(options)),
};
