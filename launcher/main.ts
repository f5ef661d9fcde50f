/**
 * `npm start`: the embedded default on every core — the chat app (SQLite) and
 * the hold proxy in front of it as two child processes, sharing GRIP_SECRET,
 * CONTROL_SECRET and LEASE_KEY, each generated at start when it is not set.
 * Reads the same environment as `npm run proxy` and `npm run server` (see the
 * README's configuration table).
 *
 * Exit codes: 0 after SIGTERM/SIGINT (proxy stopped first, then the app), 2 for
 * bad configuration (reported before any child starts), 1 when a child fails to
 * start or dies while running (the other is stopped too; a process manager
 * above restarts the whole pair, docs/operations.md).
 */
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { LOG_REDACT } from '../common/log-redact.js';
import { hostForUrl, type ConnectProxy } from '../common/launcher-ipc.js';
import { appOptionsFromEnv } from '../server/config.js';
import { resolveAppOptions } from '../server/options.js';
import { proxyOptionsFromEnv } from '../proxy/config.js';
import { resolveProxyOptions } from '../proxy/options.js';
import { ChildExitedError, describeExit, entryPoint, forkChild, waitReady, type LaunchedChild } from './child-process.js';

/** How long a child may take to listen, and to stop after SIGTERM before SIGKILL. */
const READY_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 10_000;

// An invalid LOG_LEVEL is reported by the config readers below; until then log at info.
const wanted = process.env.LOG_LEVEL || 'info';
const level = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(wanted) ? wanted : 'info';
const logger = pino({ name: 'comet-chat', level, redact: LOG_REDACT });
const env = { ...process.env };
// Generate each secret not given, each its own (the Grip-Sig key and the control credential must
// differ, docs/protocol.md §7). The children get them in env, never in argv (`ps` shows argv).
if (!env.GRIP_SECRET) {
  env.GRIP_SECRET = randomBytes(32).toString('base64url');
  logger.info('GRIP_SECRET not set: generated a Grip-Sig key for this run');
}
if (!env.CONTROL_SECRET) {
  env.CONTROL_SECRET = randomBytes(32).toString('base64url');
  logger.info('CONTROL_SECRET not set: generated a control API secret for this run');
}
if (!env.LEASE_KEY) {
  // Its own key (docs/protocol.md §13): re-poll leases on by default, and no credential doing two jobs.
  env.LEASE_KEY = randomBytes(32).toString('base64url');
}

// Both configurations are checked here, before anything starts, so a bad value is exit 2 with
// nothing to clean up (each child validates again; it reads the same env).
try {
  resolveAppOptions({ ...appOptionsFromEnv(env, []), logger });
  resolveProxyOptions({ ...proxyOptionsFromEnv(env, []), logger });
} catch (err) {
  process.stderr.write(`comet-chat: ${(err as Error).message}\n`);
  process.exit(2);
}

const children: LaunchedChild[] = [];
let stopping = false;

/** Stops the proxy first (it answers its parked requests), then the app; then exits. */
async function stopAll(exitCode: number): Promise<never> {
  stopping = true;
  for (const child of [...children].reverse()) {
    const exit = await child.stop(STOP_GRACE_MS);
    logger.info({ child: child.name, childPid: child.process.pid, exit }, 'child stopped');
  }
  process.exit(exitCode);
}

function fail(message: string, exitCode: number): Promise<never> {
  process.stderr.write(`comet-chat: ${message}\n`);
  return stopAll(exitCode);
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    logger.info({ signal }, 'shutting down: stopping the proxy (it answers parked requests), then the app');
    void stopAll(0);
  });
}

/** A child that dies while the pair runs takes the launcher down: a process manager restarts both. */
function watch(child: LaunchedChild): void {
  void child.exited.then((exit) => {
    if (stopping) return;
    void fail(`the ${child.name} (pid ${child.process.pid}) exited unexpectedly ${describeExit(exit)}; stopping`, 1);
  });
}

async function start(): Promise<void> {
  // The app first: the proxy must know its port, which may be ephemeral (APP_PORT=0).
  const app = forkChild('app', entryPoint('../server/main'), env);
  children.push(app);
  const appReady = await waitReady(app, 'app-ready', READY_TIMEOUT_MS);
  const proxy = forkChild('proxy', entryPoint('../proxy/main'), { ...env, APP_URL: `http://${hostForUrl(appReady.host)}:${appReady.port}` });
  children.push(proxy);
  const proxyReady = await waitReady(proxy, 'proxy-ready', READY_TIMEOUT_MS);
  // Now the control port is known (CONTROL_PORT may be 0 too): the app's relay starts publishing.
  const connect: ConnectProxy = { type: 'connect-proxy', controlUrl: `http://${hostForUrl(proxyReady.controlHost)}:${proxyReady.controlPort}` };
  app.process.send(connect);
  watch(app);
  watch(proxy);
  logger.info({ launcher: process.pid, app: app.process.pid, proxy: proxy.process.pid }, 'app and proxy running as child processes');
  process.stdout.write(
    `comet-chat is running at http://${hostForUrl(proxyReady.clientHost)}:${proxyReady.clientPort}/ ` +
      `(app on port ${appReady.port}, control API on port ${proxyReady.controlPort})\n`,
  );
}

try {
  await start();
} catch (err) {
  // A child that exits with 2 found bad configuration the checks above did not; pass that on.
  const code = err instanceof ChildExitedError && err.exit.code === 2 ? 2 : 1;
  await fail(`cannot start: ${(err as Error).message}`, code);
}
