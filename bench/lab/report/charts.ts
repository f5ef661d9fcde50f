/**
 * The lab's charts: Vega-Lite specs compiled to Vega and rendered headless to
 * SVG (no canvas or browser needed). Only `ok` points are plotted; every chart
 * gives a target the same colour, so the four read together.
 */
import * as vega from 'vega';
import * as vl from 'vega-lite';
import type { TopLevelSpec } from 'vega-lite';
import type { RunResult } from '../results.js';
import { BYTES_PER_KB, clientCounts, formatCount, plottable, targetOrder } from './format.js';

export interface Chart {
  /** File name, written next to results.md. */
  file: string;
  svg: string;
}

/** The charts in report order, with the caption results.md gives each. */
export const CHARTS = [
  { file: 'latency-vs-clients.svg', caption: 'Publish-to-receipt latency (p50, p99) vs clients' },
  { file: 'cpu-per-delivery.svg', caption: 'Server CPU per 1,000 deliveries' },
  { file: 'memory-per-connection.svg', caption: 'Memory per parked connection' },
  { file: 'requests-per-message.svg', caption: 'Subscriber requests per delivery' },
] as const;

const WIDTH = 640;
const HEIGHT = 320;
/** Past this max/min ratio a linear axis flattens the small values into the floor. */
const LOG_SCALE_RATIO = 20;

interface Colours {
  field: 'target';
  type: 'nominal';
  title: string;
  scale: { domain: string[] };
}

/** Every target that has a plotted point, in run order, so each keeps its colour across charts. */
function colours(run: RunResult): Colours {
  const plotted = new Set(plottable(run).map((p) => p.target));
  const domain = targetOrder(run)
    .filter((t) => plotted.has(t.target))
    .map((t) => t.title);
  return { field: 'target', type: 'nominal', title: 'Target', scale: { domain } };
}

function wide(values: readonly number[]): boolean {
  const positive = values.filter((v) => v > 0);
  if (positive.length < 2) return false;
  return Math.max(...positive) / Math.min(...positive) >= LOG_SCALE_RATIO;
}

function base(title: string, subtitle: string): Pick<TopLevelSpec, 'background' | 'padding' | 'config'> & {
  title: { text: string; subtitle: string; anchor: 'start' };
  width: number;
  height: number;
} {
  return {
    title: { text: title, subtitle, anchor: 'start' },
    width: WIDTH,
    height: HEIGHT,
    background: 'white',
    padding: 12,
    config: { axis: { labelFontSize: 11, titleFontSize: 12 }, legend: { labelFontSize: 11, labelLimit: 240, symbolOpacity: 1, symbolStrokeWidth: 2 } },
  };
}

function latencyChart(run: RunResult): TopLevelSpec {
  const rows = plottable(run).flatMap((p) => {
    const l = p.subscribers?.latency;
    if (l === undefined) return [];
    return [
      { target: p.title, clients: p.clients, percentile: 'p99', latencyMs: l.p99 },
      { target: p.title, clients: p.clients, percentile: 'p50', latencyMs: l.p50 },
    ];
  });
  const logY = wide(rows.map((r) => r.latencyMs));
  const clients = clientCounts(plottable(run));
  const logX = wide(clients);
  return {
    ...base('Publish-to-receipt latency vs clients', `p99 solid, p50 dashed${logY ? '; log scale' : ''}`),
    // A log scale cannot place 0 ms; such points are dropped rather than breaking the axis.
    data: { values: logY ? rows.filter((r) => r.latencyMs > 0) : rows },
    encoding: {
      x: {
        field: 'clients',
        type: 'quantitative',
        title: 'Clients (parked subscribers)',
        scale: logX ? { type: 'log' } : { zero: false },
        // labelExpr, not format: on a log x axis with explicit values Vega printed "1e+3".
        axis: { values: clients, labelExpr: "format(datum.value, ',')" },
      },
      y: {
        field: 'latencyMs',
        type: 'quantitative',
        title: 'Latency (ms)',
        scale: logY ? { type: 'log' } : { zero: true },
        axis: { format: ',' },
      },
      color: colours(run),
    },
    // Lines and points as two layers, not `point: true`: only the line layer carries the dash, so the
    // Percentile legend draws dashed strokes (with `point: true` it draws dots, hiding the difference).
    layer: [
      {
        mark: { type: 'line', strokeWidth: 2 },
        encoding: {
          strokeDash: { field: 'percentile', type: 'nominal', title: 'Percentile', sort: ['p99', 'p50'] },
        },
      },
      { mark: { type: 'point', filled: true, size: 40 } },
    ],
  };
}

/** Bars per target, grouped by client count: the shape of the three cost charts. */
function groupedBars(
  run: RunResult,
  title: string,
  subtitle: string,
  yTitle: string,
  value: (p: ReturnType<typeof plottable>[number]) => number,
): TopLevelSpec {
  const points = plottable(run);
  const label = (clients: number) => `${formatCount(clients)} clients`;
  const groups = clientCounts(points).map(label);
  const rows = points
    .map((p) => ({ target: p.title, group: label(p.clients), value: value(p) }))
    .filter((r) => Number.isFinite(r.value));
  const c = colours(run);
  // Targets differ by orders of magnitude (Nchan vs Pushpin): on a linear axis the cheap ones vanish.
  const positive = rows.map((r) => r.value).filter((v) => v > 0);
  const logY = positive.length > 1 && Math.max(...positive) / Math.min(...positive) >= LOG_SCALE_RATIO;
  return {
    ...base(title, logY ? `${subtitle}; log scale` : subtitle),
    data: { values: logY ? rows.filter((r) => r.value > 0) : rows },
    mark: { type: 'bar' },
    encoding: {
      x: { field: 'group', type: 'ordinal', title: null, sort: groups, axis: { labelAngle: 0 } },
      xOffset: { field: 'target', type: 'nominal', sort: c.scale.domain },
      // stack: null, or Vega-Lite stacks the bars from 0, which a log scale cannot place (no bars at all).
      y: { field: 'value', type: 'quantitative', title: yTitle, stack: null, scale: logY ? { type: 'log' } : { zero: true }, axis: { format: ',' } },
      color: c,
    },
  };
}

function specs(run: RunResult): Record<(typeof CHARTS)[number]['file'], TopLevelSpec> {
  return {
    'latency-vs-clients.svg': latencyChart(run),
    'cpu-per-delivery.svg': groupedBars(
      run,
      'Server CPU per 1,000 deliveries',
      "user + system CPU of the server's processes and descendants, measured window",
      'CPU (s per 1,000 deliveries)',
      (p) => p.derived.cpuSPer1000Deliveries,
    ),
    'memory-per-connection.svg': groupedBars(
      run,
      'Memory per parked connection',
      `(RSS all parked − RSS set up, not polling) / clients; 1 KB = ${formatCount(BYTES_PER_KB)} bytes`,
      'Memory (KB per connection)',
      (p) => p.derived.memoryPerParkedBytes / BYTES_PER_KB,
    ),
    'requests-per-message.svg': groupedBars(
      run,
      'Subscriber requests per delivery',
      'HTTP requests the subscribers sent (polls, stream (re)connections) / deliveries',
      'Requests per delivery',
      (p) => p.derived.requestsPerDelivery,
    ),
  };
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

/** Every chart of `run` as SVG text, in `CHARTS` order. */
export async function renderCharts(run: RunResult): Promise<Chart[]> {
  const all = specs(run);
  const charts: Chart[] = [];
  for (const { file } of CHARTS) charts.push({ file, svg: await toSvg(all[file]) });
  return charts;
}
