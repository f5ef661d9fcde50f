/**
 * Preloaded into the lab's Node targets (`node --expose-gc --import <this file>`; bench/lab/force-gc.ts), never
 * in production. On SIGUSR2 it runs a full GC and writes `{"seq":n,...process.memoryUsage()}` to
 * `<tmpdir>/comet-lab-gc/<pid>.json` (written whole, then renamed), so the harness knows the collection is done
 * before it reads RSS. Plain JavaScript: the targets run compiled, without tsx.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const dir = join(tmpdir(), 'comet-lab-gc');
let seq = 0;

process.on('SIGUSR2', () => {
  if (typeof globalThis.gc !== 'function') {
    process.stderr.write('lab gc-preload: started without --expose-gc; nothing collected\n');
    return;
  }
  globalThis.gc();
  const file = join(dir, `${process.pid}.json`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${file}.tmp`, JSON.stringify({ seq: ++seq, ...process.memoryUsage() }));
  renameSync(`${file}.tmp`, file);
});
