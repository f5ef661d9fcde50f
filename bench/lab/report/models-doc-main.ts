/**
 * Rewrites docs/models.md's generated Results block (between its markers) from a lab run:
 *
 *   npm run bench:models-doc -- [<results dir> | <results.json>] [--doc FILE]
 *
 * Without a path, the newest run under docs/models-results/ (where `npm run bench:models` writes). The run's own
 * report is redrawn too, so the charts the doc embeds match the renderer that wrote the tables. Exit codes: 0
 * written, 2 bad usage, a missing or invalid results file or a doc without its markers, 1 anything else.
 */
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { PRESETS } from '../presets.js';
import { updateDoc } from './models-doc.js';
import { newestResultsFile, readRunResult, ReportError, resultsFileOf } from './read-results.js';
import { writeReport } from './write-report.js';

const USAGE = 'usage: npm run bench:models-doc -- [<results dir> | <results.json>] [--doc FILE]';
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const PRESET = PRESETS.models!;

function fail(message: string): never {
  console.error(`bench:models-doc: ${message}`);
  process.exit(2);
}

const parse = () => parseArgs({ options: { doc: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, allowPositionals: true });
let args: ReturnType<typeof parse>;
try {
  args = parse();
} catch (err) {
  fail(`${(err as Error).message}\n${USAGE}`);
}
if (args.values.help) {
  console.log(USAGE);
  process.exit(0);
}
if (args.positionals.length > 1) fail(`one results path at most\n${USAGE}`);

try {
  const given = args.positionals[0];
  const file = given === undefined ? newestResultsFile(resolve(ROOT, PRESET.out)) : resultsFileOf(given);
  const run = readRunResult(file);
  for (const path of await writeReport(dirname(file), run)) console.log(path);
  console.log(await updateDoc(resolve(args.values.doc ?? resolve(ROOT, PRESET.doc!)), resolve(dirname(file)), run));
} catch (err) {
  if (err instanceof ReportError) fail(`${err.code}: ${err.message}`);
  console.error(err);
  process.exit(1);
}
