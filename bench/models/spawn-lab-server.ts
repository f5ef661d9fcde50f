/**
 * The targets that are one in-process lab server (bench/models/lab-server.ts):
 * models 1, 2 and 4 and the baselines, each run by `serve.js` in its own child
 * process. Compiled JavaScript, not tsx, so the measured process carries no
 * TypeScript compiler.
 */
import { join } from 'node:path';
import { httpGet, missingBuild, serverEnv, spawnChild, waitForLogLine, type ManagedChild } from './child-process.js';
import { LAB_STATS_PATH } from './lab-server.js';
import type { ClientProtocol, RunningTarget, Target, TargetKind, TargetStartOptions } from './target.js';

/** The compiled entry point, relative to the repository root. */
const SERVE_JS = 'dist/bench/models/serve.js';
/** How long serve.js may take to print its port, ms. */
const READY_TIMEOUT_MS = 20_000;
/** Deadline of one stats read, ms. */
const STATS_TIMEOUT_MS = 2000;

export interface LabServerTargetSpec {
  name: string;
  title: string;
  kind: TargetKind;
  protocol: ClientProtocol;
  /** serve.js `--model`. */
  model: string;
  /** serve.js `--mode`, for servers with variants. */
  mode?: string;
}

/** The ready line serve.js prints: `{"msg":"lab server listening","port":N}`; the port, or undefined for any other line. */
function listeningPort(line: string): number | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const parsed = JSON.parse(line) as { msg?: unknown; port?: unknown };
    return parsed.msg === 'lab server listening' && typeof parsed.port === 'number' ? parsed.port : undefined;
  } catch {
    return undefined;
  }
}

async function start(spec: LabServerTargetSpec, options: TargetStartOptions): Promise<RunningTarget> {
  const args = [
    ...(options.nodeArgs ?? []),
    join(options.root, SERVE_JS),
    '--model',
    spec.model,
    ...(spec.mode === undefined ? [] : ['--mode', spec.mode]),
    '--db',
    join(options.workDir, 'lab.db'),
    '--hold-timeout-s',
    String(options.holdTimeoutS),
  ];
  const server: ManagedChild = await spawnChild({
    name: spec.name,
    command: process.execPath,
    args,
    cwd: options.root,
    env: serverEnv({}),
    logPath: join(options.workDir, `${spec.name}.log`),
  });
  let port: number;
  try {
    port = await waitForLogLine(server, listeningPort, READY_TIMEOUT_MS);
  } catch (err) {
    await server.stop();
    throw err;
  }
  const clientUrl = `http://127.0.0.1:${port}`;
  return {
    clientUrl,
    publishUrl: clientUrl,
    pids: () => [server.pid],
    roles: () => ({ server: server.pid }),
    countsParked: true,
    async parked() {
      try {
        const { status, text } = await httpGet(`${clientUrl}${LAB_STATS_PATH}`, STATS_TIMEOUT_MS);
        const parked = status === 200 ? (JSON.parse(text) as { parked?: unknown }).parked : undefined;
        return typeof parked === 'number' ? parked : undefined;
      } catch {
        return undefined;
      }
    },
    stop: () => server.stop(),
  };
}

/** A target run by `node dist/bench/models/serve.js --model <model> [--mode <mode>]`, one process (role `server`). */
export function labServerTarget(spec: LabServerTargetSpec): Target {
  return {
    name: spec.name,
    title: spec.title,
    kind: spec.kind,
    protocol: spec.protocol,
    async unavailable() {
      return missingBuild([SERVE_JS]);
    },
    start: (options) => start(spec, options),
  };
}
