import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startApp } from '../helpers/app-harness.js';
import { resolveAppOptions } from '../../server/options.js';
import { appOptionsFromEnv } from '../../server/config.js';

const LIMITS = { messageMaxChars: 2000, nickMaxChars: 32, roomNameMaxChars: 32 };

test('GET /api/config tells clients the shard domain and count, without a session', async (t) => {
  const h = await startApp(t, { options: { baseDomain: 'chat.test', shardCount: 8 } });
  const res = await h.anonymous().get('/api/config').expect(200);
  assert.deepEqual(res.body, { baseDomain: 'chat.test', shards: 8, limits: LIMITS });
});

test('without a base domain GET /api/config announces no shards', async (t) => {
  const h = await startApp(t);
  const res = await h.anonymous().get('/api/config').expect(200);
  assert.deepEqual(res.body, { baseDomain: null, shards: 0, limits: LIMITS });
});

test('GET /api/config announces the limits the app enforces: one character over each is refused, not cut', async (t) => {
  const h = await startApp(t, { options: { messageMaxChars: 10 } });
  const { limits } = (await h.anonymous().get('/api/config').expect(200)).body as { limits: typeof LIMITS };
  assert.deepEqual(limits, { ...LIMITS, messageMaxChars: 10 });
  // Each limit is exactly the app's: at the limit accepted, one more refused with a 4xx naming it.
  const tooLongNick = await h.anonymous().post('/api/session').send({ nick: 'n'.repeat(limits.nickMaxChars + 1) }).expect(400);
  assert.equal(tooLongNick.body.code, 'APP_ERR_INVALID_NICK');
  const ada = await h.signIn('é'.repeat(limits.nickMaxChars));
  await ada.agent.post('/api/rooms').send({ name: 'r'.repeat(limits.roomNameMaxChars) }).expect(201);
  const tooLongRoom = await ada.agent.post('/api/rooms').send({ name: 'r'.repeat(limits.roomNameMaxChars + 1) }).expect(400);
  assert.equal(tooLongRoom.body.code, 'APP_ERR_INVALID_ROOM_NAME');
  // Code points: an emoji is one character, as the browser's counter counts it.
  await ada.agent.post('/api/rooms/lobby/messages').send({ text: '\u{1F600}'.repeat(limits.messageMaxChars) }).expect(201);
  const tooLong = await ada.agent.post('/api/rooms/lobby/messages').send({ text: 'x'.repeat(limits.messageMaxChars + 1) }).expect(413);
  assert.equal(tooLong.body.code, 'APP_ERR_MESSAGE_TOO_LONG');
});

test('the sid cookie carries Domain= when cookieDomain is set, so shard hosts share the session', async (t) => {
  const h = await startApp(t, { options: { cookieDomain: 'chat.test' } });
  const res = await h.anonymous().post('/api/session').send({ nick: 'ada' }).expect(201);
  assert.match((res.headers['set-cookie'] as unknown as string[])[0]!, /; Domain=chat\.test/);
});

test('HTML documents are served with Origin-Agent-Cluster: ?0 by default and ?1 when configured', async (t) => {
  const h = await startApp(t);
  const page = await h.anonymous().get('/').expect(200);
  assert.equal(page.headers['origin-agent-cluster'], '?0');
  const strict = await startApp(t, { options: { originAgentCluster: '?1' } });
  assert.equal((await strict.anonymous().get('/').expect(200)).headers['origin-agent-cluster'], '?1');
});

test('a base or cookie domain that is not a lower-case domain name is refused before start', () => {
  for (const bad of ['localhost', '127.0.0.1', 'Chat.Test', '.chat.test', 'chat..test', 'chat.test/']) {
    assert.throws(() => resolveAppOptions({ secret: 'x'.repeat(16), baseDomain: bad }), { code: 'APP_ERR_BAD_OPTION' }, bad);
    assert.throws(() => resolveAppOptions({ secret: 'x'.repeat(16), cookieDomain: bad }), { code: 'APP_ERR_BAD_OPTION' }, bad);
  }
  assert.throws(() => resolveAppOptions({ secret: 'x'.repeat(16), shardCount: 65 }), /shardCount/);
});

test('BASE_DOMAIN also scopes the session cookie unless COOKIE_DOMAIN says otherwise', () => {
  const base = appOptionsFromEnv({ GRIP_SECRET: 's'.repeat(16), CONTROL_SECRET: 'c'.repeat(16), BASE_DOMAIN: 'chat.test', SHARD_COUNT: '6' }, []);
  assert.equal(base.baseDomain, 'chat.test');
  assert.equal(base.cookieDomain, 'chat.test');
  assert.equal(base.shardCount, 6);
  const own = appOptionsFromEnv({ GRIP_SECRET: 's'.repeat(16), CONTROL_SECRET: 'c'.repeat(16), BASE_DOMAIN: 'chat.test', COOKIE_DOMAIN: 'example.test' }, []);
  assert.equal(own.cookieDomain, 'example.test');
});
