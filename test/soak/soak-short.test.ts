import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface SoakReport {
  ok: boolean;
  failures: string[];
  committed: { messages: number };
  deliveries: { expected: number; delivered: number; lost: number; duplicated: number; unknown: number };
  parkedAtEnd: number;
  restarts: Array<{ target: string; exitCode: number | null }>;
  memory: { proxy: { beforeRssBytes: number | null; afterRssBytes: number | null }; app: { beforeRssBytes: number | null } };
}

test('the short soak (200 clients, proxy and app restarted mid-run) loses nothing, duplicates nothing and leaves nothing parked', { timeout: 90_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'comet-soak-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, 'report.json');
  // Its own process group: whatever happens, the after-hook can take down the app, the proxy
  // and the load generators it started along with it.
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/soak/main.ts'), '--short', '--out', out], {
    cwd: ROOT,
    env: { PATH: process.env.PATH },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      process.kill(-child.pid!, 'SIGKILL');
      await exited;
    }
  });
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));

  const [code] = await exited;
  const report = JSON.parse(readFileSync(out, 'utf8')) as SoakReport;
  t.diagnostic(output.split('\n').filter((line) => line.startsWith('|')).join('\n'));
  assert.deepEqual(report.failures, [], output);
  assert.equal(code, 0, output);
  assert.equal(report.ok, true);
  assert.ok(report.committed.messages > 0, 'messages were committed');
  assert.ok(report.deliveries.expected > 0);
  assert.equal(report.deliveries.lost, 0);
  assert.equal(report.deliveries.duplicated, 0);
  assert.equal(report.deliveries.unknown, 0);
  assert.equal(report.deliveries.delivered, report.deliveries.expected);
  assert.equal(report.parkedAtEnd, 0);
  assert.deepEqual(report.restarts.map((r) => [r.target, r.exitCode]), [['proxy', 0], ['app', 0]]);
  assert.ok((report.memory.proxy.beforeRssBytes ?? 0) > 0 && (report.memory.app.beforeRssBytes ?? 0) > 0, 'memory was measured');
});
