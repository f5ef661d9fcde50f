/**
 * Nchan 1.3.6 (Debian's nginx + libnginx-mod-nchan): nginx's pub/sub module
 * with its own long-poll protocol (`nchan-long-poll`: `GET /sub/<room>`,
 * resumed with If-Modified-Since / If-None-Match; `POST /pub/<room>`). A
 * private nginx: its own config, pid, logs and temp paths in the work
 * directory, in the foreground (`daemon off`), so the master is our child and
 * the workers its descendants.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findExecutable, freePort, httpGet, portAccepts, retryOnPortClash, serverEnv, spawnChild, waitUntil } from './child-process.js';
import type { RunningTarget, Target, TargetStartOptions } from './target.js';

/** The Debian package's module path. */
export const NCHAN_MODULE = '/usr/lib/nginx/modules/ngx_nchan_module.so';
/** How long nginx may take to answer its status location, ms. */
const READY_TIMEOUT_MS = 20_000;
/** Deadline of one status read, ms. */
const STATUS_TIMEOUT_MS = 2000;
/** Messages kept per channel, so a subscriber never resumes from a point that already left the buffer. */
const MESSAGE_BUFFER_LENGTH = 100_000;

export interface NchanConfigInput {
  /** Prefix directory: pid, logs, temp paths. */
  dir: string;
  port: number;
  /** Rounded up to whole seconds: nchan_subscriber_timeout takes seconds only ("2000ms" is refused). */
  holdTimeoutS: number;
}

/** nginx's string syntax: quoted, so a work directory with spaces still parses. */
function q(text: string): string {
  return `"${text.replace(/["\\]/g, '\\$&')}"`;
}

/** nginx.conf for a private Nchan. Pure: the one place its settings are chosen. */
export function nchanConfig(input: NchanConfigInput): string {
  const d = (name: string): string => q(join(input.dir, name));
  return `load_module ${q(NCHAN_MODULE)};
# Foreground, so the harness owns the master's pid; workers are its children.
daemon off;
master_process on;
worker_processes 2;
# The machine's hard cap per process (NOTES.md): one worker can hold ~20k sockets.
worker_rlimit_nofile 20000;
pid ${d('nginx.pid')};
lock_file ${d('nginx.lock')};
error_log ${d('error.log')} warn;

events {
  worker_connections 20000;
}

http {
  access_log off;
  client_body_temp_path ${d('tmp/body')};
  proxy_temp_path ${d('tmp/proxy')};
  fastcgi_temp_path ${d('tmp/fastcgi')};
  uwsgi_temp_path ${d('tmp/uwsgi')};
  scgi_temp_path ${d('tmp/scgi')};
  # nginx closes a keep-alive connection after 1000 requests by default; Node's servers never do, and a
  # long-poll client reconnecting every 1000 messages would count against Nchan.
  keepalive_requests 1000000;

  server {
    # The same accept queue as our proxy's (LISTEN_BACKLOG 4096): nginx's default of 511 drops SYNs in a
    # 10,000-connection storm and the clients' retransmits (1, 3, 7 s) would be counted against Nchan.
    listen 127.0.0.1:${input.port} backlog=4096;

    location ~ ^/sub/(.+)$ {
      nchan_subscriber longpoll;
      nchan_channel_id $1;
      nchan_subscriber_timeout ${Math.max(1, Math.ceil(input.holdTimeoutS))}s;
      nchan_longpoll_multipart_response on;
    }

    location ~ ^/pub/(.+)$ {
      nchan_publisher;
      nchan_channel_id $1;
      nchan_message_buffer_length ${MESSAGE_BUFFER_LENGTH};
      nchan_message_timeout 10m;
    }

    location = /nchan_status {
      nchan_stub_status;
    }
  }
}
`;
}

/** `subscribers: N` from nchan_stub_status text, or undefined. */
export function subscribersFromStatus(text: string): number | undefined {
  const match = /^subscribers: (\d+)$/m.exec(text);
  return match ? Number(match[1]) : undefined;
}

async function startOnce(options: TargetStartOptions): Promise<RunningTarget> {
  const port = await freePort();
  const dir = options.workDir;
  mkdirSync(join(dir, 'tmp'), { recursive: true });
  const confPath = join(dir, 'nginx.conf');
  writeFileSync(confPath, nchanConfig({ dir, port, holdTimeoutS: options.holdTimeoutS }));
  const nginx = await spawnChild({
    name: 'nginx',
    command: findExecutable('/usr/sbin/nginx') ?? findExecutable('nginx') ?? '/usr/sbin/nginx',
    // -e: the error log before the config is read (the compiled-in one may be a system path).
    args: ['-p', dir, '-c', confPath, '-e', join(dir, 'error.log')],
    cwd: dir,
    env: serverEnv({}),
    logPath: join(dir, 'nginx.log'),
    processGroup: true,
  });
  const statusUrl = `http://127.0.0.1:${port}/nchan_status`;
  try {
    await waitUntil(
      'nginx did not answer /nchan_status',
      async () => (await portAccepts(port)) && subscribersFromStatus((await httpGet(statusUrl, STATUS_TIMEOUT_MS)).text) !== undefined,
      { timeoutMs: READY_TIMEOUT_MS, intervalMs: 50, children: [nginx] },
    );
  } catch (err) {
    await nginx.stop();
    throw err;
  }
  const base = `http://127.0.0.1:${port}`;
  return {
    clientUrl: base,
    publishUrl: base,
    pids: () => [nginx.pid],
    roles: () => ({ nginx: nginx.pid }),
    countsParked: true,
    async parked() {
      try {
        const { status, text } = await httpGet(statusUrl, STATUS_TIMEOUT_MS);
        return status === 200 ? subscribersFromStatus(text) : undefined;
      } catch {
        return undefined;
      }
    },
    stop: () => nginx.stop(),
  };
}

export const nchanTarget: Target = {
  name: 'nchan',
  title: 'Nchan 1.3.6',
  kind: 'external',
  protocol: 'nchan-long-poll',
  async unavailable() {
    if (findExecutable('/usr/sbin/nginx') === null && findExecutable('nginx') === null) return 'nginx is not installed (apt-get install -y nginx)';
    if (!existsSync(NCHAN_MODULE)) return `the Nchan module is not installed (${NCHAN_MODULE}; apt-get install -y libnginx-mod-nchan)`;
    return null;
  },
  start: (options) => retryOnPortClash(() => startOnce(options)),
};
