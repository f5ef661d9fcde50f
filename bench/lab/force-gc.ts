/**
 * A forced garbage collection in the lab's Node targets before memory is read,
 * so "memory per connection" is what stays reachable, not garbage a lazy GC
 * has not collected yet. Every Node target is started with GC_NODE_ARGS
 * (`--expose-gc` and the gc-preload.mjs handler); forceGc() signals each of
 * its processes that loaded the handler (SIGUSR2, only to those: without the
 * handler the signal would kill the process) and waits for each one's receipt.
 * Nchan and Pushpin's own processes have no such hook: their RSS is read as it is.
 */
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const PRELOAD = fileURLToPath(new URL('./gc-preload.mjs', import.meta.url));
const RECEIPTS = join(tmpdir(), 'comet-lab-gc');
const STEP_MS = 20;

/** Node flags of every lab Node target. */
export const GC_NODE_ARGS: readonly string[] = ['--expose-gc', '--import', pathToFileURL(PRELOAD).href];

/** True when /proc says `pid` runs Node with the gc handler preloaded. */
function hasHandler(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').some((arg) => arg.includes('gc-preload.mjs'));
  } catch {
    return false;
  }
}

/** The handler's last receipt for `pid` (0: none since the last call removed it). */
function receiptSeq(pid: number): number {
  try {
    return (JSON.parse(readFileSync(join(RECEIPTS, `${pid}.json`), 'utf8')) as { seq?: number }).seq ?? 0;
  } catch {
    return 0;
  }
}

export interface GcResult {
  /** Processes that collected and confirmed. */
  collected: number[];
  /** Processes signalled that did not confirm in time (their RSS is read anyway). */
  late: number[];
}

/** Collects garbage in every process of `pids` that has the handler; resolves when each confirmed, or at the deadline. */
export async function forceGc(pids: readonly number[], timeoutMs = 10_000): Promise<GcResult> {
  const targets = pids.filter(hasHandler);
  const before = new Map(targets.map((pid) => [pid, receiptSeq(pid)]));
  for (const pid of targets) {
    try {
      process.kill(pid, 'SIGUSR2');
    } catch {
      before.delete(pid); // exited meanwhile
    }
  }
  const deadline = Date.now() + timeoutMs;
  let waiting = [...before.keys()];
  while (waiting.length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, STEP_MS));
    waiting = waiting.filter((pid) => receiptSeq(pid) <= before.get(pid)!);
  }
  // Receipts are only compared within one call: remove them, so the temporary directory does not collect one per pid.
  for (const pid of before.keys()) rmSync(join(RECEIPTS, `${pid}.json`), { force: true });
  return { collected: [...before.keys()].filter((pid) => !waiting.includes(pid)), late: waiting };
}
