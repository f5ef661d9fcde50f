/**
 * Runs a Node program with a V8 CPU profile of a window the bench chooses, instead of the whole run
 * (`--cpu-prof` also profiles setup, which dilutes the picture): the first SIGUSR2 starts the profiler, the
 * second writes `<dir>/window-<pid>.cpuprofile` and says so on stderr. Bench-only: nothing in the proxy knows.
 *
 *   node bench/tools/window-profiler.mjs DIR dist/proxy/main.js
 */
import { Session } from 'node:inspector';
import { writeFileSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const [dir, program] = process.argv.slice(2);
if (dir === undefined || program === undefined) throw new Error('usage: window-profiler.mjs DIR PROGRAM');
mkdirSync(dir, { recursive: true });
const session = new Session();
session.connect();
const post = (method, params = {}) =>
  new Promise((res, rej) => session.post(method, params, (err, out) => (err ? rej(err) : res(out))));
await post('Profiler.enable');
await post('Profiler.setSamplingInterval', { interval: 200 });
let running = false;
process.on('SIGUSR2', () => {
  if (!running) {
    running = true;
    void post('Profiler.start');
    return;
  }
  running = false;
  void post('Profiler.stop').then(({ profile }) => {
    const file = join(dir, `window-${process.pid}.cpuprofile`);
    writeFileSync(file, JSON.stringify(profile));
    process.stderr.write(`window profile written: ${file}\n`);
  });
});
process.argv.splice(1, 2); // the program sees itself as argv[1] and its own arguments after it
await import(pathToFileURL(resolve(program)).href);
