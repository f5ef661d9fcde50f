/**
 * Where the time went in V8 CPU profiles (`npm run bench -- --cpu-prof DIR`
 * writes them): self time per function and per source area, heaviest first.
 * `tsx bench/tools/cpuprofile-top.ts FILE.cpuprofile [--top N]`. The full
 * picture (call trees, flame chart) is in Chrome DevTools' Performance panel;
 * this is the summary that goes into docs/performance.md.
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

export function summarize(profile: CpuProfile): { totalMs: number; byFunction: Map<string, number>; byArea: Map<string, number> } {
  // Self time of a node = the sample intervals attributed to it.
  const selfUs = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) {
    const next = deltas[i + 1] ?? 0;
    selfUs.set(samples[i]!, (selfUs.get(samples[i]!) ?? 0) + Math.max(0, next));
  }
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
  const { values, positionals } = parseArgs({ options: { top: { type: 'string', default: '25' } }, allowPositionals: true });
  if (positionals.length === 0) {
    process.stderr.write('usage: tsx bench/tools/cpuprofile-top.ts FILE.cpuprofile... [--top N]\n');
    process.exit(2);
  }
  for (const file of positionals) {
    const { totalMs, byFunction, byArea } = summarize(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile);
    process.stdout.write(`${file}: ${totalMs.toFixed(0)} ms sampled\n`);
    process.stdout.write(`${table('by area', byArea, totalMs, 15)}\n${table('by function (self time)', byFunction, totalMs, Number(values.top))}\n\n`);
  }
}
