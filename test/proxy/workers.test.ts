/**
 * `proxy/main.ts` with PROXY_WORKERS=2 (docs/scaleout.md "Workers"): real processes, real sockets on ephemeral
 * ports, a scripted app. Connections to the client port are spread over the workers by node:cluster, so the
 * tests park enough polls to have some on each worker (checked through `/stats` `workers`, by pid) and then
 * show that publishes, pushes and closes reach both, that stats are summed, that a SIGKILLed worker loses no
 * message, and that SIGTERM answers every parked request and exits 0.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { request, TEST_CONTROL_SECRET, TEST_SECRET, type HttpResult } from '../helpers/proxy-harness.js';
import { startScriptedApp, writeHold, type ScriptedApp } from '../helpers/scripted-app.js';
import { clusterTestTimeout, PROXY_MAIN as MAIN, startWorkers, STARTUP_STEP_MS, until, type Cluster, type Stats } from '../helpers/worker-cluster.js';

/** Parked on both workers, `n` in all. */
async function parkedOnBoth(proxy: Cluster, n: number): Promise<Stats> {
  let stats!: Stats;
  await until(async () => {
    stats = await proxy.stats();
    return stats.parked === n && stats.workers.length === 2 && stats.workers.every((w) => w.parked > 0);
  }, `${n} polls parked, some on each worker`);
  return stats;
}

/**
 * Node's round-robin hands a connection to the next worker that is free, not strictly in turn: polls are opened
 * one at a time (at most 20) until both workers hold some. Returns the polls, by index.
 */
async function parkSpread(proxy: Cluster, url: (i: number) => string): Promise<Array<Promise<HttpResult>>> {
  const polls: Array<Promise<HttpResult>> = [];
  for (let i = 0; i < 20; i++) {
    polls.push(request(url(i)));
    let stats!: Stats;
    await until(async () => (stats = await proxy.stats()).parked === polls.length, `poll ${i} parked`);
    if (stats.workers.length === 2 && stats.workers.every((w) => w.parked > 0)) return polls;
  }
  throw new Error('20 polls all landed on one worker');
}

/** A connection ID of the required form (21 characters). */
function cid(name: string): string {
  return name.padEnd(21, '_');
}

function item(channel: string, body: unknown, extra: Record<string, unknown> = {}) {
  return { channel, ...extra, formats: { 'http-response': { body: JSON.stringify(body) } } };
}

/** Each test's own deadline: its cluster's start plus what it does (no suite-wide timeout: one slow start must not cancel the rest). */
const ONE_CLUSTER = { timeout: clusterTestTimeout(30_000) };

describe('proxy/main.ts with PROXY_WORKERS=2', () => {
  let app: ScriptedApp;

  test('a publish reaches polls parked on both workers, and /stats sums the workers', ONE_CLUSTER, async (t) => {
    app = await startScriptedApp();
    t.after(() => app.close());
    app.handle = (_req, res) => writeHold(res, { channel: 'room:a', timeoutS: 30 });
    const proxy = await startWorkers(t, app.url);

    const polls = Array.from({ length: 6 }, () => request(`${proxy.client}/poll`));
    const before = await parkedOnBoth(proxy, 6);
    assert.equal(new Set(before.workers.map((w) => w.pid)).size, 2);
    assert.equal(before.holds, before.workers.reduce((n, w) => n + w.holds, 0));

    const published = await proxy.call('/publish/', { items: [item('room:a', { hello: 'both' })] });
    assert.equal(published.status, 200);
    for (const res of await Promise.all(polls)) {
      assert.equal(res.status, 200);
      assert.deepEqual(res.json(), { hello: 'both' });
    }
    await until(async () => {
      const after = await proxy.stats();
      return after.deliveries === 6 && after.publishes === 2 && after.workers.every((w) => w.deliveries > 0) && after.parked === 0;
    }, 'deliveries summed over both workers (publishes counted once per worker)');
  });

  test('a push reaches a poll parked on the other worker; a queued push waits for a poll on either worker', ONE_CLUSTER, async (t) => {
    app = await startScriptedApp();
    t.after(() => app.close());
    app.handle = (req, res) => {
      const cid = new URL(req.url, 'http://x').searchParams.get('cid')!;
      writeHold(res, { connectionId: cid, timeoutS: 30 });
    };
    const proxy = await startWorkers(t, app.url);

    // IDs parked on both workers: one push call, received by one worker, names them all.
    const polls = await parkSpread(proxy, (i) => `${proxy.client}/poll?cid=${cid(`c-${i}`)}`);
    const pushed = await proxy.call('/push/', {
      items: polls.map((_, i) => ({ 'connection-id': cid(`c-${i}`), formats: { 'http-response': { body: `to ${i}` } } })),
    });
    assert.equal(pushed.status, 200);
    for (const [i, poll] of polls.entries()) assert.equal((await poll).text, `to ${i}`);

    // Queued (nobody parked under c-q): each poll, on whichever worker, takes the next item once, in order.
    const queued = await proxy.call('/push/', {
      items: [1, 2, 3, 4].map((n) => ({ 'connection-id': cid('c-q'), formats: { 'http-response': { body: `q${n}` } } })),
    });
    assert.deepEqual(queued.json(), { delivered: 0, queued: 4, dropped: 0, reasked: 0 });
    const got: string[] = [];
    for (let i = 0; i < 4; i++) got.push((await request(`${proxy.client}/poll?cid=${cid('c-q')}`)).text);
    assert.deepEqual(got, ['q1', 'q2', 'q3', 'q4']);
    const stats = await proxy.stats();
    assert.equal(stats.queuedItems, 0);
    assert.equal(stats.pushes, polls.length + 4);
  });

  test('a close answers the poll parked on either worker and its tombstone refuses polls on both', ONE_CLUSTER, async (t) => {
    app = await startScriptedApp();
    t.after(() => app.close());
    app.handle = (req, res) => {
      const cid = new URL(req.url, 'http://x').searchParams.get('cid')!;
      writeHold(res, { connectionId: cid, timeoutS: 30 });
    };
    const proxy = await startWorkers(t, app.url);
    const polls = await parkSpread(proxy, (i) => `${proxy.client}/poll?cid=${cid(`x-${i}`)}`);
    const closed = await proxy.call('/close/', { items: polls.map((_, i) => ({ 'connection-id': cid(`x-${i}`) })) });
    assert.equal(closed.status, 200);
    for (const poll of polls) assert.equal((await poll).status, 410);
    // Concurrent new connections are spread over the workers: each refuses the closed ID.
    const again = await Promise.all([0, 1, 2, 3, 4, 5].map(() => request(`${proxy.client}/poll?cid=${cid('x-0')}`)));
    for (const res of again) {
      assert.equal(res.status, 410);
      assert.equal((res.json() as { code: string }).code, 'PROXY_ERR_CONNECTION_CLOSED');
    }
  });

  test('a worker SIGKILLed mid-traffic is replaced and every client still gets every message once, in order', { timeout: clusterTestTimeout(40_000 + STARTUP_STEP_MS + 10_000) }, async (t) => {
    const MESSAGES = 120;
    const CLIENTS = 6;
    const log: number[] = [];
    app = await startScriptedApp();
    t.after(() => app.close());
    // The app's log: a poll behind it gets the rest at once, a poll at its end holds with its cursor as prev-id.
    app.handle = (req, res) => {
      const after = Number(new URL(req.url, 'http://x').searchParams.get('after'));
      if (after < log.length) {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ items: log.slice(after) }));
      } else {
        writeHold(res, { channel: `feed; prev-id=${after}`, timeoutS: 5, body: '{"items":[]}' });
      }
    };
    const proxy = await startWorkers(t, app.url);
    // The clients' deadline covers the replacement worker's start (clients of the dead worker poll the live one meanwhile).
    const deadline = Date.now() + 40_000;

    const received: number[][] = Array.from({ length: CLIENTS }, () => []);
    let failedPolls = 0;
    const client = async (seen: number[]): Promise<void> => {
      // Each poll on a new connection, so polls land on both workers; bounded by count and time.
      for (let i = 0; i < 5_000 && seen.length < MESSAGES && Date.now() < deadline; i++) {
        const cursor = seen.length === 0 ? 0 : seen[seen.length - 1]!;
        let res: HttpResult;
        try {
          res = await request(`${proxy.client}/poll?after=${cursor}`, { signal: AbortSignal.timeout(8000) });
        } catch {
          failedPolls++; // its worker died under it: poll again with the same cursor
          await new Promise((resolve) => setTimeout(resolve, 20));
          continue;
        }
        if (res.status !== 200) {
          failedPolls++;
          await new Promise((resolve) => setTimeout(resolve, 20));
          continue;
        }
        seen.push(...(res.json() as { items: number[] }).items);
      }
    };
    const clients = received.map((seen) => client(seen));

    const publish = async (n: number): Promise<void> => {
      log.push(n);
      const body = { items: [item('feed', { items: [n] }, { id: String(n), 'prev-id': String(n - 1) })] };
      for (let attempt = 0; attempt < 50; attempt++) {
        try {
          if ((await proxy.call('/publish/', body)).status === 200) return;
        } catch {
          /* the control connection went to the killed worker: publish again (a repeated id is skipped) */
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      throw new Error(`publish ${n} never accepted`);
    };
    let victim = 0;
    for (let n = 1; n <= MESSAGES; n++) {
      await publish(n);
      if (n === MESSAGES / 2) {
        const stats = await proxy.stats();
        victim = stats.workers[0]!.pid;
        process.kill(victim, 'SIGKILL');
      }
    }
    await Promise.all(clients);
    for (const [i, seen] of received.entries()) {
      assert.deepEqual(seen, Array.from({ length: MESSAGES }, (_, k) => k + 1), `client ${i} got every message once, in order`);
    }
    await until(async () => {
      const stats = await proxy.stats();
      return stats.workers.length === 2 && !stats.workers.some((w) => w.pid === victim);
    }, 'a replacement worker', STARTUP_STEP_MS);
    t.diagnostic(`polls that failed and were repeated: ${failedPolls}`);
  });

  test('SIGTERM answers the polls parked on every worker with their timeout response and exits 0', ONE_CLUSTER, async (t) => {
    app = await startScriptedApp();
    t.after(() => app.close());
    app.handle = (_req, res) => writeHold(res, { channel: 'room:z', timeoutS: 30, body: '{"timeout":true}' });
    const proxy = await startWorkers(t, app.url);
    const polls = Array.from({ length: 4 }, () => request(`${proxy.client}/poll`));
    await parkedOnBoth(proxy, 4);
    proxy.child.kill('SIGTERM');
    for (const res of await Promise.all(polls)) {
      assert.equal(res.status, 200);
      assert.equal(res.text, '{"timeout":true}');
      assert.equal(res.headers.connection, 'close');
    }
    assert.equal(await proxy.exited, 0);
  });

  test('if the primary dies, every worker exits and its parked polls end (nothing is left running)', ONE_CLUSTER, async (t) => {
    app = await startScriptedApp();
    t.after(() => app.close());
    app.handle = (_req, res) => writeHold(res, { channel: 'room:p', timeoutS: 30, body: '{"timeout":true}' });
    const proxy = await startWorkers(t, app.url);
    const polls = await parkSpread(proxy, () => `${proxy.client}/poll`);
    const pids = (await proxy.stats()).workers.map((w) => w.pid);
    proxy.child.kill('SIGKILL');
    // Node's cluster exits a worker whose primary is gone at once: the polls end without an answer.
    const ended = await Promise.allSettled(polls);
    assert.equal(ended.length, polls.length);
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    await until(() => pids.every((pid) => !alive(pid)), 'both workers gone');
  });

  test('a cluster start that makes no progress fails after one step, naming what it still waited for', { timeout: 20_000 }, async (t) => {
    // Every process of the cluster hangs before it runs anything (a preload that never settles): no worker ever listens.
    const hang = '--import=data:text/javascript,setInterval(()=>{},1e3);await(new(Promise)(()=>{}))'; // NODE_OPTIONS splits at spaces
    const started = Date.now();
    await assert.rejects(startWorkers(t, 'http://127.0.0.1:9', { NODE_OPTIONS: hang }, { startupStepMs: 2000 }), (err: Error) => {
      assert.match(err.message, /no progress for 2000 ms, waiting for 0 of 2 workers listening, then the primary's "listening" line/);
      return true;
    });
    assert.ok(Date.now() - started < 10_000, `failed after ${Date.now() - started} ms, not at a fixed 45 s`);
  });

  test('a bad PROXY_WORKERS exits 2 naming it', { timeout: STARTUP_STEP_MS }, async (t) => {
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN], {
      env: { PATH: process.env.PATH, GRIP_SECRET: TEST_SECRET, CONTROL_SECRET: TEST_CONTROL_SECRET, PROXY_WORKERS: '0', PROXY_PORT: '0', CONTROL_PORT: '0' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    t.after(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const [code] = (await once(child, 'exit')) as [number];
    assert.equal(code, 2);
    assert.match(stderr, /workers \(PROXY_WORKERS\) must be an integer 1-256 or "auto", got 0/);
  });
});
