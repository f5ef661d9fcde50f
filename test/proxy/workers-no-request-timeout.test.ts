/**
 * REQUEST_TIMEOUT_S=0 (no limit on client requests) with workers: the workers' waits for the primary still have
 * one (messages.ts `ipcTimeoutMs`). Each worker used the client request timeout as its IPC timeout, so 0 made
 * every request to the primary time out at once: the workers' first one (`hello`) failed and the proxy never started.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request } from '../helpers/proxy-harness.js';
import { startScriptedApp, writeHold } from '../helpers/scripted-app.js';
import { clusterTestTimeout, startWorkers } from '../helpers/worker-cluster.js';

test('with REQUEST_TIMEOUT_S=0, pushes, takes and stats through two workers are answered', { timeout: clusterTestTimeout(20_000) }, async (t) => {
  const app = await startScriptedApp();
  t.after(() => app.close());
  app.handle = (_req, res) => writeHold(res, { connectionId: 'no_timeout_id_0000000', timeoutS: 10 });
  const proxy = await startWorkers(t, app.url, { REQUEST_TIMEOUT_S: '0' });
  for (let n = 1; n <= 4; n++) {
    const pushed = await proxy.call('/push/', { items: [{ 'connection-id': 'no_timeout_id_0000000', formats: { 'http-response': { body: `item ${n}` } } }] });
    assert.equal(pushed.status, 200, pushed.text);
  }
  // Four polls on new connections: both workers take.
  for (let n = 1; n <= 4; n++) {
    const res = await request(`${proxy.client}/poll`, { signal: AbortSignal.timeout(8_000) });
    assert.equal(res.status, 200);
    assert.equal(res.text, `item ${n}`);
  }
  const stats = await proxy.stats();
  assert.equal(stats.workers.length, 2, 'both workers answered the gather');
  assert.equal(stats.queuedItems, 0);
});
