/**
 * The Redis bus between apps and hold proxies (docs/scaleout.md): key names
 * and stream entry types shared by the app's relay, every proxy and the tests.
 * Pure: no I/O.
 *
 * One stream carries everything in order. Each entry has a type field `t` and
 * a JSON field `d`:
 *   - `publish`: `d` is `{"items": [PublishItem, ...]}` (the `/publish/` body);
 *   - `push`:    `d` is `["connection-id", ...]`: items were queued for these IDs;
 *   - `close`:   `d` is `{"items": [CloseItem, ...]}` (the `/close/` body);
 *   - `revoke`:  `d` is `{"items": [RevokeItem, ...]}` (the `/revoke/` body, `issued-before` filled in).
 */

/** The stream every proxy reads from its last applied id. */
export const BUS_STREAM = 'comet:bus';
/** Approximate cap of the stream (`XADD ... MAXLEN ~`): a proxy further behind than this resyncs. */
export const BUS_STREAM_MAXLEN = 100_000;
/** Random token set when absent; a different token means Redis lost its data (restart without persistence). */
export const BUS_EPOCH_KEY = 'comet:epoch';
/**
 * When Redis lost its data (ms): set (NX) by the first proxy that sees the epoch change. For the queue TTL
 * after it, a connection ID with no state in Redis is answered the `queue-lost` resync once.
 */
export const BUS_EPOCH_LOST_KEY = 'comet:epoch-lost-at';

export type BusEntryType = 'publish' | 'push' | 'close' | 'revoke';

/**
 * The item a proxy took for a connection and has not settled (hash: owner, at, entry, waited): while it exists,
 * takes for the ID answer none, so the next item cannot overtake it (bus/redis-connections.ts).
 */
export function outKey(connectionId: string): string {
  return `comet:out:{${connectionId}}`;
}

/** Per-connection keys: queue (list), meta (hash: bytes, resync, resyncAt) and closed tombstone. */
export function connectionKeys(connectionId: string): [queue: string, meta: string, closed: string] {
  // One hash tag per connection, so a Redis Cluster keeps the three keys of one script on one slot.
  const tag = `{${connectionId}}`;
  return [`comet:q:${tag}`, `comet:qm:${tag}`, `comet:closed:${tag}`];
}
