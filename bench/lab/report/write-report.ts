/**
 * Writes a run's report (results.md and the charts) into a directory,
 * normally the run's own, next to its results.json.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RunResult } from '../results.js';
import { CHARTS, renderCharts } from './charts.js';
import { renderMarkdown } from './markdown.js';

export const REPORT_FILE = 'results.md';

/** Writes `results.md` and every chart into `dir` (created if missing); resolves with the paths written. */
export async function writeReport(dir: string, run: RunResult): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const charts = await renderCharts(run);
  const markdown = renderMarkdown(run, { charts: CHARTS });
  const paths = [join(dir, REPORT_FILE), ...charts.map((c) => join(dir, c.file))];
  await writeFile(paths[0]!, markdown);
  for (const c of charts) await writeFile(join(dir, c.file), c.svg);
  return paths;
}
