/**
 * Regenerates a lab run's report from its results.json alone:
 *
 *   npm run bench:report -- [<results dir> | <results.json>]
 *
 * Without an argument, the newest run under bench/results/. Writes results.md and the
 * charts next to the results.json and prints their paths. Exit codes: 0 written,
 * 2 bad usage or a missing/invalid results file, 1 anything else (report/cli.ts).
 */
import { fileURLToPath } from 'node:url';
import { runReportCli } from './cli.js';

await runReportCli({
  name: 'bench:report',
  usage: 'usage: npm run bench:report -- [<results dir> | <results.json>]',
  defaultRoot: fileURLToPath(new URL('../../results/', import.meta.url)),
});
