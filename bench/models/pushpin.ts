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
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
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
import type { RunningTarget, Target, TargetStartOptions } from './target.js';

/** How long Pushpin and the app may take to answer through each other, ms. */
const READY_TIMEOUT_MS = 30_000;
/**
 * Longest run directory used for Pushpin's ZeroMQ ipc sockets: a Unix socket
 * path holds at most 107 bytes and the longest name is ~30. A longer work
 * directory gets its run directory under the system temp directory instead.
 */
const RUNDIR_MAX_CHARS = 70;

export interface PushpinConfigInput {
  /** ZeroMQ ipc sockets and pid files. */
  runDir: string;
  /** Logs of the four services. */
  logDir: string;
  /** Client HTTP port (condure). */
  httpPort: number;
  /** Publish API port (the handler's HTTP control server). */
  publishPort: number;
  /** The app's port: the only route. */
  appPort: number;
  /** Shared with the app: Pushpin signs `Grip-Sig` with it (HS256). */
  sigKey: string;
  maxClients: number;
}

/** pushpin.conf for a private instance (the routes file sits next to it). Pure: the one place its settings are chosen. */
export function pushpinConfig(input: PushpinConfigInput): string {
  // Room for every subscriber, the publisher and connections still closing between polls. Sized to the load
  // point, not left at the default 50,000: condure allocates per slot (measured: 10 MB RSS at 1,000, 36 MB at
  // 50,000), which would be charged to Pushpin as memory no subscriber uses.
  const maxConn = Math.max(1000, 2 * input.maxClients + 100);
  return `[global]
include={libdir}/internal.conf
rundir=${input.runDir}
ipc_prefix=pushpin-
port_offset=0

[runner]
# zurl too: the package's internal.conf points at a system-wide zurl that is not running.
services=condure,zurl,pushpin-proxy,pushpin-handler
http_port=127.0.0.1:${input.httpPort}
logdir=${input.logDir}
# 1 = warnings: at 2 (info) every service logs a line per request, which would be measured as Pushpin's cost.
log_level=1
client_buffer_size=8192
client_maxconn=${maxConn}
allow_compression=false

[proxy]
routesfile=routes
# Our own zurl's sockets (its config is generated in rundir), not /var/run/zurl's.
zurl_out_specs=ipc://{rundir}/{ipc_prefix}zurl-in
zurl_out_stream_specs=ipc://{rundir}/{ipc_prefix}zurl-in-stream
zurl_in_specs=ipc://{rundir}/{ipc_prefix}zurl-out
max_open_requests=${maxConn}
debug=false
auto_cross_origin=false
accept_x_forwarded_protocol=false
set_x_forwarded_protocol=proto-only
x_forwarded_for=
x_forwarded_for_trusted=
accept_pushpin_route=false
log_from=false
log_user_agent=false
sig_iss=pushpin
sig_key=${input.sigKey}
updates_check=off

[handler]
# ipc in rundir rather than the default tcp ports 5560/5562/5563, so instances never collide.
push_in_spec=ipc://{rundir}/{ipc_prefix}push-in
push_in_sub_specs=ipc://{rundir}/{ipc_prefix}push-in-sub
push_in_sub_connect=false
push_in_http_addr=127.0.0.1
push_in_http_port=${input.publishPort}
push_in_http_max_headers_size=10000
push_in_http_max_body_size=1000000
stats_spec=ipc://{rundir}/{ipc_prefix}stats
command_spec=ipc://{rundir}/{ipc_prefix}command
# The default 2500 messages/s paces a publish to thousands of parked polls (each delivery is a message):
# 4 s instead of 1 s to reach 10,000 (NOTES.md). The lab measures Pushpin, not its rate limit.
message_rate=1000000
message_hwm=${Math.max(25_000, 4 * input.maxClients)}
message_wait=5000
id_cache_ttl=60
connection_subscription_max=20
subscription_linger=60
stats_subscription_ttl=60
stats_report_interval=10
stats_format=tnetstring
`;
}

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
  writeFileSync(join(configDir, 'pushpin.conf'), pushpinConfig({ runDir, logDir, httpPort, publishPort, appPort, sigKey: secret, maxClients: options.maxClients }));
  writeFileSync(join(configDir, 'routes'), `* 127.0.0.1:${appPort}\n`);

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
