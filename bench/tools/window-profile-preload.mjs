/**
 * bench/tools/window-profiler.mjs as a preload (`node --import ./bench/tools/window-profile-preload.mjs PROGRAM`),
 * for a program that forks: node:cluster workers inherit the flag through process.execArgv, so the primary and
 * every worker profile themselves on the same signals (delivery-floor.ts --workers N --cpu-prof DIR sends them
 * to each). The first SIGUSR2 starts the profiler, the second writes `$WINDOW_PROFILE_DIR/window-<pid>.cpuprofile`
 * (`.heapprofile` with WINDOW_PROFILE_HEAP=1) and says so on stderr. Bench-only: nothing in the proxy knows.
 */
import { Session } from 'node:inspector';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.env.WINDOW_PROFILE_DIR;
if (!dir) throw new Error('window-profile-preload: set WINDOW_PROFILE_DIR');
const heap = process.env.WINDOW_PROFILE_HEAP === '1';
mkdirSync(dir, { recursive: true });
const session = new Session();
session.connect();
const post = (method, params = {}) => new Promise((res, rej) => session.post(method, params, (err, out) => (err ? rej(err) : res(out))));
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
