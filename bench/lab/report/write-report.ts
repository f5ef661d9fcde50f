/**
 * Writes a run's report (results.md, the charts, the CSV export) into a directory,
 * normally the run's own, next to its results.json.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RunResult } from '../results.js';
import { chartsFor, renderCharts } from './charts.js';
import { CSV_FILES, renderCsv } from './csv.js';
import { renderMarkdown } from './markdown.js';

export const REPORT_FILE = 'results.md';

/** Writes `results.md`, every chart and the CSV files into `dir` (created if missing); resolves with the paths written. */
export async function writeReport(dir: string, run: RunResult): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const charts = await renderCharts(run);
  const markdown = renderMarkdown(run, { charts: chartsFor(run) });
  const paths = [join(dir, REPORT_FILE), ...charts.map((c) => join(dir, c.file))];
  await writeFile(paths[0]!, markdown);
  for (const c of charts) await writeFile(join(dir, c.file), c.svg);
  const tables = renderCsv(run);
  for (const file of CSV_FILES) {
    await writeFile(join(dir, file), tables[file]);
    paths.push(join(dir, file));
  }
  return paths;
}
