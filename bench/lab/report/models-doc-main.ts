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
import { PRESETS } from '../presets.js';
import { runReportCli } from './cli.js';
import { updateDoc } from './models-doc.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const PRESET = PRESETS.models!;

await runReportCli({
  name: 'bench:models-doc',
  usage: 'usage: npm run bench:models-doc -- [<results dir> | <results.json>] [--doc FILE]',
  defaultRoot: resolve(ROOT, PRESET.out),
  stringOptions: ['doc'],
  after: async (run, file, values) => [await updateDoc(resolve(values.doc ?? resolve(ROOT, PRESET.doc!)), resolve(dirname(file)), run)],
});
