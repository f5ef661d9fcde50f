/**
 * The short soak as a user runs it: `npm run soak -- --smoke` is the lab's `--scenario soak` (bench/lab/soak/)
 * on the suspend-push target (dist/, so `npm run build` first), 200 clients in a lab load worker, the proxy and
 * the app restarted mid-run, every delivery checked against the database.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { suspendPushTarget } from '../../bench/models/suspend-push.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface SoakReport {
  ok: boolean;
  failures: string[];
  target: string;
  provenance: { git: { commit: string | null } };
  committed: { messages: number };
  deliveries: { expected: number; delivered: number; lost: number; duplicated: number; unknown: number };
  parkedAtEnd: number;
  clients: { total: number; postsOk: number; joins: number; leaves: number; aborts: number };
  restarts: Array<{ target: string; exitCode: number | null }>;
  memory: { proxy: { beforeRssBytes: number | null; afterRssBytes: number | null; pidBefore: number; pidAfter: number }; app: { beforeRssBytes: number | null; pidBefore: number; pidAfter: number } };
}

test('the short soak (200 clients, proxy and app restarted mid-run) loses nothing, duplicates nothing and leaves nothing parked', { timeout: 120_000 }, async (t) => {
  assert.equal(await suspendPushTarget.unavailable(), null, 'npm run build first');
  const out = mkdtempSync(join(tmpdir(), 'comet-soak-test-'));
  t.after(() => rmSync(out, { recursive: true, force: true }));
  // Its own process group: whatever happens, the after-hook can take down the app, the proxy
  // and the load workers it started along with it.
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/lab/main.ts'), '--scenario', 'soak', '--smoke', '--out', out, '--no-progress'], {
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
  const [dir] = readdirSync(out);
  assert.ok(dir !== undefined, output);
  const report = JSON.parse(readFileSync(join(out, dir, 'soak-suspend-push.json'), 'utf8')) as SoakReport;
  t.diagnostic(output.split('\n').filter((line) => line.startsWith('|')).join('\n'));
  assert.deepEqual(report.failures, [], output);
  assert.equal(code, 0, output);
  assert.equal(report.ok, true);
  assert.equal(report.target, 'suspend-push');
  assert.match(report.provenance.git.commit ?? '', /^[0-9a-f]{40}$/, 'the report carries the commit');
  assert.ok(report.committed.messages > 0, 'messages were committed');
  assert.ok(report.deliveries.expected > 0);
  assert.equal(report.deliveries.lost, 0);
  assert.equal(report.deliveries.duplicated, 0);
  assert.equal(report.deliveries.unknown, 0);
  assert.equal(report.deliveries.delivered, report.deliveries.expected);
  assert.equal(report.parkedAtEnd, 0);
  assert.equal(report.clients.total, 200);
  // The churn happened: the soak's client kind posted, joined, left and aborted polls.
  assert.ok(report.clients.postsOk > 0 && report.clients.joins > 200 && report.clients.aborts > 0, JSON.stringify(report.clients));
  assert.deepEqual(report.restarts.map((r) => [r.target, r.exitCode]), [['proxy', 0], ['app', 0]]);
  // Restarted for real: new processes at the end.
  assert.notEqual(report.memory.proxy.pidAfter, report.memory.proxy.pidBefore);
  assert.notEqual(report.memory.app.pidAfter, report.memory.app.pidBefore);
  assert.ok((report.memory.proxy.beforeRssBytes ?? 0) > 0 && (report.memory.app.beforeRssBytes ?? 0) > 0, 'memory was measured');
});
