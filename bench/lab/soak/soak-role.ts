/**
 * The soak role of a lab load-worker process (bench/lab/load-worker.ts forks it
 * with a `SoakWorkerConfig`): runs its share of the soak's clients
 * (soak-client.ts) against the target and follows the orchestrator's calls
 * (soak-messages.ts): setup (sign in, join rooms), soak-poll (start polling),
 * soak-churn (post, abort polls, join and leave at the configured rates),
 * soak-quiesce (finish the actions in flight, keep polling), soak-catch-up
 * (wait until every client has its rooms' last events), soak-stop (abort
 * everything, return the records). The process holds one socket per client
 * plus a few: keep it well under the 20,000 open files a process may have.
 */
import http from 'node:http';
import type { LoadProgress } from '../load-api.js';
import { prng } from '../../lib/prng.js';
import { sleep, SoakClient } from './soak-client.js';
import type { ClientCounters, SoakCalls, SoakProgress, SoakWorkerConfig } from './soak-messages.js';

/** Sessions and joins in flight at once per worker: enough to keep a server busy, not a stampede. */
const SETUP_CONCURRENCY = 32;
const TICK_MS = 50;
const STOP_WAIT_MS = 10_000;
/** Action errors kept for the report (the count is exact). */
const MAX_ERRORS_KEPT = 5;

type SetupCall = { setup: { request: { timeoutMs: number }; reply: Record<string, never> } };
type Calls = SetupCall & SoakCalls;
export type SoakHandlers = { [K in keyof Calls]: (request: Calls[K]['request']) => Promise<Calls[K]['reply']> };

/** Runs `fn` over `items` with at most `limit` in flight; the first failure rejects once all stopped. */
async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

export class SoakRole {
  private readonly random: () => number;
  private readonly agent: http.Agent;
  private readonly clients: SoakClient[] = [];
  private readonly counters: ClientCounters = {
    pollsAnswered: 0, pollErrors: 0, eventsReceived: 0, resyncs: 0, postsOk: 0, postsFailed: 0,
    joins: 0, leaves: 0, leavesAbandoned: 0, aborts: 0,
  };
  private clientsReady = 0;
  private readonly inFlight = new Set<Promise<void>>();
  private scheduler: NodeJS.Timeout | null = null;
  private readonly progressTimer: NodeJS.Timeout;
  private posted = 0;
  private readonly errors: string[] = [];
  private errorCount = 0;

  /** `report` sends progress to the orchestrator (the lab's `progress` message, every `progressMs`). */
  constructor(private readonly config: SoakWorkerConfig, report: (progress: LoadProgress) => void, progressMs: number) {
    this.random = prng(config.seed);
    // One socket per client for its poll, plus those of actions; keep the idle ones (no reconnect per poll).
    this.agent = new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: config.clients * 2 });
    const base = new URL(config.clientUrl);
    for (let i = 0; i < config.clients; i++) {
      this.clients.push(new SoakClient(`w${config.worker}c${i}`, this.agent, base, this.counters, this.random, config.pollTimeoutMs, config.localAddress));
    }
    this.progressTimer = setInterval(() => {
      const soak = this.progress();
      // The lab's generic fields as far as they apply (the soak counts answered polls, not requests); `soak` has the rest.
      report({ ready: soak.clientsReady, subscribed: soak.clientsReady, requests: soak.pollsAnswered, deliveries: soak.eventsReceived, errors: soak.pollErrors, soak });
    }, progressMs);
  }

  readonly handlers: SoakHandlers = {
    setup: async ({ timeoutMs }) => {
      const deadline = Date.now() + timeoutMs;
      const within = async <T>(work: Promise<T>): Promise<T> => {
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`setup not done within ${timeoutMs} ms`)), deadline - Date.now())));
        try {
          return await Promise.race([work, late]);
        } finally {
          clearTimeout(timer);
        }
      };
      const c = this.config;
      await within(eachLimited(this.clients, SETUP_CONCURRENCY, (client) => client.login()));
      for (const room of c.rooms) {
        const answer = await within(this.clients[0]!.call('POST', '/api/rooms', { name: room }));
        if (answer.status !== 201 && answer.status !== 409) throw new Error(`create ${room}: ${answer.status}`);
      }
      await within(
        eachLimited(this.clients, SETUP_CONCURRENCY, async (client) => {
          const count = c.initialRoomsMin + Math.floor(this.random() * (c.initialRoomsMax - c.initialRoomsMin + 1));
          const rooms = [...c.rooms].sort(() => this.random() - 0.5).slice(0, count);
          for (const room of rooms) await client.join(room);
          if (client.cursors.size === 0) throw new Error(`${client.nick} could not join any room`);
        }),
      );
      return {};
    },

    /**
     * Polling starts once every client of every worker has joined, from the rooms'
     * last ids then: a client polling during the joins would be woken by each later
     * join event in its rooms, and one starting at its own join would download them
     * all (both quadratic in the room size). No message exists yet, so nothing
     * expected is skipped.
     */
    'soak-poll': async ({ lastIds }) => {
      for (const client of this.clients) {
        client.skipTo(lastIds);
        client.start();
        this.clientsReady++;
      }
      return { progress: this.progress() };
    },

    'soak-churn': async () => {
      this.startChurn();
      return {};
    },

    'soak-quiesce': async ({ timeoutMs }) => {
      this.stopChurn();
      const deadline = Date.now() + timeoutMs;
      while (this.inFlight.size > 0 && Date.now() < deadline) {
        await Promise.race([Promise.allSettled([...this.inFlight]), sleep(Math.min(500, deadline - Date.now()))]);
      }
      return { progress: this.progress() };
    },

    'soak-catch-up': async ({ lastIds, timeoutMs }) => {
      const started = Date.now();
      const behind = () => this.clients.filter((c) => !c.stopped && !c.caughtUp(lastIds)).length;
      while (behind() > 0 && Date.now() - started < timeoutMs) await sleep(50);
      return { behind: behind(), ms: Date.now() - started };
    },

    'soak-stop': async ({ timeoutMs }) => {
      this.stopChurn();
      clearInterval(this.progressTimer);
      for (const client of this.clients) client.stop();
      await Promise.race([Promise.allSettled(this.clients.map((c) => c.finished())), sleep(Math.min(STOP_WAIT_MS, timeoutMs * 0.5))]);
      this.agent.destroy();
      const errors = this.errorCount > this.errors.length ? [...this.errors, `... ${this.errorCount - this.errors.length} more`] : this.errors;
      return { progress: this.progress(), clients: this.clients.map((c) => c.record()), errors };
    },
  };

  private progress(): SoakProgress {
    return { ...this.counters, clientsReady: this.clientsReady, clientsGivenUp: this.clients.filter((c) => c.gaveUp).length, inFlightActions: this.inFlight.size };
  }

  private pick<T>(items: readonly T[]): T | undefined {
    return items.length === 0 ? undefined : items[Math.floor(this.random() * items.length)];
  }

  /** Starts `action` on a random idle client (a few tries), tracked until it ends. */
  private launch(action: (client: SoakClient) => Promise<void>): void {
    for (let tries = 0; tries < 10; tries++) {
      const client = this.pick(this.clients);
      if (client === undefined || client.busy || client.stopped) continue;
      client.busy = true;
      const running: Promise<void> = action(client)
        .catch((err: unknown) => {
          this.errorCount++;
          if (this.errors.length < MAX_ERRORS_KEPT) this.errors.push(`${client.nick}: ${(err as Error).stack ?? String(err)}`);
        })
        .finally(() => {
          client.busy = false;
          this.inFlight.delete(running);
        });
      this.inFlight.add(running);
      return;
    }
  }

  private readonly post = async (client: SoakClient): Promise<void> => {
    const room = this.pick([...client.cursors.keys()]);
    if (room !== undefined) await client.post(room, `${client.nick} says #${++this.posted}`);
  };

  private readonly abort = async (client: SoakClient): Promise<void> => {
    // Mostly a quick re-poll (a page navigation); sometimes a client offline for a few seconds.
    await client.abortPoll(this.random() < 0.8 ? this.random() * 300 : 1000 + this.random() * 3000);
  };

  private readonly joinOrLeave = async (client: SoakClient): Promise<void> => {
    const member = [...client.cursors.keys()];
    const others = this.config.rooms.filter((r) => !client.cursors.has(r));
    const join = member.length < 2 || (others.length > 0 && this.random() < 0.5);
    await client.pause();
    try {
      if (join) {
        const room = this.pick(others);
        if (room !== undefined) await client.join(room);
      } else {
        await client.leave(this.pick(member)!);
      }
    } finally {
      client.resume();
    }
  };

  private startChurn(): void {
    const due = { post: 0, abort: 0, joinLeave: 0 };
    const c = this.config;
    let last = performance.now();
    this.scheduler = setInterval(() => {
      const now = performance.now();
      const dt = (now - last) / 1000;
      last = now;
      due.post += c.postsPerS * dt;
      due.abort += c.abortsPerS * dt;
      due.joinLeave += c.joinsLeavesPerS * dt;
      // Bounded per tick: a stalled event loop must not turn into a burst of thousands.
      for (let n = 0; due.post >= 1 && n < 100; n++, due.post--) this.launch(this.post);
      for (let n = 0; due.abort >= 1 && n < 100; n++, due.abort--) this.launch(this.abort);
      for (let n = 0; due.joinLeave >= 1 && n < 100; n++, due.joinLeave--) this.launch(this.joinOrLeave);
    }, TICK_MS);
  }

  private stopChurn(): void {
    if (this.scheduler !== null) clearInterval(this.scheduler);
    this.scheduler = null;
  }
}
