/**
 * Who a Bayeux client is: a session (made from the handshake's nick, or the
 * request's session cookie), a clientId nobody can guess, and a connection ID
 * issued by the app and bound to that session, never shown to the client.
 * Also: rooms get hint items only once a CometD client subscribes to them.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { ChatClient, waitFor } from '../helpers/chat-client.js';
import { startStack } from '../helpers/stack.js';
import { bayeuxPost, connectReply, deliveredEvents, login, RawBayeux } from './bayeux-helpers.js';

const HANDSHAKE = { channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'] };

test('a handshake without a nick takes the session of the request’s cookie', async (t) => {
  const stack = await startStack(t);
  const { cookie, user } = await login(stack.base, 'bob');
  const r = await bayeuxPost(stack.base, [{ ...HANDSHAKE, id: '1' }], { headers: { cookie } });
  assert.equal(r.body[0].successful, true, JSON.stringify(r.body));
  assert.deepEqual(r.body[0].ext['comet-chat'].user, user);
  assert.equal(r.headers.get('set-cookie'), null, 'the clientId is the credential; no cookie is set');

  // An unknown cookie is no identity.
  const stale = await bayeuxPost(stack.base, [{ ...HANDSHAKE, id: '2' }], { headers: { cookie: 'sid=not-a-session' } });
  assert.equal(stale.body[0].error.split(':')[0], '403');
});

test('clientIds are unguessable, each bound to its session and to a connection ID the client never sees', async (t) => {
  const stack = await startStack(t, { app: { holdTimeoutS: 20 } });
  const bob = new ChatClient(stack.base);
  await bob.login('bob');
  await bob.call('POST', '/api/rooms', { name: 'secret' });
  await bob.join('secret');

  const ada = new RawBayeux(stack.base);
  const eve = new RawBayeux(stack.base);
  const adaHs = await ada.handshake('ada');
  await eve.handshake('eve');
  for (const id of [ada.clientId, eve.clientId]) assert.match(id, /^[A-Za-z0-9_-]{43}$/, '256 random bits, base64url');
  assert.notEqual(ada.clientId, eve.clientId);

  const db = new Database(stack.dbPath, { readonly: true });
  t.after(() => db.close());
  const rows = db
    .prepare('SELECT b.session_id AS sessionId, b.connection_id AS connectionId, c.session_id AS connectionSession FROM bayeux_clients b JOIN connections c ON c.id = b.connection_id WHERE b.id = ?')
    .get(ada.clientId) as { sessionId: number; connectionId: string; connectionSession: number };
  assert.equal(rows.sessionId, adaHs.ext['comet-chat'].user.id);
  assert.equal(rows.connectionSession, rows.sessionId, 'the connection ID is bound to the same session');

  // The connection ID appears in no reply: nobody can park or read under it but the app's own holds.
  await ada.connect();
  const held = ada.connect();
  await waitFor(async () => (await stack.stats()).parked === 1, 'ada’s connect parked');
  await bob.post('secret', 'not for ada'); // ada is not subscribed (not even a member)
  const published = await bayeuxPost(stack.base, [{ channel: '/meta/subscribe', id: 's', clientId: ada.clientId, subscription: '/chat/secret' }]);
  assert.equal(published.body[0].successful, true);
  const answer = await held;
  const wire = JSON.stringify(answer.body) + JSON.stringify([...answer.headers]);
  assert.ok(!wire.includes(rows.connectionId), 'the connection ID is never sent to the client');
  assert.equal(answer.headers.get('comet-connection-id'), null);
  // Subscribing starts at the room's current end: history before it is not replayed.
  assert.deepEqual(deliveredEvents(answer.body), []);
  assert.equal(connectReply(answer.body).successful, true);

  // Eve's clientId acts as Eve whatever cookie comes with it: a member's cookie does not make it the member's.
  const mallory = await login(stack.base, 'mallory');
  const join = await fetch(`${stack.base}/api/rooms/secret/join`, { method: 'POST', headers: { cookie: mallory.cookie } });
  assert.equal(join.status, 200);
  const cookie = mallory.cookie;
  const asEve = await bayeuxPost(stack.base, [{ channel: '/chat/secret', id: 'p', clientId: eve.clientId, data: { text: 'hi' } }], { headers: { cookie } });
  assert.equal(asEve.body[0].ext['comet-chat'].code, 'APP_ERR_NOT_MEMBER');
});

test('Bayeux clients count against maxConnectionsPerSession together with the session’s polls', async (t) => {
  const stack = await startStack(t, { app: { maxConnectionsPerSession: 2 } });
  const { cookie } = await login(stack.base, 'bob');
  const poll = await fetch(`${stack.base}/api/poll?rooms=lobby:0`, { headers: { cookie } });
  assert.equal(poll.status, 200, 'the poll takes one connection ID');
  const ok = await bayeuxPost(stack.base, [{ ...HANDSHAKE, id: '1' }], { headers: { cookie } });
  assert.equal(ok.body[0].successful, true, 'the handshake takes the second');
  const third = await bayeuxPost(stack.base, [{ ...HANDSHAKE, id: '3' }], { headers: { cookie } });
  assert.equal(third.body[0].successful, false);
  assert.equal(third.body[0].ext['comet-chat'].code, 'APP_ERR_TOO_MANY_CONNECTIONS');
  assert.equal(third.body[0].advice.reconnect, 'handshake', 'temporary: handshake again after the wait');
  assert.ok(third.body[0].advice.interval >= 1000);
});

test('room events get a hint item for Bayeux holds only while some CometD client subscribes to the room', async (t) => {
  const stack = await startStack(t);
  const bob = new ChatClient(stack.base);
  await bob.login('bob');
  await bob.call('POST', '/api/rooms', { name: 'general' });
  await bob.join('general');
  await stack.chat.relay.waitIdle(5000);

  const publishes = async (): Promise<number> => (await stack.stats()).publishes;
  let before = await publishes();
  await bob.post('general', 'browser only');
  await stack.chat.relay.waitIdle(5000);
  assert.equal((await publishes()) - before, 1, 'one item: no Bayeux client listens');

  const ada = new RawBayeux(stack.base);
  await ada.handshake('ada');
  await ada.subscribe('general');
  await stack.chat.relay.waitIdle(5000);
  before = await publishes();
  await bob.post('general', 'with a CometD subscriber');
  await stack.chat.relay.waitIdle(5000);
  assert.equal((await publishes()) - before, 2, 'the room item and its hint');
});

test('a handshake nick is unique too: taken while its Bayeux session has a live client, free once that session has none left (issue 18)', async (t) => {
  const stack = await startStack(t);
  await login(stack.base, 'bob');
  // A cookie session's nick is never freed by Bayeux.
  const taken = await bayeuxPost(stack.base, [{ ...HANDSHAKE, id: '1', ext: { 'comet-chat': { nick: 'BOB' } } }]);
  assert.equal(taken.body[0].successful, false);
  assert.equal(taken.body[0].ext['comet-chat'].code, 'APP_ERR_NICK_TAKEN', JSON.stringify(taken.body));

  const ada = new RawBayeux(stack.base);
  const first = await ada.handshake('ada');
  const again = await bayeuxPost(stack.base, [{ ...HANDSHAKE, id: '2', ext: { 'comet-chat': { nick: 'ada' } } }]);
  assert.equal(again.body[0].ext['comet-chat'].code, 'APP_ERR_NICK_TAKEN', 'ada\'s client is live: nobody else is ada');
  // ada's client goes away: its session, reachable only through it, is unusable, so its nick is free.
  const bye = await bayeuxPost(stack.base, [{ channel: '/meta/disconnect', id: '3', clientId: ada.clientId }]);
  assert.equal(bye.body[0].successful, true);
  const back = await bayeuxPost(stack.base, [{ ...HANDSHAKE, id: '4', ext: { 'comet-chat': { nick: 'ada' } } }]);
  assert.equal(back.body[0].successful, true, JSON.stringify(back.body));
  assert.notEqual(back.body[0].ext['comet-chat'].user.id, first.ext['comet-chat'].user.id, 'a new session, a new id');
  const db = new Database(stack.dbPath, { readonly: true });
  t.after(() => db.close());
  assert.equal(db.prepare('SELECT end_reason FROM sessions WHERE id = ?').pluck().get(first.ext['comet-chat'].user.id), 'signed-out');
});
