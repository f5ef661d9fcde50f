/**
 * The app's guards: the cross-site request check on state-changing API calls,
 * `requireGripSig`, the post and session-creation rate limits (on an injected
 * clock, so nothing waits a minute), and the cap on connection IDs per session.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { appOptionsFromEnv } from '../../server/config.js';
import { RateLimiter } from '../../server/http/rate-limit.js';
import { resolveAppOptions } from '../../server/options.js';
import { startApp, testClock, type AppHarness } from '../helpers/app-harness.js';
import { ChatClient } from '../helpers/chat-client.js';
import { request } from '../helpers/proxy-harness.js';
import { startStack } from '../helpers/stack.js';

function count(h: AppHarness, table: string): number {
  const db = new Database(h.dbPath, { readonly: true });
  try {
    return db.prepare(`SELECT COUNT(*) FROM "${table}"`).pluck().get() as number;
  } finally {
    db.close();
  }
}

describe('cross-site requests', { timeout: 10_000 }, () => {
  test('a state-changing call with this host\'s Origin or Referer, or with neither header, is served', async (t) => {
    const h = await startApp(t);
    const ada = await h.signIn('ada');
    const host = new URL(h.base).host;
    await ada.agent.post('/api/rooms/lobby/messages').set('Origin', `http://${host}`).send({ text: 'same origin' }).expect(201);
    await ada.agent.post('/api/rooms/lobby/messages').set('Referer', `http://${host}/index.html`).send({ text: 'same referer' }).expect(201);
    await ada.agent.post('/api/rooms/lobby/messages').send({ text: 'no header: curl, tests, old browsers' }).expect(201);
    await h.anonymous().post('/api/session').set('Origin', `http://${host.toUpperCase()}`).send({ nick: 'bob' }).expect(201);
  });

  test('another origin, another port, Origin null or a foreign Referer is 403 APP_ERR_CSRF and changes nothing', async (t) => {
    const h = await startApp(t);
    const ada = await h.signIn('ada');
    const { hostname, port } = new URL(h.base);
    const events = count(h, 'events');
    const sessions = count(h, 'sessions');
    const cases: Array<[string, string]> = [
      ['Origin', 'http://evil.test'],
      ['Origin', `http://${hostname}:${Number(port) + 1}`],
      ['Origin', `https://${hostname}.evil.test:${port}`],
      ['Origin', 'null'],
      ['Origin', 'not a url'],
      ['Referer', 'http://evil.test/attack.html'],
    ];
    for (const [name, value] of cases) {
      const post = await ada.agent.post('/api/rooms/lobby/messages').set(name, value).send({ text: 'forged' }).expect(403);
      assert.deepEqual(post.body.code, 'APP_ERR_CSRF', `${name}: ${value}`);
      await h.anonymous().post('/api/session').set(name, value).send({ nick: 'mallory' }).expect(403);
      await ada.agent.post('/api/rooms').set(name, value).send({ name: 'forged' }).expect(403);
    }
    // Origin wins over Referer: a same-site Referer does not excuse a foreign Origin.
    await ada.agent.post('/api/rooms/lobby/messages').set('Origin', 'http://evil.test').set('Referer', `${h.base}/`).send({ text: 'x' }).expect(403);
    assert.equal(count(h, 'events'), events);
    assert.equal(count(h, 'sessions'), sessions);
  });

  test('reads are not checked: a GET with a foreign Origin is answered', async (t) => {
    const h = await startApp(t);
    const ada = await h.signIn('ada');
    await ada.agent.get('/api/rooms').set('Origin', 'http://evil.test').expect(200);
  });

  test('with a base domain, it and its shard subdomains are same-site; look-alike domains are not', async (t) => {
    const h = await startApp(t, { options: { baseDomain: 'chat.test' } });
    const ada = await h.signIn('ada');
    for (const origin of ['http://chat.test', 'http://c3.chat.test', 'https://c1.chat.test:8443']) {
      await ada.agent.post('/api/rooms/lobby/messages').set('Host', 'chat.test').set('Origin', origin).send({ text: origin }).expect(201);
    }
    for (const origin of ['http://evilchat.test', 'http://chat.test.evil.test', 'http://chat.tes']) {
      await ada.agent.post('/api/rooms/lobby/messages').set('Host', 'chat.test').set('Origin', origin).send({ text: origin }).expect(403);
    }
  });

  test('through the proxy, a browser\'s same-origin POST passes and a cross-site one is refused', async (t) => {
    const stack = await startStack(t);
    const ok = await request(`${stack.base}/api/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: stack.base },
      body: '{"nick":"ada"}',
    });
    assert.equal(ok.status, 201);
    const forged = await request(`${stack.base}/api/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: 'http://evil.test' },
      body: '{"nick":"eve"}',
    });
    assert.equal(forged.status, 403);
    assert.deepEqual(forged.json(), { code: 'APP_ERR_CSRF', message: 'cross-site request refused: the Origin header is not ' + new URL(stack.base).host });
  });
});

describe('requireGripSig', { timeout: 10_000 }, () => {
  test('every /api request without a valid Grip-Sig is refused 401 APP_ERR_NO_GRIP_SIG', async (t) => {
    const h = await startApp(t, { options: { requireGripSig: true } });
    for (const [method, path] of [['get', '/api/config'], ['post', '/api/session'], ['get', '/api/poll?rooms=lobby:0'], ['get', '/api/nope']] as const) {
      const res = await h.anonymous()[method](path).send(method === 'post' ? { nick: 'ada' } : undefined).expect(401);
      assert.deepEqual(Object.keys(res.body).sort(), ['code', 'message']);
      assert.equal(res.body.code, 'APP_ERR_NO_GRIP_SIG', `${method} ${path}`);
    }
    const bad = await h.anonymous().get('/api/config').set('Grip-Sig', 'not-a-jwt').expect(401);
    assert.equal(bad.body.code, 'APP_ERR_BAD_GRIP_SIG');
    await h.anonymous().get('/api/config').set('Grip-Sig', await h.gripSig()).expect(200);
    await h.anonymous().post('/api/session').set('Grip-Sig', await h.gripSig()).send({ nick: 'ada' }).expect(201);
    assert.equal(count(h, 'sessions'), 1);
  });

  test('with requireGripSig the chat works normally through the proxy', async (t) => {
    const stack = await startStack(t, { app: { requireGripSig: true } });
    const ada = new ChatClient(stack.base);
    await ada.login('ada');
    await ada.join('lobby');
    const ev = await ada.post('lobby', 'hello');
    assert.equal(ev.text, 'hello');
  });

  test('REQUIRE_GRIP_SIG=1 turns it on, 0 or unset leaves it off, anything else is refused', () => {
    const env = { GRIP_SECRET: 'env-secret-0123456789', CONTROL_SECRET: 'env-control-secret-0123456789' };
    assert.equal(resolveAppOptions(appOptionsFromEnv({ ...env, REQUIRE_GRIP_SIG: '1' }, [])).requireGripSig, true);
    assert.equal(resolveAppOptions(appOptionsFromEnv({ ...env, REQUIRE_GRIP_SIG: '0' }, [])).requireGripSig, false);
    assert.equal(resolveAppOptions(appOptionsFromEnv(env, [])).requireGripSig, false);
    assert.throws(() => appOptionsFromEnv({ ...env, REQUIRE_GRIP_SIG: 'yes' }, []), /REQUIRE_GRIP_SIG must be 1 or 0, got "yes"/);
  });
});

describe('rate limits', { timeout: 10_000 }, () => {
  test('posts beyond postsPerMinute get 429 APP_ERR_RATE_LIMITED with Retry-After until the bucket refills', async (t) => {
    const clock = testClock();
    const h = await startApp(t, { clock, options: { postsPerMinute: 3, rateLimitLoopback: true } });
    const ada = await h.signIn('ada');
    const bob = await h.signIn('bob');
    for (let i = 0; i < 3; i++) await ada.agent.post('/api/rooms/lobby/messages').send({ text: `m${i}` }).expect(201);
    const events = count(h, 'events');
    const limited = await ada.agent.post('/api/rooms/lobby/messages').send({ text: 'one too many' }).expect(429);
    assert.deepEqual(limited.body, { code: 'APP_ERR_RATE_LIMITED', message: 'too many messages from this session; retry in 20 s' });
    assert.equal(limited.headers['retry-after'], '20', 'one post per 20 s at 3 per minute');
    assert.equal(count(h, 'events'), events, 'the refused post wrote nothing');
    await bob.agent.post('/api/rooms/lobby/messages').send({ text: 'bob has his own allowance' }).expect(201);

    clock.advance(19_000);
    assert.equal((await ada.agent.post('/api/rooms/lobby/messages').send({ text: 'x' }).expect(429)).headers['retry-after'], '1');
    clock.advance(1_000);
    await ada.agent.post('/api/rooms/lobby/messages').send({ text: 'refilled' }).expect(201);
    // An invalid post is refused for what it is and takes no token.
    clock.advance(20_000);
    await ada.agent.post('/api/rooms/lobby/messages').send({ text: '' }).expect(400);
    await ada.agent.post('/api/rooms/lobby/messages').send({ text: 'still one left' }).expect(201);
  });

  test('session creations beyond sessionsPerMinutePerAddress are 429 per client address; a refused one creates nothing', async (t) => {
    const clock = testClock();
    const h = await startApp(t, { clock, options: { sessionsPerMinutePerAddress: 2, rateLimitLoopback: true } });
    await h.anonymous().post('/api/session').send({ nick: 'a1' }).expect(201);
    await h.anonymous().post('/api/session').send({ nick: '<bad>' }).expect(400); // invalid: not counted
    await h.anonymous().post('/api/session').send({ nick: 'a2' }).expect(201);
    const limited = await h.anonymous().post('/api/session').send({ nick: 'a3' }).expect(429);
    assert.equal(limited.body.code, 'APP_ERR_RATE_LIMITED');
    assert.equal(limited.headers['retry-after'], '30');
    assert.equal(count(h, 'sessions'), 2);
    // A client-written X-Forwarded-For without a Grip-Sig proves nothing: still this socket's address.
    await h.anonymous().post('/api/session').set('X-Forwarded-For', '198.51.100.9').send({ nick: 'a4' }).expect(429);
    // Through the proxy (valid Grip-Sig) the proxy's X-Forwarded-For is the address.
    const viaProxy = async (address: string, nick: string) =>
      h.anonymous().post('/api/session').set('Grip-Sig', await h.gripSig()).set('X-Forwarded-For', address).send({ nick });
    assert.equal((await viaProxy('198.51.100.1', 'b1')).status, 201);
    assert.equal((await viaProxy('198.51.100.1', 'b2')).status, 201);
    assert.equal((await viaProxy('198.51.100.1', 'b3')).status, 429);
    assert.equal((await viaProxy('198.51.100.2', 'c1')).status, 201);
    clock.advance(30_000);
    assert.equal((await viaProxy('198.51.100.1', 'b4')).status, 201);
  });

  test('loopback clients are exempt unless rateLimitLoopback is set; other addresses never are', async (t) => {
    const h = await startApp(t, { options: { postsPerMinute: 1, sessionsPerMinutePerAddress: 1 } });
    const ada = await h.signIn('ada');
    await h.signIn('bob');
    for (let i = 0; i < 5; i++) await ada.agent.post('/api/rooms/lobby/messages').send({ text: `m${i}` }).expect(201);
    const remote = async (nick: string) =>
      h.anonymous().post('/api/session').set('Grip-Sig', await h.gripSig()).set('X-Forwarded-For', '203.0.113.5').send({ nick });
    assert.equal((await remote('r1')).status, 201);
    assert.equal((await remote('r2')).status, 429);
  });

  test('0 turns a limit off, and both limits and the loopback switch come from the environment', async (t) => {
    const h = await startApp(t, { options: { postsPerMinute: 0, sessionsPerMinutePerAddress: 0, rateLimitLoopback: true } });
    const ada = await h.signIn('ada');
    for (let i = 0; i < 100; i++) await ada.agent.post('/api/rooms/lobby/messages').send({ text: `m${i}` }).expect(201);
    const o = resolveAppOptions(
      appOptionsFromEnv({ GRIP_SECRET: 'env-secret-0123456789', CONTROL_SECRET: 'env-control-secret-0123456789', POSTS_PER_MINUTE: '5', SESSIONS_PER_MINUTE_PER_ADDRESS: '7', RATE_LIMIT_LOOPBACK: '1', MAX_CONNECTIONS_PER_SESSION: '3' }, []),
    );
    assert.deepEqual([o.postsPerMinute, o.sessionsPerMinutePerAddress, o.rateLimitLoopback, o.maxConnectionsPerSession], [5, 7, true, 3]);
    const d = resolveAppOptions({ secret: 'env-secret-0123456789' });
    assert.deepEqual([d.postsPerMinute, d.sessionsPerMinutePerAddress, d.rateLimitLoopback, d.maxConnectionsPerSession, d.requireGripSig], [60, 20, false, 20, false]);
  });

  test('a limiter remembers at most maxKeys keys, least recently used first out', () => {
    let now = 0;
    const limiter = new RateLimiter({ perMinute: 1, now: () => now, maxKeys: 3 });
    for (const key of ['a', 'b', 'c']) assert.equal(limiter.take(key), 0);
    assert.equal(limiter.take('a'), 60, 'a is empty: one token a minute');
    assert.equal(limiter.take('d'), 0);
    assert.equal(limiter.size, 3, 'b, the least recently used, was evicted');
    assert.equal(limiter.take('a'), 60, 'a was kept: it was used recently');
    now += 30_000;
    assert.equal(limiter.take('a'), 30);
  });
});

describe('connection IDs per session', { timeout: 10_000 }, () => {
  test('a poll that needs one more connection ID than maxConnectionsPerSession gets 503 with Retry-After and writes nothing', async (t) => {
    const clock = testClock();
    const h = await startApp(t, { clock, options: { maxConnectionsPerSession: 2, presenceWindowMs: 60_000 } });
    const ada = await h.signIn('ada');
    const first = (await ada.agent.get('/api/poll?rooms=lobby:0').expect(200)).body.connectionId as string;
    clock.advance(10_000);
    await ada.agent.get('/api/poll?rooms=lobby:0').expect(200);
    // Whether or not the liveness log has written the two IDs yet, they count.
    const refusedEarly = await ada.agent.get('/api/poll?rooms=lobby:0').expect(503);
    assert.equal(refusedEarly.body.code, 'APP_ERR_TOO_MANY_CONNECTIONS');
    h.chat.liveness.flush();
    const connections = count(h, 'connections');
    assert.equal(connections, 2);
    clock.advance(5_000);
    const refused = await ada.agent.get('/api/poll?rooms=lobby:0').expect(503);
    assert.deepEqual(Object.keys(refused.body).sort(), ['code', 'message']);
    assert.equal(refused.body.code, 'APP_ERR_TOO_MANY_CONNECTIONS');
    assert.equal(refused.headers['retry-after'], '45', 'the first ID stops counting 60 s after its last poll');
    h.chat.liveness.flush();
    assert.equal(count(h, 'connections'), connections);
    // A cid this app never issued is refused as such; a known one of this session is always served.
    await ada.agent.get('/api/poll?rooms=lobby:0&cid=AAAAAAAAAAAAAAAAAAAAA').expect(400);
    await ada.agent.get(`/api/poll?rooms=lobby:0&cid=${first}`).expect(200);
    // Another session has its own allowance.
    const bob = await h.signIn('bob');
    await bob.agent.get('/api/poll?rooms=lobby:0').expect(200);
    // Once the IDs stop polling for the window, they stop counting.
    clock.advance(61_000);
    await ada.agent.get('/api/poll?rooms=lobby:0').expect(200);
  });
});
