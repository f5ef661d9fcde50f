/**
 * Two hosts' proxies on one Redis bus, each `proxy/main.ts` with PROXY_WORKERS=2 (docs/scaleout.md "Workers on
 * several hosts"): a real redis-server the test starts, real processes on ephemeral loopback ports, one scripted
 * app behind both; and the counting run the test/scaleout/workers-redis-*.test.ts files share.
 */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { request, type HttpResult } from './proxy-harness.js';
import { startRedis, type TestRedis } from './redis-server.js';
import { startScriptedApp, writeHold, type ScriptedApp } from './scripted-app.js';
import { startWorkers, type Cluster, type Stats, until } from './worker-cluster.js';

/** A connection ID of the required form (21 characters). */
export function cid(name: string): string {
  return name.padEnd(21, '_');
}

export function item(channel: string, body: unknown, extra: Record<string, unknown> = {}) {
  return { channel, ...extra, formats: { 'http-response': { body: JSON.stringify(body) } } };
}

export interface TwoHosts {
  hosts: [Cluster, Cluster];
  redis: TestRedis;
}

/** Two hosts (two primaries, two workers each) on a fresh Redis, in front of one scripted app. */
export async function twoHosts(t: TestContext, app: ScriptedApp): Promise<TwoHosts> {
  const redis = await startRedis(t);
  const env = { REDIS_URL: redis.url };
  // One after the other: six processes compiling at once on a shared 2-core machine start slower than two rounds of three.
  const a = await startWorkers(t, app.url, env);
  return { hosts: [a, await startWorkers(t, app.url, env)], redis };
}

/**
 * Node's round-robin hands a connection to the next worker that is free, not strictly in turn: polls are opened
 * one at a time (at most 20) until both of `host`'s workers hold some. Returns the polls, by index.
 */
export async function parkSpread(host: Cluster, url: (i: number) => string): Promise<Array<Promise<HttpResult>>> {
  const polls: Array<Promise<HttpResult>> = [];
  for (let i = 0; i < 20; i++) {
    polls.push(request(url(i)));
    let stats!: Stats;
    await until(async () => (stats = await host.stats()).parked === polls.length, `poll ${i} parked`);
    if (stats.workers.length === 2 && stats.workers.every((w) => w.parked > 0)) return polls;
  }
  throw new Error('20 polls all landed on one worker');
}

/**
 * The counting run: `CLIENTS` clients spread over both hosts (each poll on a new connection, so over both workers
 * of its host) follow an app log by cursor; `MESSAGES` publishes alternate between the two hosts' control APIs.
 * `midway` (optional) runs once, halfway. Every client must end with exactly 1..MESSAGES.
 */
export async function countingRun(t: TestContext, midway?: (setup: TwoHosts) => Promise<void>): Promise<[Cluster, Cluster]> {
  const MESSAGES = 100;
  const CLIENTS = 8;
  const log: number[] = [];
  const app = await startScriptedApp();
  t.after(() => app.close());
  // A poll behind the log gets the rest at once; a poll at its end holds with its cursor as prev-id.
  app.handle = (req, res) => {
    const after = Number(new URL(req.url, 'http://x').searchParams.get('after'));
    if (after < log.length) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ items: log.slice(after) }));
    } else {
      writeHold(res, { channel: `feed; prev-id=${after}`, timeoutS: 5, body: '{"items":[]}' });
    }
  };
  const setup = await twoHosts(t, app);
  const { hosts } = setup;
  const deadline = Date.now() + 60_000;

  const received: number[][] = Array.from({ length: CLIENTS }, () => []);
  let failedPolls = 0;
  const client = async (host: Cluster, seen: number[]): Promise<void> => {
    for (let i = 0; i < 5_000 && seen.length < MESSAGES && Date.now() < deadline; i++) {
      const cursor = seen.length === 0 ? 0 : seen[seen.length - 1]!;
      let res: HttpResult | null = null;
      try {
        res = await request(`${host.client}/poll?after=${cursor}`, { signal: AbortSignal.timeout(8000) });
      } catch {
        /* its worker died under it: poll again with the same cursor */
      }
      if (res === null || res.status !== 200) {
        failedPolls++;
        await new Promise((resolve) => setTimeout(resolve, 20)); // retry pacing, as a real client backs off
        continue;
      }
      seen.push(...(res.json() as { items: number[] }).items);
    }
  };
  const clients = received.map((seen, i) => client(hosts[i % 2]!, seen));

  const publish = async (n: number): Promise<void> => {
    log.push(n);
    const body = { items: [item('feed', { items: [n] }, { id: String(n), 'prev-id': String(n - 1) })] };
    const host = hosts[n % 2]!;
    for (let attempt = 0; attempt < 500 && Date.now() < deadline; attempt++) {
      try {
        if ((await host.call('/publish/', body)).status === 200) return;
      } catch {
        /* the control connection went to a killed worker: publish again (a repeated id is skipped) */
      }
      // A 503 (Redis away) is published again too, as the app's relay does.
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error(`publish ${n} never accepted`);
  };
  for (let n = 1; n <= MESSAGES; n++) {
    await publish(n);
    if (n === MESSAGES / 2 && midway !== undefined) await midway(setup);
  }
  await Promise.all(clients);
  for (const [i, seen] of received.entries()) {
    assert.deepEqual(seen, Array.from({ length: MESSAGES }, (_, k) => k + 1), `client ${i} (host ${i % 2}) got every message once, in order`);
  }
  t.diagnostic(`polls that failed and were repeated: ${failedPolls}`);
  return hosts;
}
