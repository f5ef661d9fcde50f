/**
 * Model 4, the custom event-driven server, and the server side of the
 * baselines (short polling, SSE, forever iframe): the lab's chat workload on
 * one `node:http` server with everything in memory, built to allocate little
 * per request. Events are serialized once and shared by every reader; a
 * parked poll is a small record in its rooms' Sets and in one coarse timeout
 * bucket swept by a single interval (bench/models/event-driven/*).
 *
 * Modes (`options.mode`): `long-poll` (default) parks polls until news or the
 * hold timeout; `short-poll` answers every poll at once. `GET /api/stream`
 * (SSE, forever iframe) is served in both.
 */
import http from 'node:http';
import { ChatRooms } from './event-driven/chat-rooms.js';
import { Hub } from './event-driven/hub.js';
import { createRouter } from './event-driven/router.js';
import { Sessions } from './event-driven/sessions.js';
import { STREAM_KEEPALIVE_MS, type StreamFormat } from './event-driven/stream-format.js';
import { foreverIframeFormat } from './forever-iframe.js';
import type { LabServer, LabServerFactory, LabServerOptions } from './lab-server.js';
import { sseFormat } from './sse.js';

export const EVENT_DRIVEN_MODES = ['long-poll', 'short-poll'] as const;

/**
 * Granularity of hold timeouts and period of the sweep, ms: 1/20 of the hold,
 * within 10-500 ms, so a 30 s hold ends within 30-30.5 s and a 1 s test hold
 * within 1-1.05 s.
 */
export function holdTickMs(holdTimeoutMs: number): number {
  return Math.min(500, Math.max(10, Math.round(holdTimeoutMs / 20)));
}

export interface EventDrivenServerOptions extends LabServerOptions {
  /** Interval of stream keepalives, ms. Default `STREAM_KEEPALIVE_MS` (15 s); tests shorten it. */
  keepaliveMs?: number;
}

/** The server with every knob; the lab uses `createEventDrivenServer`. */
export function buildEventDrivenServer(options: EventDrivenServerOptions): LabServer {
  const mode = options.mode ?? 'long-poll';
  if (!(EVENT_DRIVEN_MODES as readonly string[]).includes(mode)) {
    throw new Error(`event-driven: mode must be one of ${EVENT_DRIVEN_MODES.join(', ')}, got ${JSON.stringify(mode)}`);
  }
  if (!(Number.isFinite(options.holdTimeoutS) && options.holdTimeoutS > 0)) {
    throw new Error(`event-driven: holdTimeoutS must be a positive number of seconds, got ${options.holdTimeoutS}`);
  }
  const keepaliveMs = options.keepaliveMs ?? STREAM_KEEPALIVE_MS;
  if (!(Number.isFinite(keepaliveMs) && keepaliveMs > 0)) {
    throw new Error(`event-driven: keepaliveMs must be a positive number, got ${keepaliveMs}`);
  }
  const holdTimeoutMs = options.holdTimeoutS * 1000;
  // The sweep also sends keepalives, so it must tick at least as often as they are due.
  const tickMs = Math.min(holdTickMs(holdTimeoutMs), keepaliveMs);
  const hub = new Hub({ holdTimeoutMs, tickMs, keepaliveMs });
  const formats = new Map<string, StreamFormat>([sseFormat, foreverIframeFormat].map((f) => [f.transport, f]));
  const handler = createRouter({
    rooms: new ChatRooms(),
    sessions: new Sessions(),
    hub,
    parkPolls: mode === 'long-poll',
    formats,
  });
  const server = http.createServer(handler);

  return {
    server,
    parked: () => hub.parked,
    close: async () => hub.close(),
  };
}

export const createEventDrivenServer: LabServerFactory = (options) => buildEventDrivenServer(options);
