/**
 * Publishing to the Redis bus (docs/scaleout.md): each outbox batch becomes one
 * `publish` entry of the bus stream, in order; every proxy applies it. The
 * relay deletes the rows only after XADD succeeded, so a Redis outage costs
 * latency, not messages. Counts in the answer are zero: deliveries happen later,
 * in each proxy.
 */
import { Redis } from 'ioredis';
import type { CloseItem, ControlResult, ItemsBody, PublishItem } from '../../protocol/control-api.js';
import { BUS_STREAM, BUS_STREAM_MAXLEN, type BusEntryType } from '../../protocol/bus.js';
import { PublishError, type Publisher } from './publisher.js';

export interface RedisPublisherOptions {
  /** `redis://host:port`. */
  redisUrl: string;
  /** Deadline of one XADD, ms. */
  timeoutMs: number;
}

export class RedisPublisher implements Publisher {
  private readonly redis: Redis;
  private closed = false;

  constructor(options: RedisPublisherOptions) {
    this.redis = new Redis(options.redisUrl, {
      // Fail the XADD (the relay retries the batch) rather than queueing it while Redis is away.
      maxRetriesPerRequest: 1,
      enableOfflineQueue: false,
      commandTimeout: options.timeoutMs,
      retryStrategy: (times) => Math.min(50 * times, 1000),
      lazyConnect: false,
    });
    // Errors surface as rejected publishes; the connection's own errors are retried by ioredis.
    this.redis.on('error', () => {});
  }

  publish(items: PublishItem[]): Promise<ControlResult> {
    return this.append('publish', items);
  }

  /** A `close` entry: every proxy answers the IDs' parked requests and refuses them (docs/protocol.md §7.3, §7.5). */
  closeConnections(items: CloseItem[]): Promise<ControlResult> {
    return this.append('close', items);
  }

  private async append(type: BusEntryType, items: PublishItem[] | CloseItem[]): Promise<ControlResult> {
    if (this.closed) throw new PublishError('publisher is closed');
    const body = JSON.stringify({ items } satisfies ItemsBody<PublishItem | CloseItem>);
    try {
      await this.redis.xadd(BUS_STREAM, 'MAXLEN', '~', String(BUS_STREAM_MAXLEN), '*', 't', type, 'd', body);
    } catch (err) {
      throw new PublishError(`XADD to the bus failed: ${(err as Error).message}`, undefined, { cause: err });
    }
    return { delivered: 0, queued: 0, dropped: 0, reasked: 0 };
  }

  close(): void {
    this.closed = true;
    this.redis.disconnect();
  }
}
