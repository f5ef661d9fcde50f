/**
 * The scale-out scenario (`--scenario scaleout`, bench/lab/scaleout.ts), which replaced the separate scale-out
 * bench: its figures from readings (pure), its options, and a smoke-sized run through the real harness on one
 * proxy and on two proxies over a private redis-server (dist/, so `npm run build` first). Figures are not
 * asserted (they belong in docs/); what the scenario must record, and that nothing is lost, is.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { LabUsageError, parseLabOptions } from '../../../bench/lab/options.js';
import type { RunResult } from '../../../bench/lab/results.js';
import { scaleoutFigures, type ScaleoutReadings } from '../../../bench/lab/scaleout.js';
import { scaledSuspendPushTarget } from '../../../bench/models/suspend-push.js';

const stats = (parked: number, publishes: number, deliveries: number, reasks = 0): Record<string, number> => ({ parked, publishes, deliveries, reasks, holds: parked });

function readings(over: Partial<ScaleoutReadings> = {}): ScaleoutReadings {
  return {
    clients: 100,
    frontDoors: 2,
    drainWaitMs: 30,
    parkMs: 400,
    lastDeliveryMsBySeq: { '2': 50, '1': 200, '3': 100 },
    reparkMs: [2100, 2050],
    statsAtParkStart: [stats(0, 7, 0), stats(0, 7, 0)],
    statsParked: [stats(50, 7, 0), stats(50, 7, 0)],
    statsAroundRounds: [
      { before: [stats(50, 7, 0), stats(50, 7, 0)], after: [stats(0, 8, 50), stats(0, 8, 50, 1)] },
      { before: [stats(50, 8, 50), stats(50, 8, 50)], after: [stats(0, 9, 100), stats(0, 9, 100)] },
      { before: [stats(50, 9, 100), stats(50, 9, 100)], after: [stats(0, 10, 150), stats(0, 10, 150)] },
    ],
    latency: { p50: 60, p99: 190 },
    lost: 0,
    duplicated: 0,
    ...over,
  };
}

describe('scale-out figures', () => {
  test('rounds follow the publish sequence; fan-out and deliveries/s are medians over the rounds', () => {
    const f = scaleoutFigures(readings());
    assert.deepEqual(f.rounds.map((r) => r.fanoutMs), [200, 50, 100]);
    assert.deepEqual(f.rounds.map((r) => r.deliveriesPerS), [500, 2000, 1000]);
    assert.equal(f.fanoutMsMedian, 100);
    assert.equal(f.deliveriesPerSMedian, 1000);
    assert.equal(f.parkedPerS, 250);
    assert.deepEqual(f.parkedPerFrontDoor, [50, 50]);
  });

  test('each round carries what the proxies counted during it and the re-park wait before the next one', () => {
    const f = scaleoutFigures(readings());
    assert.deepEqual(f.rounds[0], { round: 1, fanoutMs: 200, deliveriesPerS: 500, reparkMs: 2100, frontDoorDeliveries: 100, reasks: 1 });
    assert.equal(f.rounds[2]!.reparkMs, undefined, 'no re-park after the last round');
  });

  test('the proxies\' counters are summed over the timed phases, and each proxy\'s publishes are kept', () => {
    const f = scaleoutFigures(readings());
    assert.deepEqual(f.publishesPerFrontDoor, [3, 3]);
    assert.equal(f.frontDoorTotals!.deliveries, 300);
    assert.equal(f.frontDoorTotals!.publishes, 6);
    assert.equal(f.frontDoorTotals!.busResyncs, 0);
  });

  test('a target without proxy counters still gets its timings, with no per-proxy figures', () => {
    const f = scaleoutFigures(readings({ statsAtParkStart: undefined, statsParked: undefined, statsAroundRounds: [], drainWaitMs: undefined }));
    assert.equal(f.fanoutMsMedian, 100);
    assert.equal(f.parkedPerFrontDoor, undefined);
    assert.equal(f.frontDoorTotals, undefined);
    assert.equal(f.rounds[0]!.frontDoorDeliveries, undefined);
    assert.equal('drainWaitMs' in f, false);
  });
});

describe('scale-out options', () => {
  test('--scenario scaleout fans out to one room by default and refuses another room count', () => {
    const options = parseLabOptions(['--scenario', 'scaleout', '--clients', '2000', '--rounds', '5'], false);
    assert.equal(options.scenario, 'scaleout');
    assert.equal(options.rooms, 1);
    assert.equal(options.rounds, 5);
    assert.throws(() => parseLabOptions(['--scenario', 'scaleout', '--rooms', '2'], false), (err: unknown) => err instanceof LabUsageError && /one room/.test(err.message));
  });

  test('npm run bench:scaleout is the lab with the scale-out scenario on 1, 2 and 3 proxies and a proxy on 2 workers', () => {
    const script = (JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> }).scripts['bench:scaleout']!;
    assert.match(script, /npm run bench .*--scenario scaleout/);
    assert.match(script, /--models suspend-push,suspend-push-w2,suspend-push-x2,suspend-push-x3(\s|$)/);
  });
});

const RUN_TIMEOUT_MS = 300_000;
const CLIENTS = 40;
const ROUNDS = 2;

test('a smoke-sized scale-out run: every subscriber parked, spread over the proxies, every round to every one once, no setup event crossing a proxy while timed', { timeout: RUN_TIMEOUT_MS + 30_000 }, async (t) => {
  assert.equal(await scaledSuspendPushTarget(2).unavailable(), null, 'npm run build first, and redis-server installed');
  const out = mkdtempSync(join(tmpdir(), 'lab-scaleout-'));
  t.after(() => rmSync(out, { recursive: true, force: true }));
  const args = ['--import', 'tsx', 'bench/lab/main.ts', '--smoke', '--scenario', 'scaleout', '--models', 'suspend-push,suspend-push-x2'];
  const child = spawn(process.execPath, [...args, '--clients', String(CLIENTS), '--rounds', String(ROUNDS), '--out', out, '--no-progress'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  clearTimeout(timer);
  assert.equal(code, 0, stderr);
  const [dir] = readdirSync(out);
  const run = JSON.parse(readFileSync(join(out, dir!, 'results.json'), 'utf8')) as RunResult;
  const markdown = readFileSync(join(out, dir!, 'results.md'), 'utf8');

  assert.deepEqual(run.points.map((p) => p.target), ['suspend-push', 'suspend-push-x2']);
  for (const point of run.points) {
    const proxies = point.target === 'suspend-push' ? 1 : 2;
    assert.equal(point.status, 'ok', point.error);
    assert.equal(point.scenario, 'scaleout');
    const s = point.scaleout!;
    assert.equal(s.frontDoors, proxies);
    assert.ok(s.drainWaitMs !== undefined, 'the harness waited for the setup events');
    // Subscriber i polls proxy i mod N: an even spread, every one parked.
    assert.deepEqual(s.parkedPerFrontDoor, Array.from({ length: proxies }, () => CLIENTS / proxies));
    assert.ok(s.parkMs > 0 && s.parkedPerS > 0);
    // The park is timed from the first poll, not from the forced GC and memory reading before it.
    assert.equal(point.park!.ms, s.parkMs);
    assert.ok(point.phasesMs.idle !== undefined && s.parkMs <= point.phasesMs.park!, JSON.stringify(point.phasesMs));
    assert.equal(s.rounds.length, ROUNDS);
    for (const round of s.rounds) {
      assert.ok(round.fanoutMs > 0, JSON.stringify(round));
      assert.equal(round.frontDoorDeliveries, CLIENTS, `round ${round.round}: one delivery per subscriber, summed over the proxies`);
    }
    // Only the rounds' messages crossed the proxies while timed: every join had been applied before the park.
    assert.deepEqual(s.publishesPerFrontDoor, Array.from({ length: proxies }, () => ROUNDS));
    assert.equal(s.lost, 0);
    assert.equal(s.duplicated, 0);
    assert.equal(point.subscribers!.deliveries, CLIENTS * ROUNDS);
    assert.equal(point.subscribers!.outOfOrder, 0);
    assert.equal(s.frontDoorTotals!.busResyncs, 0);
  }
  assert.match(markdown, /## Scale-out figures/);
  assert.match(markdown, /\| Suspend & Push, 2 proxies \+ Redis \| 40 \| 2 \|/);
});
