/**
 * Number and grouping helpers shared by the Markdown table and the charts, so
 * both show the same figures in the same order.
 */
import type { LoadPointResult, PointSummary, RunResult } from '../results.js';
import { summarize } from '../stats.js';

/** What a cell shows when there is no figure (no `derived`, NaN, ±Infinity). */
export const NO_VALUE = '—';

const SIG3 = new Intl.NumberFormat('en-US', { maximumSignificantDigits: 3 });
const COUNT = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

/** 3 significant digits with thousands separators: 12,300 · 1.23 · 0.0123. */
export function formatSig(value: number | undefined | null): string {
  if (value === undefined || value === null || !Number.isFinite(value)) return NO_VALUE;
  const text = SIG3.format(value);
  // Intl keeps the sign of tiny negatives that round to zero ("-0"); a table should not.
  return text === '-0' ? '0' : text;
}

/** A whole count in full, with thousands separators: 1,234,567. */
export function formatCount(value: number | undefined | null): string {
  if (value === undefined || value === null || !Number.isFinite(value)) return NO_VALUE;
  return COUNT.format(value);
}

/** Bytes per kilobyte in the report (memory per parked connection). */
export const BYTES_PER_KB = 1024;

/** Target names in order of first appearance, the order every table and legend uses. */
export function targetOrder(run: RunResult): Array<{ target: string; title: string }> {
  const seen = new Map<string, string>();
  for (const p of run.points) if (!seen.has(p.target)) seen.set(p.target, p.title);
  return [...seen].map(([target, title]) => ({ target, title }));
}

/** Client counts of the run, ascending. */
export function clientCounts(points: readonly LoadPointResult[]): number[] {
  return [...new Set(points.map((p) => p.clients))].sort((a, b) => a - b);
}

/** Lost or duplicated deliveries: the row a reader must not take at face value. */
export function isLossy(point: LoadPointResult): boolean {
  const s = point.subscribers;
  return s !== undefined && (s.lost > 0 || s.duplicated > 0);
}

/** Most runs of any point: more than 1 when the run was made with `--repeat`. */
export function repeats(run: RunResult): number {
  return Math.max(1, ...run.points.map((p) => p.repeat ?? 1));
}

/** The summaries results.json carries, or computed from its points (runs made before `--repeat` have none). */
export function summariesOf(run: RunResult): PointSummary[] {
  return run.summaries ?? summarize(run.points);
}
