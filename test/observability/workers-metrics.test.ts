/**
 * `/metrics` of a proxy of two workers (PROXY_WORKERS=2): the primary sums every worker's registry
 * (AggregatorRegistry), and each worker's histograms fold their batched counts in when read
 * (proxy/control/batched-histogram.ts). Real processes, real sockets on ephemeral ports.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parsePromText, sampleValue } from '../../bench/lab/soak/prom-text.js';
import { request, TEST_CONTROL_SECRET, type HttpResult } from '../helpers/proxy-harness.js';
import { startScriptedApp, writeHold } from '../helpers/scripted-app.js';
import { startWorkers, until, type Cluster } from '../helpers/worker-cluster.js';

async function metrics(proxy: Cluster): Promise<ReturnType<typeof parsePromText>> {
  const res = await request(`${proxy.control}/metrics`, { headers: { authorization: `Bearer ${TEST_CONTROL_SECRET}` }, signal: AbortSignal.timeout(5000) });
  assert.equal(res.status, 200);
  return parsePromText(res.text);
}

test('with two workers, /metrics counts every delivery of both in the hold and publish-to-write histograms', { timeout: 90_000 }, async (t) => {
  const app = await startScriptedApp();
  t.after(() => app.close());
  app.handle = (_req, res) => writeHold(res, { channel: 'room:w', timeoutS: 30 });
  const proxy = await startWorkers(t, app.url);

  // Polls opened one at a time until both workers hold some (node:cluster's round-robin is not strict).
  const polls: Array<Promise<HttpResult>> = [];
  for (let i = 0; i < 20; i++) {
    polls.push(request(`${proxy.client}/poll`));
    const n = polls.length;
    await until(async () => (await proxy.stats()).parked === n, `poll ${i} parked`);
    const stats = await proxy.stats();
    if (polls.length >= 4 && stats.workers.length === 2 && stats.workers.every((w) => w.parked > 0)) break;
  }
  const stats = await proxy.stats();
  assert.ok(stats.workers.every((w) => w.parked > 0), 'polls parked on both workers');

  assert.equal((await proxy.call('/publish/', { items: [{ channel: 'room:w', formats: { 'http-response': { body: 'hi' } } }] })).status, 200);
  for (const res of await Promise.all(polls)) assert.equal(res.text, 'hi');
  await until(async () => (await proxy.stats()).deliveries === polls.length, 'deliveries counted');

  const samples = await metrics(proxy);
  assert.equal(sampleValue(samples, 'comet_proxy_deliveries_total'), polls.length);
  assert.equal(sampleValue(samples, 'comet_proxy_hold_duration_seconds_count', { outcome: 'delivered' }), polls.length);
  assert.equal(sampleValue(samples, 'comet_proxy_hold_duration_seconds_bucket', { outcome: 'delivered', le: '+Inf' }), polls.length);
  assert.equal(sampleValue(samples, 'comet_proxy_publish_to_write_seconds_count', { kind: 'publish' }), polls.length);
  assert.ok((sampleValue(samples, 'comet_proxy_hold_duration_seconds_sum', { outcome: 'delivered' }) ?? 0) > 0);
});
