/**
 * What was allocated in V8 sampling heap profiles (bench/tools/alloc-sampler.mjs writes them): bytes per
 * allocating function and per source area, heaviest first, optionally per unit of work (`--per 10000`
 * deliveries). `tsx bench/tools/heapprofile-top.ts FILE.heapprofile... [--top N] [--per N]`.
 * Self size is where the allocation happened (a string built inside Node's `_storeHeader` counts there,
 * not at our caller); Chrome DevTools' Memory panel shows the same profile as a tree.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { areaOf } from './cpuprofile-top.js';

interface HeapNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: HeapNode[];
}

export function summarize(head: HeapNode): { total: number; byFunction: Map<string, number>; byArea: Map<string, number> } {
  const byFunction = new Map<string, number>();
  const byArea = new Map<string, number>();
  let total = 0;
  // Iterative walk: call trees can be deeper than the stack likes.
  const stack: HeapNode[] = [head];
  for (let visited = 0; stack.length > 0 && visited < 10_000_000; visited++) {
    const node = stack.pop()!;
    for (const child of node.children) stack.push(child);
    if (node.selfSize === 0) continue;
    total += node.selfSize;
    const { functionName, url, lineNumber } = node.callFrame;
    const file = url.replace(/^.*\/(node_modules|dist)\//, '$1/').replace(/^file:\/\/\/work\/[^/]+\//, '');
    const key = `${functionName || '(anonymous)'} ${file}:${lineNumber + 1}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + node.selfSize);
    const area = areaOf(url, functionName);
    byArea.set(area, (byArea.get(area) ?? 0) + node.selfSize);
  }
  return { total, byFunction, byArea };
}

function table(title: string, entries: Map<string, number>, total: number, top: number, per: number): string {
  const rows = [...entries].sort((a, b) => b[1] - a[1]).slice(0, top);
  const unit = per > 1 ? ` B/unit (÷${per})` : ' B';
  return [
    `${title}`,
    ...rows.map(([k, bytes]) => `${((bytes / total) * 100).toFixed(1).padStart(5)} %  ${(bytes / per).toFixed(0).padStart(9)}${unit}  ${k}`),
  ].join('\n');
}

if (process.argv[1]?.endsWith('heapprofile-top.ts')) {
  const { values, positionals } = parseArgs({
    options: { top: { type: 'string', default: '25' }, per: { type: 'string', default: '1' } },
    allowPositionals: true,
  });
  if (positionals.length === 0) {
    process.stderr.write('usage: tsx bench/tools/heapprofile-top.ts FILE.heapprofile... [--top N] [--per N]\n');
    process.exit(2);
  }
  const per = Number(values.per);
  for (const file of positionals) {
    const profile = JSON.parse(readFileSync(file, 'utf8')) as { head: HeapNode };
    const { total, byFunction, byArea } = summarize(profile.head);
    process.stdout.write(`${file}: ${(total / 1024 / 1024).toFixed(1)} MiB allocated (sampled estimate), ${(total / per).toFixed(0)} B per unit\n`);
    process.stdout.write(`${table('by area', byArea, total, 15, per)}\n${table('by function (self size)', byFunction, total, Number(values.top), per)}\n\n`);
  }
}
