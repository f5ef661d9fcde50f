/**
 * The in-process servers of the lab (models 1, 2 and 4 and the baselines)
 * share one factory shape, so `serve.ts` can run any of them in a child
 * process and the harness can start them the same way.
 */
import type http from 'node:http';

export interface LabServerOptions {
  /** SQLite file for models built on the chat app; ignored by in-memory servers. */
  dbPath: string;
  /** Hold timeout of a parked poll, seconds. */
  holdTimeoutS: number;
  /** Server variant, for servers that have several (the event-driven core: `long-poll` or `short-poll`). */
  mode?: string;
  /** Clock, ms since the epoch, for servers built on the chat app (tests move it instead of waiting). Default `Date.now`. */
  now?: () => number;
}

export interface LabServer {
  /** Not listening yet: `serve.ts` listens on 127.0.0.1 and an ephemeral port. */
  server: http.Server;
  /** Polls suspended/parked plus streams open right now (served as `GET /_lab/stats` → `{"parked": n}`). */
  parked(): number;
  /** Answers or drops every parked request, stops timers and closes the database. Idempotent. */
  close(): Promise<void>;
}

export type LabServerFactory = (options: LabServerOptions) => LabServer;

/** Path of the lab's stats endpoint on every in-process server. */
export const LAB_STATS_PATH = '/_lab/stats';
