/**
 * The scale-out scenario's figures (`--scenario scaleout`, docs/scaleout.md "Measuring it"): what the separate
 * scale-out bench reported, from the lab's harness and load workers. One stack per point (`suspend-push`, `-x2`,
 * `-x3`, `-w2`: 1, 2 or 3 proxies, or one proxy on 2 workers), one room:
 *
 *  - the timed phases start once the target is drained (`RunningTarget.drained`): every join made during setup has
 *    left the app's outbox and reached every proxy, so none crosses a proxy while parking or fanning out;
 *  - park: every subscriber opens its poll in one burst; time to all parked, hence the park rate;
 *  - fan-out: `rounds` times one message, publish to the last subscriber's receipt, per round and the medians over
 *    the rounds (one stack, not `--repeat` runs).
 *
 * Pure: run-point.ts gathers the readings, this file turns them into the figures results.json keeps.
 */
import { median } from './stats.js';

/** One fan-out round. */
export interface ScaleoutRound {
  /** 1-based. */
  round: number;
  /** From the message's due time to its last subscriber's receipt, ms. */
  fanoutMs: number;
  /** Subscribers / `fanoutMs`, per second. */
  deliveriesPerS: number;
  /**
   * From every subscriber holding the message to every one parked again, ms (the fan-out re-poll pause included);
   * absent after the last round.
   */
  reparkMs?: number;
  /** What the proxies counted during the round (`/stats` `deliveries`, `reasks`, summed); absent when unreadable. */
  frontDoorDeliveries?: number;
  reasks?: number;
}

export interface ScaleoutFigures {
  /** Proxies the subscribers were spread over (subscriber i polls proxy i mod N). */
  frontDoors: number;
  /** How long the harness waited for the target to be drained before the park, ms; absent: it cannot tell. */
  drainWaitMs?: number;
  /** First poll sent to every subscriber parked, ms. */
  parkMs: number;
  /** Subscribers / `parkMs`, per second. */
  parkedPerS: number;
  /** Each proxy's parked count once every subscriber was parked. */
  parkedPerFrontDoor?: number[];
  rounds: ScaleoutRound[];
  fanoutMsMedian: number;
  deliveriesPerSMedian: number;
  /** Due-to-receipt latency over every round's deliveries (one histogram), ms. */
  p50Ms: number;
  p99Ms: number;
  lost: number;
  duplicated: number;
  /** The proxies' `/stats` counters over the timed phases (park start to the last round's end), summed. */
  frontDoorTotals?: Record<string, number>;
  /** Each proxy's `publishes` over the timed phases: the round count when no setup event crossed it. */
  publishesPerFrontDoor?: number[];
}

/** The `/stats` counters kept in `frontDoorTotals` (what the old bench's `proxyTotals` held). */
export const FRONT_DOOR_COUNTERS = ['holds', 'publishes', 'deliveries', 'reasks', 'resyncs', 'timeouts', 'dropped', 'busResyncs'] as const;

export type FrontDoorStats = ReadonlyArray<Readonly<Record<string, number>>>;

/** Per proxy, `after[key] - before[key]` (a missing counter reads 0). */
export function statsDelta(before: FrontDoorStats, after: FrontDoorStats, key: string): number[] {
  return after.map((stats, i) => (stats[key] ?? 0) - (before[i]?.[key] ?? 0));
}

const sum = (values: readonly number[]): number => values.reduce((a, b) => a + b, 0);

/** What run-point.ts read during one scale-out point. */
export interface ScaleoutReadings {
  clients: number;
  frontDoors: number;
  drainWaitMs?: number;
  parkMs: number;
  /** Per seq (1 per round), due time to last receipt, ms (`SubscriberTotals.lastDeliveryMsBySeq`). */
  lastDeliveryMsBySeq: Readonly<Record<string, number>>;
  /** Per round, the re-park wait before the next round, ms. */
  reparkMs: ReadonlyArray<number | undefined>;
  /** Proxies' stats at park start, once all parked, and before and after each round (undefined: unreadable). */
  statsAtParkStart?: FrontDoorStats;
  statsParked?: FrontDoorStats;
  statsAroundRounds: ReadonlyArray<{ before?: FrontDoorStats; after?: FrontDoorStats }>;
  latency: { p50: number; p99: number };
  lost: number;
  duplicated: number;
}

export function scaleoutFigures(r: ScaleoutReadings): ScaleoutFigures {
  const seqs = Object.keys(r.lastDeliveryMsBySeq).map(Number).sort((a, b) => a - b);
  const rounds: ScaleoutRound[] = seqs.map((seq, i) => {
    const fanoutMs = r.lastDeliveryMsBySeq[String(seq)]!;
    const around = r.statsAroundRounds[i];
    const counted = around?.before !== undefined && around.after !== undefined;
    return {
      round: i + 1,
      fanoutMs,
      deliveriesPerS: fanoutMs > 0 ? (r.clients / fanoutMs) * 1000 : NaN,
      ...(r.reparkMs[i] === undefined ? {} : { reparkMs: r.reparkMs[i] }),
      ...(counted
        ? { frontDoorDeliveries: sum(statsDelta(around.before!, around.after!, 'deliveries')), reasks: sum(statsDelta(around.before!, around.after!, 'reasks')) }
        : {}),
    };
  });
  const lastAfter = r.statsAroundRounds.at(-1)?.after;
  const start = r.statsAtParkStart;
  return {
    frontDoors: r.frontDoors,
    ...(r.drainWaitMs === undefined ? {} : { drainWaitMs: r.drainWaitMs }),
    parkMs: r.parkMs,
    parkedPerS: r.parkMs > 0 ? (r.clients / r.parkMs) * 1000 : NaN,
    ...(r.statsParked === undefined ? {} : { parkedPerFrontDoor: r.statsParked.map((s) => s.parked ?? 0) }),
    rounds,
    fanoutMsMedian: rounds.length > 0 ? median(rounds.map((x) => x.fanoutMs)) : NaN,
    deliveriesPerSMedian: rounds.length > 0 ? median(rounds.map((x) => x.deliveriesPerS)) : NaN,
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    lost: r.lost,
    duplicated: r.duplicated,
    ...(start !== undefined && lastAfter !== undefined
      ? {
          frontDoorTotals: Object.fromEntries(FRONT_DOOR_COUNTERS.map((key) => [key, sum(statsDelta(start, lastAfter, key))])),
          publishesPerFrontDoor: statsDelta(start, lastAfter, 'publishes'),
        }
      : {}),
  };
}
