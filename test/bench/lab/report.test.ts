import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import type { LoadPointResult, RunResult } from '../../../bench/lab/results.js';
import { metricRows, PALETTE, renderCharts } from '../../../bench/lab/report/charts.js';
import { csvField, pointsCsv, summaryCsv, timeSeriesCsv } from '../../../bench/lab/report/csv.js';
import { formatSig } from '../../../bench/lab/report/format.js';
import { renderMarkdown } from '../../../bench/lab/report/markdown.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

interface Measured {
  deliveriesPerS: number;
  p50: number;
  p99: number;
  cpuSPer1000Deliveries: number;
  memoryPerParkedBytes: number;
  requestsPerDelivery: number;
  bytesPerDelivery: number;
  lost?: number;
  duplicated?: number;
  dropped?: number;
}

const TARGETS = {
  sr: { target: 'suspend-resume', title: 'Suspend & Resume', kind: 'model', protocol: 'chat-long-poll' },
  bare: { target: 'bare-node', title: 'Bare node:http', kind: 'baseline', protocol: 'chat-long-poll' },
  pushpin: { target: 'pushpin', title: 'Pushpin', kind: 'external', protocol: 'chat-long-poll' },
} as const;

function point(t: keyof typeof TARGETS, clients: number, outcome: Measured | { status: 'failed' | 'unavailable'; error: string }): LoadPointResult {
  const common = { ...TARGETS[t], clients, rooms: 10, ratePerS: 100, durationS: 30, parkedReached: null, phasesMs: {} };
  if ('status' in outcome) return { ...common, status: outcome.status, error: outcome.error };
  const deliveries = outcome.deliveriesPerS * 30;
  const lost = outcome.lost ?? 0;
  return {
    ...common,
    status: 'ok',
    parkedReached: clients,
    subscribers: {
      expectedDeliveries: deliveries + lost,
      deliveries,
      lost,
      duplicated: outcome.duplicated ?? 0,
      outOfOrder: 0,
      requests: Math.round(deliveries * outcome.requestsPerDelivery),
      bytes: Math.round(deliveries * outcome.bytesPerDelivery),
      errors: 2,
      badStatuses: lost > 0 ? { '502': 3 } : {},
      latency: { p50: outcome.p50, p95: outcome.p99 * 0.8, p99: outcome.p99, max: outcome.p99 * 2, mean: outcome.p50, count: deliveries },
      latencyHistogram: '',
    },
    publisher: { publishedPerRoom: {}, published: 3000, offered: 3000 + (outcome.dropped ?? 0), dropped: outcome.dropped ?? 0, unsent: 0, errors: 1, requests: 3000, bytes: 1e6, ratePerS: 100 },
    // A 32 s window: the server kept 0.75 of a core busy, the load generator 1.5 cores.
    windowS: 32,
    cost: { total: { cpuS: 24, rssIdleBytes: 1e8, rssParkedBytes: 2e8 } },
    loadGeneratorCpuS: 48,
    derived: {
      deliveriesPerS: outcome.deliveriesPerS,
      cpuSPer1000Deliveries: outcome.cpuSPer1000Deliveries,
      memoryPerParkedBytes: outcome.memoryPerParkedBytes,
      requestsPerDelivery: outcome.requestsPerDelivery,
      bytesPerDelivery: outcome.bytesPerDelivery,
    },
  };
}

// 3 targets × 2 client counts: Pushpin unavailable at both, the baseline failing at 1,000, Suspend & Resume lossy at 1,000.
const RUN: RunResult = {
  startedAt: '2025-01-02T03:04:05.000Z',
  command: 'npm run bench:lab -- --clients 100,1000',
  machine: { cpus: 2, cpuModel: 'Test CPU @ 2.0GHz', memoryGiB: 23.4567, node: 'v20.20.2', os: 'Linux 6.1.0', hostname: 'lab' },
  options: { clients: [100, 1000] },
  points: [
    point('sr', 100, { deliveriesPerS: 1234.5678, p50: 0.81234, p99: 1.23456, cpuSPer1000Deliveries: 0.047123, memoryPerParkedBytes: 15_360, requestsPerDelivery: 1.0049, bytesPerDelivery: 1234.5 }),
    point('bare', 100, { deliveriesPerS: 1250, p50: 0.5, p99: 0.9, cpuSPer1000Deliveries: 0.021, memoryPerParkedBytes: 10_240, requestsPerDelivery: 1, bytesPerDelivery: 400 }),
    point('pushpin', 100, { status: 'unavailable', error: 'pushpin is not installed' }),
    point('sr', 1000, { deliveriesPerS: 12_345.678, p50: 9.5, p99: 250.4, cpuSPer1000Deliveries: 0.05, memoryPerParkedBytes: 14_000, requestsPerDelivery: 0.5, bytesPerDelivery: 700, lost: 1234, dropped: 56 }),
    point('bare', 1000, { status: 'failed', error: 'server exited with code 1 | see log' }),
    point('pushpin', 1000, { status: 'unavailable', error: 'pushpin is not installed' }),
  ],
};

const escapeXml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

describe('the lab report', () => {
  test('numbers show 3 significant digits with thousands separators', () => {
    assert.equal(formatSig(12_345.678), '12,300');
    assert.equal(formatSig(1.23456), '1.23');
    assert.equal(formatSig(0.047123), '0.0471');
    assert.equal(formatSig(-0.0000001), '-0.0000001');
    assert.equal(formatSig(NaN), '—');
  });

  test('the Markdown names the command and machine and has one table per client count with every target row', () => {
    const md = renderMarkdown(RUN);
    assert.match(md, /npm run bench:lab -- --clients 100,1000/);
    assert.match(md, /2 × Test CPU @ 2\.0GHz, 23\.5 GiB memory, Node v20\.20\.2, Linux 6\.1\.0/);
    assert.match(md, /^## 100 clients$/m);
    assert.match(md, /^## 1,000 clients$/m);
    // The per-load tables end where the run-wide sections (the memory slope here) begin.
    const tables = md.slice(0, md.indexOf('\n## Memory per parked connection'));
    const rows = tables.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| Target') && !l.startsWith('| ---'));
    assert.equal(rows.length, 6);
    for (const t of Object.values(TARGETS)) assert.equal(rows.filter((r) => r.includes(t.title)).length, 2, t.title);
    assert.match(md, /## How to read this/);
    assert.match(md, /due-to-receipt latency/);
  });

  test('each table states the real measured window (publishing plus drain), not the publishing duration', () => {
    const md = renderMarkdown(RUN);
    assert.match(md, /^10 rooms, 100 messages\/s requested over all rooms, 30 s of publishing; measured windows 32 s \(publishing plus drain/m);
    assert.doesNotMatch(md, /30 s measured/);
    const longer = { ...RUN, points: RUN.points.map((p, i) => (i === 1 ? { ...p, windowS: 45.5 } : p)) };
    assert.match(renderMarkdown(longer), /measured windows 32-45\.5 s/);
  });

  test('with --repeat, each run is a row marked with its number and a medians table gives each point its interval', () => {
    const runs = [100, 300, 200].flatMap((p99, r) => [
      { ...point('bare', 100, { deliveriesPerS: 1250, p50: 0.5, p99, cpuSPer1000Deliveries: 0.021, memoryPerParkedBytes: 10_240, requestsPerDelivery: 1, bytesPerDelivery: 400 }), repeat: r + 1 },
      { ...point('pushpin', 100, { status: 'unavailable', error: 'pushpin is not installed' }), repeat: r + 1 },
    ]);
    const md = renderMarkdown({ ...RUN, points: runs });
    assert.match(md, /^\| Bare node:http · run 2 \| baseline \|/m);
    assert.match(md, /^## Medians over 3 runs$/m);
    assert.match(md, /percentile bootstrap \(2,000 resamples/);
    const median = md.split('\n').find((l) => l.startsWith('| Bare node:http | 3 of 3 |'));
    assert.ok(median, md);
    assert.match(median, /\| 200 \[100, 300\] \|/);
    assert.match(md, /^\| Pushpin \| 0 of 3 \| \*unavailable\* \|/m);
    // A single run has no medians table: its one row per point says it all.
    assert.doesNotMatch(renderMarkdown(RUN), /Medians over/);
  });

  test('provenance is printed, and a point whose generator worker passed 90% of a core is flagged with the reason', () => {
    const flagged: RunResult = {
      ...RUN,
      provenance: {
        git: { commit: '0123456789abcdef0123', dirty: true, describe: '0123456-dirty' },
        node: 'v20.20.2',
        versions: { nginx: { version: '1.22.1', source: 'nginx -v' }, nchan: { version: '1.3.6', source: 'so' }, pushpin: { version: null, source: 'not installed' } },
        cpuModel: 'AMD EPYC',
        stealShare: 0.012,
        pin: { generator: [0], target: [1] },
      },
      points: RUN.points.map((p, i) => (i === 1 ? { ...p, generatorSaturated: true, loadGeneratorWorkers: { publisherCoreShare: 0.1, subscriberCoreShares: [0.95] } } : p)),
    };
    const md = renderMarkdown(flagged);
    assert.match(md, /commit `0123456789ab` \*\*with uncommitted changes\*\*/);
    assert.match(md, /nginx 1\.22\.1, Nchan 1\.3\.6, Pushpin unknown/);
    assert.match(md, /Steal time over the run: 1\.2 %/);
    assert.match(md, /generator on CPU 0, target on CPU 1/);
    const bare = md.split('\n').find((l) => l.startsWith('| Bare node:http |'))!;
    assert.match(bare, /\| 1\.5 ‡ \|/);
    assert.match(md, /^‡ A load-generator worker passed 90 % of a core/m);
    // Unflagged rows carry no mark, and a run without saturation has no note.
    assert.doesNotMatch(md.split('\n').find((l) => l.startsWith('| Suspend & Resume |'))!, /‡/);
    assert.doesNotMatch(renderMarkdown(RUN), /^‡/m);
    assert.match(renderMarkdown(RUN), /Provenance: not recorded/);
  });

  test('CSV export: one row per run, per point and metric, per second; RFC 4180 quoting', () => {
    assert.equal(csvField('a,b'), '"a,b"');
    assert.equal(csvField('say "hi"'), '"say ""hi"""');
    assert.equal(csvField(NaN), '');
    assert.equal(csvField(undefined), '');
    assert.equal(csvField(0), '0');

    const points = pointsCsv(RUN).split('\r\n');
    assert.equal(points.at(-1), '', 'ends with CRLF');
    assert.equal(points.length, RUN.points.length + 2);
    const header = points[0]!.split(',');
    assert.deepEqual(header.slice(0, 6), ['scenario', 'target', 'clients', 'rate_per_s', 'repeat', 'status']);
    for (const line of points.slice(1, -1)) assert.ok(line.startsWith('chat,'), line);
    // The failed row's error has a pipe, not a comma: unquoted; its metrics are empty, not zero.
    const failed = points.find((l) => l.includes(',failed,'))!;
    assert.match(failed, /,failed,server exited with code 1 \| see log,/);
    // Empty metrics, then the room count (last, so earlier columns keep their places).
    assert.ok(failed.endsWith(`,,,,,,,,,,,,,${RUN.points.find((p) => p.status === 'failed')!.rooms}`), failed);

    const summary = summaryCsv(RUN).split('\r\n');
    assert.equal(summary[0], 'scenario,target,clients,rate_per_s,runs,measured,metric,median,ci95_low,ci95_high,n,rooms');
    assert.ok(summary.some((l) => l.startsWith('chat,suspend-resume,100,100,1,1,p99Ms,1.23456,1.23456,1.23456,1,')), summary.join('\n'));

    const withSeries: RunResult = {
      ...RUN,
      points: [{ ...RUN.points[0]!, timeSeries: [
        { t: 0, deliveries: 0, requests: 0, errors: 0, serverCpuS: 0, generatorCpuS: 0, serverRssBytes: 1000 },
        { t: 1, deliveries: 1200, requests: 1210, errors: 1, serverCpuS: 0.5, generatorCpuS: 0.25, serverRssBytes: 2000 },
        { t: 1.5, deliveries: 1800, requests: 1800, errors: 1, serverCpuS: 0.75, generatorCpuS: 0.5, serverRssBytes: 2000 },
      ] }],
    };
    assert.deepEqual(timeSeriesCsv(withSeries).split('\r\n'), [
      'scenario,target,clients,rate_per_s,repeat,t_s,deliveries_per_s,requests_per_s,errors,server_cores_busy,generator_cores_busy,server_rss_bytes',
      'chat,suspend-resume,100,100,1,1,1200,1210,1,0.5,0.25,2000',
      'chat,suspend-resume,100,100,1,1.5,1200,1180,0,0.5,0.5,2000',
      '',
    ]);
  });

  test('a rate sweep gets a table per rate, a sustained/maximum table, CPU at matched rates and a latency-vs-load chart', async () => {
    const at = (p: LoadPointResult, ratePerS: number): LoadPointResult => ({ ...p, ratePerS, publisher: { ...p.publisher!, ratePerS } });
    const m = { deliveriesPerS: 1250, p50: 0.5, p99: 0.9, cpuSPer1000Deliveries: 0.021, memoryPerParkedBytes: 10_240, requestsPerDelivery: 1, bytesPerDelivery: 400 };
    const sweep: RunResult = {
      ...RUN,
      options: { sustainP99Ms: 1000 },
      points: [
        at(point('bare', 100, m), 100),
        at(point('bare', 100, { ...m, p99: 4000 }), 400),
        at(point('sr', 100, m), 100),
        at(point('sr', 100, m), 400),
      ],
    };
    const md = renderMarkdown(sweep);
    assert.match(md, /^## 100 clients, 100 msg\/s$/m);
    assert.match(md, /^## 100 clients, 400 msg\/s$/m);
    assert.match(md, /^## Rate sweep$/m);
    assert.match(md, /^\| Bare node:http \| ✓ 1,250\/s, p99 0\.9 ms \| ✗ 1,250\/s, p99 4,000 ms \(p99 4000 ms > 1000 ms\) \| 100 msg\/s \(1,250 deliveries\/s\) \|$/m);
    assert.match(md, /^\| Suspend & Resume \| ✓ .* \| ≥ 400 msg\/s \(1,250 deliveries\/s\) \|$/m);
    assert.match(md, /^\| Bare node:http \| 0\.021 \| — \(not sustained\) \|$/m);
    const charts = await renderCharts(sweep);
    assert.deepEqual(charts.map((c) => c.file).at(-1), 'latency-vs-load.svg');
    assert.match(charts.at(-1)!.svg, /p99 latency vs delivery rate, rates 100, 400 msg\/s/);
    // Without a sweep there is no sweep section or chart.
    assert.doesNotMatch(renderMarkdown(RUN), /Rate sweep/);
    assert.equal((await renderCharts(RUN)).length, 4);
  });

  test('with two client counts, memory per parked connection is also given as a slope with its r²', () => {
    const md = renderMarkdown(RUN);
    assert.match(md, /^## Memory per parked connection, as a slope$/m);
    // Suspend & Resume is measured at 100 and 1,000 clients (its fixture: 100 MB more RSS parked at both).
    const sr = md.split('\n').find((l) => l.startsWith('| Suspend & Resume | chat | 100, 1,000 | 2 |'));
    assert.ok(sr, md);
    assert.match(sr, /\| 0 \| 97,700 \| 1 \|/);
    // Bare node:http failed at 1,000 clients: one client count, no slope.
    assert.doesNotMatch(md.slice(md.indexOf('## Memory per parked connection, as a slope')), /^\| Bare node:http/m);
  });

  test('short polling parks nothing: its memory per parked connection is n/a in the table, the medians and the chart', () => {
    const short: RunResult = { ...RUN, points: RUN.points.map((p) => (p.target === 'bare-node' ? { ...p, protocol: 'chat-short-poll' } : p)) };
    const row100 = renderMarkdown(short).split('\n').find((l) => l.startsWith('| Bare node:http |'))!;
    assert.match(row100, /\| n\/a \| 1 \| 400 \|/);
    const memory = metricRows(short, 'memoryPerParkedBytes').find((r) => r.target === 'Bare node:http' && r.group === '100 clients')!;
    assert.deepEqual([memory.state, memory.label], ['not-applicable', '✕ n/a']);
    // Its other figures are still drawn.
    assert.equal(metricRows(short, 'requestsPerDelivery').find((r) => r.target === 'Bare node:http' && r.group === '100 clients')!.median, 1);
  });

  test('unavailable and failed rows give the reason instead of numbers', () => {
    const md = renderMarkdown(RUN);
    const pushpin = md.split('\n').filter((l) => l.startsWith('| Pushpin |'));
    assert.equal(pushpin.length, 2);
    for (const r of pushpin) assert.match(r, /^\| Pushpin \| external \| \*unavailable\*: pushpin is not installed \|(\s*\|)+$/);
    // A pipe in the reason is escaped so the row keeps its columns.
    assert.match(md, /\| Bare node:http \| baseline \| \*failed\*: server exited with code 1 \\\| see log \|/);
  });

  test('a row that lost deliveries is bold with a footnote giving the counts', () => {
    const md = renderMarkdown(RUN);
    const lossy = md.split('\n').find((l) => l.startsWith('| **Suspend & Resume**'));
    assert.ok(lossy, 'lossy row in bold');
    assert.match(lossy, /\[\^loss-1\]/);
    assert.match(lossy, /\| \*\*1,234\*\* \|/);
    assert.match(lossy, /\| 100 \| \*\*56\*\* \| 32 \| 12,300 \| 9\.5 \| 200 \| 250 \| 501 \|/);
    assert.match(md, /^\[\^loss-1\]: Suspend & Resume, 1,000 clients: 1,234 of 371,604 expected deliveries lost \(0\.332 %\)/m);
    assert.match(md, /502 × 3/);
    // The clean row at 100 clients is not flagged; its figures are formatted.
    const clean = md.split('\n').find((l) => l.startsWith('| Suspend & Resume |'));
    assert.ok(clean);
    assert.equal(clean, '| Suspend & Resume | model | 100 | 0 | 32 | 1,230 | 0.812 | 0.988 | 1.23 | 2.47 | 0.0471 | 0.75 | 1.5 | 15 | 1 | 1,230 | 0 | 0 | 3 |');
  });

  test('each chart is an SVG naming every target, the load it was taken at, and marking points without a figure', async () => {
    const charts = await renderCharts(RUN);
    assert.deepEqual(
      charts.map((c) => c.file),
      ['latency-vs-clients.svg', 'cpu-per-delivery.svg', 'memory-per-connection.svg', 'requests-per-message.svg'],
    );
    for (const c of charts) {
      assert.ok(c.svg.startsWith('<svg'), c.file);
      assert.ok(c.svg.trimEnd().endsWith('</svg>'), c.file);
      assert.ok(c.svg.includes(escapeXml('Suspend & Resume')), c.file);
      assert.ok(c.svg.includes('Bare node:http'), c.file);
      // Pushpin could not run and the baseline failed at 1,000 clients: marked, not silently missing.
      assert.ok(c.svg.includes('Pushpin'), c.file);
      assert.ok(c.svg.includes('✕ unavailable'), c.file);
      assert.ok(c.svg.includes('✕ failed'), c.file);
      assert.ok(c.svg.includes('at 100 msg/s requested over 10 rooms, 30 s of publishing; one run, no interval'), c.file);
    }
    assert.match(charts[0]!.svg, /Latency \(ms\)/);
  });

  test('chart rows: zeros kept as dots, suspect points hollow, failed points labelled; 15 distinct colours', () => {
    const zero = { ...RUN, points: RUN.points.map((p, i) => (i === 0 ? { ...p, derived: { ...p.derived!, requestsPerDelivery: 0 } } : p)) };
    const rows = metricRows(zero, 'requestsPerDelivery');
    const sr100 = rows.find((r) => r.target === 'Suspend & Resume' && r.group === '100 clients')!;
    assert.equal(sr100.median, 0);
    assert.equal(sr100.state, 'measured');
    const sr1000 = rows.find((r) => r.target === 'Suspend & Resume' && r.group === '1,000 clients')!;
    assert.equal(sr1000.state, 'suspect', 'it lost deliveries');
    const bare1000 = rows.find((r) => r.target === 'Bare node:http' && r.group === '1,000 clients')!;
    assert.deepEqual([bare1000.state, bare1000.median, bare1000.label], ['failed', null, '✕ failed']);
    assert.equal(rows.find((r) => r.target === 'Pushpin')!.state, 'unavailable');
    assert.equal(new Set(PALETTE).size, PALETTE.length);
    assert.ok(PALETTE.length >= 12);
  });

  test('the CLI writes results.md and the charts next to results.json, and exits 2 on a missing or invalid file', (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'lab-report-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'results.json'), JSON.stringify(RUN));
    const cli = (arg: string) =>
      spawnSync(process.execPath, ['--import', 'tsx', 'bench/lab/report/main.ts', arg], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });

    const ok = cli(dir);
    assert.equal(ok.status, 0, ok.stderr);
    const files = ['results.md', 'latency-vs-clients.svg', 'cpu-per-delivery.svg', 'memory-per-connection.svg', 'requests-per-message.svg', 'points.csv', 'summary.csv', 'timeseries.csv'];
    assert.deepEqual(ok.stdout.trim().split('\n'), files.map((f) => join(dir, f)));
    for (const f of files) assert.ok(existsSync(join(dir, f)), f);
    assert.match(readFileSync(join(dir, 'results.md'), 'utf8'), /!\[.*\]\(latency-vs-clients\.svg\)/);

    const missing = cli(join(dir, 'nope.json'));
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /nope\.json: no such file/);

    writeFileSync(join(dir, 'bad.json'), JSON.stringify({ command: 'x', points: [{ target: 'a' }] }));
    const invalid = cli(join(dir, 'bad.json'));
    assert.equal(invalid.status, 2);
    assert.match(invalid.stderr, /not a lab results file: startedAt: expected a string/);
  });
});
