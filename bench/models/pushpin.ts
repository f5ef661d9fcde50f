/**
 * Pushpin 1.36 (the Debian package) in front of this repository's chat app:
 * the same app and hold instructions as Suspend & Push, with Fastly's GRIP
 * proxy in place of ours. A private instance: its own config directory, run
 * directory and logs in the load point's work directory, its own zurl (the
 * package's internal.conf expects a system-wide one), nothing on Pushpin's
 * default ports.
 *
 * The runner (`pushpin`) starts condure (client HTTP), zurl (HTTP to the app),
 * pushpin-proxy and pushpin-handler (publish API, subscriptions) and stops them
 * on SIGTERM. It runs in its own process group so none can outlive a stop.
 *
 * Behaviour to know when reading its figures (seen here with 1.36):
 * - Pushpin raises a `Grip-Timeout` below 5 s to 5 s (MINIMUM_RESPONSE_TIMEOUT in
 *   its handler/instruct.cpp), so a load point's hold timeout under 5 s does not apply.
 * - The first poll on a channel the handler has not subscribed to lately
 *   (`subscription_linger`, 60 s) is re-asked of the app about 1 s after it parks
 *   ("accept retry" in its log), which restarts its hold timer.
 * - parked() is undefined: its stats count connections, not parked requests, and
 *   only every `stats_report_interval`.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ChildProcessError,
  findExecutable,
  freePort,
  httpGet,
  jsonLine,
  logTail,
  mentionsPortClash,
  missingBuild,
  retryOnPortClash,
  serverEnv,
  spawnChild,
  stopAll,
  waitForLogLine,
  waitUntil,
  type ManagedChild,
} from './child-process.js';
import { writePushpinConfig } from './pushpin-config.js';
import type { RunningTarget, Target, TargetStartOptions } from './target.js';

export { pushpinConfig, writePushpinConfig, type PushpinConfigInput } from './pushpin-config.js';

/** How long Pushpin and the app may take to answer through each other, ms. */
const READY_TIMEOUT_MS = 30_000;
/**
 * Longest run directory used for Pushpin's ZeroMQ ipc sockets: a Unix socket
 * path holds at most 107 bytes and the longest name is ~30. A longer work
 * directory gets its run directory under the system temp directory instead.
 */
const RUNDIR_MAX_CHARS = 70;

/** A secret the app accepts (hex, so it is the same bytes as Pushpin's plain-string sig_key). */
function newSecret(): string {
  return randomBytes(32).toString('hex');
}

async function startOnce(options: TargetStartOptions): Promise<RunningTarget> {
  const [httpPort, publishPort, appPort] = [await freePort(), await freePort(), await freePort()];
  const configDir = join(options.workDir, 'pushpin');
  const logDir = join(configDir, 'log');
  mkdirSync(logDir, { recursive: true });
  const localRunDir = join(configDir, 'run');
  const ownTmpRunDir = localRunDir.length > RUNDIR_MAX_CHARS;
  const runDir = ownTmpRunDir ? mkdtempSync(join(tmpdir(), 'pushpin-run-')) : localRunDir;
  mkdirSync(runDir, { recursive: true });
  const secret = newSecret();
  writePushpinConfig(configDir, { runDir, logDir, httpPort, publishPort, appPort, sigKey: secret, maxClients: options.maxClients });

  const children: ManagedChild[] = [];
  const cleanUp = async (): Promise<void> => {
    await stopAll(children);
    if (ownTmpRunDir) rmSync(runDir, { recursive: true, force: true });
  };
  try {
    const pushpin = await spawnChild({
      name: 'pushpin',
      command: findExecutable('pushpin') ?? 'pushpin',
      args: ['--config', join(configDir, 'pushpin.conf')],
      cwd: configDir,
      env: serverEnv({}),
      logPath: join(options.workDir, 'pushpin.log'),
      processGroup: true,
    });
    children.push(pushpin);
    const app = await spawnChild({
      name: 'app',
      command: process.execPath,
      args: [...(options.nodeArgs ?? []), join(options.root, 'dist/server/main.js')],
      cwd: options.root,
      env: serverEnv({
        GRIP_SECRET: secret,
        // Pushpin's publish endpoint ignores it; the app needs one to publish at all.
        CONTROL_SECRET: newSecret(),
        LOG_LEVEL: 'info',
        APP_HOST: '127.0.0.1',
        APP_PORT: String(appPort),
        DB_PATH: join(options.workDir, 'chat.db'),
        // Pushpin's publish endpoint speaks the same `POST /publish/` items; it ignores the Bearer token.
        PROXY_CONTROL_URL: `http://127.0.0.1:${publishPort}`,
        // Pushpin parses Grip-Timeout as an integer (a decimal fails the hold): whole seconds only.
        HOLD_TIMEOUT_S: String(Math.max(1, Math.ceil(options.holdTimeoutS))),
        POSTS_PER_MINUTE: '0',
        SESSIONS_PER_MINUTE_PER_ADDRESS: '0',
      }),
      logPath: join(options.workDir, 'app.log'),
    });
    children.push(app);
    await waitForLogLine(app, jsonLine('chat app listening'), READY_TIMEOUT_MS);
    const clientUrl = `http://127.0.0.1:${httpPort}`;
    // Ready when a request makes the whole trip (condure, proxy, zurl, app and back) and the publish API answers.
    await waitUntil(
      'Pushpin did not pass a request to the app',
      async () => {
        const { status, text } = await httpGet(`${clientUrl}/api/session`, 2000);
        return status === 401 && text.includes('APP_ERR_NO_SESSION');
      },
      { timeoutMs: READY_TIMEOUT_MS, intervalMs: 100, children },
    );
    await waitUntil(
      "Pushpin's publish API did not answer",
      async () => (await httpGet(`http://127.0.0.1:${publishPort}/publish/`, 2000)).status < 500,
      { timeoutMs: READY_TIMEOUT_MS, intervalMs: 100, children },
    );
    return {
      clientUrl,
      publishUrl: clientUrl,
      pids: () => [pushpin.pid, app.pid],
      roles: () => ({ pushpin: pushpin.pid, app: app.pid }),
      countsParked: false,
      parked: async () => undefined,
      stop: cleanUp,
    };
  } catch (err) {
    await cleanUp();
    throw withServiceLogs(err, logDir);
  }
}

/**
 * The runner's own log only says a service "exited unexpectedly"; the reason
 * (a port taken meanwhile, a bad setting) is in that service's log: add their
 * tails to the error, and mark a port clash so the start is retried.
 */
function withServiceLogs(err: unknown, logDir: string): unknown {
  if (!(err instanceof ChildProcessError)) return err;
  let tails = '';
  try {
    for (const file of readdirSync(logDir)) tails += `\n--- ${file}:\n${logTail(join(logDir, file), 1000)}`;
  } catch {
    return err;
  }
  return new ChildProcessError(err.code, `${err.message}${tails}`, err.portClash || mentionsPortClash(tails));
}

export const pushpinTarget: Target = {
  name: 'pushpin',
  title: 'Pushpin 1.36 + chat app',
  kind: 'external',
  protocol: 'chat-long-poll',
  async unavailable() {
    const missing = ['pushpin', 'condure', 'zurl', 'pushpin-proxy', 'pushpin-handler'].filter((bin) => findExecutable(bin) === null);
    if (missing.length > 0) return `pushpin is not installed (${missing.join(', ')} not on PATH; apt-get install -y pushpin)`;
    return missingBuild(['dist/server/main.js']);
  },
  start: (options) => retryOnPortClash(() => startOnce(options)),
};
