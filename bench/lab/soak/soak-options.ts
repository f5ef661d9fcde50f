/**
 * The soak scenario's command line: `npm run bench -- --scenario soak` (`npm run soak`). It reads the lab's own
 * flags where they mean the same thing (`--clients` one value, `--rooms`, `--duration` of the churn phase,
 * `--hold-timeout`, `--rate` = posts/s over all clients, `--workers`, `--models`, `--out`, `--smoke`) with the
 * soak's defaults, plus the flags below. `--smoke` (or `SOAK_SHORT=1`) is the CI size: 200 clients, 10 s of churn.
 * Explicit flags win over the defaults. Called from bench/lab/options.ts, which owns parsing.
 */

/** The flags only the soak scenario takes (merged into the lab's `parseArgs` options). */
export const SOAK_FLAGS = {
  'join-leave-rate': { type: 'string' },
  'abort-rate': { type: 'string' },
  'no-restarts': { type: 'boolean' },
  seed: { type: 'string' },
  keep: { type: 'boolean' },
} as const;

export const SOAK_USAGE = `  soak: [--join-leave-rate N] [--abort-rate N] [--no-restarts] [--seed N] [--keep]   (SOAK_SHORT=1 is --smoke)`;

export interface SoakOptions {
  /** Load-generator processes (the lab's soak workers); clients are split evenly. */
  workers: number;
  /** Rooms each client joins at setup, a uniform integer in [min, max]. */
  initialRoomsMin: number;
  initialRoomsMax: number;
  /** Totals over all clients, per second. */
  postsPerS: number;
  joinsLeavesPerS: number;
  abortsPerS: number;
  /** Restart the proxy at 1/3 and the app at 2/3 of the churn phase. */
  restarts: boolean;
  seed: number;
  /** Keep the work directory (database, process logs) even when the run passes. */
  keep: boolean;
}

/** The part of the lab's options the soak reads and defaults (bench/lab/options.ts `LabOptions`). */
export interface SoakLabOptions {
  scenario: string;
  models: string;
  clients: number[];
  rooms: number;
  ratePerS: number;
  rates: number[];
  durationS: number;
  holdTimeoutS: number;
  workers: number;
  smoke: boolean;
  soak?: SoakOptions;
}

/** Most soak clients in one worker process: one socket each, well under 20,000 open files. */
export const MAX_SOAK_CLIENTS_PER_WORKER = 8_000;

export class SoakUsageError extends Error {
  override name = 'SoakUsageError';
}

function number(name: string, text: string | undefined, fallback: number, min: number, integer = true): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value < min || (integer && !Number.isInteger(value))) {
    throw new SoakUsageError(`--${name} must be ${integer ? 'an integer' : 'a number'} >= ${min}, got ${JSON.stringify(text)}`);
  }
  return value;
}

/**
 * Without `--scenario soak`, refuses the soak's flags. With it, sets `options.soak` and replaces the lab's
 * defaults by the soak's for every flag not given (`values` are the parsed flags, `env` for `SOAK_SHORT`).
 * The rate was parsed by the lab as an integer; the soak's post rate may be any number >= 0.
 */
export function applySoakOptions(options: SoakLabOptions, values: Record<string, string | boolean | undefined>, env: NodeJS.ProcessEnv): void {
  const given = (flag: string) => values[flag] !== undefined;
  if (options.scenario !== 'soak') {
    const stray = Object.keys(SOAK_FLAGS).find(given);
    if (stray !== undefined) throw new SoakUsageError(`--${stray} belongs to --scenario soak`);
    return;
  }
  // Flags of the load-point scenarios that a soak would silently ignore.
  const ignored = ['repeat', 'pin', 'cpu-prof', 'rounds', 'drain-timeout', 'short-poll-interval-ms', 'sustain-p99-ms'].find(given);
  if (ignored !== undefined) throw new SoakUsageError(`--${ignored} does not apply to --scenario soak`);
  const smoke = options.smoke || env.SOAK_SHORT === '1';
  options.smoke = smoke;
  const s = (flag: string) => values[flag] as string | undefined;
  if (!given('models')) options.models = 'suspend-push';
  if (!given('clients')) options.clients = [smoke ? 200 : 2_000];
  if (options.clients.length !== 1) throw new SoakUsageError('--scenario soak takes one --clients value');
  if (given('rates')) throw new SoakUsageError('--scenario soak posts at one --rate, not a sweep');
  if (!given('rooms')) options.rooms = smoke ? 8 : 40;
  if (options.rooms < 2) throw new SoakUsageError('--scenario soak needs --rooms >= 2 (clients join and leave rooms)');
  if (!given('duration')) options.durationS = smoke ? 10 : 100;
  if (!given('hold-timeout')) options.holdTimeoutS = smoke ? 5 : 20;
  const clients = options.clients[0]!;
  const postsPerS = number('rate', s('rate'), smoke ? 10 : 15, 0, false);
  options.ratePerS = postsPerS;
  options.rates = [postsPerS];
  const workers = options.workers > 0 ? options.workers : smoke ? 1 : Math.max(2, Math.ceil(clients / MAX_SOAK_CLIENTS_PER_WORKER));
  if (clients / workers > MAX_SOAK_CLIENTS_PER_WORKER) {
    throw new SoakUsageError(`at most ${MAX_SOAK_CLIENTS_PER_WORKER} soak clients per worker (open files): use --workers ${Math.ceil(clients / MAX_SOAK_CLIENTS_PER_WORKER)} or more`);
  }
  if (workers > clients) throw new SoakUsageError('--workers must not exceed --clients');
  options.soak = {
    workers,
    initialRoomsMin: 1,
    initialRoomsMax: 3,
    postsPerS,
    joinsLeavesPerS: number('join-leave-rate', s('join-leave-rate'), 4, 0, false),
    abortsPerS: number('abort-rate', s('abort-rate'), smoke ? 5 : 10, 0, false),
    restarts: values['no-restarts'] !== true,
    seed: number('seed', s('seed'), Date.now() % 1_000_000, 0),
    keep: values.keep === true,
  };
}
