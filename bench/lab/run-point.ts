/**
 * One load point: one target, one client count. Phases, each with a deadline:
 *
 *  1. start   the target in a fresh work directory;
 *  2. setup   the publisher (session, rooms) and every subscriber (session, join);
 *     idle    then a forced GC in the Node targets (force-gc.ts) and memory is read
 *             ("idle": state set up, no poll open);
 *  3. park    every subscriber opens its poll or stream; wait until the target
 *             reports them all parked (or, if it cannot tell, until traffic settles): `park.ms`;
 *             a forced GC again, and memory is read ("parked");
 *  4. publish for `durationS` at `ratePerS`, open loop (schedule.ts); CPU and traffic counters start here;
 *  5. drain   until every subscriber holds every published message (or the deadline);
 *             CPU stops here;
 *  6. verify  stop the clients, count lost / duplicated / out-of-order, stop the target.
 *
 * The scale-out scenario (scaleout.ts) waits after setup until the target is drained (no setup event left to
 * cross a front door), parks in a burst and fans out in rounds, reading the front doors' counters around each.
 *
 * A failure in any phase makes the point `failed` with the reason; it never
 * hides a model's losses: those are counted, not thrown.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { watchAcceptQueue, type AcceptQueueSummary } from './accept-queue.js';
import { listenOverflows } from './listen-overflows.js';
import type { LoadGenerator, Publisher, Subscribers } from './load-api.js';
import type { LabOptions } from './options.js';
import { publishesOnSchedule, workersFor } from './options.js';
import { forceGc, GC_NODE_ARGS } from './force-gc.js';
import { coreShares, generatorSaturated } from './headroom.js';
import type { PhaseDisplay } from './phase-display.js';
import { type PinPlan, pinPids } from './pin.js';
import { readCpuTimes, stealShare } from './provenance.js';
import type { LoadPointResult, ProcessCost, PublisherTotals, TimeSample } from './results.js';
import { type FrontDoorStats, scaleoutFigures } from './scaleout.js';
import { roomNames } from './workload.js';
import { cpuSeconds, rssBytes } from '../models/process-tree.js';
import type { RunningTarget, Target } from '../models/target.js';

export interface PointContext {
  root: string;
  options: LabOptions;
  load: LoadGenerator;
  display: PhaseDisplay;
  /** `--pin`: the cores of the generator and of the target (main.ts pinned the orchestrator already). */
  pin?: PinPlan | null;
}

/** How long each waiting phase may take, ms: generous, since 10,000 clients on 2 cores are slow to set up. */
function setupTimeoutMs(clients: number): number {
  return 30_000 + clients * 10;
}

/** Polls `check` every 100 ms until it returns true or the deadline passes; resolves with the last answer. */
async function pollUntil(check: () => Promise<boolean> | boolean, timeoutMs: number, stepMs = 100): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, stepMs));
  }
}

/** CPU seconds and RSS per role, plus `total`. */
function sampleCpu(target: RunningTarget): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [role, pid] of Object.entries(target.roles())) out[role] = cpuSeconds([pid]);
  out.total = cpuSeconds(target.pids());
  return out;
}

function sampleRss(target: RunningTarget): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [role, pid] of Object.entries(target.roles())) out[role] = rssBytes([pid]);
  out.total = rssBytes(target.pids());
  return out;
}

/**
 * `ratePerS`: this point's requested publish rate (one of `--rates`; default `--rate`); `roomCount`: its rooms (one
 * of the multicast scenario's `--rooms-list`; default `--rooms`).
 */
export async function runPoint(
  target: Target,
  clients: number,
  ctx: PointContext,
  requestedRate = ctx.options.ratePerS,
  roomCount = ctx.options.rooms,
): Promise<LoadPointResult> {
  const { options, load, display } = ctx;
  // The soak is a run of its own (bench/lab/soak/run-soak.ts), not a load point.
  if (options.scenario === 'soak') throw new Error('runPoint: the soak scenario has no load points');
  const rooms = roomNames(roomCount);
  const result: LoadPointResult = {
    target: target.name,
    title: target.title,
    kind: target.kind,
    protocol: target.protocol,
    clients,
    rooms: roomCount,
    ratePerS: requestedRate,
    durationS: options.durationS,
    scenario: options.scenario,
    status: 'ok',
    parkedReached: null,
    phasesMs: {},
  };
  const reason = await target.unavailable();
  if (reason !== null) return { ...result, status: 'unavailable', error: reason };

  const workDir = mkdtempSync(join(tmpdir(), `lab-${target.name}-${clients}-`));
  let running: RunningTarget | null = null;
  let subscribers: Subscribers | null = null;
  let publisher: Publisher | null = null;
  let sampler: NodeJS.Timeout | undefined;
  let phaseStart = Date.now();
  const endPhase = (name: string): void => {
    result.phasesMs[name] = Date.now() - phaseStart;
    phaseStart = Date.now();
  };
  try {
    display.phase('start', 1);
    const nodeArgs = [
      // Every Node target can be told to collect garbage before memory is read (force-gc.ts).
      ...GC_NODE_ARGS,
      ...(options.cpuProfDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${resolve(options.cpuProfDir, `${target.name}-${clients}`)}`]),
    ];
    running = await target.start({ workDir, holdTimeoutS: options.holdTimeoutS, maxClients: clients, root: ctx.root, nodeArgs });
    if (ctx.pin) {
      // Started on the generator's cores (inherited from the orchestrator): move the whole tree to its own.
      const errors = pinPids(running.pids(), ctx.pin.target);
      result.pinned = { generator: ctx.pin.generator, target: ctx.pin.target, ...(errors.length > 0 ? { errors } : {}) };
    }
    endPhase('start');

    display.phase('setup', clients);
    const scaleout = options.scenario === 'scaleout';
    const fanout = options.scenario === 'fanout' || scaleout;
    // A fan-out round is one message: rate 1/s over a 1 s run (fanOutRounds).
    const ratePerS = fanout ? 1 : requestedRate;
    publisher = await load.startPublisher({ protocol: target.protocol, publishUrl: running.publishUrl, rooms, ratePerS });
    await publisher.setup(60_000);
    subscribers = await load.startSubscribers({
      protocol: target.protocol,
      clientUrl: running.clientUrl,
      ...(running.clientUrls === undefined ? {} : { clientUrls: running.clientUrls }),
      rooms,
      clients,
      workers: workersFor(options, clients),
      shortPollIntervalMs: options.shortPollIntervalMs,
      // A fan-out round times the server writing to every subscriber: the generator must not be busy re-polling
      // for the early receivers while later ones are still reading theirs.
      ...(fanout ? { repollDelayMs: FANOUT_REPOLL_DELAY_MS } : {}),
      requestTimeoutMs: (options.holdTimeoutS + 15) * 1000,
    });
    const setupTicker = setInterval(() => display.update(subscribers!.progress().ready), 250);
    try {
      await subscribers.setup(setupTimeoutMs(clients));
    } finally {
      clearInterval(setupTicker);
    }
    endPhase('setup');
    // Scale-out: the joins just made must not cross a proxy while parking or fanning out (the old bench started its
    // proxies after them; the lab's clients set up through the proxies, as browsers do, so it waits them out).
    const drainWaitMs = scaleout ? await waitDrained(running, setupTimeoutMs(clients)) : undefined;
    const gcIdle = await forceGc(running.pids());
    const rssIdle = sampleRss(running);
    // Its own phase: the park is timed from the first poll, not from the forced GC and memory reading before it.
    endPhase('idle');

    display.phase('park', clients);
    const parkStart = await subscribers.snapshot(10_000);
    const overflowsStart = await listenOverflows();
    const statsAtParkStart = scaleout ? await running.frontDoorStats?.() : undefined;
    // The target's own accept queue (the machine-wide drop count above also counts other processes' queues).
    const acceptQueue = watchAcceptQueue((running.clientUrls ?? [running.clientUrl]).map((url) => Number(new URL(url).port)));
    const parkStartedAt = Date.now();
    let parkedAll: number | null;
    let parkMs: number;
    let acceptQueueSummary: AcceptQueueSummary;
    try {
      await subscribers.subscribe(setupTimeoutMs(clients), options.scenario === 'park' || scaleout);
      parkedAll = await waitParked(running, target, subscribers, clients, display, setupTimeoutMs(clients));
      parkMs = Date.now() - parkStartedAt;
    } finally {
      // Stopped on failure too: its sampling loop would keep the lab alive.
      acceptQueueSummary = await acceptQueue.stop();
    }
    result.parkedReached = parkedAll;
    endPhase('park');
    const statsParked = scaleout ? await running.frontDoorStats?.() : undefined;
    const parkEnd = await subscribers.snapshot(10_000);
    const overflowsEnd = await listenOverflows();
    result.park = {
      ms: parkMs,
      errors: parkEnd.errors - parkStart.errors,
      requests: parkEnd.requests - parkStart.requests,
      ...(overflowsStart === undefined || overflowsEnd === undefined ? {} : { listenOverflows: overflowsEnd - overflowsStart }),
      ...(acceptQueueSummary.samples > 0 ? { acceptQueue: acceptQueueSummary } : {}),
    };
    const gcParked = await forceGc(running.pids());
    // The park scenario measures memory at rest: what a storm allocated and dropped must not count as held.
    const rssParked = options.scenario === 'park' ? await settledRss(running) : sampleRss(running);
    result.gc = { collected: Math.min(gcIdle.collected.length, gcParked.collected.length), late: gcIdle.late.length + gcParked.late.length };

    const windowStart = await subscribers.snapshot(10_000);
    const cpuStart = sampleCpu(running);
    // The subscriber workers (the cores-busy column), and each generator worker on its own for its headroom: the
    // publisher is told to stay alive after its run (`final: false`) so its CPU can still be read.
    const generatorPids = subscribers.pids();
    const generatorCpuStart = cpuSeconds(generatorPids);
    const workerPids = [...publisher.pids(), ...generatorPids];
    const workerCpuStart = workerPids.map((pid) => cpuSeconds([pid]));
    const cpuTimesStart = readCpuTimes();
    // One sample a second over the window (publish + drain): the time series exported next to results.json.
    const series: TimeSample[] = [];
    const windowStartMs = Date.now();
    const sample = (): void => {
      const progress = subscribers!.progress();
      series.push({
        t: (Date.now() - windowStartMs) / 1000,
        deliveries: progress.deliveries - windowStart.deliveries,
        requests: progress.requests - windowStart.requests,
        errors: progress.errors - windowStart.errors,
        serverCpuS: cpuSeconds(running!.pids()) - cpuStart.total!,
        generatorCpuS: cpuSeconds(generatorPids) - generatorCpuStart,
        serverRssBytes: rssBytes(running!.pids()),
      });
    };
    sample();
    sampler = setInterval(sample, TIME_SERIES_STEP_MS);
    const publishStartedAt = Date.now();
    let published: PublisherTotals;
    const rounds: RoundReadings[] = [];
    const cpuAtRoundStart: number[] = [];
    if (publishesOnSchedule(options.scenario)) {
      display.phase('publish', options.durationS);
      const publishTicker = setInterval(() => display.update(Math.min(options.durationS, Math.round((Date.now() - publishStartedAt) / 1000))), 250);
      try {
        published = await publisher.run(options.durationS * 1000, options.durationS * 1000 + 30_000, false);
      } finally {
        clearInterval(publishTicker);
      }
      endPhase('publish');
      const expected = rooms.reduce((sum, room, i) => sum + (published.publishedPerRoom[room] ?? 0) * countInRoom(i, rooms.length, clients), 0);
      display.phase('drain', expected);
      const drainTicker = setInterval(() => display.update(Math.min(expected, subscribers!.progress().deliveries - windowStart.deliveries)), 250);
      try {
        result.drainedAll = await subscribers.waitAllReceived(published.publishedPerRoom, options.drainTimeoutS * 1000);
      } finally {
        clearInterval(drainTicker);
      }
    } else if (fanout) {
      display.phase('fan-out', options.rounds);
      published = await fanOutRounds(running, target, subscribers, publisher, clients, options, display, rounds, cpuAtRoundStart);
      result.drainedAll = true;
      endPhase('fan-out');
    } else {
      published = { publishedPerRoom: {}, published: 0, errors: 0, requests: 0, bytes: 0, ratePerS: 0 };
    }
    clearInterval(sampler);
    sample();
    result.timeSeries = series;
    const cpuEnd = sampleCpu(running);
    const generatorCpuS = cpuSeconds(generatorPids) - generatorCpuStart;
    const workerCpuS = workerPids.map((pid, i) => cpuSeconds([pid]) - workerCpuStart[i]!);
    const cpuTimesEnd = readCpuTimes();
    const windowS = (Date.now() - publishStartedAt) / 1000;
    if (publishesOnSchedule(options.scenario)) endPhase('drain');

    display.phase('verify', 1);
    const totals = await subscribers.finish(published.publishedPerRoom, windowStart, 60_000);
    endPhase('verify');

    const cost: Record<string, ProcessCost> = {};
    for (const role of Object.keys(cpuEnd)) {
      cost[role] = {
        cpuS: (cpuEnd[role] ?? 0) - (cpuStart[role] ?? 0),
        rssIdleBytes: rssIdle[role] ?? 0,
        rssParkedBytes: rssParked[role] ?? 0,
      };
    }
    if (published.published === 0 && options.scenario !== 'park') {
      // Nothing to deliver is no measurement: the target refused or dropped every publish (kept in the JSON).
      result.status = 'failed';
      result.error = `the target accepted no publish in ${Math.round(windowS)} s (${published.errors} failed publish requests` +
        `${Object.keys(totals.badStatuses).length > 0 ? `; subscribers saw ${Object.entries(totals.badStatuses).map(([c, n]) => `HTTP ${c} × ${n}`).join(', ')}` : ''})`;
    }
    const deliveries = Math.max(1, totals.deliveries);
    result.subscribers = totals;
    result.publisher = published;
    result.cost = cost;
    result.loadGeneratorCpuS = generatorCpuS;
    result.windowS = windowS;
    const shares = coreShares(workerCpuS, windowS);
    result.loadGeneratorWorkers = { publisherCoreShare: shares[0]!, subscriberCoreShares: shares.slice(1) };
    result.generatorSaturated = generatorSaturated(shares);
    const steal = stealShare(cpuTimesStart, cpuTimesEnd);
    if (steal !== null) result.stealShare = steal;
    const memoryPerParkedByRole: Record<string, number> = {};
    for (const [role, c] of Object.entries(cost)) memoryPerParkedByRole[role] = (c.rssParkedBytes - c.rssIdleBytes) / clients;
    if (scaleout) {
      result.scaleout = scaleoutFigures({
        clients,
        frontDoors: running.clientUrls?.length ?? 1,
        ...(drainWaitMs === undefined ? {} : { drainWaitMs }),
        parkMs: result.park.ms,
        lastDeliveryMsBySeq: totals.lastDeliveryMsBySeq ?? {},
        reparkMs: rounds.map((r) => r.reparkMs),
        ...(statsAtParkStart === undefined ? {} : { statsAtParkStart }),
        ...(statsParked === undefined ? {} : { statsParked }),
        statsAroundRounds: rounds,
        latency: totals.latency,
        lost: totals.lost,
        duplicated: totals.duplicated,
      });
    }
    result.derived = {
      deliveriesPerS: totals.deliveries / windowS,
      cpuSPer1000Deliveries: (cost.total!.cpuS / deliveries) * 1000,
      memoryPerParkedBytes: memoryPerParkedByRole.total!,
      memoryPerParkedByRole,
      ...(cpuAtRoundStart.length > 0 ? { cpuSPer1000DeliveriesByRound: perRoundCpu(cpuAtRoundStart, cpuEnd.total!, totals.deliveries) } : {}),
      requestsPerDelivery: totals.requests / deliveries,
      bytesPerDelivery: totals.bytes / deliveries,
    };
    return result;
  } catch (err) {
    return { ...result, status: 'failed', error: (err as Error).message };
  } finally {
    clearInterval(sampler);
    display.stop();
    await subscribers?.kill().catch(() => undefined);
    await publisher?.kill().catch(() => undefined);
    await running?.stop().catch(() => undefined);
    rmSync(workDir, { recursive: true, force: true });
  }
}

/** Time series step, ms. */
const TIME_SERIES_STEP_MS = 1_000;

/** Fan-out scenario: subscribers poll again this long after receiving a round's message. */
const FANOUT_REPOLL_DELAY_MS = 2_000;

/** RSS is read every SETTLE_STEP_MS until it moved less than SETTLE_TOLERANCE over SETTLE_SAMPLES readings, or SETTLE_MAX_MS. */
const SETTLE_STEP_MS = 500;
const SETTLE_SAMPLES = 4;
const SETTLE_TOLERANCE = 0.01;
const SETTLE_MAX_MS = 20_000;

/** Memory per role once the target's total RSS stopped moving (a GC after a storm, freed buffers), or at the cap. */
async function settledRss(target: RunningTarget): Promise<Record<string, number>> {
  const totals: number[] = [];
  let last = sampleRss(target);
  await pollUntil(() => {
    last = sampleRss(target);
    totals.push(last.total ?? 0);
    if (totals.length < SETTLE_SAMPLES) return false;
    const recent = totals.slice(-SETTLE_SAMPLES);
    const high = Math.max(...recent);
    return high === 0 || (high - Math.min(...recent)) / high < SETTLE_TOLERANCE;
  }, SETTLE_MAX_MS, SETTLE_STEP_MS);
  return last;
}

/** What the scale-out scenario reads around one fan-out round (scaleout.ts). */
interface RoundReadings {
  /** The front doors' counters just before the publish and once every subscriber had the message. */
  before?: FrontDoorStats;
  after?: FrontDoorStats;
  /** From every subscriber holding this round's message to every one parked again, ms (before the next round). */
  reparkMs?: number;
}

/** Polls `running.drained()` until true; the wait in ms, or undefined when the target has no such queue. */
async function waitDrained(running: RunningTarget, timeoutMs: number): Promise<number | undefined> {
  if (running.drained === undefined) return undefined;
  const started = Date.now();
  if (!(await pollUntil(async () => (await running.drained!()) === true, timeoutMs, 20))) {
    throw new Error(`setup events still on their way to the front doors after ${timeoutMs} ms`);
  }
  return Date.now() - started;
}

/**
 * The fan-out scenario: `rounds` times, wait until every subscriber is parked again, publish ONE message (a 1 s
 * run at 1 msg/s) and wait until every subscriber has it. Publish to last receipt is read per seq at `finish`.
 * `readings`, when given (the scale-out scenario), gets the front doors' counters around each round and its re-park.
 */
async function fanOutRounds(
  running: RunningTarget,
  target: Target,
  subscribers: Subscribers,
  publisher: Publisher,
  clients: number,
  options: LabOptions,
  display: PhaseDisplay,
  readings?: RoundReadings[],
  /** Gets the target's CPU seconds (every process) as each round's publish starts. */
  cpuAtRoundStart?: number[],
): Promise<PublisherTotals> {
  const sum: PublisherTotals = { publishedPerRoom: {}, published: 0, errors: 0, requests: 0, bytes: 0, ratePerS: 0 };
  const quiet: PhaseDisplay = { ...display, update: () => undefined };
  for (let round = 0; round < options.rounds; round++) {
    // Quiet for longer than the subscribers' re-poll pause, or a target that cannot count looks settled before they re-poll.
    if (round > 0) {
      const reparkStart = Date.now();
      await waitParked(running, target, subscribers, clients, quiet, setupTimeoutMs(clients), FANOUT_REPOLL_DELAY_MS + 1000);
      if (readings !== undefined) readings[round - 1]!.reparkMs = Date.now() - reparkStart;
    }
    const reading: RoundReadings = {};
    if (readings !== undefined) {
      readings.push(reading);
      const before = await running.frontDoorStats?.();
      if (before !== undefined) reading.before = before;
    }
    cpuAtRoundStart?.push(cpuSeconds(running.pids()));
    // Never final: the worker stays alive for its CPU reading after the last round (killed with the point).
    const run = await publisher.run(1000, 60_000, false);
    for (const [room, n] of Object.entries(run.publishedPerRoom)) sum.publishedPerRoom[room] = (sum.publishedPerRoom[room] ?? 0) + n;
    sum.published += run.published;
    sum.offered = (sum.offered ?? 0) + (run.offered ?? 0);
    sum.dropped = (sum.dropped ?? 0) + (run.dropped ?? 0);
    sum.unsent = (sum.unsent ?? 0) + (run.unsent ?? 0);
    sum.errors += run.errors;
    for (const [kind, n] of Object.entries(run.errorKinds ?? {})) (sum.errorKinds ??= {})[kind] = (sum.errorKinds[kind] ?? 0) + n;
    sum.requests += run.requests;
    sum.bytes += run.bytes;
    if (run.published === 0) {
      cpuAtRoundStart?.pop(); // no round: its CPU stays with the one before (or the window alone)
      break;
    }
    if (!(await subscribers.waitAllReceived(sum.publishedPerRoom, options.drainTimeoutS * 1000))) {
      throw new Error(`fan-out round ${round + 1}: not every subscriber had the message within ${options.drainTimeoutS} s`);
    }
    if (readings !== undefined) {
      const after = await running.frontDoorStats?.();
      if (after !== undefined) reading.after = after;
    }
    display.update(round + 1);
  }
  return sum;
}

/**
 * CPU seconds per 1,000 deliveries of each fan-out round: round i runs from its publish (`starts[i]`) to the next
 * one's (the last to `end`), and every round delivers the same number of messages (one to every subscriber).
 */
export function perRoundCpu(starts: readonly number[], end: number, deliveries: number): number[] {
  const perRound = Math.max(1, deliveries / starts.length);
  return starts.map((start, i) => (((starts[i + 1] ?? end) - start) / perRound) * 1000);
}

/** Subscribers in room `roomIndex` when `clients` are spread round robin over `roomCount` rooms. */
function countInRoom(roomIndex: number, roomCount: number, clients: number): number {
  return Math.floor(clients / roomCount) + (roomIndex < clients % roomCount ? 1 : 0);
}

/**
 * Waits until the target reports every subscriber parked. Short polling never
 * parks, and a target that cannot tell (Pushpin: `countsParked` false) is
 * waited for until the subscribers' request count stays still for a second.
 * Returns what the target reported last (`null` when it cannot tell).
 */
async function waitParked(
  running: RunningTarget,
  target: Target,
  subscribers: Subscribers,
  clients: number,
  display: PhaseDisplay,
  timeoutMs: number,
  /** A target that cannot count: how long the subscribers' requests must stay still, ms. */
  quietMs = 1000,
): Promise<number | null> {
  if (target.protocol === 'chat-short-poll') {
    display.update(clients);
    return (await running.parked()) ?? null;
  }
  if (running.countsParked) {
    // A reading that fails (a stats request timing out while the server is busy fanning out) is asked again:
    // taking it for "cannot tell" would fall back to waiting for quiet traffic, which the fan-out scenario's
    // re-poll pause makes look settled while thousands of polls are still on their way.
    let last: number | undefined;
    let seen = 0;
    const all = await pollUntil(async () => {
      last = await running.parked();
      if (last === undefined) return false;
      seen = last;
      display.update(last);
      return last >= clients;
    }, timeoutMs);
    if (!all) throw new Error(`only ${seen} of ${clients} subscribers parked within ${timeoutMs} ms`);
    return seen;
  }
  // The target cannot count: wait for the initial catch-up polls to stop.
  let previous = -1;
  let stillSince = Date.now();
  const settled = await pollUntil(() => {
    const now = subscribers.progress().requests;
    if (now !== previous) {
      previous = now;
      stillSince = Date.now();
    }
    return Date.now() - stillSince >= quietMs;
  }, timeoutMs);
  if (!settled) throw new Error(`subscriber traffic did not settle within ${timeoutMs} ms`);
  display.update(clients);
  return null;
}
