/**
 * The soak scenario's share of the lab's worker protocol (bench/lab/worker-messages.ts): the config of a
 * soak worker, the counters it reports, the records it returns, and its calls. A soak worker is one of the
 * lab's load-worker processes (bench/lab/load-worker.ts) running its share of the soak's clients
 * (soak-client.ts) in the `soak` role (soak-role.ts).
 */

/** A soak worker's share of the clients. Passed as argv[2] (JSON), like the lab's other roles. */
export interface SoakWorkerConfig {
  role: 'soak';
  /** 0-based index of this worker; client nicks are `w<worker>c<n>`. */
  worker: number;
  /** The target's client URL, `http://127.0.0.1:PORT`. */
  clientUrl: string;
  /** Simulated clients in this worker. */
  clients: number;
  /** Rooms of the run (`soak-00` ...); every worker may create them (409 is fine). */
  rooms: string[];
  /** Rooms each client joins at setup: a uniform integer in [min, max]. */
  initialRoomsMin: number;
  initialRoomsMax: number;
  /** This worker's share of the action rates, per second. */
  postsPerS: number;
  joinsLeavesPerS: number;
  abortsPerS: number;
  /** Seed of this worker's PRNG. */
  seed: number;
  /** Poll requests give up after this long (the proxy answers within the hold timeout). */
  pollTimeoutMs: number;
  /** Source address of every client socket (`127.0.0.(10+worker)`), or none off IPv4 loopback. */
  localAddress: string | undefined;
}

/** What one soak client counts (soak-client.ts); a worker reports their sums. */
export interface ClientCounters {
  pollsAnswered: number;
  pollErrors: number;
  eventsReceived: number;
  resyncs: number;
  postsOk: number;
  postsFailed: number;
  joins: number;
  leaves: number;
  leavesAbandoned: number;
  aborts: number;
}

/** Counters a soak worker reports with its progress and in its answers: its clients' sums, and its own. */
export interface SoakProgress extends ClientCounters {
  clientsReady: number;
  /** Clients that could not learn whether a join or leave happened and stopped (their intervals end where they knew). */
  clientsGivenUp: number;
  inFlightActions: number;
}

export function emptySoakProgress(): SoakProgress {
  return {
    clientsReady: 0, pollsAnswered: 0, pollErrors: 0, eventsReceived: 0, resyncs: 0, postsOk: 0, postsFailed: 0,
    joins: 0, leaves: 0, leavesAbandoned: 0, aborts: 0, clientsGivenUp: 0, inFlightActions: 0,
  };
}

/** One membership of a client in a room, as the client knows it: `(from, to]` in event ids; `to` null while still a member. */
export type Interval = [room: string, from: number, to: number | null];

export interface ClientRecord {
  nick: string;
  intervals: Interval[];
  /** Every event id the client received, all types, in arrival order (duplicates kept). */
  received: number[];
}

/**
 * The soak role's calls, in phase order (`setup` is the lab's own: sessions, rooms, joins). Each carries the
 * orchestrator's deadline; `soak-stop` is final (the worker exits after its reply).
 */
export interface SoakCalls {
  /** Every client skips to the rooms' last ids (no message exists yet) and starts its poll loop. */
  'soak-poll': { request: { lastIds: Record<string, number>; timeoutMs: number }; reply: { progress: SoakProgress } };
  /** Posts, aborted polls, joins and leaves at the configured rates, until `soak-quiesce`. */
  'soak-churn': { request: { timeoutMs: number }; reply: Record<string, never> };
  /** No new actions; replies once the actions in flight ended (or at the deadline). */
  'soak-quiesce': { request: { timeoutMs: number }; reply: { progress: SoakProgress } };
  /** Waits until every client has its rooms' `lastIds` (or the deadline); how many are still behind. */
  'soak-catch-up': { request: { lastIds: Record<string, number>; timeoutMs: number }; reply: { behind: number; ms: number } };
  /** Stops every client and returns their records, and the first errors its actions threw (a bug, not a loss). */
  'soak-stop': { request: { timeoutMs: number }; reply: { progress: SoakProgress; clients: ClientRecord[]; errors: string[] } };
}
