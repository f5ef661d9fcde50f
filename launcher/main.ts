/**
 * `npm start`: the embedded default on every core — the chat app (SQLite) and
 * the hold proxy in front of it as two child processes, sharing GRIP_SECRET,
 * CONTROL_SECRET and LEASE_KEY, each generated when it is not set and kept in
 * `secrets.env` next to the database for the operator and the next start
 * (launcher/secrets.ts). Prints the page's URL (launcher/page-url.ts).
 * Reads the same environment as `npm run proxy` and `npm run server` (see the
 * README's configuration table).
 *
 * Exit codes: 0 after SIGTERM/SIGINT (proxy stopped first, then the app), 2 for
 * bad configuration (reported before any child starts), 1 when a child fails to
 * start or dies while running (the other is stopped too; a process manager
 * above restarts the whole pair, docs/operations.md).
 */
import { pino } from 'pino';
import { LOG_REDACT } from '../common/log-redact.js';
import { hostForUrl, type ConnectProxy } from '../common/launcher-ipc.js';
import { appOptionsFromEnv } from '../server/config.js';
import { DEFAULT_APP_OPTIONS, resolveAppOptions, type AppOptions } from '../server/options.js';
import { proxyOptionsFromEnv } from '../proxy/config.js';
import { resolveProxyOptions } from '../proxy/options.js';
import { pageUrl } from './page-url.js';
import { provideSecrets, type ProvidedSecrets } from './secrets.js';
import { ChildExitedError, describeExit, entryPoint, forkChild, waitReady, type LaunchedChild } from './child-process.js';

/** How long a child may take to listen, and to stop after SIGTERM before SIGKILL. */
const READY_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 10_000;

// An invalid LOG_LEVEL is reported by the config readers below; until then log at info.
const wanted = process.env.LOG_LEVEL || 'info';
const level = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(wanted) ? wanted : 'info';
const logger = pino({ name: 'comet-chat', level, redact: LOG_REDACT });
const env = { ...process.env };
let secrets: ProvidedSecrets;
let appOptions: AppOptions;
// Both configurations are checked here, before anything starts, so a bad value is exit 2 with
// nothing to clean up (each child validates again; it reads the same env).
try {
  // Each secret not given comes from secrets.env beside the database, or is generated (each its own: the
  // Grip-Sig key, the control credential and the lease key must differ, docs/protocol.md §7, §13) and saved
  // there. The children get them in env, never in argv (`ps` shows argv).
  secrets = provideSecrets(env, env.DB_PATH || DEFAULT_APP_OPTIONS.dbPath);
  appOptions = resolveAppOptions({ ...appOptionsFromEnv(env, []), logger });
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
  const base = appOptions.baseDomain;
  const lines = [
    `comet-chat is running at ${pageUrl({ clientHost: proxyReady.clientHost, clientPort: proxyReady.clientPort, baseDomain: base })} ` +
      `(app on port ${appReady.port}, control API on port ${proxyReady.controlPort})`,
  ];
  if (base !== undefined) {
    lines.push(
      `  open it as ${base}, not 127.0.0.1 (the session cookie belongs to ${base}); ${base}` +
        (appOptions.shardCount > 0 ? ` and c1..c${appOptions.shardCount}.${base}` : '') +
        ' must resolve to this machine (a hosts entry; README, "Many rooms in one page")',
    );
  }
  if (secrets.path !== null) {
    const made = secrets.generated.length > 0 ? `${secrets.generated.join(', ')} generated` : '';
    const kept = secrets.reused.length > 0 ? `${secrets.reused.join(', ')} reused` : '';
    const control = [...secrets.generated, ...secrets.reused].includes('CONTROL_SECRET')
      ? `; paste its CONTROL_SECRET into the status page, http://${hostForUrl(proxyReady.controlHost)}:${proxyReady.controlPort}/status`
      : '';
    lines.push(`  secrets not set in the environment (${[made, kept].filter(Boolean).join('; ')}) are in ${secrets.path} (mode 0600)${control}`);
  }
  process.stdout.write(lines.join('\n') + '\n');
}

try {
  await start();
} catch (err) {
  // A child that exits with 2 found bad configuration the checks above did not; pass that on.
  const code = err instanceof ChildExitedError && err.exit.code === 2 ? 2 : 1;
  await fail(`cannot start: ${(err as Error).message}`, code);
}
