/**
 * Finding and loading a lab run's results.json for the report, with a
 * minimal shape check so a wrong file fails with a message instead of a
 * TypeError deep inside the table code.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { RunResult } from '../results.js';

export type ReportErrorCode = 'REPORT_ERR_NOT_FOUND' | 'REPORT_ERR_INVALID' | 'REPORT_ERR_DOC_MARKERS';

export class ReportError extends Error {
  constructor(
    readonly code: ReportErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ReportError';
  }
}

export const RESULTS_FILE = 'results.json';

/** `path` itself when it is a file, `path/results.json` when it is a directory. */
export function resultsFileOf(path: string): string {
  let stats;
  try {
    stats = statSync(path);
  } catch {
    throw new ReportError('REPORT_ERR_NOT_FOUND', `${path}: no such file or directory`);
  }
  return stats.isDirectory() ? join(path, RESULTS_FILE) : path;
}

/** The results.json most recently written under `resultsRoot` (one directory per run). */
export function newestResultsFile(resultsRoot: string): string {
  let names: string[];
  try {
    names = readdirSync(resultsRoot);
  } catch {
    throw new ReportError('REPORT_ERR_NOT_FOUND', `${resultsRoot}: no results directory (run the lab first)`);
  }
  let best: { file: string; mtimeMs: number; name: string } | undefined;
  for (const name of names) {
    const file = join(resultsRoot, name, RESULTS_FILE);
    let mtimeMs: number;
    try {
      mtimeMs = statSync(file).mtimeMs;
    } catch {
      continue; // a run still in progress, or not a run directory
    }
    // Names are timestamps, so they break mtime ties (files copied together).
    if (best === undefined || mtimeMs > best.mtimeMs || (mtimeMs === best.mtimeMs && name > best.name)) {
      best = { file, mtimeMs, name };
    }
  }
  if (best === undefined) throw new ReportError('REPORT_ERR_NOT_FOUND', `${resultsRoot}: no run directory holds a ${RESULTS_FILE}`);
  return best.file;
}

type Check = [path: string, ok: boolean, expected: string];

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const STATUSES = new Set(['ok', 'failed', 'unavailable']);

/** Checks the fields the report reads at top level and on every point; returns the first problems. */
function problems(json: unknown): string[] {
  if (!isObject(json)) return ['top level: expected an object'];
  const checks: Check[] = [
    ['startedAt', typeof json.startedAt === 'string', 'a string'],
    ['command', typeof json.command === 'string', 'a string'],
    ['machine', isObject(json.machine), 'an object'],
    ['options', isObject(json.options), 'an object'],
    ['points', Array.isArray(json.points), 'an array'],
  ];
  if (isObject(json.machine)) {
    const m = json.machine;
    for (const key of ['cpus', 'memoryGiB'] as const) checks.push([`machine.${key}`, typeof m[key] === 'number', 'a number']);
    for (const key of ['cpuModel', 'node', 'os'] as const) checks.push([`machine.${key}`, typeof m[key] === 'string', 'a string']);
  }
  if (Array.isArray(json.points)) {
    json.points.forEach((p: unknown, i) => {
      if (!isObject(p)) return checks.push([`points[${i}]`, false, 'an object']);
      for (const key of ['target', 'title', 'kind'] as const) checks.push([`points[${i}].${key}`, typeof p[key] === 'string', 'a string']);
      for (const key of ['clients', 'rooms', 'ratePerS', 'durationS'] as const) {
        checks.push([`points[${i}].${key}`, typeof p[key] === 'number', 'a number']);
      }
      checks.push([`points[${i}].status`, STATUSES.has(p.status as string), '"ok", "failed" or "unavailable"']);
      if (p.status === 'ok') {
        checks.push([`points[${i}].subscribers`, p.subscribers === undefined || isObject(p.subscribers), 'an object']);
        checks.push([`points[${i}].derived`, p.derived === undefined || isObject(p.derived), 'an object']);
      }
    });
  }
  return checks.filter(([, ok]) => !ok).map(([path, , expected]) => `${path}: expected ${expected}`);
}

/** Reads and checks a lab run's results.json. Throws `ReportError` with a message naming the file. */
export function readRunResult(file: string): RunResult {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new ReportError('REPORT_ERR_NOT_FOUND', `${file}: cannot read (missing or not a file)`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ReportError('REPORT_ERR_INVALID', `${file}: not JSON (${(err as Error).message})`);
  }
  const found = problems(json);
  if (found.length > 0) {
    const more = found.length > 5 ? `, and ${found.length - 5} more` : '';
    throw new ReportError('REPORT_ERR_INVALID', `${file}: not a lab results file: ${found.slice(0, 5).join('; ')}${more}`);
  }
  return json as RunResult;
}
