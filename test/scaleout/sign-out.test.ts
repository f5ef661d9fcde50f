/**
 * Sign-out with several proxies on the Redis bus (issue 14, item 7): the app's
 * relay appends the `/close/` for the session's connection IDs to the bus
 * stream, so a poll parked on any proxy ends, not only on the one that carried
 * the sign-out.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { waitFor } from '../helpers/chat-client.js';
import { faultDataDir, within } from '../helpers/fault-stack.js';
import { startBusApp, startRedis, startRedisProxy } from '../helpers/redis-server.js';

test('signing out through one proxy answers the session’s polls parked on the others with 401 APP_ERR_SESSION_ENDED', async (t) => {
  const redis = await startRedis(t);
  // The default hold: the polls must still be parked when the sign-out lands.
  const { url: appUrl } = await startBusApp(t, redis.url, join(faultDataDir(t), 'chat.db'), { holdTimeoutS: 55 });
  const proxies = [await startRedisProxy(t, appUrl, redis.url), await startRedisProxy(t, appUrl, redis.url)];

  const login = await fetch(`${proxies[0]!.base}/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"nick":"ada"}' });
  const cookie = login.headers.getSetCookie()[0]!.split(';')[0]!;
  const lobby = (await (await fetch(`${proxies[0]!.base}/api/rooms/lobby/messages?limit=1`, { headers: { cookie } })).json()) as { cursor: number };
  // One tab parked on each proxy.
  const polls = proxies.map((p) => fetch(`${p.base}/api/poll?rooms=lobby:${lobby.cursor}`, { headers: { cookie } }));
  for (const p of proxies) await waitFor(async () => (await p.control.stats()).parked === 1, 'a poll parked on each proxy');

  const out = await fetch(`${proxies[0]!.base}/api/session`, { method: 'DELETE', headers: { cookie } });
  assert.equal(out.status, 204);
  for (const answer of await within(Promise.all(polls), 5000, 'both polls to end')) {
    assert.equal(answer.status, 401);
    assert.equal(((await answer.json()) as { code: string }).code, 'APP_ERR_SESSION_ENDED');
  }
  for (const p of proxies) assert.equal((await p.control.stats()).parked, 0);
});
