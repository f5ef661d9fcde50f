/**
 * Regenerates a lab run's report from its results.json alone:
 *
 *   npm run bench:report -- [<results dir> | <results.json>]
 *
 * Without an argument, the newest run under bench/results/. Writes results.md and the
 * charts next to the results.json and prints their paths. Exit codes: 0 written,
 * 2 bad usage or a missing/invalid results file, 1 anything else.
 */
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { newestResultsFile, readRunResult, ReportError, resultsFileOf } from './read-results.js';
import { writeReport } from './write-report.js';

const USAGE = 'usage: npm run bench:report -- [<results dir> | <results.json>]';
const RESULTS_ROOT = fileURLToPath(new URL('../../results/', import.meta.url));

function fail(message: string): never {
  console.error(`bench:report: ${message}`);
  process.exit(2);
}

const parse = () => parseArgs({ options: { help: { type: 'boolean', short: 'h' } }, allowPositionals: true });
let args: ReturnType<typeof parse>;
try {
  args = parse();
} catch (err) {
  // Unknown options and the like: parseArgs's message names the culprit.
  fail(`${(err as Error).message}\n${USAGE}`);
}
if (args.values.help) {
  console.log(USAGE);
  process.exit(0);
}
if (args.positionals.length > 1) fail(`one results path at most\n${USAGE}`);

try {
  const given = args.positionals[0];
  const file = given === undefined ? newestResultsFile(RESULTS_ROOT) : resultsFileOf(given);
  const run = readRunResult(file);
  for (const path of await writeReport(dirname(file), run)) console.log(path);
} catch (err) {
  if (err instanceof ReportError) fail(err.message);
  console.error(err);
  process.exit(1);
}
