/**
 * Where the time went in V8 CPU profiles (`npm run bench -- --cpu-prof DIR`
 * writes them): self time per function and per source area, heaviest first.
 * `tsx bench/tools/cpuprofile-top.ts FILE.cpuprofile [--top N]`. The full
 * picture (call trees, flame chart) is in Chrome DevTools' Performance panel;
 * this is the summary that goes into docs/performance.md.
 * `--timeline` prints busy (non-idle) ms per second of the profile, to find a phase (the lab's profile spans its
 * park storm and its fan-out); `--from-s A --to-s B` then summarizes only samples in [A, B) s from its start.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

/** The part of the code a frame belongs to: our folders, a package, Node's internals or V8's own. */
export function areaOf(url: string, functionName: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  if (url.startsWith('node:')) return url.split('/')[0]!;
  const ours = /\/dist\/([^/]+)\//.exec(url) ?? /\/work\/[^/]+\/([^/]+)\//.exec(url);
  return ours ? `${ours[1]}/` : url;
}

/** A window of the profile, in µs from its start; the whole profile when absent. */
export interface SampleWindow {
  fromUs: number;
  toUs: number;
}

/** Calls `visit(nodeId, us, atUs)` for every sample: its interval and its time from the profile's start. */
function eachSample(profile: CpuProfile, visit: (nodeId: number, us: number, atUs: number) => void): void {
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  let atUs = 0;
  for (let i = 0; i < samples.length; i++) {
    atUs += deltas[i] ?? 0;
    visit(samples[i]!, Math.max(0, deltas[i + 1] ?? 0), atUs);
  }
}

/** Busy (non-idle, non-program) ms in each whole second of the profile. */
export function timeline(profile: CpuProfile): number[] {
  const idle = new Set(profile.nodes.filter((n) => n.callFrame.functionName === '(idle)').map((n) => n.id));
  const perSecond: number[] = [];
  eachSample(profile, (nodeId, us, atUs) => {
    if (idle.has(nodeId)) return;
    const second = Math.floor(atUs / 1e6);
    while (perSecond.length <= second) perSecond.push(0);
    perSecond[second]! += us / 1000;
  });
  return perSecond;
}

export function summarize(
  profile: CpuProfile,
  window?: SampleWindow,
): { totalMs: number; byFunction: Map<string, number>; byArea: Map<string, number> } {
  // Self time of a node = the sample intervals attributed to it.
  const selfUs = new Map<number, number>();
  eachSample(profile, (nodeId, us, atUs) => {
    if (window !== undefined && (atUs < window.fromUs || atUs >= window.toUs)) return;
    selfUs.set(nodeId, (selfUs.get(nodeId) ?? 0) + us);
  });
  const byFunction = new Map<string, number>();
  const byArea = new Map<string, number>();
  let totalUs = 0;
  for (const node of profile.nodes) {
    const us = selfUs.get(node.id) ?? 0;
    if (us === 0) continue;
    totalUs += us;
    const { functionName, url, lineNumber } = node.callFrame;
    const file = url.replace(/^.*\/(node_modules|dist)\//, '$1/');
    const key = `${functionName || '(anonymous)'} ${file}:${lineNumber + 1}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + us / 1000);
    const area = areaOf(url, functionName);
    byArea.set(area, (byArea.get(area) ?? 0) + us / 1000);
  }
  return { totalMs: totalUs / 1000, byFunction, byArea };
}

function table(title: string, entries: Map<string, number>, totalMs: number, top: number): string {
  const rows = [...entries].sort((a, b) => b[1] - a[1]).slice(0, top);
  return [`${title}`, ...rows.map(([k, ms]) => `${((ms / totalMs) * 100).toFixed(1).padStart(5)} %  ${ms.toFixed(0).padStart(7)} ms  ${k}`)].join('\n');
}

if (process.argv[1]?.endsWith('cpuprofile-top.ts')) {
  const { values, positionals } = parseArgs({
    options: {
      top: { type: 'string', default: '25' },
      timeline: { type: 'boolean', default: false },
      'from-s': { type: 'string' },
      'to-s': { type: 'string' },
    },
    allowPositionals: true,
  });
  const seconds = (name: 'from-s' | 'to-s', absent: number): number => {
    const text = values[name];
    if (text === undefined) return absent;
    const n = Number(text);
    if (!Number.isFinite(n) || n < 0) {
      process.stderr.write(`--${name} must be a number of seconds >= 0, got ${JSON.stringify(text)}\n`);
      process.exit(2);
    }
    return n;
  };
  if (positionals.length === 0) {
    process.stderr.write('usage: tsx bench/tools/cpuprofile-top.ts FILE.cpuprofile... [--top N] [--timeline] [--from-s A --to-s B]\n');
    process.exit(2);
  }
  const window = { fromUs: seconds('from-s', 0) * 1e6, toUs: seconds('to-s', Infinity) * 1e6 };
  for (const file of positionals) {
    const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
    if (values.timeline) {
      const busy = timeline(profile).map((ms, s) => `${String(s).padStart(4)} s ${ms.toFixed(0).padStart(5)} ms`);
      process.stdout.write(`${file}: busy ms per second\n${busy.join('\n')}\n\n`);
      continue;
    }
    const { totalMs, byFunction, byArea } = summarize(profile, window);
    process.stdout.write(`${file}: ${totalMs.toFixed(0)} ms sampled\n`);
    process.stdout.write(`${table('by area', byArea, totalMs, 15)}\n${table('by function (self time)', byFunction, totalMs, Number(values.top))}\n\n`);
  }
}
