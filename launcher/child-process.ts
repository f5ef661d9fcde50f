/**
 * One child of `npm start`: a built entry point (server/main or proxy/main)
 * forked with the launcher's env plus the IPC marker, awaited until it says it
 * is ready, stopped with SIGTERM and a deadline.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LAUNCHED_ENV, type ChildMessage } from '../common/launcher-ipc.js';

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface LaunchedChild {
  name: string;
  process: ChildProcess;
  /** Settles once, when the child has exited. */
  exited: Promise<ChildExit>;
  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. Resolves with its exit. */
  stop(graceMs: number): Promise<ChildExit>;
}

/**
 * The sibling entry point `relative` (e.g. `../server/main`) next to this file: `.js` in dist/,
 * `.ts` under tsx (whose `--import tsx` the child inherits through execArgv).
 */
export function entryPoint(relative: string): string {
  const here = fileURLToPath(import.meta.url);
  return fileURLToPath(new URL(`${relative}${extname(here)}`, import.meta.url));
}

export function forkChild(name: string, entry: string, env: NodeJS.ProcessEnv): LaunchedChild {
  const child = fork(entry, [], {
    env: { ...env, [LAUNCHED_ENV]: '1' },
    // Logs go where the launcher's go. Secrets stay in env, never in argv (`ps` shows argv).
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    // Its own process group: a terminal's Ctrl-C reaches only the launcher, which stops the
    // proxy before the app. If the launcher dies, the IPC channel closes and the child follows.
    detached: true,
  });
  const exited = new Promise<ChildExit>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const stop = async (graceMs: number): Promise<ChildExit> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    try {
      return await exited;
    } finally {
      clearTimeout(timer);
    }
  };
  return { name, process: child, exited, stop };
}

/** The child's first message of `type`; rejects if it exits (or `timeoutMs` passes) first. */
export async function waitReady<T extends ChildMessage['type']>(
  child: LaunchedChild,
  type: T,
  timeoutMs: number,
): Promise<Extract<ChildMessage, { type: T }>> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  try {
    const ready = new Promise<Extract<ChildMessage, { type: T }>>((resolve) => {
      const onMessage = (m: unknown): void => {
        if ((m as { type?: unknown } | null)?.type !== type) return;
        child.process.off('message', onMessage);
        resolve(m as Extract<ChildMessage, { type: T }>);
      };
      child.process.on('message', onMessage);
    });
    const died = child.exited.then((exit) => {
      throw new ChildExitedError(child.name, exit);
    });
    const timedOut = once(ac.signal, 'abort').then(() => {
      throw new Error(`the ${child.name} did not get ready within ${timeoutMs} ms`);
    });
    return await Promise.race([ready, died, timedOut]);
  } finally {
    clearTimeout(timer);
    ac.abort();
  }
}

export class ChildExitedError extends Error {
  constructor(
    readonly childName: string,
    readonly exit: ChildExit,
  ) {
    super(`the ${childName} exited ${describeExit(exit)}`);
  }
}

export function describeExit(exit: ChildExit): string {
  return exit.signal !== null ? `on ${exit.signal}` : `with code ${exit.code}`;
}
