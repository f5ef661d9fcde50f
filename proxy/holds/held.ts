/**
 * The vocabulary of the hold registry's parts: a request the registry owns
 * (`Held`), how it can leave (`HoldOutcome`), who hears about it
 * (`HoldObserver`), how a re-ask is asked for (`ReaskFn`), and the counters
 * every part adds to and `/stats` reports. Types and two constructors; no behaviour.
 */
import type { ControlResult, ProxyStats } from '../../protocol/control-api.js';
import type { Exchange } from '../forward/exchange.js';
import type { HoldInstruction } from '../forward/instruction.js';
import type { Connection } from './connection-table.js';
import type { ChannelLink } from './parked-index.js';

/**
 * How a re-ask ended: `dispatched` when the app's answer was handled (written to
 * the client, or handed back to `hold`), `failed` when it could not be sent or
 * failed on the network (the client then gets the `reask-failed` resync answer).
 */
export type ReaskOutcome = 'dispatched' | 'failed';

/**
 * Sends the exchange's request to the app again with `Grip-Last` built from
 * `lastIds` (channel -> the prev-id it was held with) and handles the answer like a
 * first one. Provided by the upstream side (forward/reask.ts).
 */
export type ReaskFn = (exchange: Exchange, lastIds: ReadonlyMap<string, string>) => Promise<ReaskOutcome>;

/**
 * How a held request left the registry: `delivered` (publish, push, queued item),
 * `timeout`, `aborted` (client went away), `superseded` (a newer hold for its
 * connection ID), `resync`, `pipelined`, `drained` (shutdown), `closed` (/close/),
 * `refused` (closed connection ID, a parking cap reached, or a body too large to park), `app` (a re-ask's answer went straight to the client),
 * `revoked` (its lease was revoked: the client polls the app again).
 */
export type HoldOutcome =
  | 'delivered'
  | 'timeout'
  | 'aborted'
  | 'superseded'
  | 'resync'
  | 'pipelined'
  | 'drained'
  | 'closed'
  | 'refused'
  | 'app'
  | 'revoked';

/** Told about holds and deliveries as they happen, for metrics (proxy/control/metrics.ts). */
export interface HoldObserver {
  /** A request that had been parked was answered (or abandoned) `heldMs` after it was first parked. */
  holdEnded(outcome: HoldOutcome, heldMs: number): void;
  /** A published or pushed item was written to a parked client `latencyMs` after the control call arrived. */
  itemWritten(kind: 'publish' | 'push', latencyMs: number): void;
}

/** Where a delivered item came from, to time publish-to-write (performance.now() ms). */
export interface ItemSource {
  kind: 'publish' | 'push';
  receivedAt: number;
}

/**
 * A request the registry owns, from its first hold instruction to its answer.
 * `deciding`: in no index, the registry is working out what to do (docs §4);
 * `parked`: indexed (parked-index.ts) and on the timeout wheel (hold-timeouts.ts); `reasking`: the app is
 * being asked again (§4.1); `done`: answered, or abandoned by its client.
 */
export interface Held {
  readonly exchange: Exchange;
  /** The latest hold instruction (a re-ask brings a new one). */
  instruction: HoldInstruction;
  state: 'deciding' | 'parked' | 'reasking' | 'done';
  /** Its slot on the timeout wheel (hold-timeouts.ts) while parked, else NO_SLOT; the wheel sets it. */
  timeoutSlot: number;
  /** Its neighbours in that slot (the wheel's links), else null. */
  timeoutPrev: Held | null;
  timeoutNext: Held | null;
  /** `timers.now()` when it was first parked; null if it never was. */
  parkedAt: number | null;
  /** What it keeps while parked (parked-bytes.ts), set before each park; counted in the index's total. */
  parkedBytes: number;
  /** Identifies the re-ask in flight, so a stale re-ask result is ignored. */
  reaskAttempt: object | null;
  /** Its neighbours on the parked list while parked (parked-index.ts), else null. */
  parkedPrev: Held | null;
  parkedNext: Held | null;
  /** Its first channel's link while parked (parked-index.ts; the others chain from it), else null. */
  channelLinks: ChannelLink | null;
  /** Its connection ID's state while parked under one (parked-index.ts), so leaving needs no lookup; else null. */
  connection: Connection<Held> | null;
}

/** The registry's counters since start (part of `/stats`, docs §7.4); every part adds to the same object. */
export type HoldCounters = Pick<
  ProxyStats,
  | 'holds'
  | 'publishes'
  | 'pushes'
  | 'deliveries'
  | 'timeouts'
  | 'reasks'
  | 'resyncs'
  | 'dropped'
  | 'clientAborts'
  | 'pipelineReleases'
  | 'frontTakeovers'
  | 'busResyncs'
>;

export function createCounters(): HoldCounters {
  return {
    holds: 0,
    publishes: 0,
    pushes: 0,
    deliveries: 0,
    timeouts: 0,
    reasks: 0,
    resyncs: 0,
    dropped: 0,
    clientAborts: 0,
    pipelineReleases: 0,
    frontTakeovers: 0,
    busResyncs: 0,
  };
}

export function emptyResult(): ControlResult {
  return { delivered: 0, queued: 0, dropped: 0, reasked: 0 };
}
