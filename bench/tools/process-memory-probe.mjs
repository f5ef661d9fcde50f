/**
 * Preloaded into every proxy process by bench/tools/parked-memory.ts --per-process (after the lab's GC handler,
 * bench/lab/gc-preload.mjs, so its SIGUSR2 listener runs after the forced GC), never in production. On SIGUSR2 it
 * writes `$PROCESS_MEMORY_DIR/<pid>.json`: `{seq, role, memoryUsage, spaces}`, where `role` is `primary`, `worker`
 * or `single` and `spaces` is V8's heap space statistics (bytes: size is what V8 reserved for the space, used what
 * lives in it, physical what is backed by memory). Written whole, then renamed: a reader never sees half a file.
 * Plain JavaScript: it also loads into `dist/` builds.
 */
import cluster from 'node:cluster';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import v8 from 'node:v8';

const dir = process.env.PROCESS_MEMORY_DIR;
if (!dir) throw new Error('process-memory-probe: set PROCESS_MEMORY_DIR to a directory');
let seq = 0;

process.on('SIGUSR2', () => {
  const role = cluster.isWorker ? 'worker' : Object.keys(cluster.workers ?? {}).length > 0 ? 'primary' : 'single';
  const spaces = Object.fromEntries(
    v8.getHeapSpaceStatistics().map((s) => [s.space_name, { size: s.space_size, used: s.space_used_size, physical: s.physical_space_size }]),
  );
  const file = join(dir, `${process.pid}.json`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${file}.tmp`, JSON.stringify({ seq: ++seq, role, memoryUsage: process.memoryUsage(), spaces }));
  renameSync(`${file}.tmp`, file);
});
