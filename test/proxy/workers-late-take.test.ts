/**
 * proxy/cluster/worker-bus.ts: a take the cluster primary answers after the worker's request timeout (the primary
 * was slow, not gone) has still taken its item out of the queue. The worker parks the poll without it when the
 * timeout fires; the late answer must put the item back, so the parked poll gets it, instead of being dropped.
 * The primary is made slow for real: SIGSTOP past the worker's timeout (its IPC requests wait `requestTimeoutMs`,
 * 3 s here), then SIGCONT.
 */
import assert from 'node:assert/strict';
import { Agent, get } from 'node:http';
import { test } from 'node:test';
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

test('an item taken by a take that timed out goes back to its queue and reaches the poll parked meanwhile', { timeout: clusterTestTimeout(30_000) }, async (t) => {
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
  const proxy = await startWorkers(t, app.url, { REQUEST_TIMEOUT_S: '3', HEADERS_TIMEOUT_S: '2' });
  const primaryPid = proxy.child.pid!;
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());

  // The one socket is accepted (by the primary, handed to a worker) before the primary stops: the poll below
  // reaches its worker without the primary.
  assert.equal((await poll(agent, `${proxy.client}/warm`)).text, 'warm');
  const pushed = await proxy.call('/push/', { items: [{ 'connection-id': ID, formats: { 'http-response': { body: 'the item' } } }] });
  assert.equal(pushed.status, 200, pushed.text);
  assert.equal((await proxy.stats()).queuedItems, 1, 'queued in the primary: nothing is parked under the ID');

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

  // The primary now runs the take (the item leaves the queue) and answers late; the worker puts the item back.
  const res = await Promise.race([
    answer,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the parked poll never got the item')), 15_000).unref()),
  ]);
  assert.deepEqual(res, { status: 200, text: 'the item' });
  assert.ok(proxy.output().some((line) => line.includes('a take answered after its timeout carried an item: requeued')));
  assert.equal((await proxy.stats()).queuedItems, 0);
});
