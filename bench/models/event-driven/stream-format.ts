/**
 * A streaming transport of the event-driven server (`GET /api/stream`): how
 * one long response begins, frames each event and keeps itself alive. One
 * implementation per file: bench/models/sse.ts, bench/models/forever-iframe.ts.
 */
import type { IncomingMessage } from 'node:http';

export interface StreamFormat {
  /** The `transport` query value that selects it. */
  transport: string;
  /** Response headers, as a flat `[name, value, ...]` list for `writeHead`. */
  headers: readonly string[];
  /** Written first, before any event: padding that gets the response past buffering clients and proxies. */
  prelude: Buffer;
  /** One event: `json` is the event's JSON as stored (serialized once for every recipient). */
  frame(id: number, json: string): string;
  /** Written to every open stream every `keepaliveMs`, so idle connections are neither closed nor presumed dead. */
  keepalive: Buffer;
  /**
   * The id a reconnecting client says it has, overriding the cursors in every
   * room (ids are global and increasing), as raw text; `undefined` when the
   * transport has no such thing or the client sent none.
   */
  resumeId?(req: IncomingMessage, query: URLSearchParams): string | undefined;
}

/** Interval of stream keepalives, ms: below the 30-60 s idle limits of common proxies and load balancers. */
export const STREAM_KEEPALIVE_MS = 15_000;
