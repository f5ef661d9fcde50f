/**
 * What the hold registry sees of the stream holds (docs/protocol.md §14): where a publish item's `http-stream`
 * format goes, and how many streams are open, since they count against the parking caps. Implemented by
 * stream-registry.ts; a type and a zero, so holds/ imports nothing else from here.
 */
import type { ProxyStats } from '../../protocol/control-api.js';
import type { PublishCommand } from '../control/commands.js';

/** The stream part of `/stats` (docs/protocol.md §7.4). */
export type StreamStats = Pick<ProxyStats, 'streams' | 'streamChunks' | 'streamKeepAlives' | 'streamResyncs'>;

export const NO_STREAMS: StreamStats = { streams: 0, streamChunks: 0, streamKeepAlives: 0, streamResyncs: 0 };

export interface StreamSide {
  /** Applies `command.stream` to every stream on its channel; returns how many chunks were written. */
  publish(command: PublishCommand): number;
  /** Streams open now. */
  readonly count: number;
  /** What they keep, counted like a parked request's bytes (request head, keep-alive and resync data). */
  readonly bytes: number;
  /** Streams open now from client address `address`. */
  from(address: string): number;
  stats(): StreamStats;
}
