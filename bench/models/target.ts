/**
 * The one interface of the models lab: every Comet model, baseline and
 * external server (Pushpin, Nchan) is a `Target` the harness starts the same
 * way, on loopback, in its own processes, and stops after one load point.
 *
 * A target serves one of a few client protocols (`ClientProtocol`); the load
 * generator has one client per protocol (bench/lab/clients/*). All `chat-*`
 * protocols, `sse` and `forever-iframe` speak the chat API subset described in
 * docs/models.md ("The lab's client protocol"); `nchan-long-poll` is Nchan's own.
 */

/**
 * - `chat-long-poll`: `GET /api/poll?rooms=r:cursor&cid=ID`, held until news or timeout (docs/chat-api.md).
 * - `chat-short-poll`: the same request, answered at once; the client waits a fixed interval between polls.
 * - `chat-sse`: the chat app's own stream, `GET /api/stream?rooms=r:cursor&format=sse&cid=ID` (docs/protocol.md
 *   §10.2): a `hello` frame with the connection ID, one `id:`/`data:` frame per event, keep-alive comments, and
 *   `event: resync` before the proxy ends a stream that fell behind; reopened from the cursor whenever it ends.
 * - `sse`: `GET /api/stream?rooms=r:cursor&transport=sse`, `text/event-stream`, one `id:`/`data:` event per chat
 *   event; reconnects send `Last-Event-ID`.
 * - `forever-iframe`: `GET /api/stream?rooms=r:cursor&transport=iframe`, `text/html` with padding, then one
 *   `<script>parent.comet(EVENT_JSON)</script>` chunk per chat event; reconnects resume from the cursor.
 * - `nchan-long-poll`: Nchan's long-poll subscriber `GET /sub/<room>` resumed with `If-Modified-Since` /
 *   `If-None-Match`; publishing is `POST /pub/<room>` with the message text as body.
 */
export type ClientProtocol = 'chat-long-poll' | 'chat-short-poll' | 'chat-sse' | 'sse' | 'forever-iframe' | 'nchan-long-poll';

export type TargetKind = 'model' | 'baseline' | 'external';

export interface TargetStartOptions {
  /** Scratch directory of this load point (database file, generated configs, logs); exists and is empty. */
  workDir: string;
  /** Long-poll hold timeout, seconds: the longest a poll or Nchan subscriber waits before an empty answer. */
  holdTimeoutS: number;
  /** Subscribers the load point will open: targets raise their own limits (parked caps, open files) to fit. */
  maxClients: number;
  /** Repository root (where `dist/` and `node_modules/` are). */
  root: string;
  /**
   * Extra flags for the target's own Node processes (ours, never Pushpin's or nginx's), given before the
   * script: the harness's `--cpu-prof DIR` passes `--cpu-prof --cpu-prof-dir=...` here.
   */
  nodeArgs?: string[];
}

export interface RunningTarget {
  /** Base URL subscribers use, e.g. `http://127.0.0.1:41234` (no trailing slash). */
  clientUrl: string;
  /**
   * Several front doors (a scaled-out target's proxies): subscriber i uses `clientUrls[i % length]`. Default:
   * `[clientUrl]`.
   */
  clientUrls?: string[];
  /** Base URL the publisher uses: the same server for chat protocols, Nchan's publisher location for Nchan. */
  publishUrl: string;
  /**
   * The server's root processes. Their CPU and memory, with every descendant's
   * (bench/lab/process-tree.ts), are the target's cost.
   */
  pids(): number[];
  /** Named roles of the pids for per-process figures, e.g. `{ proxy: 123, app: 124 }`. */
  roles(): Record<string, number>;
  /**
   * Whether the target counts its parked polls and open streams at all. When it does, a `parked()` that gives
   * `undefined` only failed this time (a stats request that timed out while the server was busy) and is asked again.
   */
  countsParked: boolean;
  /** Long-polls parked plus streams open right now; `undefined` when it cannot tell (now, or ever: `countsParked`). */
  parked(): Promise<number | undefined>;
  /**
   * Front doors that publish from a queue behind them (Suspend & Push: the app's outbox, relayed to the proxies):
   * true once every event committed so far has left that queue and every front door has applied it (its counters
   * stayed put), so a timed phase started now sees no setup event cross a front door (the scale-out scenario waits
   * for it). Absent: the target publishes synchronously; `undefined`: it cannot tell this time.
   */
  drained?(): Promise<boolean | undefined>;
  /**
   * Each front door's own counters (a proxy's `/stats`, docs/protocol.md §7.4), in `clientUrls` order; `undefined`
   * when one cannot be read this time. Absent: the target has none.
   */
  frontDoorStats?(): Promise<Array<Record<string, number>> | undefined>;
  /** Stops every process (SIGTERM, then SIGKILL after a deadline) and resolves when all have exited. Idempotent. */
  stop(): Promise<void>;
}

export interface Target {
  /** Command-line name, kebab-case: `suspend-resume`, `pushpin`. */
  name: string;
  /** Display name: `Suspend & Resume`. */
  title: string;
  kind: TargetKind;
  protocol: ClientProtocol;
  /** `null` when the target can run here; otherwise why not (e.g. "pushpin is not installed"). */
  unavailable(): Promise<string | null>;
  start(options: TargetStartOptions): Promise<RunningTarget>;
}
