/**
 * What the soak's orchestrator (main.ts) and its load-generator processes
 * (load-worker.ts) tell each other over the `child_process.fork` IPC channel.
 */

export interface WorkerConfig {
  /** 0-based index of this worker; client nicks are `w<worker>c<n>`. */
  worker: number;
  /** The proxy's client URL, `http://127.0.0.1:PORT`. */
  proxyUrl: string;
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
  /**
   * Loopback source addresses the clients connect from (client i uses entry i mod length), so
   * that no address holds more than a few hundred parked polls: the proxy caps parked requests
   * per client address (MAX_PARKED_PER_ADDRESS), as it should for real clients.
   */
  sourceAddresses: string[];
  /** Hard limit on this process's life: it exits (code 3) if no `stop` came by then. */
  maxRunMs: number;
}

/** Counters a worker reports once a second (and in its final report). */
export interface WorkerProgress {
  clientsReady: number;
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
  /** Clients that could not learn whether a join or leave happened and stopped (their intervals end where they knew). */
  clientsGivenUp: number;
  inFlightActions: number;
}

/** One membership of a client in a room, as the client knows it: `(from, to]` in event ids; `to` null while still a member. */
export type Interval = [room: string, from: number, to: number | null];

export interface ClientRecord {
  nick: string;
  intervals: Interval[];
  /** Every event id the client received, all types, in arrival order (duplicates kept). */
  received: number[];
}

export type ToWorker =
  | { type: 'setup'; config: WorkerConfig }
  | { type: 'start-polling'; lastIds: Record<string, number> }
  | { type: 'churn' }
  | { type: 'quiesce' }
  | { type: 'catch-up'; lastIds: Record<string, number>; timeoutMs: number }
  | { type: 'stop' };

export type FromWorker =
  | { type: 'joined'; progress: WorkerProgress }
  | { type: 'ready'; progress: WorkerProgress }
  | { type: 'progress'; progress: WorkerProgress }
  | { type: 'quiet'; progress: WorkerProgress }
  | { type: 'caught-up'; behind: number; ms: number }
  | { type: 'report'; progress: WorkerProgress; clients: ClientRecord[] }
  | { type: 'error'; message: string };
