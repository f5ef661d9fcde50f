/**
 * Preloaded into the proxy by bench/tools/parked-memory.ts --probe DIR (`node --import
 * ./bench/tools/memory-probe.mjs`), never in production. On SIGUSR2 it reads one command from
 * `$MEMORY_PROBE_DIR/command` and, when done, writes its sequence number to `$MEMORY_PROBE_DIR/done`:
 *
 * - `gc`: a full, compacting GC (what V8 does when it reduces memory), then `process.memoryUsage()` to `gc-<n>.json`;
 * - `sample-start` / `sample-stop`: V8's sampling heap profiler over a window, counting objects already
 *   collected too, so the profile shows everything allocated in it; written to `alloc-<n>.heapprofile`
 *   (Chrome DevTools' Memory panel, or bench/tools/heapprofile-top.ts).
 *
 * Plain JavaScript through the inspector, so it also loads into `dist/` builds without --expose-gc.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';

const dir = process.env.MEMORY_PROBE_DIR;
if (!dir) throw new Error('memory-probe: set MEMORY_PROBE_DIR to a directory');

const session = new Session();
session.connect();
await session.post('HeapProfiler.enable');
let seq = 0;
let profiles = 0;
let busy = Promise.resolve();

/** Written whole, then renamed into place: a reader never sees half a file. */
function publish(name, text) {
  writeFileSync(join(dir, `${name}.tmp`), text);
  renameSync(join(dir, `${name}.tmp`), join(dir, name));
}

async function run(command) {
  if (command === 'gc') {
    await session.post('HeapProfiler.collectGarbage');
    publish(`gc-${seq}.json`, JSON.stringify(process.memoryUsage()));
  } else if (command === 'sample-start') {
    // 4 KiB between samples: fine enough for per-delivery figures, cheap enough not to change them much.
    await session.post('HeapProfiler.startSampling', {
      samplingInterval: 4096,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
  } else if (command === 'sample-stop') {
    const { profile } = await session.post('HeapProfiler.stopSampling');
    publish(`alloc-${profiles++}.heapprofile`, JSON.stringify(profile));
  } else {
    throw new Error(`memory-probe: unknown command ${JSON.stringify(command)}`);
  }
}

process.on('SIGUSR2', () => {
  busy = busy
    .then(() => run(readFileSync(join(dir, 'command'), 'utf8').trim()))
    .catch((err) => process.stderr.write(`memory-probe: ${err.message}\n`))
    .then(() => publish('done', String(++seq)));
});
