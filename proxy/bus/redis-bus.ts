/**
 * The proxy's side of the Redis bus (docs/scaleout.md). Control calls made to
 * this proxy go into Redis (`/publish/` and `/close/` as stream entries,
 * `/push/` into the shared connection queue plus a `push` entry); a reader
 * loop applies the stream, in order, to this proxy's hold registry, from the
 * last id it applied, so a brief disconnect loses nothing.
 *
 * When it may have missed entries (Redis lost its data: the epoch key changed;
 * or the stream was trimmed past its position) it cannot know what it missed:
 * it re-asks every request parked on channels (docs §4.1) and counts
 * `busResyncs`. The cursor/prev-id protocol keeps delivery lossless either way.
 * When the epoch changed, queued pushes were lost too: the time is recorded
 * (`comet:epoch-lost-at`) and the queue scripts answer `queue-lost` once per
 * connection ID for the queue TTL after it (bus/redis-connections.ts).
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { BUS_EPOCH_KEY, BUS_EPOCH_LOST_KEY, BUS_STREAM, BUS_STREAM_MAXLEN, type BusEntryType } from '../../protocol/bus.js';
import type { ControlResult, RevokeResult } from '../../protocol/control-api.js';
import type { RevokeCommand } from '../control/commands.js';
import { parseCloseBody, parsePublishBody, parsePushBody, parseRevokeBody } from '../control/control-validation.js';
import type { HoldRegistry } from '../holds/hold-registry.js';
import { registryTarget, type BusTarget } from './bus-target.js';
import { RedisConnections, type RedisConnectionLimits } from './redis-connections.js';

/** How long one stream read blocks in Redis waiting for entries, ms. */
const READ_BLOCK_MS = 1000;

/** What the control API's write endpoints act on: the registry (embedded) or the bus. */
export interface ControlSink {
  publish(body: unknown, receivedAt: number): ControlResult | Promise<ControlResult>;
  push(body: unknown, receivedAt: number): ControlResult | Promise<ControlResult>;
  close(body: unknown): ControlResult | Promise<ControlResult>;
  revoke(body: unknown): RevokeResult | Promise<RevokeResult>;
}

/** A control call the bus could not take (Redis unreachable or too slow): 503 `PROXY_ERR_BUS_UNAVAILABLE`. */
export class BusUnavailableError extends Error {
  override name = 'BusUnavailableError';
}

export interface RedisBusOptions extends RedisConnectionLimits {
  redisUrl: string;
  logger: Logger;
  now: () => number;
  /** Deadline of one Redis command (not the blocking read), ms. Default 2000. */
  commandTimeoutMs?: number;
  /** How often the reader checks for a gap although nothing failed, ms. Default 5000. */
  gapCheckIntervalMs?: number;
  /** Most distinct connection IDs one `/push/` or `/close/` call may name (400 beyond). Default no limit. */
  controlMaxIdsPerCall?: number;
}

/**
 * KEYS epoch lostAt; ARGV token now knownEpoch ('' on the first check) -> {epoch, lostAt or ''}.
 * Creates the epoch if missing; a proxy that knew another epoch records when the data was lost (first one wins).
 */
const EPOCH = `
redis.call('SET', KEYS[1], ARGV[1], 'NX')
local e = redis.call('GET', KEYS[1])
if ARGV[3] ~= '' and e ~= ARGV[3] then redis.call('SET', KEYS[2], ARGV[2], 'NX') end
return {e, redis.call('GET', KEYS[2]) or ''}
`;

/** `a > b` for stream ids `ms-seq`. */
function idAfter(a: string, b: string): boolean {
  const [am, as] = a.split('-').map(Number) as [number, number];
  const [bm, bs] = b.split('-').map(Number) as [number, number];
  return am > bm || (am === bm && as > bs);
}

export class RedisBus implements ControlSink {
  /** Commands and scripts; fails fast while Redis is away (control calls answer 503). */
  private readonly cmd: Redis;
  /** The blocking stream reader (a blocked connection cannot serve other commands). */
  private readonly reader: Redis;
  readonly connections: RedisConnections;
  private target: BusTarget | null = null;
  private lastId = '0-0';
  private epoch: string | null = null;
  private needCheck = true;
  private lastCheckMs = 0;
  /** Bumped whenever the reader's connection drops: a read in flight may then come from a restarted Redis. */
  private generation = 0;
  private stopped = false;
  private loop: Promise<void> | null = null;
  private firstCheck!: () => void;
  private readonly checked = new Promise<void>((resolve) => (this.firstCheck = resolve));
  private readonly log: Logger;

  constructor(private readonly options: RedisBusOptions) {
    this.log = options.logger;
    const timeout = options.commandTimeoutMs ?? 2000;
    const retryStrategy = (times: number) => Math.min(20 * times, 500);
    this.cmd = new Redis(options.redisUrl, { maxRetriesPerRequest: 1, enableOfflineQueue: false, commandTimeout: timeout, retryStrategy });
    // The reader blocks up to READ_BLOCK_MS per read; a reply later than that plus the command timeout means a
    // connection that hangs without breaking (no reset, no close). The read loop then reconnects it.
    this.reader = new Redis(options.redisUrl, { maxRetriesPerRequest: 0, retryStrategy, commandTimeout: READ_BLOCK_MS + timeout });
    for (const conn of [this.cmd, this.reader]) conn.on('error', (err: Error) => this.log.debug({ err }, 'redis connection error'));
    this.reader.on('close', () => {
      this.generation++;
      this.needCheck = true;
    });
    this.connections = new RedisConnections(this.cmd, options, options.now, (ids) => this.append('push', JSON.stringify(ids)));
    this.cmd.defineCommand('cometEpoch', { numberOfKeys: 2, lua: EPOCH });
  }

  /** Starts applying the stream to `registry`; resolves after the first position check (or `waitMs`). */
  async start(registry: HoldRegistry, revoke?: (commands: RevokeCommand[]) => void, waitMs = 5000): Promise<void> {
    await this.startWith(registryTarget(registry, revoke), waitMs);
  }

  /** Starts applying the stream to `target` (a cluster primary relays it to its workers); as `start`. */
  async startWith(target: BusTarget, waitMs = 5000): Promise<void> {
    this.target = target;
    this.loop = this.readLoop();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.checked, new Promise<void>((resolve) => (timer = setTimeout(resolve, waitMs)))]);
    clearTimeout(timer);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.reader.disconnect();
    await this.loop;
    this.cmd.disconnect();
  }

  // --- control calls ---------------------------------------------------------

  async publish(body: unknown): Promise<ControlResult> {
    const commands = parsePublishBody(body); // validation errors answer 400 before anything is sent
    await this.append('publish', JSON.stringify({ items: (body as { items: unknown[] }).items }));
    void commands;
    return { delivered: 0, queued: 0, dropped: 0, reasked: 0 };
  }

  async push(body: unknown): Promise<ControlResult> {
    const commands = parsePushBody(body, this.options.controlMaxIdsPerCall);
    const result: ControlResult = { delivered: 0, queued: 0, dropped: 0, reasked: 0 };
    const notify: string[] = [];
    for (const command of commands) {
      let outcome;
      try {
        outcome = await this.connections.enqueue(command.connectionId, command.response);
      } catch (err) {
        throw new BusUnavailableError(`Redis did not take the push: ${(err as Error).message}`, { cause: err });
      }
      if (outcome.kind === 'closed') {
        result.dropped++;
        continue;
      }
      if (outcome.kind === 'queued') result.queued++;
      else {
        result.dropped += outcome.dropped;
        this.log.warn({ connectionId: command.connectionId, dropped: outcome.dropped }, 'connection queue overflowed; resync pending');
      }
      notify.push(command.connectionId);
    }
    this.target?.countPushes(commands.length, result.dropped);
    if (notify.length > 0) await this.append('push', JSON.stringify([...new Set(notify)]));
    return result;
  }

  async close(body: unknown): Promise<ControlResult> {
    const commands = parseCloseBody(body, this.options.controlMaxIdsPerCall);
    const result: ControlResult = { delivered: 0, queued: 0, dropped: 0, reasked: 0 };
    for (const command of commands) {
      try {
        result.dropped += await this.connections.close(command.connectionId);
      } catch (err) {
        throw new BusUnavailableError(`Redis did not take the close: ${(err as Error).message}`, { cause: err });
      }
    }
    // Every proxy answers the request it has parked under these IDs when it applies the entry.
    await this.append('close', JSON.stringify({ items: (body as { items: unknown[] }).items }));
    return result;
  }

  async revoke(body: unknown): Promise<RevokeResult> {
    // `issued-before` is fixed here, once, so every proxy applies the same revocation.
    const items = parseRevokeBody(body).map((c) => ({
      ...(c.subject === undefined ? {} : { subject: c.subject }),
      ...(c.connectionId === undefined ? {} : { 'connection-id': c.connectionId }),
      'issued-before': c.issuedBeforeMs,
    }));
    await this.append('revoke', JSON.stringify({ items }));
    return { revoked: 0 };
  }

  private async append(type: BusEntryType, data: string): Promise<void> {
    try {
      await this.cmd.xadd(BUS_STREAM, 'MAXLEN', '~', String(BUS_STREAM_MAXLEN), '*', 't', type, 'd', data);
    } catch (err) {
      throw new BusUnavailableError(`Redis did not take the ${type}: ${(err as Error).message}`, { cause: err });
    }
  }

  // --- the reader ------------------------------------------------------------

  private async readLoop(): Promise<void> {
    const interval = this.options.gapCheckIntervalMs ?? 5000;
    // The command connection refuses commands until it is connected (no offline queue): checking before that
    // only logs a failed read every 100 ms while a proxy starts.
    await this.connected(this.options.commandTimeoutMs ?? 2000);
    while (!this.stopped) {
      try {
        if (this.needCheck || Date.now() - this.lastCheckMs >= interval) await this.checkPosition();
        const generation = this.generation;
        const reply = (await this.reader.xread('COUNT', 500, 'BLOCK', READ_BLOCK_MS, 'STREAMS', BUS_STREAM, this.lastId)) as
          | Array<[string, Array<[string, string[]]>]>
          | null;
        // The connection dropped meanwhile: this batch may come from a restarted Redis. Check first, read again.
        if (generation !== this.generation || this.needCheck) continue;
        for (const [, entries] of reply ?? []) {
          for (const [id, fields] of entries) {
            this.apply(fields);
            this.lastId = id;
          }
        }
      } catch (err) {
        if (this.stopped) return;
        this.needCheck = true;
        this.log.warn({ err: (err as Error).message }, 'bus read failed; will resume from the last applied entry');
        // A timed-out read leaves its reply owed on this connection: start a fresh one.
        if ((err as Error).message === 'Command timed out') this.reader.disconnect(true);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }

  /** Resolves once the command connection is ready, or after `waitMs` (the read loop's retries take over then). */
  private connected(waitMs: number): Promise<void> {
    if (this.cmd.status === 'ready') return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.cmd.off('ready', done);
        resolve();
      };
      const timer = setTimeout(done, waitMs);
      this.cmd.once('ready', done);
    });
  }

  /**
   * Where to read from, and whether entries may have been lost: a new epoch
   * (Redis lost its data) restarts at the new stream's beginning; a stream
   * whose first entry is past the last applied one was trimmed past us. Either
   * way, parked requests are re-asked.
   */
  private async checkPosition(): Promise<void> {
    const epochScript = (this.cmd as unknown as Record<string, (...args: Array<string | number>) => Promise<[string, string]>>).cometEpoch!;
    const [epoch, lostAt] = await epochScript.call(this.cmd, BUS_EPOCH_KEY, BUS_EPOCH_LOST_KEY, randomUUID(), this.options.now(), this.epoch ?? '');
    this.connections.lostAt = lostAt === '' ? 0 : Number(lostAt);
    const first = (await this.cmd.xrange(BUS_STREAM, '-', '+', 'COUNT', 1))[0]?.[0];
    this.lastCheckMs = Date.now();
    if (this.epoch === null) {
      // First check: start after whatever the stream holds (this proxy has nothing parked yet).
      const last = (await this.cmd.xrevrange(BUS_STREAM, '+', '-', 'COUNT', 1))[0]?.[0];
      this.lastId = last ?? '0-0';
      this.epoch = epoch;
      this.log.info({ lastId: this.lastId }, 'bus reader started');
    } else if (epoch !== this.epoch) {
      this.epoch = epoch;
      this.lastId = '0-0'; // everything in the new stream is news
      this.log.warn({ lostAt: this.connections.lostAt }, 'Redis lost its data (new epoch): resyncing parked requests');
      this.target?.resyncAllParked(true);
    } else if (first !== undefined && this.lastId !== '0-0' && idAfter(first, this.lastId)) {
      this.log.warn({ lastId: this.lastId, firstId: first }, 'bus stream trimmed past this proxy: resyncing parked requests');
      this.target?.resyncAllParked(false);
    }
    this.needCheck = false;
    this.firstCheck();
  }

  private apply(fields: string[]): void {
    const target = this.target;
    if (target === null) return;
    let type: string | undefined;
    let data: string | undefined;
    for (let i = 0; i + 1 < fields.length; i += 2) {
      if (fields[i] === 't') type = fields[i + 1];
      else if (fields[i] === 'd') data = fields[i + 1];
    }
    try {
      target.apply(type ?? '', data ?? 'null');
    } catch (err) {
      // An entry no proxy can apply (written by a broken pusher): skip it rather than stall the bus.
      this.log.error({ err, type }, 'bad bus entry skipped');
    }
  }
}
