/**
 * docs/models.md's generated Results (bench/lab/report/models-doc.ts), rendered from a real smoke run of the
 * models preset: `npm run bench -- --preset models --clients 100 --duration 2 --repeat 2 --models
 * mailbox,mailbox-checked,suspend-push,suspend-push-plain,event-driven,nchan` on a shared 2-core machine, stored
 * without its per-second series, histograms and per-room counts (the doc reads none of them).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import type { LoadPointResult, PointSummary, RunResult } from '../../../bench/lab/results.js';
import { judgeClaims } from '../../../bench/lab/report/claims.js';
import { multicastChart, renderCharts } from '../../../bench/lab/report/charts.js';
import { accessControlPairs, multicastSlopeSpread } from '../../../bench/lab/report/experiments.js';
import { summariesOf } from '../../../bench/lab/report/format.js';
import { DOC_BEGIN, DOC_END, DOC_HEADINGS, renderModelsDoc, spliceGenerated } from '../../../bench/lab/report/models-doc.js';
import { ReportError } from '../../../bench/lab/report/read-results.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const FIXTURE = join(ROOT, 'test/bench/lab/fixtures/models-preset-smoke.json');
const RUN = JSON.parse(readFileSync(FIXTURE, 'utf8')) as RunResult;
const LINK = 'models-results/2026-12-07T00-35-25-400Z';

/** GitHub's heading anchor: lower case, punctuation dropped, spaces to dashes. */
const slug = (heading: string): string => heading.toLowerCase().replace(/[^a-z0-9 -]/g, '').replace(/ /g, '-');

describe('docs/models.md generated Results', () => {
  test('the block is the same text every time it is rendered from the same run', () => {
    assert.equal(renderModelsDoc(RUN, LINK), renderModelsDoc(structuredClone(RUN), LINK));
  });

  test('the block holds the provenance, a chat row per target with medians and intervals, and every experiment table', () => {
    const block = renderModelsDoc(RUN, LINK);
    assert.match(block, new RegExp(`commit \`${RUN.provenance!.git.commit!.slice(0, 12)}\``));
    assert.ok(block.includes(`[\`${LINK}/\`](${LINK}/)`), 'links the raw results');
    for (const heading of Object.values(DOC_HEADINGS)) assert.ok(block.includes(`#### ${heading}\n`), heading);
    const chat = block.slice(block.indexOf(`#### ${DOC_HEADINGS.chat}`), block.indexOf(`#### ${DOC_HEADINGS.accessControl}`));
    const rows = chat.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| Target') && !l.startsWith('| ---'));
    assert.deepEqual(
      rows.map((l) => l.split(' | ')[0]!.replace(/^\| (\*\*)?|\*\*$/g, '')),
      ['Queue / mailbox', 'Queue / mailbox, session read per poll', 'Suspend & Push', 'Suspend & Push, no leases', 'Event-driven (node:http)', 'Nchan 1.3.6'],
    );
    // Two runs per point: each measured cell is "median [low, high]", the runs column "2 of 2".
    for (const r of rows) assert.match(r, /\| 2 of 2 .*\| [\d.,]+ \[[\d.,]+, [\d.,]+\] \|/);
    // Only chat points in the chat table; the multicast points are in their own table, one row per target.
    const multicast = block.slice(block.indexOf(`#### ${DOC_HEADINGS.multicast}`), block.indexOf(`#### ${DOC_HEADINGS.commit}`));
    assert.equal(multicast.split('\n').filter((l) => /^\| (Queue|Suspend|Event)/.test(l)).length, 3);
    const access = block.slice(block.indexOf(`#### ${DOC_HEADINGS.accessControl}`), block.indexOf(`#### ${DOC_HEADINGS.leases}`));
    const verdicts = block.slice(block.indexOf(`#### ${DOC_HEADINGS.verdicts}`), block.indexOf(`#### ${DOC_HEADINGS.charts}`));
    assert.match(verdicts, /\| Queue \/ mailbox is light \| CPU s \/ 1,000 deliveries \|/);
    assert.match(access, /\| Queue \/ mailbox, session read per poll \| Queue \/ mailbox \|/);
    assert.match(access, /\| Suspend & Push, no leases \| Suspend & Push \|/);
    for (const file of ['cpu-per-delivery.svg', 'multicast.svg']) assert.ok(block.includes(`](${LINK}/${file})`), file);
  });

  test('splicing replaces only the text between the markers, and splicing again changes nothing', () => {
    const before = `# Doc\n\nprose above\n\n${DOC_BEGIN}\n\nold figures\n\n${DOC_END}\n\nprose below | with a table\n`;
    const once = spliceGenerated(before, 'NEW');
    assert.equal(once, `# Doc\n\nprose above\n\n${DOC_BEGIN}\n\nNEW\n\n${DOC_END}\n\nprose below | with a table\n`);
    assert.equal(spliceGenerated(once, 'NEW'), once);
  });

  test('a doc without exactly one pair of markers, in order, is refused with REPORT_ERR_DOC_MARKERS', () => {
    const refused = (doc: string) => () => spliceGenerated(doc, 'x');
    const coded = (e: unknown) => e instanceof ReportError && e.code === 'REPORT_ERR_DOC_MARKERS';
    assert.throws(refused('no markers'), coded);
    assert.throws(refused(`${DOC_END}\n${DOC_BEGIN}`), coded);
    assert.throws(refused(`${DOC_BEGIN}\n${DOC_BEGIN}\n${DOC_END}`), coded);
    assert.throws(refused(`${DOC_BEGIN}\n${DOC_END}\n${DOC_END}`), coded);
  });

  test("docs/models.md has one pair of markers, and every link of its claims into the block names one of the block's headings", () => {
    const doc = readFileSync(join(ROOT, 'docs/models.md'), 'utf8');
    assert.doesNotThrow(() => spliceGenerated(doc, 'x'));
    const own = new Set([...doc.matchAll(/^#+ (.+)$/gm)].map((m) => slug(m[1]!)));
    const generated = new Set(Object.values(DOC_HEADINGS).map(slug));
    const anchors = [...doc.matchAll(/\]\(#([a-z0-9-]+)\)/g)].map((m) => m[1]!);
    assert.ok(anchors.filter((a) => generated.has(a)).length >= 5, 'the claims point into the generated block');
    for (const a of anchors) assert.ok(own.has(a) || generated.has(a), `#${a} leads nowhere`);
  });

  test('npm run bench:models-doc rewrites the block from a results directory and leaves the rest of the doc byte for byte', () => {
    const dir = mkdtempSync(join(tmpdir(), 'models-doc-'));
    try {
      const runDir = join(dir, 'models-results', 'run-1');
      mkdirSync(runDir, { recursive: true });
      copyFileSync(FIXTURE, join(runDir, 'results.json'));
      const docFile = join(dir, 'models.md');
      const original = readFileSync(join(ROOT, 'docs/models.md'), 'utf8');
      writeFileSync(docFile, original);
      const cli = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'bench/lab/report/models-doc-main.ts', ...args], { cwd: ROOT, encoding: 'utf8' });
      const first = cli([runDir, '--doc', docFile]);
      assert.equal(first.status, 0, first.stderr);
      const written = readFileSync(docFile, 'utf8');
      assert.equal(written, spliceGenerated(original, renderModelsDoc(RUN, 'models-results/run-1')));
      const outside = (text: string) => [text.slice(0, text.indexOf(DOC_BEGIN)), text.slice(text.indexOf(DOC_END))];
      assert.deepEqual(outside(written), outside(original));
      // The run's own report is redrawn beside it, so the charts the doc embeds exist.
      assert.ok(readFileSync(join(runDir, 'multicast.svg'), 'utf8').startsWith('<svg'));
      assert.equal(cli([runDir, '--doc', docFile]).status, 0);
      assert.equal(readFileSync(docFile, 'utf8'), written, 'a second rewrite from the same run changes nothing');

      writeFileSync(docFile, 'no markers here\n');
      const refused = cli([runDir, '--doc', docFile]);
      assert.equal(refused.status, 2);
      assert.match(refused.stderr, /REPORT_ERR_DOC_MARKERS/);
      assert.equal(readFileSync(docFile, 'utf8'), 'no markers here\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('experiments read from the preset run', () => {
  test('both access-control pairs are found at the chat load', () => {
    const pairs = accessControlPairs(summariesOf(RUN).filter((s) => s.scenario === 'chat'));
    assert.deepEqual(pairs.map((p) => [p.checked.target, p.unchecked.target]), [['mailbox-checked', 'mailbox'], ['suspend-push-plain', 'suspend-push']]);
  });

  test('the multicast slope with repeats is the median of per-run slopes over the room counts', () => {
    // Run 1: cores = 0.1 + 0.002 × msg/s (2 CPU ms per message); run 2: 4 ms per message.
    const point = (repeat: number, published: number, cores: number): LoadPointResult =>
      ({
        target: 't', title: 'T', kind: 'model', protocol: 'chat-long-poll', clients: 100, rooms: published, ratePerS: published, durationS: 10,
        scenario: 'multicast', repeat, status: 'ok', parkedReached: 100, phasesMs: {}, windowS: 10,
        cost: { total: { cpuS: cores * 10, rssIdleBytes: 0, rssParkedBytes: 0 } },
        publisher: { ratePerS: published } as LoadPointResult['publisher'],
        subscribers: { deliveries: 1000 } as LoadPointResult['subscribers'],
        derived: { deliveriesPerS: 100, cpuSPer1000Deliveries: 1, memoryPerParkedBytes: 0, requestsPerDelivery: 1, bytesPerDelivery: 1 },
      }) as LoadPointResult;
    const points = [point(1, 1, 0.102), point(1, 100, 0.3), point(2, 1, 0.104), point(2, 100, 0.5)];
    const spread = multicastSlopeSpread(points, 't', 100)!;
    assert.equal(spread.n, 2);
    assert.ok(Math.abs(spread.median - 3) < 1e-9, String(spread.median));
    assert.ok(Math.abs(spread.low - 2) < 1e-9 && Math.abs(spread.high - 4) < 1e-9);
    assert.equal(multicastSlopeSpread(points.filter((p) => p.repeat === 1), 't', 100), undefined, 'one run gives no spread');
  });

  test('the multicast chart draws every multicast target with its slope label, error bars and a zero-including axis', async () => {
    const spec = multicastChart(RUN) as unknown as { data: { values: Array<{ target: string; label: string; low: number; high: number }> }; layer: Array<{ encoding: { y: { scale?: { zero?: boolean; type?: string } } } }> };
    const targets = new Set(spec.data.values.map((r) => r.target));
    assert.deepEqual([...targets], ['Queue / mailbox', 'Suspend & Push', 'Event-driven (node:http)']);
    assert.equal(spec.data.values.filter((r) => r.label !== '').length, 3, 'one slope label per line');
    assert.ok(spec.data.values.some((r) => r.low < r.high), 'two runs give intervals to draw');
    const y = spec.layer[0]!.encoding.y.scale!;
    assert.ok(y.zero === true || y.type === 'symlog', JSON.stringify(y));
    const svg = (await renderCharts(RUN)).find((c) => c.file === 'multicast.svg')!.svg;
    assert.match(svg, /ms\/msg|no slope/);
  });
});

describe('claims judged by their yardstick', () => {
  const chat = (target: string, cpu: [number, number, number], over: Partial<PointSummary> = {}): PointSummary => ({
    scenario: 'chat', target, title: target, kind: 'model', clients: 1000, ratePerS: 200, rooms: 100, runs: 3, measured: 3, lossy: 0,
    generatorSaturated: 0, unavailable: false,
    metrics: {
      cpuSPer1000Deliveries: { median: cpu[1], low: cpu[0], high: cpu[2], n: 3 },
      publishedPerS: { median: 200, low: 199, high: 200, n: 3 },
      dropped: { median: 0, low: 0, high: 0, n: 3 },
    },
    ...over,
  });
  const verdictOf = (summaries: PointSummary[], claim: string) => judgeClaims(summaries, []).find((v) => v.claim === claim);

  test('an interval wholly on the claimed side confirms, wholly on the other refutes, overlapping does not resolve', () => {
    assert.equal(verdictOf([chat('suspend-resume', [0.3, 0.35, 0.4]), chat('mailbox', [0.04, 0.05, 0.06])], 'Suspend & Resume is heavy')!.verdict, 'confirmed');
    assert.equal(verdictOf([chat('suspend-resume', [0.01, 0.02, 0.03]), chat('mailbox', [0.04, 0.05, 0.06])], 'Suspend & Resume is heavy')!.verdict, 'refuted');
    assert.equal(verdictOf([chat('suspend-resume', [0.05, 0.07, 0.09]), chat('mailbox', [0.04, 0.05, 0.06])], 'Suspend & Resume is heavy')!.verdict, 'not resolved');
  });

  test('falling behind where the other kept up is the heavier side, for "heavy" and "light" claims alike; both behind is not comparable', () => {
    const behind = { metrics: { ...chat('x', [1, 1, 1]).metrics, dropped: { median: 40, low: 30, high: 50, n: 3 } } };
    const heavy = verdictOf([chat('suspend-resume', [0.1, 0.1, 0.1], behind), chat('mailbox', [0.04, 0.05, 0.06])], 'Suspend & Resume is heavy')!;
    assert.equal(heavy.verdict, 'confirmed');
    // The mailbox kept up where Suspend & Resume fell behind, and its interval lies below the plain stack's.
    const light = verdictOf([chat('mailbox', [0.04, 0.05, 0.06]), chat('suspend-resume', [0.3, 0.3, 0.3], behind), chat('suspend-push-plain', [0.5, 0.6, 0.7])], 'Queue / mailbox is light')!;
    assert.equal(light.verdict, 'confirmed');
    assert.match(light.reason, /suspend-resume fell behind where mailbox kept up/);
    // The subject kept up but lies above one it is claimed to be lighter than: refuted, not hidden by the other pair.
    const notLight = verdictOf([chat('mailbox', [0.7, 0.8, 0.9]), chat('suspend-resume', [0.3, 0.3, 0.3], behind), chat('suspend-push-plain', [0.5, 0.6, 0.65])], 'Queue / mailbox is light')!;
    assert.equal(notLight.verdict, 'refuted');
    // Both behind: neither figure is the offered load's, so nothing is compared.
    const both = verdictOf([chat('suspend-push-plain', [0.5, 0.6, 0.7], behind), chat('suspend-resume', [0.3, 0.3, 0.3], behind)], "Suspend & Push (the talk's, no leases) is light")!;
    assert.equal(both.verdict, 'not comparable');
    assert.match(both.reason, /suspend-push-plain: fell behind/);
  });

  test('a claim whose subject did not run has no row', () => {
    assert.equal(verdictOf([chat('mailbox', [0.04, 0.05, 0.06])], 'Suspend & Resume is heavy'), undefined);
  });
});
