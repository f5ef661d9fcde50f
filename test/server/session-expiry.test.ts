/**
 * Session expiry (server/session-expiry.ts, server/session-auth.ts): an idle
 * timeout that every request slides (written at most once a minute) and an
 * absolute maximum age, both on an injected clock; the cookie's Max-Age; and
 * signing in again after expiry.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startApp, testClock, type AppHarness } from '../helpers/app-harness.js';

const MINUTE = 60_000;
const IDLE_S = 3600;
const MAX_AGE_S = 6 * 3600;
const OPTIONS = { sessionIdleTimeoutS: IDLE_S, sessionMaxAgeS: MAX_AGE_S, livenessFlushMs: 0 };

function seenAt(h: AppHarness, id: number): number {
  h.chat.liveness.flush();
  return (h.chat.db.prepare('SELECT seen_at AS t FROM sessions WHERE id = ?').get(id) as { t: number }).t;
}

test('a session unused for longer than the idle timeout answers 401 APP_ERR_SESSION_EXPIRED, and its browser can sign in again', async (t) => {
  const clock = testClock();
  const h = await startApp(t, { clock, options: OPTIONS });
  const ada = await h.signIn('ada');
  clock.advance(IDLE_S * 1000 - 1);
  await ada.agent.get('/api/session').expect(200);
  clock.advance(IDLE_S * 1000);
  for (const [method, path] of [['get', '/api/session'], ['get', '/api/rooms'], ['get', '/api/poll?rooms=lobby:0']] as const) {
    const res = await ada.agent[method](path).expect(401);
    assert.equal(res.body.code, 'APP_ERR_SESSION_EXPIRED', `${method} ${path}`);
    assert.match(res.body.message, /idle timeout/);
  }
  const post = await ada.agent.post('/api/rooms/lobby/messages').send({ text: 'still here?' }).expect(401);
  assert.equal(post.body.code, 'APP_ERR_SESSION_EXPIRED');

  // The same browser, still sending the expired cookie, signs in again and gets a new session.
  const again = await ada.agent.post('/api/session').send({ nick: 'ada' }).expect(201);
  assert.notEqual(again.body.user.id, ada.id);
  await ada.agent.get('/api/session').expect(200);
});

test('every request slides the idle timeout, and the activity is written at most once a minute', async (t) => {
  const clock = testClock();
  const h = await startApp(t, { clock, options: OPTIONS });
  const ada = await h.signIn('ada');
  const signedInAt = clock.now();
  // Ten requests within the first minute write nothing.
  for (let i = 0; i < 10; i++) {
    clock.advance(5000);
    await ada.agent.get('/api/rooms').expect(200);
  }
  assert.equal(seenAt(h, ada.id), signedInAt, 'no write within the refresh interval');
  clock.advance(MINUTE);
  await ada.agent.get('/api/rooms').expect(200);
  assert.equal(seenAt(h, ada.id), clock.now(), 'written once the last write is a minute old');

  // Used once just before each idle timeout, the session lives far beyond one.
  for (let i = 0; i < 4; i++) {
    clock.advance(IDLE_S * 1000 - MINUTE);
    await ada.agent.get('/api/session').expect(200);
  }
  assert.ok(clock.now() - signedInAt > 3 * IDLE_S * 1000);
});

test('a session that only long-polls stays alive: presence written by polls counts as activity', async (t) => {
  const clock = testClock();
  const h = await startApp(t, { clock, options: OPTIONS });
  const ada = await h.signIn('ada');
  let cid = '';
  for (let i = 0; i < 6; i++) {
    clock.advance(IDLE_S * 1000 - MINUTE);
    const res = await ada.agent.get(`/api/poll?rooms=lobby:999${cid === '' ? '' : `&cid=${cid}`}`).expect(200);
    cid = res.body.connectionId;
  }
  await ada.agent.get('/api/session').expect(200);
});

test('a session expires at its maximum age however active it is', async (t) => {
  const clock = testClock();
  const h = await startApp(t, { clock, options: OPTIONS });
  const ada = await h.signIn('ada');
  const signedInAt = clock.now();
  while (clock.now() + 30 * MINUTE < signedInAt + MAX_AGE_S * 1000) {
    clock.advance(30 * MINUTE);
    await ada.agent.get('/api/session').expect(200);
  }
  clock.advance(signedInAt + MAX_AGE_S * 1000 - clock.now());
  const res = await ada.agent.get('/api/session').expect(401);
  assert.equal(res.body.code, 'APP_ERR_SESSION_EXPIRED');
  assert.match(res.body.message, /maximum age/);
});

test('the sid cookie carries Max-Age equal to the session maximum age', async (t) => {
  const h = await startApp(t, { options: OPTIONS });
  const res = await h.anonymous().post('/api/session').send({ nick: 'ada' }).expect(201);
  const cookie = (res.headers['set-cookie'] as unknown as string[])[0]!;
  assert.match(cookie, new RegExp(`; Max-Age=${MAX_AGE_S}(;|$)`));
  assert.match(cookie, /; Expires=/);
});

test('a Bayeux client whose session reached its maximum age is unknown (402), and a handshake with its cookie is denied', async (t) => {
  const clock = testClock();
  // Max age = idle timeout, so the client below, connecting every 100 s, outlives neither its own TTL nor idleness.
  const h = await startApp(t, { clock, options: { ...OPTIONS, sessionMaxAgeS: IDLE_S } });
  const ada = await h.signIn('ada');
  const signedInAt = clock.now();
  const send = async (message: Record<string, unknown>): Promise<Record<string, unknown>> =>
    (await ada.agent.post('/cometd').send([message]).expect(200)).body[0];
  const handshake = { channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'] };
  const shake = await send(handshake);
  assert.equal(shake.successful, true);
  const connect = { channel: '/meta/connect', clientId: shake.clientId, connectionType: 'long-polling' };
  while (clock.now() + 100_000 < signedInAt + IDLE_S * 1000) {
    clock.advance(100_000);
    assert.equal((await send(connect)).successful, true);
  }
  clock.advance(signedInAt + IDLE_S * 1000 - clock.now());
  const refused = await send(connect);
  assert.equal(refused.successful, false);
  assert.match(String(refused.error), /^402::/);
  assert.equal((await send(handshake)).successful, false);
});
