/**
 * What the report's command lines share (`bench:report`, `bench:models-doc`): one optional results path (a run
 * directory or its results.json; without it, the newest run under a default root), `--help`, any extra string
 * options, the run's report redrawn beside its results.json, then the command's own step. Exit codes: 0 written,
 * 2 bad usage or a ReportError (a missing or invalid results file, a doc without its markers), 1 anything else.
 */
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import type { RunResult } from '../results.js';
import { newestResultsFile, readRunResult, ReportError, resultsFileOf } from './read-results.js';
import { writeReport } from './write-report.js';

export interface ReportCli {
  /** The npm script's name, prefixed to every error line. */
  name: string;
  usage: string;
  /** Where the newest run is looked for when no path is given. */
  defaultRoot: string;
  /** Extra `--name VALUE` options the command takes. */
  stringOptions?: readonly string[];
  /** After the report is written: the command's own step; returns the lines to print. */
  after?: (run: RunResult, file: string, values: Readonly<Record<string, string | undefined>>) => Promise<string[]>;
}

export async function runReportCli(cli: ReportCli): Promise<void> {
  const fail = (message: string): never => {
    console.error(`${cli.name}: ${message}`);
    process.exit(2);
  };
  const options = Object.fromEntries([
    ['help', { type: 'boolean' as const, short: 'h' }],
    ...(cli.stringOptions ?? []).map((o) => [o, { type: 'string' as const }]),
  ]);
  let parsed: { values: Record<string, string | boolean | undefined>; positionals: string[] };
  try {
    parsed = parseArgs({ options, allowPositionals: true }) as typeof parsed;
  } catch (err) {
    // Unknown options and the like: parseArgs's message names the culprit.
    return fail(`${(err as Error).message}\n${cli.usage}`);
  }
  if (parsed.values.help === true) {
    console.log(cli.usage);
    process.exit(0);
  }
  if (parsed.positionals.length > 1) fail(`one results path at most\n${cli.usage}`);
  try {
    const given = parsed.positionals[0];
    const file = given === undefined ? newestResultsFile(cli.defaultRoot) : resultsFileOf(given);
    const run = readRunResult(file);
    for (const path of await writeReport(dirname(file), run)) console.log(path);
    const strings = Object.fromEntries((cli.stringOptions ?? []).map((o) => [o, parsed.values[o] as string | undefined]));
    for (const line of (await cli.after?.(run, file, strings)) ?? []) console.log(line);
  } catch (err) {
    if (err instanceof ReportError) fail(`${err.code}: ${err.message}`);
    console.error(err);
    process.exit(1);
  }
}
