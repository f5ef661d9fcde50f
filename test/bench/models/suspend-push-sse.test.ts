/**
 * The `suspend-push-sse` target run for real through the harness, as a user runs it (`npm run bench -- --smoke
 * --models suspend-push-sse`): our proxy and app (dist/, so `npm run build` first), subscribers reading the chat
 * app's SSE stream in worker processes. Every published message reaches every subscriber once, in order, and the
 * stream requests are counted (one per (re)connection, opened before the measured window).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { RunResult } from '../../../bench/lab/results.js';
import { sseSuspendPushTarget } from '../../../bench/models/suspend-push.js';

const RUN_TIMEOUT_MS = 180_000;

test('suspend-push-sse delivers every message once, in order, over streams', { timeout: RUN_TIMEOUT_MS + 30_000 }, async (t) => {
  assert.equal(await sseSuspendPushTarget.unavailable(), null, 'npm run build first');
  const out = mkdtempSync(join(tmpdir(), 'lab-sse-'));
  t.after(() => rmSync(out, { recursive: true, force: true }));
  const args = ['--import', 'tsx', 'bench/lab/main.ts', '--smoke', '--models', 'suspend-push-sse', '--clients', '20', '--out', out, '--no-progress'];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  clearTimeout(timer);
  assert.equal(code, 0, stderr);

  const [dir] = readdirSync(out);
  const run = JSON.parse(readFileSync(join(out, dir!, 'results.json'), 'utf8')) as RunResult;
  const point = run.points.find((p) => p.target === 'suspend-push-sse');
  assert.ok(point, 'a point for the target');
  assert.equal(point.status, 'ok', point.error);
  assert.equal(point.protocol, 'chat-sse');
  const s = point.subscribers!;
  assert.ok(point.publisher!.published > 0, 'something was published');
  assert.equal(s.expectedDeliveries, 20 * point.publisher!.published / point.rooms, 'every subscriber expects its room');
  assert.equal(s.deliveries, s.expectedDeliveries);
  assert.equal(s.lost, 0);
  assert.equal(s.duplicated, 0);
  assert.equal(s.outOfOrder, 0);
  assert.equal(s.errors, 0, JSON.stringify(s.badStatuses));
  assert.ok(s.latency.count > 0 && s.bytes > 0);
  // Streams open before the window and stay open: at most a reopen per resync inside it.
  assert.ok(s.requests <= (s.resyncs ?? 0), `requests ${s.requests}, resyncs ${s.resyncs ?? 0}`);
  assert.ok(point.cost!.total!.cpuS! > 0, 'the target\'s CPU was read');
});
