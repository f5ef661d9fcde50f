/**
 * The lab's issue-7 scenarios through the real harness, at smoke size: the
 * connection storm (`--scenario park`) and the fan-out rounds
 * (`--scenario fanout`), on our Suspend & Push and on Nchan (installed by
 * .ci/run). Figures are not asserted (they belong in docs/performance.md);
 * what each scenario must record, and that nothing is lost, is.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { RunResult } from '../../../bench/lab/results.js';
import { nchanTarget } from '../../../bench/models/nchan.js';

const RUN_TIMEOUT_MS = 300_000;
const CLIENTS = 40;
const ROUNDS = 3;

async function runLab(out: string, args: string[]): Promise<{ code: number | null; stderr: string; run: RunResult; markdown: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/lab/main.ts', '--smoke', '--out', out, '--no-progress', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  clearTimeout(timer);
  const dirs = readdirSync(out);
  assert.equal(dirs.length, 1, `one run directory expected; stderr:\n${stderr}`);
  return {
    code,
    stderr,
    run: JSON.parse(readFileSync(join(out, dirs[0]!, 'results.json'), 'utf8')) as RunResult,
    markdown: readFileSync(join(out, dirs[0]!, 'results.md'), 'utf8'),
  };
}

/** Nchan must run in CI (.ci/run installs it); elsewhere a machine without it runs our target only. */
async function models(): Promise<string> {
  const reason = await nchanTarget.unavailable();
  if (reason !== null && process.env.CI === 'true') throw new Error(`CI must have Nchan: ${reason}`);
  return reason === null ? 'suspend-push,nchan' : 'suspend-push';
}

describe('lab scenarios', { timeout: 2 * RUN_TIMEOUT_MS + 60_000 }, () => {
  const dirs: string[] = [];
  after(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });
  const outDir = (): string => {
    const dir = mkdtempSync(join(tmpdir(), 'lab-scenario-'));
    dirs.push(dir);
    return dir;
  };

  test('park: every subscriber opens its poll in one burst; time, errors and memory per parked request per role are recorded', async () => {
    const { code, stderr, run } = await runLab(outDir(), ['--scenario', 'park', '--models', await models(), '--clients', String(CLIENTS)]);
    assert.equal(code, 0, stderr);
    assert.ok(run.points.length >= 1);
    for (const point of run.points) {
      assert.equal(point.status, 'ok', point.error);
      assert.equal(point.scenario, 'park');
      assert.equal(point.parkedReached, CLIENTS, `${point.target}: every subscriber parked`);
      assert.ok(point.park !== undefined && point.park.ms > 0 && point.park.requests >= CLIENTS, JSON.stringify(point.park));
      assert.equal(point.park.errors, 0, `${point.target}: no error while parking ${CLIENTS}`);
      assert.equal(point.publisher!.published, 0, 'nothing is published in a storm');
      const roles = point.derived!.memoryPerParkedByRole!;
      assert.ok('total' in roles && Object.keys(roles).length >= 2, JSON.stringify(roles));
      if (point.target === 'suspend-push') assert.ok('proxy' in roles && 'app' in roles);
    }
  });

  test('fanout: one message per round to every parked subscriber, each round timed to its last receipt, nothing lost', async () => {
    const { code, stderr, run, markdown } = await runLab(outDir(), ['--scenario', 'fanout', '--rounds', String(ROUNDS), '--models', await models(), '--clients', String(CLIENTS)]);
    assert.equal(code, 0, stderr);
    for (const point of run.points) {
      assert.equal(point.status, 'ok', point.error);
      assert.equal(point.scenario, 'fanout');
      assert.equal(point.rooms, 1, 'a fan-out is one channel');
      assert.equal(point.publisher!.published, ROUNDS, 'one message per round');
      const s = point.subscribers!;
      assert.equal(s.expectedDeliveries, CLIENTS * ROUNDS);
      assert.equal(s.deliveries, CLIENTS * ROUNDS);
      assert.equal(s.lost, 0);
      assert.equal(s.duplicated, 0);
      const last = s.lastDeliveryMsBySeq!;
      assert.deepEqual(Object.keys(last).sort(), Array.from({ length: ROUNDS }, (_, i) => String(i + 1)));
      for (const ms of Object.values(last)) assert.ok(ms > 0 && ms <= s.latency.max + 1, `last delivery ${ms} ms vs max ${s.latency.max}`);
      // CPU per round: one figure per round, none above the whole window's (each round's share of it, scaled per 1,000).
      const byRound = point.derived!.cpuSPer1000DeliveriesByRound!;
      assert.equal(byRound.length, ROUNDS, JSON.stringify(point.derived));
      const roundsMean = byRound.reduce((a, b) => a + b, 0) / ROUNDS;
      assert.ok(byRound.every((c) => c >= 0) && roundsMean <= point.derived!.cpuSPer1000Deliveries + 1e-9, JSON.stringify(point.derived));
      assert.match(markdown, new RegExp(`\\| ${point.title.replace(/[&]/g, '\\$&')} \\| fanout \\| ${CLIENTS} \\|`), 'the report has the fan-out row');
    }
  });
});
