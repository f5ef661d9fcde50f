/**
 * The run as CSV, next to results.json, for a spreadsheet or R: `points.csv`
 * (one row per run of a load point), `summary.csv` (one row per point and
 * metric: median and 95% interval over its runs) and `timeseries.csv` (one row
 * per second of each point's measured window). RFC 4180: comma-separated, CRLF
 * line ends, a field quoted when it holds a comma, quote or line break; numbers
 * as JavaScript prints them (full precision), an empty field for no value.
 */
import type { LoadPointResult, RunResult } from '../results.js';
import { METRICS, type MetricName } from '../stats.js';
import { summariesOf } from './format.js';

export const CSV_FILES = ['points.csv', 'summary.csv', 'timeseries.csv'] as const;

/** One field: empty for no value, quoted when needed. */
export function csvField(value: string | number | boolean | null | undefined): string {
  if (value === null || value === undefined || (typeof value === 'number' && !Number.isFinite(value))) return '';
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function csv(header: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | number | boolean | null | undefined>>): string {
  return [header, ...rows].map((r) => r.map(csvField).join(',')).join('\r\n') + '\r\n';
}

const METRIC_NAMES = Object.keys(METRICS) as MetricName[];
const key = (p: LoadPointResult) => [p.scenario ?? 'chat', p.target, p.clients, p.ratePerS, p.repeat ?? 1] as const;

export function pointsCsv(run: RunResult): string {
  const header = ['scenario', 'target', 'clients', 'rate_per_s', 'repeat', 'status', 'error', 'window_s', 'published', 'dropped', 'lost', 'duplicated', 'generator_saturated', 'steal_share', ...METRIC_NAMES, 'rooms'];
  return csv(
    header,
    run.points.map((p) => [
      ...key(p),
      p.status,
      p.error,
      p.windowS,
      p.publisher?.published,
      p.publisher?.dropped,
      p.subscribers?.lost,
      p.subscribers?.duplicated,
      p.generatorSaturated,
      p.stealShare,
      ...METRIC_NAMES.map((m) => (p.status === 'ok' ? (METRICS[m] as (x: LoadPointResult) => number | undefined)(p) : undefined)),
      // Last, so the columns before it keep their places; the multicast scenario varies it.
      p.rooms,
    ]),
  );
}

export function summaryCsv(run: RunResult): string {
  const header = ['scenario', 'target', 'clients', 'rate_per_s', 'runs', 'measured', 'metric', 'median', 'ci95_low', 'ci95_high', 'n', 'rooms'];
  const rows = summariesOf(run).flatMap((s) =>
    METRIC_NAMES.flatMap((m) => {
      const v = s.metrics[m];
      return v === undefined ? [] : [[s.scenario, s.target, s.clients, s.ratePerS, s.runs, s.measured, m, v.median, v.low, v.high, v.n, s.rooms]];
    }),
  );
  return csv(header, rows);
}

/** Per-second rates between consecutive samples of each point's window. */
export function timeSeriesCsv(run: RunResult): string {
  const header = ['scenario', 'target', 'clients', 'rate_per_s', 'repeat', 't_s', 'deliveries_per_s', 'requests_per_s', 'errors', 'server_cores_busy', 'generator_cores_busy', 'server_rss_bytes'];
  const rows = run.points.flatMap((p) => {
    const series = p.timeSeries ?? [];
    return series.slice(1).map((b, i) => {
      const a = series[i]!;
      const dt = b.t - a.t;
      const rate = (x: number, y: number) => (dt > 0 ? (y - x) / dt : undefined);
      return [
        ...key(p),
        b.t,
        rate(a.deliveries, b.deliveries),
        rate(a.requests, b.requests),
        b.errors - a.errors,
        rate(a.serverCpuS, b.serverCpuS),
        rate(a.generatorCpuS, b.generatorCpuS),
        b.serverRssBytes,
      ];
    });
  });
  return csv(header, rows);
}

/** Every CSV file of the run, by name. */
export function renderCsv(run: RunResult): Record<(typeof CSV_FILES)[number], string> {
  return { 'points.csv': pointsCsv(run), 'summary.csv': summaryCsv(run), 'timeseries.csv': timeSeriesCsv(run) };
}
