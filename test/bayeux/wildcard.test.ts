/**
 * Room patterns: `/chat/*` (and `/chat/**`, the same rooms since room names
 * have one segment) follow every room the client's session is a member of,
 * which is every room it may read; a room the session joins later (through the
 * chat API or another client) is followed from its join, in the join's
 * transaction, and a leave ends it. The pattern joins nothing itself.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { ChatClient, waitFor } from '../helpers/chat-client.js';
import { startStack, type TestStack } from '../helpers/stack.js';
import { CometClient, connectReply, deliveredEvents, login, RawBayeux, waitConnected } from './bayeux-helpers.js';

/** A chat API call with a session cookie. */
async function api(base: string, cookie: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { cookie, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: await res.json().catch(() => null) };
}

function count(stack: TestStack, sql: string): number {
  const db = new Database(stack.dbPath, { readonly: true });
  try {
    return (db.prepare(sql).pluck().get() as number) ?? 0;
  } finally {
    db.close();
  }
}

test('/chat/* follows the rooms the session is a member of, rooms joined later from their join, and none after a leave', async (t) => {
  const stack = await startStack(t, { app: { holdTimeoutS: 20 } });
  const bob = new ChatClient(stack.base);
  await bob.login('bob');
  for (const room of ['general', 'private', 'later']) assert.equal((await bob.call('POST', '/api/rooms', { name: room })).status, 201);
  for (const room of ['general', 'private']) await bob.join(room);
  const { cookie } = await login(stack.base, 'ada');
  assert.equal((await api(stack.base, cookie, 'POST', '/api/rooms/general/join')).status, 200);

  const ada = new RawBayeux(stack.base, cookie);
  await ada.handshakeAsSession();
  const memberships = count(stack, 'SELECT COUNT(*) FROM memberships');
  const sub = await ada.subscribeTo('/chat/*');
  assert.equal(sub.successful, true, JSON.stringify(sub));
  assert.equal(sub.subscription, '/chat/*');
  assert.equal(count(stack, 'SELECT COUNT(*) FROM memberships'), memberships, 'the pattern joined nothing');
  await ada.connect(); // the first connect is answered at once

  // Member rooms (lobby, general) are delivered; a room ada may not read (private) is not.
  const secret = await bob.post('private', 'not for ada');
  const m1 = await bob.post('general', 'one');
  const m2 = await bob.post('lobby', 'two');
  const got = await ada.connect();
  assert.deepEqual(deliveredEvents(got.body).map((e) => e.id), [m1.id, m2.id]);
  assert.deepEqual(deliveredEvents(got.body).map((e) => e.room), ['general', 'lobby']);
  assert.ok(!deliveredEvents(got.body).some((e) => e.id === secret.id));

  // A room joined later, while the connect is parked: the join wakes it, and the room follows from the join.
  const parked = ada.connect();
  await waitFor(async () => (await stack.stats()).parked === 1, "ada's connect to be parked");
  await bob.join('later');
  const early = await bob.post('later', 'before ada joined');
  const joined = await api(stack.base, cookie, 'POST', '/api/rooms/later/join');
  assert.equal(joined.status, 200);
  const woken = await parked;
  assert.deepEqual(deliveredEvents(woken.body), [], 'woken by the join, with nothing new past its cursor yet');
  assert.equal(connectReply(woken.body).successful, true);
  const m3 = await bob.post('later', 'after ada joined');
  const next = await ada.connect();
  assert.deepEqual(deliveredEvents(next.body).map((e) => e.id), [m3.id], 'from the join on, never what came before it');
  assert.ok(early.id < joined.body.cursor);

  // A parked connect is answered by a message in the newly joined room (it re-parked on it).
  const parked2 = ada.connect();
  await waitFor(async () => (await stack.stats()).parked === 1, "ada's next connect to be parked");
  const m4 = await bob.post('later', 'parked on later');
  assert.deepEqual(deliveredEvents((await parked2).body).map((e) => e.id), [m4.id]);

  // After a leave the room is no longer delivered.
  assert.equal((await api(stack.base, cookie, 'POST', '/api/rooms/later/leave')).status, 200);
  await bob.post('later', 'after ada left');
  const m5 = await bob.post('general', 'still here');
  assert.deepEqual(deliveredEvents((await ada.connect()).body).map((e) => e.id), [m5.id]);
});

test('a room subscribed by name and covered by /chat/* is delivered once, and each subscription ends on its own', async (t) => {
  const stack = await startStack(t, { app: { holdTimeoutS: 20 } });
  const bob = new ChatClient(stack.base);
  await bob.login('bob');
  await bob.call('POST', '/api/rooms', { name: 'general' });
  await bob.join('general');
  const ada = new RawBayeux(stack.base);
  await ada.handshake('ada');
  assert.equal((await ada.subscribe('general')).successful, true); // joins general
  assert.equal((await ada.subscribeTo('/chat/**')).successful, true);
  await ada.connect();

  const m1 = await bob.post('general', 'once');
  assert.deepEqual(deliveredEvents((await ada.connect()).body).map((e) => e.id), [m1.id], 'one delivery for two subscriptions');

  // Unsubscribing the name keeps the room while the pattern covers it (same cursor, nothing re-sent) ...
  assert.equal((await ada.subscribeTo('/chat/general', '/meta/unsubscribe')).successful, true);
  const m2 = await bob.post('general', 'pattern only');
  assert.deepEqual(deliveredEvents((await ada.connect()).body).map((e) => e.id), [m2.id]);
  // ... and unsubscribing the pattern ends it.
  assert.equal((await ada.subscribeTo('/chat/**', '/meta/unsubscribe')).successful, true);
  await bob.post('general', 'nobody listens');
  const r = await ada.connect({ advice: { timeout: 0 } });
  assert.deepEqual(deliveredEvents(r.body), []);
  assert.equal(count(stack, 'SELECT COUNT(*) FROM bayeux_subscriptions'), 0);
});

test('patterns outside /chat/* and /chat/** are refused with 403, and a pattern counts one subscription per room it covers', async (t) => {
  const stack = await startStack(t);
  const ada = new RawBayeux(stack.base);
  await ada.handshake('ada');
  for (const pattern of ['/**', '/*', '/chat/general/*', '/meta/*', '/service/**', '/foo/*']) {
    const r = await ada.subscribeTo(pattern);
    assert.equal(r.successful, false, pattern);
    assert.equal(r.error, `403:${pattern}:the only channel patterns are /chat/* and /chat/** (the rooms this session is a member of)`);
    assert.equal(r.ext['comet-chat'].code, 'BAYEUX_ERR_WILDCARD');
  }
  assert.equal(count(stack, 'SELECT patterns FROM bayeux_clients'), 0);

  // 49 rooms by name plus the lobby: the pattern covers 50, the limit; a 51st join is refused whole.
  const { cookie } = await login(stack.base, 'cy');
  const cy = new RawBayeux(stack.base, cookie);
  await cy.handshakeAsSession();
  for (let i = 0; i < 50; i++) assert.equal((await api(stack.base, cookie, 'POST', '/api/rooms', { name: `r${i}` })).status, 201);
  for (let i = 0; i < 48; i++) assert.equal((await api(stack.base, cookie, 'POST', `/api/rooms/r${i}/join`)).status, 200);
  assert.equal((await cy.subscribeTo('/chat/*')).successful, true, '49 rooms');
  assert.equal((await api(stack.base, cookie, 'POST', '/api/rooms/r48/join')).status, 200, 'the 50th');
  const events = count(stack, 'SELECT COUNT(*) FROM events');
  const refused = await api(stack.base, cookie, 'POST', '/api/rooms/r49/join');
  assert.equal(refused.status, 403);
  assert.equal(refused.body.code, 'APP_ERR_TOO_MANY_SUBSCRIPTIONS');
  assert.equal(count(stack, 'SELECT COUNT(*) FROM events'), events, 'no join event');
  assert.equal(count(stack, "SELECT COUNT(*) FROM memberships m JOIN rooms r ON r.id = m.room_id WHERE r.name = 'r49'"), 0, 'not joined');

  // Without the pattern the join goes through; subscribing the pattern again is then over the limit.
  assert.equal((await cy.subscribeTo('/chat/*', '/meta/unsubscribe')).successful, true);
  assert.equal((await api(stack.base, cookie, 'POST', '/api/rooms/r49/join')).status, 200);
  const over = await cy.subscribeTo('/chat/*');
  assert.equal(over.successful, false);
  assert.equal(over.error, '403:/chat/*:at most 50 subscriptions per client, and this pattern would make 51');
  assert.equal(over.ext['comet-chat'].code, 'BAYEUX_ERR_TOO_MANY_SUBSCRIPTIONS');
  assert.equal(count(stack, 'SELECT COUNT(*) FROM bayeux_subscriptions'), 0, 'nothing subscribed');
});

test('the real CometD client subscribed to /chat/* receives every room its session is in, once and in order', async (t) => {
  const stack = await startStack(t, { app: { holdTimeoutS: 20 } });
  const bob = new ChatClient(stack.base);
  await bob.login('bob');
  await bob.call('POST', '/api/rooms', { name: 'general' });
  await bob.join('general');
  const ada = new CometClient(stack.base, { nick: 'ada' });
  t.after(() => ada.cometd.disconnect());
  await ada.handshake();
  const viaPattern: Array<{ channel: string; id: number }> = [];
  const reply = await new Promise<{ successful: boolean }>((resolve) => {
    ada.cometd.subscribe('/chat/*', (m) => viaPattern.push({ channel: m.channel, id: (m.data as { id: number }).id }), resolve);
  });
  assert.equal(reply.successful, true);
  await waitConnected(ada);
  // A room joined later by the same client, by name: the pattern follows it too.
  assert.equal((await ada.subscribe('general')).successful, true);

  const sent: Array<{ channel: string; id: number }> = [];
  for (let i = 0; i < 10; i++) {
    const room = i % 2 === 0 ? 'lobby' : 'general';
    sent.push({ channel: `/chat/${room}`, id: (await bob.post(room, `m${i}`)).id });
  }
  await waitFor(() => viaPattern.filter((m) => sent.some((s) => s.id === m.id)).length >= sent.length, 'ada to get all 10 through /chat/*', 10_000);
  assert.deepEqual(viaPattern.filter((m) => sent.some((s) => s.id === m.id)), sent, 'each once, in commit order, on its room channel');
  assert.deepEqual(ada.texts('general'), ['m1', 'm3', 'm5', 'm7', 'm9'], 'the named subscription gets its room too');
});
