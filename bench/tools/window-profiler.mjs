/**
 * Runs a Node program with a V8 CPU profile of a window the bench chooses, instead of the whole run
 * (`--cpu-prof` also profiles setup, which dilutes the picture): the first SIGUSR2 starts the profiler, the
 * second writes `<dir>/window-<pid>.cpuprofile` and says so on stderr. Bench-only: nothing in the proxy knows.
 * With `--heap`, a sampling heap profile of every allocation in the window instead, garbage included
 * (`window-<pid>.heapprofile`, read with heapprofile-top.ts): what the young-generation GC is paid for.
 *
 *   node bench/tools/window-profiler.mjs [--heap] DIR dist/proxy/main.js
 */
import { Session } from 'node:inspector';
import { writeFileSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const heap = process.argv[2] === '--heap';
if (heap) process.argv.splice(2, 1);
const [dir, program] = process.argv.slice(2);
if (dir === undefined || program === undefined) throw new Error('usage: window-profiler.mjs [--heap] DIR PROGRAM');
mkdirSync(dir, { recursive: true });
const session = new Session();
session.connect();
const post = (method, params = {}) =>
  new Promise((res, rej) => session.post(method, params, (err, out) => (err ? rej(err) : res(out))));
await post(heap ? 'HeapProfiler.enable' : 'Profiler.enable');
if (!heap) await post('Profiler.setSamplingInterval', { interval: 200 });
let running = false;
process.on('SIGUSR2', () => {
  if (!running) {
    running = true;
    if (heap) void post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
    else void post('Profiler.start');
    return;
  }
  running = false;
  void post(heap ? 'HeapProfiler.stopSampling' : 'Profiler.stop').then(({ profile }) => {
    const file = join(dir, `window-${process.pid}.${heap ? 'heapprofile' : 'cpuprofile'}`);
    writeFileSync(file, JSON.stringify(profile));
    process.stderr.write(`window profile written: ${file}\n`);
  });
});
process.argv.splice(1, 2); // the program sees itself as argv[1] and its own arguments after it
await import(pathToFileURL(resolve(program)).href);
