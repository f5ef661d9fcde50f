/**
 * The models lab's command line:
 * `npm run bench -- --models all --clients 1000,5000,10000 --rooms 10 --rate 200 --duration 30`.
 * `--smoke` is the CI size (a few clients, a few seconds); explicit flags win over it.
 */
import { parseArgs } from 'node:util';
import { PRESET_OVERRIDES, PRESETS, type PresetStage } from './presets.js';
import { applySoakOptions, SOAK_FLAGS, SOAK_USAGE, SoakUsageError, type SoakOptions } from './soak/soak-options.js';

/**
 * What a load point measures (docs/performance.md):
 * - `chat`: publishing at `ratePerS` over `rooms` for `durationS`: latency, CPU per delivery, loss;
 * - `park`: a connection storm: every subscriber opens its first poll in the same tick; errors, time to all
 *   parked, and memory per parked request once memory has settled; nothing is published;
 * - `fanout`: `rounds` times, with every subscriber parked, ONE message to the room(s): publish to the last
 *   subscriber's receipt;
 * - `multicast`: the chat workload once per room count of `roomsList`, with `ratePerS` read as messages/s PER ROOM,
 *   so every subscriber receives the same stream and the delivery rate (clients × ratePerS) stays fixed while the
 *   fan-out per message (clients / rooms) changes: the per-message cost of multicast, isolated (docs/models.md);
 * - `scaleout`: park then fan-out on one stack, as the scale-out bench did (bench/lab/scaleout.ts): the timed phases
 *   start once every setup event has reached every front door, the park is a burst timed to all parked (park
 *   rate), then `rounds` fan-out rounds with per-round figures and their medians, per front door (docs/scaleout.md);
 * - `soak`: correctness under churn on a Suspend & Push target: clients in several rooms post, abort polls, join
 *   and leave while the proxy and then the app are restarted; checked against the database (bench/lab/soak/).
 */
export type Scenario = 'chat' | 'park' | 'fanout' | 'multicast' | 'scaleout' | 'soak';
export const SCENARIOS: readonly Scenario[] = ['chat', 'park', 'fanout', 'multicast', 'scaleout', 'soak'];

/** The scenarios that publish on the open-loop schedule and drain (the others publish nothing or one at a time). */
export function publishesOnSchedule(scenario: Scenario | undefined): boolean {
  return scenario === undefined || scenario === 'chat' || scenario === 'multicast';
}

export interface LabOptions {
  scenario: Scenario;
  /** Fan-out rounds per load point. */
  rounds: number;
  /** Target list as given (`all`, a group or names; bench/models/registry.ts). */
  models: string;
  /** One load point per value, per target. */
  clients: number[];
  rooms: number;
  /** `--rooms-list a,b,c` (the multicast scenario): one load point per room count; `[rooms]` without it. */
  roomsList: number[];
  /** Publish rate over all rooms, messages/s (the first of `rates`); per room in the multicast scenario. */
  ratePerS: number;
  /** `--rates a,b,c`: a rate sweep, one load point per rate (ascending); `[ratePerS]` without it. */
  rates: number[];
  /** A rate is sustained only while the median run's p99 stays at or under this, ms (bench/lab/sustain.ts). */
  sustainP99Ms: number;
  /** Publishing time per load point, seconds (setup, parking and drain come on top). */
  durationS: number;
  /** Long-poll hold timeout, seconds. */
  holdTimeoutS: number;
  /** Short-polling baseline: interval between polls, ms. */
  shortPollIntervalMs: number;
  /** Load-generator worker processes; `0` = one per 4,000 subscribers. */
  workers: number;
  /** After publishing, longest wait for every subscriber to hold every message, seconds. */
  drainTimeoutS: number;
  /** Results root; the run writes `<out>/<timestamp>/`. */
  out: string;
  /** Draw a progress bar (default: when stderr is a TTY). */
  progress: boolean;
  smoke: boolean;
  /**
   * Generator and target on separate cores with `taskset` (bench/lab/pin.ts); refused on fewer than 2 cores or
   * without taskset (main.ts checks the machine).
   */
  pin: boolean;
  /** Runs per load point, interleaved: every target's run r comes before any target's run r + 1. */
  repeat: number;
  /** Write V8 CPU profiles of the targets' Node processes under this directory (one folder per point). */
  cpuProfDir: string | undefined;
  /** `--scenario soak` only: its own settings (bench/lab/soak/soak-options.ts). */
  soak?: SoakOptions;
}

export const USAGE = `usage: npm run bench -- [--scenario chat|park|fanout|multicast|scaleout|soak] [--rounds N]
  [--models all|models|baselines|external|NAME,...] [--clients N,N,...]
  [--rooms N | --rooms-list N,N,... (multicast)] [--rate MSG_PER_S | --rates R,R,...] [--sustain-p99-ms MS] [--duration S] [--hold-timeout S] [--short-poll-interval-ms MS]
  [--workers N] [--drain-timeout S] [--repeat N] [--pin] [--out DIR] [--smoke] [--no-progress] [--cpu-prof DIR]
   or: npm run bench -- --preset models [--no-progress] [--out DIR] [--clients N,...] [--duration S] [--repeat N] [--models NAME,...]
${SOAK_USAGE}`;

/** Most subscribers in one load-generator process: one socket each, well under its 20,000 open files. */
export const MAX_CLIENTS_PER_WORKER = 8_000;

/** The default yardstick of a sustained rate: p99 due-to-receipt latency of 1 s (docs/models.md, "Rate sweeps"). */
export const DEFAULT_SUSTAIN_P99_MS = 1_000;

/** Most runs per load point: 20 full runs of 33 points already take a day. */
export const MAX_REPEAT = 20;

export class LabUsageError extends Error {
  override name = 'LabUsageError';
}

function number(name: string, text: string | undefined, fallback: number, min: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min) {
    throw new LabUsageError(`--${name} must be an integer >= ${min}, got ${JSON.stringify(text)}`);
  }
  return value;
}

function list(name: string, text: string | undefined, fallback: number[]): number[] {
  if (text === undefined) return fallback;
  const values = text.split(',').map((part) => number(name, part.trim(), 0, 1));
  if (values.length === 0 || values.length > 20) throw new LabUsageError(`--${name} takes 1 to 20 comma-separated counts`);
  return values;
}

export function parseLabOptions(argv: readonly string[], isTty: boolean): LabOptions {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        scenario: { type: 'string' },
        rounds: { type: 'string' },
        models: { type: 'string' },
        clients: { type: 'string' },
        rooms: { type: 'string' },
        'rooms-list': { type: 'string' },
        rate: { type: 'string' },
        rates: { type: 'string' },
        'sustain-p99-ms': { type: 'string' },
        duration: { type: 'string' },
        'hold-timeout': { type: 'string' },
        'short-poll-interval-ms': { type: 'string' },
        workers: { type: 'string' },
        'drain-timeout': { type: 'string' },
        repeat: { type: 'string' },
        pin: { type: 'boolean' },
        out: { type: 'string' },
        smoke: { type: 'boolean' },
        'no-progress': { type: 'boolean' },
        'cpu-prof': { type: 'string' },
        ...SOAK_FLAGS,
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new LabUsageError((err as Error).message);
  }
  const smoke = values.smoke === true;
  const str = (k: string): string | undefined => values[k] as string | undefined;
  const scenario = (str('scenario') ?? 'chat') as Scenario;
  if (!SCENARIOS.includes(scenario)) throw new LabUsageError(`--scenario must be one of ${SCENARIOS.join(', ')}, got ${JSON.stringify(scenario)}`);
  const options: LabOptions = {
    scenario,
    rounds: number('rounds', str('rounds'), 3, 1),
    models: str('models') ?? 'all',
    clients: list('clients', str('clients'), smoke ? [12] : [1000, 5000, 10000]),
    // One channel is what a fan-out measures.
    rooms: number('rooms', str('rooms'), scenario === 'fanout' || scenario === 'scaleout' ? 1 : smoke ? 2 : 10, 1),
    roomsList: [],
    // Multicast reads the rate per room: 2/s per room is 200 msg/s over 100 rooms, the chat default's total.
    ratePerS: number('rate', str('rate'), scenario === 'multicast' ? (smoke ? 5 : 2) : smoke ? 20 : 200, 1),
    rates: [],
    sustainP99Ms: number('sustain-p99-ms', str('sustain-p99-ms'), DEFAULT_SUSTAIN_P99_MS, 1),
    durationS: number('duration', str('duration'), smoke ? 2 : 30, 1),
    holdTimeoutS: number('hold-timeout', str('hold-timeout'), smoke ? 5 : 30, 1),
    shortPollIntervalMs: number('short-poll-interval-ms', str('short-poll-interval-ms'), smoke ? 250 : 1000, 10),
    workers: number('workers', str('workers'), 0, 0),
    drainTimeoutS: number('drain-timeout', str('drain-timeout'), smoke ? 20 : 60, 1),
    out: str('out') ?? 'bench/results',
    progress: values['no-progress'] === true ? false : isTty,
    smoke,
    repeat: number('repeat', str('repeat'), 1, 1),
    pin: values.pin === true,
    cpuProfDir: str('cpu-prof'),
  };
  try {
    applySoakOptions(options, values, process.env);
  } catch (err) {
    throw err instanceof SoakUsageError ? new LabUsageError(err.message) : err;
  }
  if (str('rate') !== undefined && str('rates') !== undefined) throw new LabUsageError('give --rate or --rates, not both');
  const sweep = list('rates', str('rates'), [options.ratePerS]);
  options.rates = [...new Set(sweep)].sort((a, b) => a - b);
  options.ratePerS = options.rates[0]!;
  if (options.scenario !== 'chat' && options.rates.length > 1) throw new LabUsageError('--rates sweeps the chat scenario only');
  if (options.scenario === 'multicast') {
    // Room count is the variable here: a single --rooms would leave nothing to compare.
    if (str('rooms') !== undefined) throw new LabUsageError('--scenario multicast varies the room count: give --rooms-list, not --rooms');
    options.roomsList = [...new Set(list('rooms-list', str('rooms-list'), smoke ? [1, 2] : [1, 10, 100]))].sort((a, b) => a - b);
    if (options.roomsList.length < 2) throw new LabUsageError('--rooms-list needs at least 2 distinct room counts to compare');
    options.rooms = options.roomsList[0]!;
  } else {
    if (str('rooms-list') !== undefined) throw new LabUsageError('--rooms-list belongs to --scenario multicast');
    options.roomsList = [options.rooms];
  }
  if (options.roomsList.some((r) => r > 1000)) throw new LabUsageError('--rooms-list values must be at most 1000');
  if (options.clients.some((c) => options.roomsList.some((r) => c < r))) {
    throw new LabUsageError('every --clients value must be >= every room count of --rooms-list');
  }
  // Per-round figures are over every subscriber: one message, one channel (as the scale-out bench had it).
  if (options.scenario === 'scaleout' && options.rooms !== 1) throw new LabUsageError('--scenario scaleout fans out to one room: leave out --rooms');
  if (options.repeat > MAX_REPEAT) throw new LabUsageError(`--repeat must be at most ${MAX_REPEAT}`);
  if (options.rounds > 100) throw new LabUsageError('--rounds must be at most 100');
  if (options.rooms > 1000) throw new LabUsageError('--rooms must be at most 1000');
  if (options.clients.some((c) => c < options.rooms)) throw new LabUsageError('every --clients value must be >= --rooms');
  return options;
}

/** Worker processes for `clients` subscribers. */
export function workersFor(options: LabOptions, clients: number): number {
  if (options.workers > 0) return Math.max(options.workers, Math.ceil(clients / MAX_CLIENTS_PER_WORKER));
  return Math.max(1, Math.ceil(clients / 4_000));
}

/** One stage of a lab run: a named preset has several (bench/lab/presets.ts), a plain command line one. */
export interface LabStage {
  name: string;
  options: LabOptions;
}

export interface LabRuns {
  /** `--preset NAME`, or undefined for a plain command line. */
  preset: string | undefined;
  stages: LabStage[];
  /** The doc the run rewrites at its end: the preset's, only when run at the preset's own size and `--out`. */
  doc: string | undefined;
}

/**
 * A command line as stages: `--preset NAME [overrides]` expands to the preset's stages, each with the overrides
 * appended (the last value of a flag wins) and validated by `parseLabOptions` like any command line, so a bad
 * preset fails before any point runs. Without `--preset`, one stage.
 */
export function parseLabRuns(argv: readonly string[], isTty: boolean): LabRuns {
  if (!argv.some((a) => a === '--preset' || a.startsWith('--preset='))) {
    const options = parseLabOptions(argv, isTty);
    return { preset: undefined, stages: [{ name: options.scenario, options }], doc: undefined };
  }
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        preset: { type: 'string' },
        ...Object.fromEntries(PRESET_OVERRIDES.map((k) => [k, { type: k === 'no-progress' ? 'boolean' : 'string' }])),
      } as Record<string, { type: 'string' | 'boolean' }>,
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new LabUsageError(`${(err as Error).message} (a --preset run takes only ${PRESET_OVERRIDES.map((k) => `--${k}`).join(', ')})`);
  }
  const name = values.preset as string;
  const preset = Object.hasOwn(PRESETS, name) ? PRESETS[name]! : undefined;
  if (preset === undefined) throw new LabUsageError(`--preset must be one of ${Object.keys(PRESETS).join(', ')}, got ${JSON.stringify(name)}`);
  const modelsOf = (stage: PresetStage): string[] => (stage.argv[stage.argv.indexOf('--models') + 1] ?? '').split(',');
  const subset = typeof values.models === 'string' ? values.models.split(',').map((s) => s.trim()) : undefined;
  const known = new Set(preset.stages.flatMap(modelsOf));
  const stranger = subset?.find((m) => !known.has(m));
  if (stranger !== undefined) throw new LabUsageError(`--models with --preset ${name} names a subset of its targets (${[...known].join(', ')}); got ${JSON.stringify(stranger)}`);
  const common = [
    '--out', typeof values.out === 'string' ? values.out : preset.out,
    ...(values['no-progress'] === true ? ['--no-progress'] : []),
    ...(['clients', 'duration', 'repeat'] as const).flatMap((k) => (typeof values[k] === 'string' ? [`--${k}`, values[k] as string] : [])),
  ];
  const stages: LabStage[] = [];
  for (const stage of preset.stages) {
    const models = modelsOf(stage).filter((m) => subset === undefined || subset.includes(m));
    if (models.length === 0) continue;
    stages.push({ name: stage.name, options: parseLabOptions([...stage.argv, ...common, '--models', models.join(',')], isTty) });
  }
  // Resized or written elsewhere, the run is not the one the doc reports (and its links would not reach it).
  const asReported = PRESET_OVERRIDES.every((k) => k === 'no-progress' || values[k] === undefined);
  return { preset: name, stages, doc: asReported ? preset.doc : undefined };
}
