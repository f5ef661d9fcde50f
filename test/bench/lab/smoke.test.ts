/**
 * The models lab's smoke run (`npm run bench -- --smoke`): every target on a
 * few subscribers for a few seconds, through the real harness as a user runs
 * it (a child process, worker processes, real servers, Pushpin and Nginx when
 * installed). It keeps the harness from rotting; speed is not asserted here
 * (figures belong in bench/results and docs/models.md).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { TARGETS } from '../../../bench/models/registry.js';
import type { RunResult } from '../../../bench/lab/results.js';

const RUN_TIMEOUT_MS = 600_000;

describe('models lab smoke run', { timeout: RUN_TIMEOUT_MS + 60_000 }, () => {
  const out = mkdtempSync(join(tmpdir(), 'lab-smoke-'));
  let exitCode: number | null = null;
  let stderr = '';
  let run: RunResult;
  let runDir: string;

  before(async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/lab/main.ts', '--smoke', '--models', 'all', '--out', out, '--no-progress'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    exitCode = await new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    clearTimeout(timer);
    const dirs = readdirSync(out);
    assert.equal(dirs.length, 1, `one run directory expected; stderr:\n${stderr}`);
    runDir = join(out, dirs[0]!);
    run = JSON.parse(readFileSync(join(runDir, 'results.json'), 'utf8')) as RunResult;
  }, { timeout: RUN_TIMEOUT_MS + 30_000 });
  after(() => rmSync(out, { recursive: true, force: true }));

  test('the run exits 0: every available target delivered everything exactly once', () => {
    assert.equal(exitCode, 0, stderr);
  });

  for (const target of TARGETS) {
    test(`${target.name} delivers every published message once, in order, and reports its costs`, async () => {
      const point = run.points.find((p) => p.target === target.name);
      assert.ok(point, `no result for ${target.name}`);
      const reason = await target.unavailable();
      // CI installs Pushpin and Nginx/Nchan (.ci/run): there, nothing may be left out.
      if (reason !== null && process.env.CI !== 'true') {
        assert.equal(point.status, 'unavailable');
        return;
      }
      assert.equal(point.status, 'ok', point.error);
      const s = point.subscribers!;
      assert.ok(point.publisher!.published > 0, 'something was published');
      assert.equal(s.expectedDeliveries, s.deliveries);
      assert.equal(s.lost, 0);
      assert.equal(s.duplicated, 0);
      assert.equal(s.outOfOrder, 0);
      assert.ok(s.latency.count > 0 && s.latency.p50 > 0 && s.latency.max >= s.latency.p99);
      assert.ok(s.bytes > 0, 'bytes were counted on the subscribers\' sockets');
      // A stream is opened before the measured window and stays open: no request inside it but a reopen per resync.
      const streams = target.protocol === 'sse' || target.protocol === 'forever-iframe' || target.protocol === 'chat-sse';
      if (streams) assert.ok(s.requests <= (s.resyncs ?? 0), `requests ${s.requests}, resyncs ${s.resyncs ?? 0}`);
      else assert.ok(s.requests > 0, 'polls were counted');
      assert.ok(point.cost!.total!.rssParkedBytes > 0, 'server memory was read');
      assert.ok(point.derived!.deliveriesPerS > 0);
      assert.ok(point.derived!.bytesPerDelivery > 0);
      // Open loop: what fell due is accounted for (published, dropped or unsent), and the window is the real one.
      const pub = point.publisher!;
      assert.equal(typeof pub.dropped, 'number');
      assert.ok(pub.offered! >= pub.published, 'offered counts every due message');
      // The window starts before message 0 falls due and ends after the last delivery: it spans every due time.
      assert.ok(point.windowS! >= (pub.offered! - 1) / point.ratePerS, `window ${point.windowS} s for ${pub.offered} messages`);
      assert.ok(point.timeSeries!.length >= 2, 'a per-second time series was sampled');
      // Headroom: each generator worker's share of a core was read.
      assert.ok(point.loadGeneratorWorkers!.subscriberCoreShares.length >= 1);
      assert.equal(typeof point.generatorSaturated, 'boolean');
      // Every target but Nchan has a Node process the lab can make collect garbage before reading memory.
      if (target.name === 'nchan') assert.equal(point.gc!.collected, 0);
      else assert.ok(point.gc!.collected >= 1, JSON.stringify(point.gc));
    });
  }

  test('results.json records the commit it ran and the peers\' versions', () => {
    assert.match(run.provenance!.git.commit ?? '', /^[0-9a-f]{40}$/);
    assert.equal(typeof run.provenance!.git.dirty, 'boolean');
    assert.equal(run.provenance!.node, process.version);
    assert.ok(run.summaries!.length >= TARGETS.length, 'one summary per load point');
  });

  test('the report is written: a Markdown table with every target, the four SVG charts and the CSV export', () => {
    for (const file of ['points.csv', 'summary.csv', 'timeseries.csv']) {
      assert.match(readFileSync(join(runDir, file), 'utf8'), /^scenario,target,clients,rate_per_s,/, file);
    }
    const md = readFileSync(join(runDir, 'results.md'), 'utf8');
    for (const target of TARGETS) assert.ok(md.includes(target.title), `results.md lacks ${target.title}`);
    for (const chart of ['latency-vs-clients.svg', 'cpu-per-delivery.svg', 'memory-per-connection.svg', 'requests-per-message.svg']) {
      assert.ok(existsSync(join(runDir, chart)), `${chart} missing`);
      assert.match(readFileSync(join(runDir, chart), 'utf8'), /^<svg/);
    }
  });
});
