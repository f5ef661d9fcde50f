/**
 * What a researcher needs to cite a lab run: the commit it ran (and whether
 * the tree was dirty), Node's version, the peers' versions read from their
 * binaries (never hard-coded), the CPU model, and the machine's steal time.
 * Parsers are pure and exported for test/bench/lab/provenance.test.ts; the
 * readers around them never throw: what cannot be read is recorded as such.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { findExecutable } from '../models/child-process.js';
import { NCHAN_MODULE } from '../models/nchan.js';

export interface BinaryVersion {
  /** The version, or null when it could not be read (see `source`). */
  version: string | null;
  /** How it was read: the command or file, or why it could not be. */
  source: string;
}

export interface Provenance {
  git: { commit: string | null; dirty: boolean | null; describe: string };
  node: string;
  versions: { nginx: BinaryVersion; nchan: BinaryVersion; pushpin: BinaryVersion };
  /** `model name` of /proc/cpuinfo (the first CPU's). */
  cpuModel: string;
}

/** `nginx -v` prints `nginx version: nginx/1.22.1` (on stderr). */
export function parseNginxVersion(text: string): string | null {
  return /nginx version: nginx\/(\S+)/.exec(text)?.[1] ?? null;
}

/** `pushpin --version` prints `pushpin 1.36.0`. */
export function parsePushpinVersion(text: string): string | null {
  return /^pushpin (\d+(?:\.\d+)+)/m.exec(text)?.[1] ?? null;
}

/**
 * The Nchan module keeps its version as a C string next to its own names in the string table (`1.3.6`, `%fK`,
 * `%l`, `nchan_channel_id`). The version is a dotted number with a string starting `nchan_` within 3 strings; exactly one
 * such candidate, or null (the caller falls back to the package's version and says so).
 */
const NEIGHBOURS = 3;

export function parseNchanModuleVersion(binary: Buffer): string | null {
  const strings = binary
    .toString('latin1')
    .split(/\0+/) // alignment padding leaves runs of NULs between strings
    .map((s) => s.trim());
  const found = new Set<string>();
  strings.forEach((s, i) => {
    if (!/^\d+\.\d+\.\d+$/.test(s)) return;
    // Within 3 strings: short format fragments (`%l`) may sit between the version and the module's names.
    const near = [...strings.slice(Math.max(0, i - NEIGHBOURS), i), ...strings.slice(i + 1, i + 1 + NEIGHBOURS)];
    // `nchan_`: the module's variable and directive names; its log messages (`nchan: ...`) sit next to zlib's version.
    if (near.some((n) => n.startsWith('nchan_'))) found.add(s);
  });
  return found.size === 1 ? [...found][0]! : null;
}

/** `model name : AMD EPYC` of the first processor in /proc/cpuinfo. */
export function parseCpuModel(cpuinfo: string): string | null {
  return /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? null;
}

/** The aggregate `cpu` line of /proc/stat, in clock ticks. */
export interface CpuTimes {
  total: number;
  steal: number;
  idle: number;
}

/** `cpu  user nice system idle iowait irq softirq steal guest guest_nice`; guest time is already in user. */
export function parseProcStat(stat: string): CpuTimes | null {
  const line = stat.split('\n').find((l) => l.startsWith('cpu '));
  if (line === undefined) return null;
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  if (f.length < 8 || f.some((v) => !Number.isFinite(v))) return null;
  // guest and guest_nice (fields 9, 10) are counted inside user and nice: leave them out of the total.
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  return { total, steal: f[7]!, idle: f[3]! + f[4]! };
}

/** Share of all CPU time stolen by the hypervisor between two readings (0..1), or null when unknown. */
export function stealShare(start: CpuTimes | null, end: CpuTimes | null): number | null {
  if (start === null || end === null) return null;
  const total = end.total - start.total;
  return total > 0 ? (end.steal - start.steal) / total : null;
}

/** /proc/stat's aggregate line now, or null off Linux. */
export function readCpuTimes(): CpuTimes | null {
  try {
    return parseProcStat(readFileSync('/proc/stat', 'utf8'));
  } catch {
    return null;
  }
}

function run(command: string, args: string[], cwd?: string): { ok: boolean; out: string } {
  const r = spawnSync(command, args, { encoding: 'utf8', timeout: 10_000, ...(cwd === undefined ? {} : { cwd }) });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

function binary(command: string, args: string[], parse: (text: string) => string | null): BinaryVersion {
  const r = run(command, args);
  const version = parse(r.out);
  return version === null ? { version: null, source: `\`${command} ${args.join(' ')}\` gave no version${r.out ? `: ${r.out.trim().slice(0, 120)}` : ''}` } : { version, source: `${command} ${args.join(' ')}` };
}

function nchanVersion(): BinaryVersion {
  try {
    const version = parseNchanModuleVersion(readFileSync(NCHAN_MODULE));
    if (version !== null) return { version, source: NCHAN_MODULE };
  } catch {
    /* not installed: the package query below says so */
  }
  const pkg = run('dpkg-query', ['-W', '-f', '${Version}', 'libnginx-mod-nchan']);
  return pkg.ok && pkg.out.trim() !== ''
    ? { version: pkg.out.trim(), source: 'dpkg-query libnginx-mod-nchan (the module binary held no readable version)' }
    : { version: null, source: `${NCHAN_MODULE}: not installed or no version string` };
}

export function readProvenance(root: string): Provenance {
  const head = run('git', ['rev-parse', 'HEAD'], root);
  // Tracked files only: an untracked results directory or a node_modules link does not make the code dirty.
  const status = run('git', ['status', '--porcelain', '--untracked-files=no'], root);
  const describe = run('git', ['describe', '--always', '--dirty'], root);
  let cpuModel = 'unknown';
  try {
    cpuModel = parseCpuModel(readFileSync('/proc/cpuinfo', 'utf8')) ?? 'unknown';
  } catch {
    /* not Linux */
  }
  return {
    git: {
      commit: head.ok ? head.out.trim() : null,
      dirty: status.ok ? status.out.trim() !== '' : null,
      describe: describe.ok ? describe.out.trim() : 'unknown',
    },
    node: process.version,
    versions: {
      // Debian keeps nginx in /usr/sbin, often not on a user's PATH; the Nchan target runs that one.
      nginx: binary(findExecutable('/usr/sbin/nginx') ?? 'nginx', ['-v'], parseNginxVersion),
      nchan: nchanVersion(),
      pushpin: binary('pushpin', ['--version'], parsePushpinVersion),
    },
    cpuModel,
  };
}

/** `taskset` is usable here (Linux with util-linux). */
export function hasTaskset(): boolean {
  try {
    execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore', timeout: 5_000 });
    return true;
  } catch {
    return false;
  }
}
