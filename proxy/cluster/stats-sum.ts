/**
 * One `/stats` for a proxy of several workers (docs/protocol.md §7.4): counters
 * and per-request gauges summed; what every worker holds a copy of (channel
 * cursors, the channel buffer) is the largest copy, not the sum; queues and
 * connection state come from the primary's shared store. `workers` lists each
 * worker's own numbers, by pid.
 */
import type { ProxyStats } from '../../protocol/control-api.js';
import type { WorkerStats } from './messages.js';

/**
 * Every worker applies the same entries to these, so each holds the same (or a fuller) copy. A bus resync
 * (Redis) is relayed to every worker: the host resynced once, not once per worker.
 */
const REPLICATED: ReadonlySet<string> = new Set(['channels', 'bufferedItems', 'busResyncs']);
/** Owned by the primary's store (connection-store.ts): the workers' own numbers are not the truth. */
const STORE_OWNED: ReadonlySet<string> = new Set(['queuedItems', 'queuedBytes', 'connections']);

export interface StoreNumbers {
  items: number;
  bytes: number;
  connections: number;
  dropped: number;
}

export function sumStats(workers: readonly WorkerStats[], store: StoreNumbers): ProxyStats & { workers: WorkerStats[] } {
  const total: Record<string, number> = {};
  for (const w of workers) {
    for (const [key, value] of Object.entries(w)) {
      if (key === 'pid' || typeof value !== 'number') continue;
      if (REPLICATED.has(key)) total[key] = Math.max(total[key] ?? 0, value);
      else if (!STORE_OWNED.has(key)) total[key] = (total[key] ?? 0) + value;
    }
  }
  total.queuedItems = store.items;
  total.queuedBytes = store.bytes;
  // IDs with shared state (queued, resync pending, closed) plus the ones parked on some worker.
  total.connections = store.connections + (total.parked ?? 0);
  total.dropped = (total.dropped ?? 0) + store.dropped;
  return { ...(total as unknown as ProxyStats), workers: [...workers] };
}
