/**
 * `--pin`: the load generator and the target on separate cores, with
 * `taskset`, so neither steals the other's CPU and the generator's headroom is
 * its own core(s). The lab's orchestrator pins itself to the generator's cores
 * before forking any worker (children inherit the mask); each target's process
 * tree is moved to the target's cores once started (`taskset -a`: every
 * thread), and whatever the target forks later inherits that.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export interface PinPlan {
  /** CPU numbers of the load generator (orchestrator, publisher, subscriber workers). */
  generator: number[];
  /** CPU numbers of the target's processes. */
  target: number[];
}

/**
 * Half the cores each, the generator on the lower half (rounded down, at least one): on 2 cores, generator on
 * CPU 0, target on CPU 1. Fewer than 2 cores: no plan (the option is refused).
 */
export function pinPlan(cpus: number): PinPlan | null {
  if (!Number.isInteger(cpus) || cpus < 2) return null;
  const split = Math.floor(cpus / 2);
  const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);
  return { generator: range(0, split), target: range(split, cpus) };
}

/** `taskset -a -p -c LIST PID` for each pid; returns the failures as messages (a pid that exited meanwhile, ...). */
export function pinPids(pids: readonly number[], cpus: readonly number[]): string[] {
  const failures: string[] = [];
  for (const pid of pids) {
    // `taskset -a` exits 0 for a pid that does not exist (it walks an absent /proc/<pid>/task): check first.
    if (!existsSync(`/proc/${pid}`)) {
      failures.push(`taskset ${pid}: no such process`);
      continue;
    }
    try {
      execFileSync('taskset', ['-a', '-p', '-c', cpus.join(','), String(pid)], { stdio: 'ignore', timeout: 5_000 });
    } catch (err) {
      failures.push(`taskset ${pid}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  return failures;
}
