// Runs every test file under test/ with node:test through tsx.
// Node 20's `--test` takes paths, not globs, so the files are listed here. A per-test
// timeout turns a hang anywhere into a failure instead of a stuck CI run. It also caps each
// file as a whole (a file is one test of the run): the models lab's smoke file takes ~70 s on a
// quiet machine and went past 120 s on a loaded one, so the cap is 300 s; tests that should be
// quick set their own, shorter timeouts.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function findTests(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      if (name !== 'helpers') out.push(...findTests(p));
    } else if (name.endsWith('.test.ts')) {
      out.push(p);
    }
  }
  return out.sort();
}

const only = process.argv.slice(2);
const files = only.length > 0 ? only : findTests('test');
if (files.length === 0) {
  console.error('run-tests: no test files found under test/');
  process.exit(1);
}
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-timeout=300000', ...files],
  { stdio: 'inherit' },
);
process.exit(result.status ?? 1);
