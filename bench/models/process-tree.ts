/**
 * A target's cost, read from Linux /proc: the CPU time and resident memory of
 * its root processes and every descendant (nginx workers, Pushpin's condure,
 * zurl, proxy and handler). Synchronous and cheap enough to sample a few times
 * a second; on other systems every figure is 0 and every tree is empty.
 *
 * What a sum can miss: a process's CPU time lives in its own /proc entry, so a
 * descendant that exits takes it along, unless its parent reaps it (`wait()`):
 * then the kernel adds it to the parent's `cutime`/`cstime`, which `cpuSeconds`
 * counts. A descendant orphaned before it exits is reaped by init instead and
 * its time is lost. Live processes are never in anyone's `cutime`, so nothing
 * is counted twice.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** The /proc/<pid>/stat fields we use. */
interface ProcStat {
  /** One letter: `R`, `S`, `D`, `Z` (zombie: exited, not yet reaped), ... */
  state: string;
  ppid: number;
  /** Process group id. */
  pgrp: number;
  /** Clock ticks in user and kernel mode, this process's own. */
  utime: number;
  stime: number;
  /** Clock ticks of its children that exited and were reaped by it. */
  cutime: number;
  cstime: number;
}

let clockTicks: number | undefined;

/** `sysconf(_SC_CLK_TCK)`, asked once; 100 (Linux's value on every common architecture) if `getconf` fails. */
export function clockTicksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      const value = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 2000 }).trim());
      clockTicks = Number.isInteger(value) && value > 0 ? value : 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** Parses /proc/<pid>/stat; null once the process is gone (or off Linux). */
function readStat(pid: number): ProcStat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // Field 2 is the command name in parentheses and may itself hold spaces and ')': split after the last ')'.
  const close = text.lastIndexOf(')');
  if (close < 0) return null;
  // f[0] is field 3 (state), so field n is f[n - 3] (proc(5)).
  const f = text.slice(close + 2).split(' ');
  const num = (field: number): number => Number(f[field - 3] ?? 0);
  return { state: f[0] ?? '?', ppid: num(4), pgrp: num(5), utime: num(14), stime: num(15), cutime: num(16), cstime: num(17) };
}

/** Every numeric /proc entry: the processes alive (or zombie) right now. */
function allPids(): number[] {
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return [];
  }
  const pids: number[] = [];
  for (const name of names) if (/^\d+$/.test(name)) pids.push(Number(name));
  return pids;
}

/** Children, grandchildren, ... of `pid` (not `pid` itself), from each process's ppid. Empty when it has none or is gone. */
export function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const p of allPids()) {
    const stat = readStat(p);
    if (stat === null) continue;
    const list = children.get(stat.ppid);
    if (list) list.push(p);
    else children.set(stat.ppid, [p]);
  }
  const out: number[] = [];
  const queue = [pid];
  const seen = new Set<number>([pid]);
  while (queue.length > 0) {
    for (const child of children.get(queue.shift()!) ?? []) {
      if (seen.has(child)) continue;
      seen.add(child);
      out.push(child);
      queue.push(child);
    }
  }
  return out;
}

/** Live processes (zombies excluded) whose process group is `pgid`, the group leader included if it still runs. */
export function groupMembers(pgid: number): number[] {
  const out: number[] = [];
  for (const p of allPids()) {
    const stat = readStat(p);
    if (stat !== null && stat.pgrp === pgid && stat.state !== 'Z' && stat.state !== 'X') out.push(p);
  }
  return out;
}

/** `pids` and all their descendants, each once. */
export function processTree(pids: readonly number[]): number[] {
  const tree = new Set<number>();
  for (const pid of pids) {
    tree.add(pid);
    for (const d of descendants(pid)) tree.add(d);
  }
  return [...tree];
}

/** True while `pid` runs; false once it is gone or a zombie (exited, only its exit status left). */
export function isAlive(pid: number): boolean {
  const stat = readStat(pid);
  return stat !== null && stat.state !== 'Z' && stat.state !== 'X';
}

/**
 * CPU seconds (user + system) used so far by `pids` and their descendants, plus
 * what their reaped children used (`cutime`/`cstime`). A cumulative counter:
 * take the difference of two readings for a window. Gone processes count 0.
 */
export function cpuSeconds(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of processTree(pids)) {
    const stat = readStat(pid);
    if (stat !== null) ticks += stat.utime + stat.stime + stat.cutime + stat.cstime;
  }
  return ticks / clockTicksPerSecond();
}

/**
 * Resident memory of `pids` and their descendants, bytes (the sum of `VmRSS`;
 * pages shared between processes, such as nginx's shared memory zone or the
 * node binary, count once per process that maps them).
 */
export function rssBytes(pids: readonly number[]): number {
  let bytes = 0;
  for (const pid of processTree(pids)) {
    try {
      const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (match) bytes += Number(match[1]) * 1024;
    } catch {
      /* gone since the tree was read */
    }
  }
  return bytes;
}
