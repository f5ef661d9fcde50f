/**
 * Connection queues, resync flags and closed-ID tombstones in Redis, shared by
 * every proxy (docs/scaleout.md, docs/protocol.md §7.2–§7.3). Each operation is
 * one Lua script, so the caps, the expiry and the resync flag change together
 * however many proxies push and poll at once.
 *
 * Keys per connection ID (protocol/bus.ts): a list of entries
 * `"<enqueuedAtMs> <bytes> <json>"`, a hash {bytes, resync}, and a tombstone
 * string. List and hash live `queueTtlMs + resyncTtlMs` after the last push, so
 * an expired queue still remembers its resync until the client is forgotten.
 *
 * An item taken is *out* (a fourth key, protocol/bus.ts `outKey`) until its
 * taker (an owner token: this process, or a cluster worker of it) settles it
 * with `delivered` or `requeue`. Meanwhile takes for the ID answer none and
 * mark the out `waited`; its end is then announced as a push entry, so the poll
 * refused meanwhile takes the item. An out older than `outMaxMs` (its taker
 * died) goes back to the head of the queue at the next take: at least once.
 * A resync a take returns is out the same way (given back to the flag), so a
 * take whose reply a proxy never saw does not lose the client's resync.
 */
import type { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import { connectionKeys, outKey } from '../../protocol/bus.js';
import type { ResyncReason } from '../../protocol/resync.js';
import type { ItemResponse } from '../http/response.js';
import type { EnqueueResult, SharedConnections, TakeResult } from '../holds/shared-connections.js';

export interface RedisConnectionLimits {
  queueMaxItems: number;
  queueMaxBytes: number;
  queueTtlMs: number;
  resyncTtlMs: number;
  closedTtlMs: number;
}

const EXPIRE = `
local function expire(now, ttl)
  local dropped, bytes = 0, 0
  while true do
    local head = redis.call('LINDEX', KEYS[1], 0)
    if not head then break end
    local at, n = string.match(head, '^(%d+) (%d+) ')
    if tonumber(at) > now - ttl then break end
    redis.call('LPOP', KEYS[1])
    dropped = dropped + 1
    bytes = bytes + tonumber(n)
  end
  if dropped > 0 then
    redis.call('HINCRBY', KEYS[2], 'bytes', -bytes)
    redis.call('HSETNX', KEYS[2], 'resync', 'queue-expired')
  end
  return dropped
end
`;

/**
 * What is out (\`out\`) goes back and the out ends: an item to the head of its queue, as it was taken (its enqueue
 * time kept); a resync to the meta hash's flag (unless another is pending: the first reason stays).
 */
const GIVE_BACK = `
local function giveBack(queue, meta, out, keepMs)
  local reason = redis.call('HGET', out, 'resync')
  if reason then
    redis.call('DEL', out)
    redis.call('HSETNX', meta, 'resync', reason)
    redis.call('PEXPIRE', meta, keepMs)
    return
  end
  local back = redis.call('HGET', out, 'entry')
  redis.call('DEL', out)
  redis.call('LPUSH', queue, back)
  redis.call('HINCRBY', meta, 'bytes', tonumber(string.match(back, '^%d+ (%d+) ')))
  redis.call('PEXPIRE', queue, keepMs)
  redis.call('PEXPIRE', meta, keepMs)
end
`;

/**
 * Redis lost its data at \`lostAt\` (ms, 0 if not known) and \`now\` is within \`ttl\` of it: a connection
 * with no state yet may have had queued items in the lost Redis (docs/scaleout.md).
 */
const LOST_WINDOW = `
local function lostWindow(now, ttl, lostAt)
  return lostAt > 0 and now < lostAt + ttl and redis.call('EXISTS', KEYS[1]) == 0 and redis.call('EXISTS', KEYS[2]) == 0
end
`;

/** KEYS queue meta closed; ARGV now ttl entry bytes maxItems maxBytes keepMs lostAt -> {status, dropped}. */
const ENQUEUE = `${EXPIRE}${LOST_WINDOW}
local now, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
if redis.call('EXISTS', KEYS[3]) == 1 then return {'closed', 0} end
-- First state since Redis lost its data: items queued before may be gone; the next take says so.
if lostWindow(now, ttl, tonumber(ARGV[8])) then redis.call('HSET', KEYS[2], 'resync', 'queue-lost') end
local expired = expire(now, ttl)
local n = redis.call('LLEN', KEYS[1])
local b = tonumber(redis.call('HGET', KEYS[2], 'bytes') or '0')
local size = tonumber(ARGV[4])
if n + 1 > tonumber(ARGV[5]) or b + size > tonumber(ARGV[6]) then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'bytes', 0)
  redis.call('HSETNX', KEYS[2], 'resync', 'queue-overflow')
  redis.call('PEXPIRE', KEYS[2], ARGV[7])
  return {'overflow', n + 1 + expired}
end
redis.call('RPUSH', KEYS[1], ARGV[3])
redis.call('HINCRBY', KEYS[2], 'bytes', size)
redis.call('PEXPIRE', KEYS[1], ARGV[7])
redis.call('PEXPIRE', KEYS[2], ARGV[7])
return {'queued', expired}
`;

/**
 * KEYS queue meta closed out; ARGV now ttl lostAt keepMs owner outMaxMs -> {'closed'} | {'resync', reason, dropped} | {'item', json} | {'none'}.
 * Within \`ttl\` of Redis losing its data (\`lostAt\`), a connection with no state answers \`queue-lost\` once:
 * the state it leaves behind (an empty meta hash, kept \`keepMs\`) stops it from being told twice.
 */
const TAKE = `${EXPIRE}${LOST_WINDOW}${GIVE_BACK}
local now, ttl, lostAt = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if redis.call('EXISTS', KEYS[3]) == 1 then return {'closed'} end
if redis.call('EXISTS', KEYS[4]) == 1 then
  if tonumber(redis.call('HGET', KEYS[4], 'at')) > now - tonumber(ARGV[6]) then
    redis.call('HSET', KEYS[4], 'waited', '1')
    return {'none'}
  end
  -- Out too long: its taker is gone. The item goes back first.
  giveBack(KEYS[1], KEYS[2], KEYS[4], ARGV[4])
end
-- A resync taken is out too, until its answer is written: a take whose reply the proxy never saw (its command
-- timed out) gives it back instead of losing it.
local function resyncOut(reason)
  redis.call('HSET', KEYS[4], 'owner', ARGV[5], 'at', now, 'resync', reason)
  redis.call('PEXPIRE', KEYS[4], ARGV[4])
end
if lostWindow(now, ttl, lostAt) then
  redis.call('HSET', KEYS[2], 'bytes', 0)
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
  resyncOut('queue-lost')
  return {'resync', 'queue-lost', 0}
end
expire(now, ttl)
local reason = redis.call('HGET', KEYS[2], 'resync')
if reason then
  local n = redis.call('LLEN', KEYS[1])
  redis.call('DEL', KEYS[1], KEYS[2])
  if lostAt > 0 and now < lostAt + ttl then
    -- Still in the window: keep (empty) state, so the next take does not answer queue-lost as well.
    redis.call('HSET', KEYS[2], 'bytes', 0)
    redis.call('PEXPIRE', KEYS[2], ARGV[4])
  end
  resyncOut(reason)
  return {'resync', reason, n}
end
local e = redis.call('LPOP', KEYS[1])
if not e then return {'none'} end
local n, json = string.match(e, '^%d+ (%d+) (.*)$')
redis.call('HINCRBY', KEYS[2], 'bytes', -tonumber(n))
redis.call('HSET', KEYS[4], 'owner', ARGV[5], 'at', now, 'entry', e)
redis.call('PEXPIRE', KEYS[4], ARGV[4])
return {'item', json}
`;

/**
 * KEYS queue meta out; ARGV owner keepMs -> 1 (announce: the item went back), 0 (it was given back already, or the
 * ID was closed). The item goes back as it was taken (its enqueue time kept), not as the proxy sends it.
 */
const REQUEUE = `${GIVE_BACK}
if redis.call('HGET', KEYS[3], 'owner') ~= ARGV[1] then return 0 end
giveBack(KEYS[1], KEYS[2], KEYS[3], ARGV[2])
return 1
`;

/** KEYS out; ARGV owner -> 1 if a take waited for it (announce), else 0. */
const DELIVERED = `
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
local waited = redis.call('HGET', KEYS[1], 'waited')
redis.call('DEL', KEYS[1])
if waited then return 1 end
return 0
`;

/**
 * KEYS queue meta closed out; ARGV reason keepMs owner -> 1 if set (the first reason pending stays), 0 if closed.
 * The owner's resync out ends: it is the one being set again.
 */
const RESYNC_AGAIN = `
if redis.call('HGET', KEYS[4], 'owner') == ARGV[3] then redis.call('DEL', KEYS[4]) end
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
redis.call('HSETNX', KEYS[2], 'resync', ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
`;

/** KEYS queue meta closed out; ARGV closedTtlMs -> items dropped (an item out is its taker's). */
const CLOSE = `
redis.call('DEL', KEYS[4])
redis.call('SET', KEYS[3], '1', 'PX', ARGV[1])
local n = redis.call('LLEN', KEYS[1])
redis.call('DEL', KEYS[1], KEYS[2])
return n
`;

type ScriptFn = (...args: Array<string | number>) => Promise<unknown>;

interface WireItem {
  c?: number;
  r?: string;
  h: Array<[string, string]>;
  b: string;
}

function encode(item: ItemResponse): string {
  const wire: WireItem = { h: item.headers, b: item.body.toString('base64') };
  if (item.code !== undefined) wire.c = item.code;
  if (item.reason !== undefined) wire.r = item.reason;
  return JSON.stringify(wire);
}

function decode(json: string): ItemResponse {
  const wire = JSON.parse(json) as WireItem;
  const item: ItemResponse = { headers: wire.h, body: Buffer.from(wire.b, 'base64') };
  if (wire.c !== undefined) item.code = wire.c;
  if (wire.r !== undefined) item.reason = wire.r;
  return item;
}

/**
 * An item out this long is taken as its taker's death and goes back at the next take, ms. Far past any live
 * proxy's settle time (one Redis round trip after its write), so a slow proxy's late settle is not doubled.
 */
export const OUT_MAX_MS = 60_000;

export class RedisConnections implements SharedConnections {
  private readonly scripts: Record<'enqueue' | 'take' | 'requeue' | 'delivered' | 'resyncAgain' | 'close', ScriptFn>;
  private readonly keepMs: number;
  /** This process as a taker; a cluster primary adds its worker's id (`take`'s `owner`). */
  readonly owner: string = randomUUID();
  /**
   * When Redis lost its data (epoch changed), ms on the proxies' clocks, 0 if not known: shared through
   * \`comet:epoch-lost-at\` and refreshed by the bus reader's position check (redis-bus.ts).
   */
  lostAt = 0;

  /**
   * `redis` is a command connection (not the blocking reader); `now` is the proxy's clock, ms; `announce` tells
   * every proxy that items went back to these IDs' queues (a push entry), for a poll refused while they were out.
   */
  constructor(
    redis: Redis,
    private readonly limits: RedisConnectionLimits,
    private readonly now: () => number,
    private readonly announce: (connectionIds: string[]) => Promise<void>,
  ) {
    // defineCommand sends EVALSHA and falls back to EVAL, so a restarted Redis (empty script cache) just works.
    redis.defineCommand('cometEnqueue', { numberOfKeys: 3, lua: ENQUEUE });
    redis.defineCommand('cometTake', { numberOfKeys: 4, lua: TAKE });
    redis.defineCommand('cometRequeue', { numberOfKeys: 3, lua: REQUEUE });
    redis.defineCommand('cometDelivered', { numberOfKeys: 1, lua: DELIVERED });
    redis.defineCommand('cometResyncAgain', { numberOfKeys: 4, lua: RESYNC_AGAIN });
    redis.defineCommand('cometClose', { numberOfKeys: 4, lua: CLOSE });
    const r = redis as unknown as Record<string, ScriptFn>;
    this.scripts = {
      enqueue: r.cometEnqueue!.bind(redis),
      take: r.cometTake!.bind(redis),
      requeue: r.cometRequeue!.bind(redis),
      delivered: r.cometDelivered!.bind(redis),
      resyncAgain: r.cometResyncAgain!.bind(redis),
      close: r.cometClose!.bind(redis),
    };
    this.keepMs = limits.queueTtlMs + limits.resyncTtlMs;
  }

  async take(connectionId: string, owner = this.owner): Promise<TakeResult> {
    const reply = (await this.scripts.take(
      ...connectionKeys(connectionId),
      outKey(connectionId),
      this.now(),
      this.limits.queueTtlMs,
      this.lostAt,
      this.keepMs,
      owner,
      OUT_MAX_MS,
    )) as string[];
    switch (reply[0]) {
      case 'closed':
        return { kind: 'closed' };
      case 'resync':
        return { kind: 'resync', reason: reply[1] as ResyncReason, dropped: Number(reply[2]) };
      case 'item':
        return { kind: 'item', item: decode(reply[1]!) };
      default:
        return { kind: 'none' };
    }
  }

  /** The item out goes back as Redis kept it (`_item` is the same one); announced, since a poll may wait for it. */
  async requeue(connectionId: string, _item: ItemResponse, owner = this.owner): Promise<void> {
    const [queue, meta] = connectionKeys(connectionId);
    if (Number(await this.scripts.requeue(queue, meta, outKey(connectionId), owner, this.keepMs)) === 1) await this.announce([connectionId]);
  }

  delivered(connectionId: string, owner = this.owner): void {
    this.settleDelivered(connectionId, owner).catch(() => {
      // Redis away: the out ends at OUT_MAX_MS instead (its item then comes twice, never not at all).
    });
  }

  private async settleDelivered(connectionId: string, owner: string): Promise<void> {
    if (Number(await this.scripts.delivered(outKey(connectionId), owner)) === 1) await this.announce([connectionId]);
  }

  /** A take whose answer came too late to use had cleared a resync: set it again, and announce it. */
  async resyncAgain(connectionId: string, reason: ResyncReason, owner = this.owner): Promise<void> {
    const set = await this.scripts.resyncAgain(...connectionKeys(connectionId), outKey(connectionId), reason, this.keepMs, owner);
    if (Number(set) === 1) await this.announce([connectionId]);
  }

  async enqueue(connectionId: string, item: ItemResponse): Promise<EnqueueResult> {
    const { queueTtlMs, queueMaxItems, queueMaxBytes } = this.limits;
    const bytes = item.body.length;
    const reply = (await this.scripts.enqueue(
      ...connectionKeys(connectionId),
      this.now(),
      queueTtlMs,
      `${this.now()} ${bytes} ${encode(item)}`,
      bytes,
      queueMaxItems,
      queueMaxBytes,
      this.keepMs,
      this.lostAt,
    )) as [string, number];
    if (reply[0] === 'closed') return { kind: 'closed' };
    if (reply[0] === 'overflow') return { kind: 'overflow', dropped: Number(reply[1]) };
    return { kind: 'queued' };
  }

  async close(connectionId: string): Promise<number> {
    return Number(await this.scripts.close(...connectionKeys(connectionId), outKey(connectionId), this.limits.closedTtlMs));
  }
}
