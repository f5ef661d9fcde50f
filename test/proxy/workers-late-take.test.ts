/**
 * proxy/cluster/worker-bus.ts: a take the cluster primary answers after the worker's request timeout (the primary
 * was slow, not gone) has still taken its item out of the queue. The worker parks the poll without it when the
 * timeout fires; the late answer must put the item back, so the parked poll gets it, instead of being dropped.
 * A late answer that carried the ID's pending resync (the take cleared it) must set it again, so the poll parked
 * meanwhile still answers it.
 * The primary is made slow for real: SIGSTOP past the worker's timeout (its IPC requests wait `requestTimeoutMs`,
 * 3 s here), then SIGCONT.
 */
import assert from 'node:assert/strict';
import { Agent, get } from 'node:http';
import { test, type TestContext } from 'node:test';
import { startScriptedApp, writeHold } from '../helpers/scripted-app.js';
import { clusterTestTimeout, startWorkers, until } from '../helpers/worker-cluster.js';

const ID = 'late_take_id_00000000';

/** GET on the agent's one kept-alive socket: status and body. */
function poll(agent: Agent, url: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    get(url, { agent }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', reject);
    }).on('error', reject);
  });
}

/**
 * A cluster whose app holds every poll under ID; `queue` fills the ID's queue in the primary; then one poll's take
 * meets a stopped primary and times out, the primary resumes and answers it late. Answers the poll's answer and
 * the cluster's output.
 */
async function lateTake(t: TestContext, queue: (call: (path: string, body: unknown) => Promise<{ status: number; text: string }>) => Promise<void>) {
  const app = await startScriptedApp();
  t.after(() => app.close());
  app.handle = (req, res) => {
    if (req.url.startsWith('/warm')) {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('warm');
      return;
    }
    writeHold(res, { connectionId: ID, timeoutS: 60 });
  };
  const proxy = await startWorkers(t, app.url, { REQUEST_TIMEOUT_S: '3', HEADERS_TIMEOUT_S: '2', QUEUE_MAX_ITEMS: '2' });
  const primaryPid = proxy.child.pid!;
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());

  // The one socket is accepted (by the primary, handed to a worker) before the primary stops: the poll below
  // reaches its worker without the primary.
  assert.equal((await poll(agent, `${proxy.client}/warm`)).text, 'warm');
  await queue((path, body) => proxy.call(path, body));

  process.kill(primaryPid, 'SIGSTOP');
  let stopped = true;
  t.after(() => {
    if (stopped) process.kill(primaryPid, 'SIGCONT');
  });
  const answer = poll(agent, `${proxy.client}/poll`);
  // The worker's take waits on the stopped primary until its 3 s timeout, then the poll parks without it.
  await until(() => proxy.output().some((line) => line.includes('parking without it')), 'the take timed out and the poll parked', 15_000);
  process.kill(primaryPid, 'SIGCONT');
  stopped = false;

  // The primary now runs the take and answers late; the worker hands back what it took.
  const res = await Promise.race([
    answer,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the parked poll never got an answer')), 15_000).unref()),
  ]);
  return { res, proxy };
}

const push = (body: string) => ({ 'connection-id': ID, formats: { 'http-response': { body } } });

test('an item taken by a take that timed out goes back to its queue and reaches the poll parked meanwhile', { timeout: clusterTestTimeout(30_000) }, async (t) => {
  const { res, proxy } = await lateTake(t, async (call) => {
    const pushed = await call('/push/', { items: [push('the item')] });
    assert.equal(pushed.status, 200, pushed.text);
  });
  assert.deepEqual(res, { status: 200, text: 'the item' });
  assert.ok(proxy.output().some((line) => line.includes('a take answered after its timeout carried an item: requeued')));
  assert.equal((await proxy.stats()).queuedItems, 0);
});

test('a resync taken by a take that timed out is set again and answers the poll parked meanwhile', { timeout: clusterTestTimeout(30_000) }, async (t) => {
  const { res, proxy } = await lateTake(t, async (call) => {
    // Three items into a queue of two: it overflows, and a resync is pending for the ID.
    const pushed = await call('/push/', { items: [push('1'), push('2'), push('3')] });
    assert.equal(pushed.status, 200, pushed.text);
  });
  assert.equal(res.status, 200);
  assert.equal((JSON.parse(res.text) as { resync?: { reason?: string } }).resync?.reason, 'queue-overflow');
  assert.ok(proxy.output().some((line) => line.includes('a take answered after its timeout carried a resync: set again')));
});
