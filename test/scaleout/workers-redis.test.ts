/**
 * Two hosts' proxies with 2 workers each on one real Redis (test/helpers/worker-redis-hosts.ts): a push or close
 * made through one host's control API reaches connection IDs parked on both workers of the other host, queued
 * pushes are taken once and in order from either host, and `/stats` is summed per host.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { request } from '../helpers/proxy-harness.js';
import { startScriptedApp, writeHold } from '../helpers/scripted-app.js';
import { cid, parkSpread, twoHosts } from '../helpers/worker-redis-hosts.js';

describe('two hosts, each PROXY_WORKERS=2, on one Redis bus: pushes and closes', { timeout: 120_000 }, () => {
  test('a push through one host reaches connection IDs parked on both workers of the other; queued pushes are taken once, in order, from either host', async (t) => {
    const app = await startScriptedApp();
    t.after(() => app.close());
    app.handle = (req, res) => writeHold(res, { connectionId: new URL(req.url, 'http://x').searchParams.get('cid')!, timeoutS: 30 });
    const {
      hosts: [a, b],
    } = await twoHosts(t, app);

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
    const {
      hosts: [a, b],
    } = await twoHosts(t, app);
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
