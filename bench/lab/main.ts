/**
 * The models lab: `npm run bench -- --models all --clients 1000,5000,10000
 * --rooms 10 --rate 200 --duration 30`, or a named run (`--preset models`,
 * presets.ts). Runs every load point (target × clients) one after the other,
 * each on a freshly started target, and writes `<out>/<timestamp>/results.json`
 * plus the report (results.md, SVG charts); a preset with a doc also rewrites
 * that doc's generated block (report/models-doc.ts).
 * Exit code 0 when every available point ran and lost nothing, 1 otherwise,
 * 2 on a usage error.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLoadGenerator } from './load-workers.js';
import { LabUsageError, USAGE, parseLabRuns, type LabOptions, type LabRuns } from './options.js';
import { createPhaseDisplay } from './phase-display.js';
import { updateDoc } from './report/models-doc.js';
import { writeReport } from './report/write-report.js';
import type { LoadPointResult, MachineInfo, RunResult } from './results.js';
import { memorySlopes } from './memory-slope.js';
import { pinPids, pinPlan, type PinPlan } from './pin.js';
import { pointLoads, runPlan } from './plan.js';
import { hasTaskset, readCpuTimes, readProvenance, stealShare } from './provenance.js';
import { runPoint } from './run-point.js';
import { runSoakScenario } from './soak/run-soak.js';
import { summarize } from './stats.js';
import { sweepsOf } from './sustain.js';
import { selectTargets } from '../models/registry.js';
import type { Target } from '../models/target.js';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));

function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    os: `${os.type()} ${os.release()}`,
    hostname: os.hostname(),
  };
}

/** A point counts as passed when it ran and every expected delivery arrived exactly once. */
function passed(point: LoadPointResult): boolean {
  if (point.status === 'unavailable') return true;
  const s = point.subscribers;
  // A connection storm publishes nothing: it passes when it ran and lost nothing (its errors are reported, not fatal).
  const delivered = point.scenario === 'park' || (s?.deliveries ?? 0) > 0;
  return point.status === 'ok' && s !== undefined && s.lost === 0 && s.duplicated === 0 && delivered;
}

async function main(): Promise<number> {
  let runs: LabRuns;
  let stages: Array<{ name: string; options: LabOptions; targets: Target[] }>;
  try {
    runs = parseLabRuns(process.argv.slice(2), process.stderr.isTTY === true);
    stages = runs.stages.map((s) => ({ ...s, targets: selectTargets(s.options.models) }));
  } catch (err) {
    if (err instanceof LabUsageError || err instanceof Error) {
      process.stderr.write(`${err.message}\n${USAGE}\n`);
      return 2;
    }
    throw err;
  }
  // A preset's stages share the run's directory, progress setting and pinning (presets.ts gives them the same).
  const first = stages[0]!.options;

  let pin: PinPlan | null = null;
  if (stages.some((s) => s.options.pin)) {
    pin = pinPlan(os.cpus().length);
    const refused =
      pin === null ? `--pin needs at least 2 cores, this machine has ${os.cpus().length}` : !hasTaskset() ? '--pin needs taskset (util-linux)' : null;
    if (refused !== null) {
      process.stderr.write(`${refused}\n${USAGE}\n`);
      return 2;
    }
    // Before any worker is forked: they inherit this mask. Targets are moved to their own cores once started.
    const failures = pinPids([process.pid], pin!.generator);
    if (failures.length > 0) {
      process.stderr.write(`--pin: ${failures.join('; ')}\n`);
      return 2;
    }
  }

  const startedAt = new Date();
  const cpuTimesStart = readCpuTimes();
  const dir = resolve(first.out, startedAt.toISOString().replace(/[:.]/g, '-'));
  mkdirSync(dir, { recursive: true });
  const run: RunResult = {
    startedAt: startedAt.toISOString(),
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
    machine: machineInfo(),
    provenance: { ...readProvenance(ROOT), pin },
    // A preset records every stage's options, each as a plain run would.
    options: runs.preset === undefined ? { ...first } : { preset: runs.preset, stages: stages.map((s) => ({ name: s.name, ...s.options })) },
    points: [],
  };
  const save = (): void => writeFileSync(join(dir, 'results.json'), `${JSON.stringify(run, null, 2)}\n`);
  // The soak is a run of its own over the same targets and load workers (bench/lab/soak/), not load points.
  if (first.scenario === 'soak') return runSoakScenario(stages[0]!.targets, { root: ROOT, options: first, dir, command: run.command, provenance: run.provenance! });
  const load = createLoadGenerator(ROOT);

  // Run r of every point of every stage before run r + 1 of any (plan.ts): drift spreads over every target.
  const repeatMax = Math.max(...stages.map((s) => s.options.repeat));
  const steps = [];
  for (let r = 1; r <= repeatMax; r++) {
    for (const stage of stages) {
      if (r > stage.options.repeat) continue;
      for (const step of runPlan(1, stage.options.clients, stage.targets, pointLoads(stage.options))) steps.push({ ...step, repeat: r, stage });
    }
  }
  for (const { repeat, clients, ratePerS, rooms, target, stage } of steps) {
    const options = stage.options;
    const label =
      `${stages.length > 1 ? `${stage.name}: ` : ''}${target.name} × ${clients}${rooms !== undefined && options.scenario === 'multicast' ? ` in ${rooms} rooms` : ''}` +
      `${options.rates.length > 1 || options.scenario === 'multicast' ? ` @ ${ratePerS} msg/s` : ''}` +
      `${options.repeat > 1 ? ` (run ${repeat}/${options.repeat})` : ''}`;
    const display = createPhaseDisplay(label, options.progress);
    const point = { ...(await runPoint(target, clients, { root: ROOT, options, load, display, pin: options.pin ? pin : null }, ratePerS, rooms)), repeat };
    run.points.push(point);
    run.summaries = summarize(run.points);
    run.sweeps = sweepsOf(run.summaries, options.sustainP99Ms);
    run.memorySlopes = memorySlopes(run.points);
    const steal = stealShare(cpuTimesStart, readCpuTimes());
    if (steal !== null) run.provenance!.stealShare = steal;
    save(); // after every point, so a long run interrupted late keeps what it measured
    const s = point.subscribers;
    process.stderr.write(
      `[lab] ${label}: ${point.status}` +
        (point.error ? ` (${point.error})` : '') +
        (point.generatorSaturated ? ' GENERATOR SATURATED (a worker passed 90% of a core);' : '') +
        (point.publisher?.dropped ? ` dropped ${point.publisher.dropped} due messages (queue full);` : '') +
        (s ? ` deliveries ${s.deliveries}/${s.expectedDeliveries}, lost ${s.lost}, dup ${s.duplicated}, p99 ${s.latency.p99.toFixed(1)} ms` : '') +
        (point.park ? `; park ${point.park.ms} ms, ${point.park.errors} errors` : '') +
        (point.park?.acceptQueue
          ? `, accept queue peak ${point.park.acceptQueue.peak}/${point.park.acceptQueue.backlog} (full ${point.park.acceptQueue.fullMs} ms)`
          : '') +
        (s !== undefined && Object.keys(s.errorKinds ?? {}).length > 0 ? ` (${JSON.stringify(s.errorKinds)})` : '') +
        (point.derived?.memoryPerParkedByRole
          ? `; KB/parked ${Object.entries(point.derived.memoryPerParkedByRole).map(([r, b]) => `${r} ${(b / 1024).toFixed(1)}`).join(', ')}`
          : '') +
        (point.scaleout
          ? `; ${point.scaleout.parkedPerS.toFixed(0)} parked/s, fan-out median ${point.scaleout.fanoutMsMedian.toFixed(0)} ms` +
            ` (${point.scaleout.deliveriesPerSMedian.toFixed(0)} deliveries/s), parked per proxy ${point.scaleout.parkedPerFrontDoor?.join('/') ?? '?'}`
          : '') +
        (s?.lastDeliveryMsBySeq && point.scenario === 'fanout'
          ? `; last delivery ms ${Object.values(s.lastDeliveryMsBySeq).map((ms) => ms.toFixed(0)).join(', ')}`
          : '') +
        (point.derived?.cpuSPer1000DeliveriesByRound
          ? `; CPU s/1,000 deliveries by round ${point.derived.cpuSPer1000DeliveriesByRound.map((c) => c.toFixed(4)).join(', ')}`
          : '') +
        '\n',
    );
  }
  run.finishedAt = new Date().toISOString();
  save();
  const files = await writeReport(dir, run);
  if (runs.doc !== undefined) files.push(await updateDoc(resolve(ROOT, runs.doc), dir, run));
  process.stdout.write(`${[join(dir, 'results.json'), ...files].join('\n')}\n`);
  return run.points.every(passed) ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
