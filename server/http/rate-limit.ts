/**
 * Per-key rate limits (posts per session, session creations per client
 * address): a token bucket per key that holds at most `perMinute` tokens and
 * refills at `perMinute` per minute, so a client may burst up to a minute's
 * allowance and then goes at the steady rate. The clock is injected so tests
 * move time instead of waiting for it.
 *
 * Memory is bounded: at most `maxKeys` buckets are kept, least recently used
 * first out. An evicted key starts again with a full bucket, which is what it
 * would have after a minute idle anyway; an attacker with that many addresses
 * is not slowed down by this limit, but the memory stays bounded.
 */
import type { Request } from 'express';
import { AppError } from '../errors.js';
import { isLoopbackClient } from './client-address.js';

export interface RateLimiterOptions {
  /** Allowed events per minute per key, also the burst; 0 disables the limit. */
  perMinute: number;
  /** Clock, ms. */
  now: () => number;
  /** Most keys remembered. Default 100 000. */
  maxKeys?: number;
}

interface Bucket {
  tokens: number;
  /** When `tokens` was last brought up to date, ms. */
  at: number;
}

const MINUTE_MS = 60_000;

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly maxKeys: number;

  constructor(private readonly options: RateLimiterOptions) {
    this.maxKeys = options.maxKeys ?? 100_000;
  }

  /**
   * Takes one token for `key`. Returns 0 when the event is allowed, else the
   * whole seconds until a token will be there (for `Retry-After`, at least 1);
   * a refused event takes nothing.
   */
  take(key: string): number {
    const { perMinute, now } = this.options;
    if (perMinute <= 0) return 0;
    const t = now();
    const ratePerMs = perMinute / MINUTE_MS;
    const bucket = this.buckets.get(key);
    let tokens = perMinute;
    if (bucket !== undefined) {
      tokens = Math.min(perMinute, bucket.tokens + Math.max(0, t - bucket.at) * ratePerMs);
      this.buckets.delete(key); // re-inserted below: Map order is the LRU order
    }
    if (tokens < 1) {
      this.buckets.set(key, { tokens, at: t });
      return Math.max(1, Math.ceil((1 - tokens) / ratePerMs / 1000));
    }
    this.buckets.set(key, { tokens: tokens - 1, at: t });
    if (this.buckets.size > this.maxKeys) {
      const oldest = this.buckets.keys().next().value;
      if (oldest !== undefined) this.buckets.delete(oldest);
    }
    return 0;
  }

  /** Keys remembered now (for tests). */
  get size(): number {
    return this.buckets.size;
  }
}

/** Takes a token for `key` or throws 429 `APP_ERR_RATE_LIMITED` with `Retry-After`. */
export function enforceRate(limiter: RateLimiter, key: string, what: string): void {
  const retryAfterS = limiter.take(key);
  if (retryAfterS > 0) {
    throw new AppError('APP_ERR_RATE_LIMITED', `too many ${what}; retry in ${retryAfterS} s`, retryAfterS);
  }
}

/** The app's two limits and who is exempt from them (options in server/options.ts). */
export interface AppRateLimits {
  /** Posts, keyed by session id. */
  posts: RateLimiter;
  /** Session creations, keyed by client address. */
  sessions: RateLimiter;
  /** True for a request neither limit applies to (loopback clients unless `rateLimitLoopback`). */
  exempt(req: Request): boolean;
}

export function createRateLimits(
  options: { postsPerMinute: number; sessionsPerMinutePerAddress: number; rateLimitLoopback: boolean },
  now: () => number,
): AppRateLimits {
  return {
    posts: new RateLimiter({ perMinute: options.postsPerMinute, now }),
    sessions: new RateLimiter({ perMinute: options.sessionsPerMinutePerAddress, now }),
    exempt: (req) => !options.rateLimitLoopback && isLoopbackClient(req),
  };
}
