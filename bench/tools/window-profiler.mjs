/**
 * Runs a Node program with a V8 CPU profile of a window the bench chooses, instead of the whole run
 * (`--cpu-prof` also profiles setup, which dilutes the picture): the first SIGUSR2 starts the profiler, the
 * second writes `<dir>/window-<pid>.cpuprofile` and says so on stderr. Bench-only: nothing in the proxy knows.
 * With `--heap`, a sampling heap profile of every allocation in the window instead, garbage included
 * (`window-<pid>.heapprofile`, read with heapprofile-top.ts): what the young-generation GC is paid for.
 *
 *   node bench/tools/window-profiler.mjs [--heap] DIR dist/proxy/main.js
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const heap = process.argv[2] === '--heap';
if (heap) process.argv.splice(2, 1);
const [dir, program] = process.argv.slice(2);
if (dir === undefined || program === undefined) throw new Error('usage: window-profiler.mjs [--heap] DIR PROGRAM');
// The signal handling is the preload's (one copy): it reads its settings from the environment.
process.env.WINDOW_PROFILE_DIR = dir;
process.env.WINDOW_PROFILE_HEAP = heap ? '1' : '0';
await import('./window-profile-preload.mjs');
process.argv.splice(1, 2); // the program sees itself as argv[1] and its own arguments after it
await import(pathToFileURL(resolve(program)).href);
