/**
 * Two hosts' proxies on one Redis bus, each `proxy/main.ts` with PROXY_WORKERS=2 (docs/scaleout.md "Workers on
 * several hosts"): a real redis-server the test starts, real processes, real sockets on ephemeral loopback
 * ports, one scripted app behind both. Each host's primary is its one member of the bus and relays the stream
 * to its workers; these tests show that every message published through either host reaches every client on
 * every worker of both hosts once and in order (also while a worker is SIGKILLed), that a push or close made
 * through one host reaches a connection ID parked on the other host's workers, and that `/stats` is summed per host.
 */
import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import { request, type HttpResult } from '../helpers/proxy-harness.js';
import { startRedis } from '../helpers/redis-server.js';
import { startScriptedApp, writeHold, type ScriptedApp } from '../helpers/scripted-app.js';
import { startWorkers, until, type Cluster, type Stats } from '../helpers/worker-cluster.js';

/** A connection ID of the required form (21 characters). */
function cid(name: string): string {
  return name.padEnd(21, '_');
}

function item(channel: string, body: unknown, extra: Record<string, unknown> = {}) {
  return { channel, ...extra, formats: { 'http-response': { body: JSON.stringify(body) } } };
}

/** Two hosts (two primaries, two workers each) on a fresh Redis, in front of one scripted app. */
async function twoHosts(t: TestContext, app: ScriptedApp): Promise<[Cluster, Cluster]> {
  const redis = await startRedis(t);
  const env = { REDIS_URL: redis.url };
  // One after the other: six processes compiling at once on a shared 2-core machine start slower than two rounds of three.
  const a = await startWorkers(t, app.url, env);
  return [a, await startWorkers(t, app.url, env)];
}

/**
 * Node's round-robin hands a connection to the next worker that is free, not strictly in turn: polls are opened
 * one at a time (at most 20) until both of `host`'s workers hold some. Returns the polls, by index.
 */
async function parkSpread(host: Cluster, url: (i: number) => string): Promise<Array<Promise<HttpResult>>> {
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
 * `kill` (optional) runs once, halfway. Every client must end with exactly 1..MESSAGES.
 */
async function countingRun(t: TestContext, kill?: (hosts: [Cluster, Cluster]) => Promise<void>): Promise<[Cluster, Cluster]> {
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
  const hosts = await twoHosts(t, app);
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
    for (let attempt = 0; attempt < 50; attempt++) {
      try {
        if ((await host.call('/publish/', body)).status === 200) return;
      } catch {
        /* the control connection went to a killed worker: publish again (a repeated id is skipped) */
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error(`publish ${n} never accepted`);
  };
  for (let n = 1; n <= MESSAGES; n++) {
    await publish(n);
    if (n === MESSAGES / 2 && kill !== undefined) await kill(hosts);
  }
  await Promise.all(clients);
  for (const [i, seen] of received.entries()) {
    assert.deepEqual(seen, Array.from({ length: MESSAGES }, (_, k) => k + 1), `client ${i} (host ${i % 2}) got every message once, in order`);
  }
  t.diagnostic(`polls that failed and were repeated: ${failedPolls}`);
  return hosts;
}

describe('two hosts, each PROXY_WORKERS=2, on one Redis bus: counting', { timeout: 120_000 }, () => {
  test('publishes through either host reach every client on every worker of both hosts once and in order', async (t) => {
    const hosts = await countingRun(t);
    // Every worker of both hosts answered polls: the stream reached all four, not one per host.
    for (const [h, host] of hosts.entries()) {
      const stats = await host.stats();
      assert.equal(stats.workers.length, 2, `host ${h} has 2 workers`);
      for (const w of stats.workers) assert.ok(w.deliveries > 0, `host ${h} worker ${w.pid} delivered (${JSON.stringify(stats.workers)})`);
      assert.equal(stats.deliveries, stats.workers.reduce((n, w) => n + w.deliveries, 0), `host ${h} sums its workers`);
    }
  });

  test('a worker SIGKILLed mid-traffic on one host is replaced and every client on both hosts still gets every message once, in order', async (t) => {
    let victim = 0;
    const hosts = await countingRun(t, async ([a]) => {
      victim = (await a.stats()).workers[0]!.pid;
      process.kill(victim, 'SIGKILL');
    });
    await until(async () => {
      const stats = await hosts[0].stats();
      return stats.workers.length === 2 && !stats.workers.some((w) => w.pid === victim);
    }, 'a replacement worker on the host that lost one');
  });

});

describe('two hosts, each PROXY_WORKERS=2, on one Redis bus: pushes and closes', { timeout: 120_000 }, () => {
  test('a push through one host reaches connection IDs parked on both workers of the other; queued pushes are taken once, in order, from either host', async (t) => {
    const app = await startScriptedApp();
    t.after(() => app.close());
    app.handle = (req, res) => writeHold(res, { connectionId: new URL(req.url, 'http://x').searchParams.get('cid')!, timeoutS: 30 });
    const [a, b] = await twoHosts(t, app);

    const polls = await parkSpread(b, (i) => `${b.client}/poll?cid=${cid(`c-${i}`)}`);
    const pushed = await a.call('/push/', {
      items: polls.map((_, i) => ({ 'connection-id': cid(`c-${i}`), formats: { 'http-response': { body: `to ${i}` } } })),
    });
    assert.equal(pushed.status, 200);
    for (const [i, poll] of polls.entries()) assert.equal((await poll).text, `to ${i}`);

    // Nobody parked under c-q: polls alternating between the hosts (and so over their workers) take the items in order.
    const queued = await b.call('/push/', {
      items: [1, 2, 3, 4, 5, 6].map((n) => ({ 'connection-id': cid('c-q'), formats: { 'http-response': { body: `q${n}` } } })),
    });
    assert.deepEqual(queued.json(), { delivered: 0, queued: 6, dropped: 0, reasked: 0 });
    const got: string[] = [];
    for (let i = 0; i < 6; i++) got.push((await request(`${[a, b][i % 2]!.client}/poll?cid=${cid('c-q')}`)).text);
    assert.deepEqual(got, ['q1', 'q2', 'q3', 'q4', 'q5', 'q6']);

    // /stats per host, summed over its workers: pushes where the call came in, deliveries where the client parked.
    const [sa, sb] = await Promise.all([a.stats(), b.stats()]);
    assert.equal(sa.pushes, polls.length);
    assert.equal(sb.pushes, 6);
    assert.equal(sb.deliveries, sb.workers.reduce((n, w) => n + w.deliveries, 0));
    assert.ok(sb.workers.every((w) => w.deliveries > 0), 'both of host b workers delivered a push made through host a');
    assert.equal(sa.deliveries + sb.deliveries, polls.length + 6);
  });

  test('a close through one host answers the polls parked on the other host and its tombstone refuses polls on every worker of both', async (t) => {
    const app = await startScriptedApp();
    t.after(() => app.close());
    app.handle = (req, res) => writeHold(res, { connectionId: new URL(req.url, 'http://x').searchParams.get('cid')!, timeoutS: 30 });
    const [a, b] = await twoHosts(t, app);
    const polls = await parkSpread(b, (i) => `${b.client}/poll?cid=${cid(`x-${i}`)}`);
    const closed = await a.call('/close/', { items: polls.map((_, i) => ({ 'connection-id': cid(`x-${i}`) })) });
    assert.equal(closed.status, 200);
    for (const poll of polls) assert.equal((await poll).status, 410);
    // Concurrent new connections to both hosts are spread over their workers: each refuses the closed ID.
    const again = await Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map((i) => request(`${[a, b][i % 2]!.client}/poll?cid=${cid('x-0')}`)));
    for (const res of again) {
      assert.equal(res.status, 410);
      assert.equal((res.json() as { code: string }).code, 'PROXY_ERR_CONNECTION_CLOSED');
    }
  });
});
