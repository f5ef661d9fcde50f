/**
 * The IPC vocabulary between the cluster primary and its proxy workers
 * (docs/scaleout.md "Workers"). JSON over node:cluster's channel, which keeps
 * each direction in order: that order is the entry stream's order.
 *
 * Control bodies travel as the raw JSON text the publisher sent: the worker
 * that received the call validates it (a bad one is answered 400 and never
 * leaves that worker), the primary forwards the text once per worker, and each
 * worker parses it.
 */
import type { ProxyStats } from '../../protocol/control-api.js';
import type { TakeResult } from '../holds/shared-connections.js';
import type { ItemResponse } from '../http/response.js';
import type { ResyncReason } from '../../protocol/resync.js';

/** A worker's wait for the primary when `requestTimeoutMs` is 0 (no limit on client requests; IPC still needs one), ms. */
const DEFAULT_IPC_TIMEOUT_MS = 30_000;

/** How long a worker waits for the primary to answer a call, take or gather: the client request timeout, ms. */
export function ipcTimeoutMs(requestTimeoutMs: number): number {
  return requestTimeoutMs > 0 ? requestTimeoutMs : DEFAULT_IPC_TIMEOUT_MS;
}

/**
 * An item a worker took and has not settled this long is given back (its worker is hung), ms: twice the worker's
 * IPC timeout and at least a minute, so a take that is only late is settled by its worker (connection-store.ts).
 */
export function itemOutMaxMs(requestTimeoutMs: number): number {
  return Math.max(60_000, 2 * ipcTimeoutMs(requestTimeoutMs));
}

/** The env variable that hands a worker the ports the primary chose (read by proxy/main.ts). */
export const WORKER_PORTS_ENV = 'COMET_PROXY_WORKER_PORTS';

export type CallOp = 'publish' | 'push' | 'close' | 'revoke';
export type EntryType = 'publish' | 'push' | 'close' | 'revoke';

/** An ItemResponse as JSON: the body in base64. */
export interface WireItem {
  c?: number;
  r?: string;
  h: Array<[string, string]>;
  b: string;
}

/** A failure the worker turns back into its error class (hold-delivery.ts TooManyQueuesError, or 503). */
export interface WireError {
  code: string;
  message: string;
  retryAfterS?: number;
}

export type WireTake = Exclude<TakeResult, { kind: 'item' }> | { kind: 'item'; item: WireItem };

/** What a worker sends the primary. */
export type WorkerMessage =
  | { k: 'hello'; id: number }
  | { k: 'ready' }
  | { k: 'call'; id: number; op: CallOp; body: string }
  | { k: 'take'; id: number; cid: string }
  | { k: 'requeue'; cid: string; item: WireItem }
  /** A take answered after this worker's timeout had taken `cid`'s resync: set it again. */
  | { k: 'resync-again'; cid: string; reason: ResyncReason }
  /** The item taken for `cid` was written: it is no longer out (connection-store.ts). */
  | { k: 'delivered'; cid: string }
  /** Connection IDs polls parked under without a take (known-empty.ts): the primary counts them as known. */
  | { k: 'seen'; cids: string[] }
  | { k: 'gather'; id: number; what: 'stats' | 'metrics' }
  | { k: 'gathered'; id: number; value: unknown };

/** The primary's answer to `hello`. */
export interface HelloReply {
  /**
   * Every change that can fill a connection queue or close an ID (push, requeue, close) reaches every worker as
   * an entry naming the ID, in the order it happened relative to takes: workers may then park a poll under an
   * ID they know is empty without a take (known-empty.ts). False on the Redis bus, where other hosts requeue.
   */
  announcesQueueChanges: boolean;
}

/** What the primary sends a worker. */
export type PrimaryMessage =
  | { k: 'entry'; t: EntryType; d: string }
  /** On the Redis bus: the primary's reader may have missed entries; re-ask every parked request. */
  | { k: 'resync'; queuesLost: boolean }
  | { k: 'reply'; id: number; value?: unknown; error?: WireError }
  | { k: 'collect'; id: number; what: 'stats' | 'metrics' }
  | { k: 'shutdown' };

/** One worker's part of a cluster-wide `/stats`. */
export interface WorkerStats extends ProxyStats {
  pid: number;
}

export function toWire(item: ItemResponse): WireItem {
  const wire: WireItem = { h: item.headers, b: item.body.toString('base64') };
  if (item.code !== undefined) wire.c = item.code;
  if (item.reason !== undefined) wire.r = item.reason;
  return wire;
}

export function fromWire(wire: WireItem): ItemResponse {
  const item: ItemResponse = { headers: wire.h, body: Buffer.from(wire.b, 'base64') };
  if (wire.c !== undefined) item.code = wire.c;
  if (wire.r !== undefined) item.reason = wire.r;
  return item;
}

export function isMessage(value: unknown): value is { k: string } {
  return typeof value === 'object' && value !== null && typeof (value as { k?: unknown }).k === 'string';
}
