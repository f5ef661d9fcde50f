/**
 * The lab's charts: Vega-Lite specs compiled to Vega and rendered headless to
 * SVG (no canvas or browser needed). Drawn so they do not mislead:
 * - dot plots of the per-point medians (bench/lab/stats.ts) with their 95%
 *   interval as an error bar, one dot per target and client count, never bars
 *   from an arbitrary floor;
 * - zeros drawn: a wide range uses a symlog axis, which places 0 (SSE's zero
 *   requests per delivery is a finding, not a missing bar);
 * - a point that failed or cannot run here is marked with a label where its
 *   dot would be; a suspect one (lost or dropped messages, a saturated load
 *   generator) is a hollow dot;
 * - 15 distinct colours, each target keeping its colour in every chart;
 * - every chart says the load it was taken at (rate, rooms, duration, runs).
 */
import * as vega from 'vega';
import * as vl from 'vega-lite';
import type { TopLevelSpec } from 'vega-lite';
import type { PointSummary, RunResult } from '../results.js';
import type { MetricName } from '../stats.js';
import { BYTES_PER_KB, formatCount, formatSig, repeats, summariesOf, targetOrder } from './format.js';
import { multicastCosts, multicastSlopeSpread } from './experiments.js';
import { formatSpread, sweepsOfRun } from './markdown.js';

export interface Chart {
  /** File name, written next to results.md. */
  file: string;
  svg: string;
}

/** The charts in report order, with the caption results.md gives each. */
export const CHARTS = [
  { file: 'latency-vs-clients.svg', caption: 'Due-to-receipt latency (p50, p99) vs clients, medians with 95% intervals' },
  { file: 'cpu-per-delivery.svg', caption: 'Server CPU per 1,000 deliveries' },
  { file: 'memory-per-connection.svg', caption: 'Memory per parked connection' },
  { file: 'requests-per-message.svg', caption: 'Subscriber requests per delivery' },
] as const;

/**
 * Distinct colours for up to 15 targets (Tableau 10 plus five darker hues): the lab has 11, and a repeating
 * palette made two of them read as one.
 */
export const PALETTE = [
  '#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac',
  '#1b3a6b', '#6b1b3a', '#2f5d1e', '#7a5c00', '#3d1b6b',
] as const;

/** With `--rates`: p99 against the delivery rate achieved, one line per target and client count. */
export const SWEEP_CHART = { file: 'latency-vs-load.svg', caption: 'p99 latency vs delivery rate achieved (rate sweep)' } as const;

/** With the multicast scenario: server cores busy against messages/s per target; the slope is CPU ms per message. */
export const MULTICAST_CHART = { file: 'multicast.svg', caption: 'Multicast: server cores busy vs messages/s at a fixed delivery rate (slope: CPU ms per message)' } as const;

/** The charts of `run` in report order: the four above, the sweep's when the run swept rates, the multicast one. */
export function chartsFor(run: RunResult): ReadonlyArray<{ file: string; caption: string }> {
  return [
    ...(summariesOf(run).some((s) => s.scenario !== 'multicast') ? CHARTS : []),
    ...(sweepsOfRun(run).length > 0 ? [SWEEP_CHART] : []),
    ...(multicastCosts(summariesOf(run)).length > 0 ? [MULTICAST_CHART] : []),
  ];
}

const WIDTH = 640;
const HEIGHT = 320;
/** Past this max/min ratio of the positive values a linear axis flattens the small ones into the floor. */
const WIDE_RATIO = 20;

/** Where a dot stands: measured, measured but suspect, or no figure (and why). */
export type PointState = 'measured' | 'suspect' | 'failed' | 'unavailable' | 'not-applicable';

export interface ChartRow {
  target: string;
  group: string;
  series: string;
  median: number | null;
  low: number | null;
  high: number | null;
  state: PointState;
  /** Text drawn instead of a dot when there is no figure. */
  label: string;
}

/** How a load point is drawn: suspect when it lost, duplicated or dropped, or its generator saturated. */
export function stateOf(s: PointSummary): PointState {
  if (s.measured === 0) return s.unavailable ? 'unavailable' : 'failed';
  if (s.lossy > 0 || (s.generatorSaturated ?? 0) > 0 || (s.metrics.dropped?.median ?? 0) > 0) return 'suspect';
  return 'measured';
}

const clientsLabel = (clients: number): string => `${formatCount(clients)} clients`;

/** The load the charts show: the chat scenario's points at the run's first requested rate (a sweep has its own chart). */
function chartedSummaries(run: RunResult): { summaries: PointSummary[]; rate: number | undefined } {
  const all = summariesOf(run);
  const scenario = all.some((s) => s.scenario === 'chat') ? 'chat' : all[0]?.scenario;
  const ofScenario = all.filter((s) => s.scenario === scenario);
  const rate = ofScenario[0]?.ratePerS;
  return { summaries: ofScenario.filter((s) => s.ratePerS === rate), rate };
}

/** "200 msg/s requested over 10 rooms, 30 s of publishing, median of 3 runs": the load every chart states. */
export function loadCaption(run: RunResult): string {
  const { summaries, rate } = chartedSummaries(run);
  const first = run.points.find((p) => p.ratePerS === rate && (p.scenario ?? 'chat') === (summaries[0]?.scenario ?? 'chat'));
  const n = repeats(run);
  const scenario = summaries[0]?.scenario ?? 'chat';
  const load =
    scenario === 'chat'
      ? `${formatSig(rate)} msg/s requested over ${formatCount(first?.rooms)} rooms, ${formatSig(first?.durationS)} s of publishing`
      : `${scenario} scenario`;
  return `${load}; ${n > 1 ? `median of ${formatCount(n)} runs, bars: 95% bootstrap interval` : 'one run, no interval'}`;
}

/** Rows of one metric: a dot per measured point, a label per point without a figure. */
export function metricRows(run: RunResult, metric: MetricName, series = '', scale = 1): ChartRow[] {
  return chartedSummaries(run).summaries.map((s) => {
    const state = stateOf(s);
    const spread = s.metrics[metric];
    if (state === 'failed' || state === 'unavailable' || spread === undefined) {
      // Measured, but the metric does not apply (short polling parks nothing): say so, not "failed".
      const shown: PointState = state === 'failed' || state === 'unavailable' ? state : 'not-applicable';
      const label = { failed: '✕ failed', unavailable: '✕ unavailable', 'not-applicable': '✕ n/a' }[shown as 'failed'];
      return { target: s.title, group: clientsLabel(s.clients), series, median: null, low: null, high: null, state: shown, label };
    }
    return { target: s.title, group: clientsLabel(s.clients), series, median: spread.median / scale, low: spread.low / scale, high: spread.high / scale, state, label: '' };
  });
}

/** A symlog axis (zero drawn) when the positive values span more than WIDE_RATIO, else linear from zero. */
function yScale(rows: readonly ChartRow[]): { scale: Record<string, unknown>; note: string } {
  const positive = rows.flatMap((r) => [r.median, r.low, r.high]).filter((v): v is number => v !== null && v > 0);
  if (positive.length < 2 || Math.max(...positive) / Math.min(...positive) < WIDE_RATIO) return { scale: { zero: true }, note: 'linear axis from 0' };
  // symlog is linear near 0 and logarithmic above `constant`: 0 keeps its place at the bottom of the axis.
  return { scale: { type: 'symlog', constant: Math.min(...positive) }, note: 'symlog axis: 0 drawn at the bottom, log above' };
}

function dotPlot(run: RunResult, title: string, what: string, yTitle: string, rows: ChartRow[], seriesTitle?: string): TopLevelSpec {
  const order = targetOrder(run).map((t) => t.title);
  const groups = [...new Set(chartedSummaries(run).summaries.map((s) => s.clients))].sort((a, b) => a - b).map(clientsLabel);
  const { scale, note } = yScale(rows);
  const colour = { field: 'target', type: 'nominal' as const, title: 'Target', scale: { domain: order, range: [...PALETTE] } };
  const x = { field: 'group', type: 'ordinal' as const, title: null, sort: groups, axis: { labelAngle: 0 } };
  const xOffset = { field: 'target', type: 'nominal' as const, sort: order };
  const measured = "datum.state === 'measured' || datum.state === 'suspect'";
  // Every layer gives the y axis the same format: on a symlog scale Vega's default prints "1e+2".
  const axis = { format: ',~r' };
  const shape =
    seriesTitle === undefined ? {} : { shape: { field: 'series', type: 'nominal' as const, title: seriesTitle, scale: { domain: ['p99', 'p50'], range: ['triangle-up', 'circle'] } } };
  return {
    title: {
      text: `${title}, at ${loadCaption(run)}`,
      subtitle: [what, `● measured, ○ suspect (lost, dropped or generator past 90% of a core), ✕ no figure (failed, unavailable, n/a); ${note}`],
      anchor: 'start',
      fontSize: 13,
    },
    width: WIDTH,
    height: HEIGHT,
    background: 'white',
    padding: 12,
    config: { axis: { labelFontSize: 11, titleFontSize: 12 }, legend: { labelFontSize: 11, labelLimit: 240, symbolOpacity: 1, symbolStrokeWidth: 2 } },
    data: { values: rows },
    encoding: { x, xOffset },
    layer: [
      {
        transform: [{ filter: `(${measured}) && datum.low !== datum.high` }],
        mark: { type: 'rule', strokeWidth: 1.5 },
        encoding: { y: { field: 'low', type: 'quantitative', title: yTitle, scale, axis }, y2: { field: 'high' }, color: colour },
      },
      // Measured dots filled, suspect ones hollow: two layers sharing one colour scale, so one legend.
      ...(['measured', 'suspect'] as const).map((state) => ({
        transform: [{ filter: `datum.state === '${state}'` }],
        mark: { type: 'point' as const, size: 60, strokeWidth: 2, opacity: 1, filled: state === 'measured' },
        encoding: { y: { field: 'median', type: 'quantitative' as const, title: yTitle, scale, axis }, color: colour, ...shape },
      })),
      {
        transform: [{ filter: `!(${measured})` }],
        mark: { type: 'text', angle: -90, align: 'left', baseline: 'middle', dx: 4, fontSize: 10 },
        encoding: { y: { datum: 0, type: 'quantitative', scale, axis }, text: { field: 'label' }, color: colour },
      },
    ],
  } as TopLevelSpec;
}

/** The sweep: x the median deliveries/s achieved, y the median p99 with its interval; hollow where not sustained. */
function sweepChart(run: RunResult): TopLevelSpec {
  const order = targetOrder(run).map((t) => t.title);
  const summaries = summariesOf(run);
  const rows = sweepsOfRun(run).flatMap((x) =>
    x.rates.flatMap((v) => {
      const s = summaries.find((y) => y.scenario === x.scenario && y.target === x.target && y.clients === x.clients && y.ratePerS === v.ratePerS);
      const p99 = s?.metrics.p99Ms;
      if (v.deliveriesPerS === undefined || p99 === undefined) return [];
      return [{ target: x.title, line: `${x.title} · ${formatCount(x.clients)} clients`, clients: formatCount(x.clients), delivered: v.deliveriesPerS, median: p99.median, low: p99.low, high: p99.high, state: v.sustained ? 'sustained' : 'not sustained' }];
    }),
  );
  const chartRows: ChartRow[] = rows.map((r) => ({ target: r.target, group: '', series: '', median: r.median, low: r.low, high: r.high, state: 'measured', label: '' }));
  const { scale, note } = yScale(chartRows);
  const axis = { format: ',~r' };
  const colour = { field: 'target', type: 'nominal' as const, title: 'Target', scale: { domain: order, range: [...PALETTE] } };
  const x = { field: 'delivered', type: 'quantitative' as const, title: 'Deliveries/s achieved (median)', scale: { zero: true }, axis: { format: ',~r' } };
  const first = run.points[0];
  return {
    title: {
      text: `p99 latency vs delivery rate, rates ${sweepsOfRun(run)[0]!.rates.map((r) => formatSig(r.ratePerS)).join(', ')} msg/s requested over ${formatCount(first?.rooms)} rooms, ${formatSig(first?.durationS)} s each`,
      subtitle: [`one line per target and client count (shape: clients); ${repeats(run) > 1 ? `median of ${repeats(run)} runs, bars: 95% bootstrap interval` : 'one run, no interval'}`, `● sustained, ○ not sustained (see results.md); ${note}`],
      anchor: 'start',
      fontSize: 13,
    },
    width: WIDTH,
    height: HEIGHT,
    background: 'white',
    padding: 12,
    config: { axis: { labelFontSize: 11, titleFontSize: 12 }, legend: { labelFontSize: 11, labelLimit: 240, symbolOpacity: 1, symbolStrokeWidth: 2 } },
    data: { values: rows },
    encoding: { x },
    layer: [
      { mark: { type: 'line', strokeWidth: 1.5 }, encoding: { y: { field: 'median', type: 'quantitative', title: 'p99 latency (ms)', scale, axis }, color: colour, detail: { field: 'line' } } },
      { transform: [{ filter: 'datum.low !== datum.high' }], mark: { type: 'rule', strokeWidth: 1.5 }, encoding: { y: { field: 'low', type: 'quantitative', scale, axis }, y2: { field: 'high' }, color: colour } },
      ...(['sustained', 'not sustained'] as const).map((state) => ({
        transform: [{ filter: `datum.state === '${state}'` }],
        mark: { type: 'point' as const, size: 60, strokeWidth: 2, opacity: 1, filled: state === 'sustained' },
        encoding: { y: { field: 'median', type: 'quantitative' as const, scale, axis }, color: colour, shape: { field: 'clients', type: 'nominal' as const, title: 'Clients' } },
      })),
    ],
  } as TopLevelSpec;
}

function specs(run: RunResult): Record<(typeof CHARTS)[number]['file'], TopLevelSpec> {
  return {
    'latency-vs-clients.svg': dotPlot(
      run,
      'Due-to-receipt latency',
      'from the due time on the open-loop schedule to the subscriber reading the message; ▲ p99, ● p50',
      'Latency (ms)',
      // p99 first so it draws under p50 where they meet; one failed label per point is enough.
      [...metricRows(run, 'p99Ms', 'p99'), ...metricRows(run, 'p50Ms', 'p50').filter((r) => r.median !== null)],
      'Percentile',
    ),
    'cpu-per-delivery.svg': dotPlot(
      run,
      'Server CPU per 1,000 deliveries',
      "user + system CPU of the target's processes and descendants over the measured window",
      'CPU (s per 1,000 deliveries)',
      metricRows(run, 'cpuSPer1000Deliveries'),
    ),
    'memory-per-connection.svg': dotPlot(
      run,
      'Memory per parked connection',
      `(RSS all parked − RSS set up, not polling) / clients; 1 KB = ${formatCount(BYTES_PER_KB)} bytes`,
      'Memory (KB per connection)',
      metricRows(run, 'memoryPerParkedBytes', '', BYTES_PER_KB),
    ),
    'requests-per-message.svg': dotPlot(
      run,
      'Subscriber requests per delivery',
      'HTTP requests the subscribers sent (polls, stream (re)connections) / deliveries; 0 for a stream that never reconnected',
      'Requests per delivery',
      metricRows(run, 'requestsPerDelivery'),
    ),
  };
}

/**
 * Multicast: x the messages/s accepted, y the server cores busy (medians, 95% intervals), one line per target and
 * client count over the room counts. Deliveries/s are the same at every room count, so the line's slope is what a
 * message costs beyond its deliveries: CPU ms per message, printed at the line's end. Hollow: the target fell
 * behind at that room count (no slope claimed).
 */
export function multicastChart(run: RunResult): TopLevelSpec {
  const summaries = summariesOf(run).filter((s) => s.scenario === 'multicast');
  const costs = multicastCosts(summaries);
  const order = targetOrder(run).map((t) => t.title);
  const titles = [...new Set(costs.map((c) => c.title))];
  const rows = costs.flatMap((c) => {
    const slope = c.cpuMsPerMessage === null ? 'no slope (fell behind)' : `${formatSpread(multicastSlopeSpread(run.points, c.target, c.clients) ?? { median: c.cpuMsPerMessage, low: 0, high: 0, n: 1 })} ms/msg`;
    return c.rooms.map((r, i) => {
      const spread = summaries.find((s) => s.target === c.target && s.clients === c.clients && s.rooms === r.rooms)?.metrics.serverCoresBusy;
      return {
        target: c.title,
        line: `${c.title} · ${c.clients}`,
        published: r.publishedPerS,
        median: r.serverCoresBusy,
        low: spread?.low ?? r.serverCoresBusy,
        high: spread?.high ?? r.serverCoresBusy,
        state: c.fellBehind.includes(r.rooms) ? 'fell behind' : 'kept up',
        label: i === c.rooms.length - 1 ? `${costs.length > titles.length ? `${formatCount(c.clients)} clients: ` : ''}${slope}` : '',
      };
    });
  });
  const ys = yScale(rows.map((r) => ({ target: r.target, group: '', series: '', median: r.median, low: r.low, high: r.high, state: 'measured', label: '' })));
  const xs = yScale(rows.map((r) => ({ target: r.target, group: '', series: '', median: r.published, low: null, high: null, state: 'measured', label: '' })));
  const axis = { format: ',~r' };
  // The targets' colours of every other chart of the run, restricted to the ones here.
  const colour = { field: 'target', type: 'nominal' as const, title: 'Target', scale: { domain: titles, range: titles.map((t) => PALETTE[order.indexOf(t) % PALETTE.length]!) } };
  const x = { field: 'published', type: 'quantitative' as const, title: 'Messages/s accepted (median)', scale: xs.scale, axis };
  const first = summaries[0];
  const firstPoint = run.points.find((p) => p.scenario === 'multicast');
  const roomCounts = [...new Set(summaries.map((s) => s.rooms ?? 0))].sort((a, b) => a - b);
  const perRoom = first === undefined || first.rooms === undefined ? undefined : first.ratePerS / first.rooms;
  const n = repeats(run);
  return {
    title: {
      text: `Multicast, at ${formatSig(perRoom)} msg/s per room over ${roomCounts.map((r) => formatCount(r)).join(', ')} rooms, ${formatSig(firstPoint?.durationS)} s of publishing; ${n > 1 ? `median of ${formatCount(n)} runs, bars: 95% bootstrap interval` : 'one run, no interval'}`,
      subtitle: [
        'deliveries/s fixed (clients × rate per room), so the slope of each line is the CPU a message costs beyond its deliveries (label: CPU ms per message)',
        `● kept up, ○ fell behind (accepted < 95% of the rate: no slope); x: ${xs.note}; y: ${ys.note}`,
      ],
      anchor: 'start',
      fontSize: 13,
    },
    width: WIDTH,
    height: HEIGHT,
    background: 'white',
    padding: 12,
    config: { axis: { labelFontSize: 11, titleFontSize: 12 }, legend: { labelFontSize: 11, labelLimit: 240, symbolOpacity: 1, symbolStrokeWidth: 2 } },
    data: { values: rows },
    encoding: { x },
    layer: [
      { mark: { type: 'line', strokeWidth: 1.5 }, encoding: { y: { field: 'median', type: 'quantitative', title: 'Server cores busy (median)', scale: ys.scale, axis }, color: colour, detail: { field: 'line' } } },
      { transform: [{ filter: 'datum.low !== datum.high' }], mark: { type: 'rule', strokeWidth: 1.5 }, encoding: { y: { field: 'low', type: 'quantitative', scale: ys.scale, axis }, y2: { field: 'high' }, color: colour } },
      ...(['kept up', 'fell behind'] as const).map((state) => ({
        transform: [{ filter: `datum.state === '${state}'` }],
        mark: { type: 'point' as const, size: 60, strokeWidth: 2, opacity: 1, filled: state === 'kept up' },
        encoding: { y: { field: 'median', type: 'quantitative' as const, scale: ys.scale, axis }, color: colour },
      })),
      {
        transform: [{ filter: "datum.label !== ''" }],
        mark: { type: 'text', align: 'left', dx: 8, fontSize: 10 },
        encoding: { y: { field: 'median', type: 'quantitative', scale: ys.scale, axis }, text: { field: 'label' }, color: colour },
      },
    ],
  } as TopLevelSpec;
}

async function toSvg(spec: TopLevelSpec): Promise<string> {
  const compiled = vl.compile(spec).spec;
  // vega-lite's output type and vega's input type are declared by two packages; they describe the same spec.
  const view = new vega.View(vega.parse(compiled as vega.Spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Every chart of `run` as SVG text, in `chartsFor(run)` order. */
export async function renderCharts(run: RunResult): Promise<Chart[]> {
  const all: Record<string, TopLevelSpec> = specs(run);
  const charts: Chart[] = [];
  const own: Record<string, () => TopLevelSpec> = { [SWEEP_CHART.file]: () => sweepChart(run), [MULTICAST_CHART.file]: () => multicastChart(run) };
  for (const { file } of chartsFor(run)) charts.push({ file, svg: await toSvg(own[file]?.() ?? all[file]!) });
  return charts;
}
