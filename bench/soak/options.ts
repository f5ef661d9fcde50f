/**
 * The soak's command line (`npm run soak -- --duration-s 60 ...`). `--short`
 * (or `SOAK_SHORT=1`) is the CI size: 200 clients, 10 s of churn (about 30 s in all).
 * Explicit flags win over the short defaults.
 */
import { parseArgs } from 'node:util';

export interface SoakOptions {
  /** Length of the churn phase (load, restarts), seconds. Setup, catch-up and report come on top. */
  durationS: number;
  clients: number;
  /** Load-generator processes; clients are split evenly. */
  workers: number;
  rooms: number;
  /** Rooms each client joins at setup, a uniform integer in [min, max]. */
  initialRoomsMin: number;
  initialRoomsMax: number;
  /** Totals over all clients, per second. */
  postsPerS: number;
  joinsLeavesPerS: number;
  abortsPerS: number;
  /** The app's `Grip-Timeout` (HOLD_TIMEOUT_S), seconds: short enough that timeouts happen during the run. */
  holdTimeoutS: number;
  /** Restart the proxy at 1/3 and the app at 2/3 of the churn phase. */
  restarts: boolean;
  seed: number;
  /** Report path; default `bench/results/soak-<timestamp>.json`. */
  out: string | undefined;
  /** Keep the run directory (database, process logs) even when the run passes. */
  keep: boolean;
  short: boolean;
}

export const USAGE = `usage: npm run soak -- [--short] [--duration-s N] [--clients N] [--workers N] [--rooms N]
  [--post-rate N] [--join-leave-rate N] [--abort-rate N] [--hold-timeout-s N] [--no-restarts]
  [--seed N] [--out FILE] [--keep]          (SOAK_SHORT=1 is --short)`;

/** Largest number of clients per load-generator process: one socket each, well under 20,000 open files. */
export const MAX_CLIENTS_PER_WORKER = 8_000;

export class SoakUsageError extends Error {
  override name = 'SoakUsageError';
}

function positive(name: string, text: string | undefined, fallback: number, { integer = true, min = 1 } = {}): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value < min || (integer && !Number.isInteger(value))) {
    throw new SoakUsageError(`--${name} must be ${integer ? 'an integer' : 'a number'} >= ${min}, got ${JSON.stringify(text)}`);
  }
  return value;
}

export function parseSoakOptions(argv: readonly string[], env: NodeJS.ProcessEnv): SoakOptions {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        short: { type: 'boolean' },
        'duration-s': { type: 'string' },
        clients: { type: 'string' },
        workers: { type: 'string' },
        rooms: { type: 'string' },
        'post-rate': { type: 'string' },
        'join-leave-rate': { type: 'string' },
        'abort-rate': { type: 'string' },
        'hold-timeout-s': { type: 'string' },
        'no-restarts': { type: 'boolean' },
        seed: { type: 'string' },
        out: { type: 'string' },
        keep: { type: 'boolean' },
        help: { type: 'boolean' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new SoakUsageError(`${(err as Error).message}\n${USAGE}`);
  }
  if (values.help) throw new SoakUsageError(USAGE);
  const short = values.short === true || env.SOAK_SHORT === '1';
  const s = (name: string) => values[name] as string | undefined;
  const clients = positive('clients', s('clients'), short ? 200 : 2_000);
  const options: SoakOptions = {
    durationS: positive('duration-s', s('duration-s'), short ? 10 : 100, { integer: false, min: 3 }),
    clients,
    workers: positive('workers', s('workers'), short ? 1 : Math.max(2, Math.ceil(clients / MAX_CLIENTS_PER_WORKER))),
    rooms: positive('rooms', s('rooms'), short ? 8 : 40, { min: 2 }),
    initialRoomsMin: 1,
    initialRoomsMax: 3,
    postsPerS: positive('post-rate', s('post-rate'), short ? 10 : 15, { integer: false, min: 0 }),
    joinsLeavesPerS: positive('join-leave-rate', s('join-leave-rate'), 4, { integer: false, min: 0 }),
    abortsPerS: positive('abort-rate', s('abort-rate'), short ? 5 : 10, { integer: false, min: 0 }),
    holdTimeoutS: positive('hold-timeout-s', s('hold-timeout-s'), short ? 5 : 20, { integer: false, min: 1 }),
    restarts: values['no-restarts'] !== true,
    seed: positive('seed', s('seed'), Date.now() % 1_000_000, { min: 0 }),
    out: s('out'),
    keep: values.keep === true,
    short,
  };
  if (options.clients / options.workers > MAX_CLIENTS_PER_WORKER) {
    throw new SoakUsageError(`at most ${MAX_CLIENTS_PER_WORKER} clients per worker (open files): use --workers ${Math.ceil(options.clients / MAX_CLIENTS_PER_WORKER)} or more`);
  }
  if (options.workers > options.clients) throw new SoakUsageError('--workers must not exceed --clients');
  return options;
}
