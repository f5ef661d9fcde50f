/**
 * Sign-out with several proxies on the Redis bus (issue 14, item 7): the app's
 * relay appends the `/close/` for the session's connection IDs to the bus
 * stream, so a poll parked on any proxy ends, not only on the one that carried
 * the sign-out.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { createChatServer } from '../../server/chat-server.js';
import { waitFor } from '../helpers/chat-client.js';
import { faultDataDir, TEST_LEASE_KEY, TEST_SECRET, within } from '../helpers/fault-stack.js';
import { startRedis, startRedisProxy } from '../helpers/redis-server.js';

test('signing out through one proxy answers the session’s polls parked on the others with 401 APP_ERR_SESSION_ENDED', async (t) => {
  const redis = await startRedis(t);
  const app = createChatServer({
    secret: TEST_SECRET,
    leaseKey: TEST_LEASE_KEY,
    host: '127.0.0.1',
    port: 0,
    dbPath: join(faultDataDir(t), 'chat.db'),
    redisUrl: redis.url,
  });
  t.after(() => app.close());
  const appUrl = `http://127.0.0.1:${await app.listen()}`;
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
