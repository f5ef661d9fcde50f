/**
 * A private Pushpin 1.36 (the Debian package) in front of an app, for interop tests that run one GRIP app
 * behind Pushpin and behind our proxy: own config, run directory and ipc sockets (bench/models/pushpin-config.ts),
 * ephemeral loopback ports, stopped (with its four services) and removed when the test ends. Ready when a plain
 * request makes the whole trip to the app and the publish API answers. Fails, never skips, without Pushpin.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { findExecutable, freePort, logTail, serverEnv, spawnChild } from '../../bench/models/child-process.js';
import { writePushpinConfig } from '../../bench/models/pushpin-config.js';
import { waitFor } from './proxy-harness.js';

/** The binaries its runner starts (services=condure,zurl,pushpin-proxy,pushpin-handler). */
const PUSHPIN_BINARIES = ['pushpin', 'condure', 'zurl', 'pushpin-proxy', 'pushpin-handler'];

export interface PrivatePushpin {
  /** Its client port, `http://127.0.0.1:PORT`. */
  base: string;
  /** Its publish API, `http://127.0.0.1:PORT` (`POST /publish/`, no authentication). */
  publishUrl: string;
}

/**
 * Starts Pushpin routing every request to `appPort`, signing Grip-Sig with `sigKey`; `readyPath` must be answered
 * 200 by the app without a hold. Teardown registered on `t` (`t.after`: runs after the test's own `t.after`s).
 */
export async function startPushpin(t: TestContext, { appPort, sigKey, readyPath }: { appPort: number; sigKey: string; readyPath: string }): Promise<PrivatePushpin> {
  const missing = PUSHPIN_BINARIES.filter((bin) => findExecutable(bin) === null);
  if (missing.length > 0) {
    assert.fail(`Pushpin is required for this interop test and is not installed (${missing.join(', ')} not on PATH): apt-get install -y pushpin (.ci/run does)`);
  }
  // Short path: the ipc sockets live in the run directory (a Unix socket path holds 107 bytes).
  const dir = mkdtempSync(join(tmpdir(), 'pp-'));
  const [configDir, runDir, logDir] = ['conf', 'run', 'log'].map((d) => join(dir, d)) as [string, string, string];
  for (const d of [configDir, runDir, logDir]) mkdirSync(d, { recursive: true });
  const [httpPort, publishPort] = [await freePort(), await freePort()];
  const confPath = writePushpinConfig(configDir, { runDir, logDir, httpPort, publishPort, appPort, sigKey, maxClients: 50 });
  const pushpin = await spawnChild({
    name: 'pushpin',
    command: findExecutable('pushpin')!,
    args: ['--config', confPath],
    cwd: configDir,
    env: serverEnv({}),
    logPath: join(dir, 'pushpin.log'),
    processGroup: true,
  });
  t.after(async () => {
    await pushpin.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const base = `http://127.0.0.1:${httpPort}`;
  const publishUrl = `http://127.0.0.1:${publishPort}`;
  const answers = async (url: string, ok: (status: number) => boolean): Promise<boolean> => {
    if (!pushpin.running()) throw new Error(`pushpin exited during start-up:\n${logTail(pushpin.logPath)}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      return ok(res.status);
    } catch {
      return false; // not listening yet
    }
  };
  await waitFor(() => answers(base + readyPath, (s) => s === 200), { timeoutMs: 30_000, message: 'Pushpin to pass a request to the app' });
  await waitFor(() => answers(`${publishUrl}/publish/`, (s) => s < 500), { timeoutMs: 30_000, message: "Pushpin's publish API" });
  return { base, publishUrl };
}
