/**
 * The races of test/helpers/take-races.ts on two proxies sharing one Redis (docs/scaleout.md "An item out"):
 * each client's polls alternate between the proxies, and the pushes and publishes go to either. Every item once
 * and in order, and one resync per overflow.
 *
 * On Redis the races themselves are rarely hit (a push enqueues its items one script at a time, so the publish
 * sent with it usually lands first; the same build passed here before the items-out fix): the cluster's test
 * (test/proxy/workers-take-order.test.ts) is the one that fails without it. What this file checks is the out's
 * bookkeeping through a live bus: an item whose out were never settled (`delivered` not run) holds its ID for
 * a minute, and the first test then fails on its deadline (it did with `delivered` disabled).
 */
import { test, type TestContext } from 'node:test';
import { TEST_CONTROL_SECRET } from '../helpers/proxy-harness.js';
import { startRedis, startRedisProxy } from '../helpers/redis-server.js';
import { startScriptedApp } from '../helpers/scripted-app.js';
import { everyOverflowTold, holdOnTicks, itemsInOrder, type RaceTarget } from '../helpers/take-races.js';

async function twoProxies(t: TestContext, overrides: Record<string, unknown> = {}): Promise<RaceTarget> {
  const redis = await startRedis(t);
  const app = await startScriptedApp();
  t.after(() => app.close());
  app.handle = holdOnTicks;
  const proxies = [await startRedisProxy(t, app.url, redis.url, overrides), await startRedisProxy(t, app.url, redis.url, overrides)];
  let calls = 0;
  return {
    pollUrl: (id, n) => `${proxies[n % 2]!.base}/poll?cid=${id}`,
    async call(path, body) {
      const res = await fetch(`${proxies[calls++ % 2]!.controlUrl}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TEST_CONTROL_SECRET}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      return { status: res.status, text: await res.text() };
    },
  };
}

test('two proxies on one Redis: every pushed item once and in order, polls alternating between them', { timeout: 90_000 }, async (t) => {
  await itemsInOrder(t, await twoProxies(t));
});

test('two proxies on one Redis: a resync taken for a poll a publish answered meanwhile is set again', { timeout: 70_000 }, async (t) => {
  await everyOverflowTold(await twoProxies(t, { queueMaxItems: 2 }));
});
