/**
 * The real CometD JavaScript client (cometd + cometd-nodejs-client) against
 * the real stack (hold proxy + app on a temp SQLite file): handshake,
 * subscribe, a connect parked by the proxy, messages both ways with a client
 * of our own browser protocol, unsubscribe, disconnect, and 402 followed by a
 * re-handshake.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ChatClient, waitFor } from '../helpers/chat-client.js';
import { startStack } from '../helpers/stack.js';
import { bayeuxPost, CometClient, waitConnected } from './bayeux-helpers.js';

test('a CometD client handshakes, subscribes, is parked by the proxy, and chats with a browser-protocol client both ways', async (t) => {
  const stack = await startStack(t, { app: { holdTimeoutS: 20 } });
  const bob = new ChatClient(stack.base);
  await bob.login('bob');
  await bob.call('POST', '/api/rooms', { name: 'general' });
  await bob.join('general');

  const ada = new CometClient(stack.base, { nick: 'ada' });
  t.after(() => ada.cometd.disconnect());
  const hs = await ada.handshake();
  assert.equal(hs.successful, true);
  assert.equal(typeof hs.clientId, 'string');
  assert.ok(hs.clientId!.length >= 40, 'the clientId carries 256 bits');
  assert.deepEqual(hs.supportedConnectionTypes, ['long-polling', 'callback-polling']);
  assert.deepEqual(hs.advice, { reconnect: 'retry', interval: 0, timeout: 20_000 });
  assert.equal(ada.user?.nick, 'ada');

  const sub = await ada.subscribe('general');
  assert.equal(sub.successful, true, JSON.stringify(sub));
  assert.equal(sub.subscription, '/chat/general');
  await waitConnected(ada);

  // Ada's next connect is held by the proxy (the first one is answered at once, as CometD does).
  await waitFor(async () => (await stack.stats()).parked === 1, 'the connect to be parked');
  // The join made Ada a member, as POST /api/rooms/:room/join does: Bob's client sees the join event.
  await waitFor(async () => {
    await bob.poll();
    return bob.received.some((e) => e.type === 'join' && e.user.nick === 'ada');
  }, 'bob to see ada join');

  // Browser protocol -> CometD.
  await bob.post('general', 'hello from the browser side');
  await waitFor(() => ada.texts('general').includes('hello from the browser side'), 'ada to receive bob’s message');
  const delivered = ada.received.find((e) => e.text === 'hello from the browser side')!;
  assert.equal(delivered.user.nick, 'bob');
  assert.equal(delivered.room, 'general');

  // CometD -> browser protocol.
  const pub = await ada.publish('general', 'hello from CometD');
  assert.equal(pub.successful, true, JSON.stringify(pub));
  await waitFor(async () => {
    await bob.poll();
    return bob.received.some((e) => e.text === 'hello from CometD');
  }, 'bob to receive ada’s message');
  const seen = bob.received.find((e) => e.text === 'hello from CometD')!;
  assert.equal(seen.user.id, ada.user!.id);
  // Ada, subscribed to the room, gets her own message too (Bayeux delivers to every subscriber).
  await waitFor(() => ada.texts('general').includes('hello from CometD'), 'ada to receive her own message');
  assert.deepEqual(ada.texts('general'), ['hello from the browser side', 'hello from CometD']);
});

test('a subscription made while the connect is parked wakes it, so the new room is delivered at once', async (t) => {
  const stack = await startStack(t, { app: { holdTimeoutS: 30 } });
  const bob = new ChatClient(stack.base);
  await bob.login('bob');
  await bob.call('POST', '/api/rooms', { name: 'later' });
  await bob.join('later');

  const ada = new CometClient(stack.base, { nick: 'ada' });
  t.after(() => ada.cometd.disconnect());
  await ada.handshake();
  await waitConnected(ada);
  await waitFor(async () => (await stack.stats()).parked === 1, 'a parked connect on no room');
  const before = await stack.stats();

  assert.equal((await ada.subscribe('later')).successful, true);
  // The wake re-asks the parked connect; the client re-parks on the new room well before the 30 s timeout.
  await waitFor(async () => {
    const s = await stack.stats();
    return s.reasks > before.reasks && s.parked === 1;
  }, 'the connect to be re-asked and parked again');
  await bob.post('later', 'in the new room');
  await waitFor(() => ada.texts('later').includes('in the new room'), 'ada to receive the message', 5000);
});

test('unsubscribe stops deliveries; disconnect forgets the client, whose clientId then gets 402', async (t) => {
  const stack = await startStack(t, { app: { holdTimeoutS: 20 } });
  const bob = new ChatClient(stack.base);
  await bob.login('bob');
  await bob.call('POST', '/api/rooms', { name: 'a' });
  await bob.call('POST', '/api/rooms', { name: 'b' });
  await bob.join('a');
  await bob.join('b');

  const ada = new CometClient(stack.base, { nick: 'ada' });
  await ada.handshake();
  const handleA = await new Promise<unknown>((resolve) => {
    const h = ada.cometd.subscribe('/chat/a', (m) => ada.received.push(m.data), () => resolve(h));
  });
  await ada.subscribe('b');
  await waitConnected(ada);

  const unsub = await new Promise<any>((resolve) => ada.cometd.unsubscribe(handleA as never, resolve));
  assert.equal(unsub.successful, true, JSON.stringify(unsub));
  await bob.post('a', 'not for ada');
  await bob.post('b', 'for ada');
  await waitFor(() => ada.texts('b').includes('for ada'), 'the message in b');
  // The message in `a` was committed before the one in `b`, and deliveries are in id order: it is not coming.
  assert.deepEqual(ada.texts('a'), []);

  const clientId = ada.cometd.getClientId()!;
  const bye = await ada.disconnect();
  assert.equal(bye.successful, true);
  // The disconnect woke the parked connect (answered, not left to time out).
  await waitFor(async () => (await stack.stats()).parked === 0, 'no parked connect left');

  const r = await bayeuxPost(stack.base, [{ channel: '/meta/connect', id: '9', clientId, connectionType: 'long-polling' }]);
  assert.equal(r.status, 200);
  assert.equal(r.body[0].successful, false);
  assert.equal(r.body[0].error, '402::Unknown client');
  assert.deepEqual(r.body[0].advice, { reconnect: 'handshake', interval: 0 });
  assert.equal(r.body[0].ext['comet-chat'].code, 'BAYEUX_ERR_UNKNOWN_CLIENT');
});

test('a client whose clientId the server forgot gets 402, handshakes again by itself and keeps chatting', async (t) => {
  const stack = await startStack(t, { app: { holdTimeoutS: 20 } });
  const bob = new ChatClient(stack.base);
  await bob.login('bob');
  await bob.call('POST', '/api/rooms', { name: 'general' });
  await bob.join('general');

  const ada = new CometClient(stack.base, { nick: 'ada' });
  t.after(() => ada.cometd.disconnect());
  // On every successful handshake (the first and any re-handshake), subscribe: a new clientId starts with none.
  ada.cometd.addListener('/meta/handshake', (m) => {
    if (m.successful) ada.cometd.subscribe('/chat/general', (d) => ada.received.push(d.data));
  });
  await ada.handshake();
  await waitConnected(ada);
  await waitFor(async () => (await stack.stats()).parked === 1, 'the connect to be parked');
  const firstId = ada.cometd.getClientId()!;

  // The server forgets the client (as when it expires): a raw disconnect with its clientId.
  const bye = await bayeuxPost(stack.base, [{ channel: '/meta/disconnect', id: 'x', clientId: firstId }]);
  assert.equal(bye.body[0].successful, true);

  // Its parked connect is woken, answered 402 with advice handshake, and the client handshakes again.
  await waitFor(() => ada.failedConnects.some((m) => typeof m.error === 'string' && m.error.startsWith('402:')), 'a 402 connect reply');
  await waitFor(() => ada.handshakes.filter((m) => m.successful).length === 2, 'a second handshake');
  const secondId = ada.cometd.getClientId()!;
  assert.notEqual(secondId, firstId);
  await waitFor(async () => (await stack.stats()).parked === 1, 'the new client parked');

  await bob.post('general', 'after the re-handshake');
  await waitFor(() => ada.texts('general').includes('after the re-handshake'), 'delivery to the new client');
});
