/**
 * Connection IDs belong to the session that received them (docs/protocol.md §5):
 * a poll naming another session's ID is refused 403 by the app before the proxy
 * sees any hold, so the owner's parked poll and queue are untouched. Room
 * membership guards poll, history and post the same way, through the proxy.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ChatClient, waitFor } from '../helpers/chat-client.js';
import { startStack, type TestStack } from '../helpers/stack.js';
import type { ProxyStats } from '../../protocol/control-api.js';

/**
 * The proxy's state, less `repollToApp`: mallory's poll names ada's connection ID, whose lease the proxy holds,
 * so the proxy counts it as a leased re-poll it sent to the app (the binding did not match). That count is the
 * one thing that may move.
 */
async function proxyState(stack: TestStack): Promise<Omit<ProxyStats, 'repollToApp'>> {
  const { repollToApp: _counted, ...state } = await stack.stats();
  return state;
}

test('a poll with another session\'s connection ID is 403 and leaves the owner\'s parked poll parked, stats unchanged', { timeout: 15_000 }, async (t) => {
  const stack = await startStack(t);
  const ada = new ChatClient(stack.base);
  const mallory = new ChatClient(stack.base);
  await ada.login('ada');
  await mallory.login('mallory');
  await ada.post('lobby', 'hello'); // signing in posts nothing (issue 18): this is the lobby's news
  ada.cursors.set('lobby', 0);
  await ada.poll(); // news past cursor 0: answered at once, with ada's connection ID and the lobby cursor
  const cid = ada.connectionId!;
  assert.match(cid, /^[A-Za-z0-9_-]{21}$/);

  const parked = ada.poll();
  await waitFor(async () => (await stack.stats()).parked === 1, 'ada\'s poll to park');
  const before = await proxyState(stack);

  mallory.cursors.set('lobby', 0);
  mallory.connectionId = cid;
  const stolen = await mallory.poll();
  assert.equal(stolen.status, 403);
  assert.deepEqual(stolen.body, { code: 'APP_ERR_FOREIGN_CONNECTION_ID', message: 'this connection ID belongs to another session' });
  assert.equal(stolen.headers.get('comet-connection-id'), null, 'the refusal names no connection ID');
  assert.deepEqual(await proxyState(stack), before, 'nothing in the proxy moved: no hold, no supersession, no release');

  // Ada's poll is still parked under her ID and gets the next message.
  const sent = await mallory.post('lobby', 'hello ada');
  const answer = await parked;
  assert.equal(answer.status, 200);
  assert.deepEqual(answer.body.events.map((e: { id: number }) => e.id), [sent.id]);
  assert.equal(answer.headers.get('comet-connection-id'), cid, 'delivered to the request parked under ada\'s ID');
});

test('a poll with another session\'s connection ID leaves the owner\'s queue alone', { timeout: 15_000 }, async (t) => {
  const stack = await startStack(t);
  const ada = new ChatClient(stack.base);
  const mallory = new ChatClient(stack.base);
  await ada.login('ada');
  await mallory.login('mallory');
  await ada.post('lobby', 'hello'); // the lobby's news: signing in posts nothing (issue 18)
  ada.cursors.set('lobby', 0);
  await ada.poll();
  const cid = ada.connectionId!;

  // Between ada's polls, a push for her is queued.
  const pushed = await stack.control('/push/', {
    items: [{ 'connection-id': cid, formats: { 'http-response': { headers: { 'content-type': 'application/json' }, body: '{"events":[],"pushed":true}' } } }],
  });
  assert.deepEqual(pushed.body, { delivered: 0, queued: 1, dropped: 0, reasked: 0 });
  const before = await proxyState(stack);

  mallory.cursors.set('lobby', 0);
  mallory.connectionId = cid;
  assert.equal((await mallory.poll()).status, 403);
  assert.deepEqual(await proxyState(stack), before, 'the queued item is still there, for ada only');

  const next = await ada.poll();
  assert.equal(next.status, 200);
  assert.equal(next.body.pushed, true);
  assert.equal((await stack.stats()).queuedItems, 0);
});

test('through the proxy, poll, history and post in a room one is not a member of are 403 APP_ERR_NOT_MEMBER', { timeout: 15_000 }, async (t) => {
  const stack = await startStack(t);
  const ada = new ChatClient(stack.base);
  const bob = new ChatClient(stack.base);
  await ada.login('ada');
  await bob.login('bob');
  assert.equal((await ada.call('POST', '/api/rooms', { name: 'private' })).status, 201);
  await ada.join('private');
  await ada.post('private', 'for members only');

  const refusals = [
    await bob.call('GET', '/api/poll?rooms=private:0'),
    await bob.call('GET', '/api/poll?rooms=lobby:0,private:0'),
    await bob.call('GET', '/api/rooms/private/messages'),
    await bob.call('GET', '/api/rooms/private/members'),
    await bob.call('POST', '/api/rooms/private/messages', { text: 'let me in' }),
  ];
  for (const res of refusals) {
    assert.equal(res.status, 403);
    assert.deepEqual(res.body, { code: 'APP_ERR_NOT_MEMBER', message: 'you are not a member of room "private"' });
  }
  const history = await ada.call('GET', '/api/rooms/private/messages');
  assert.equal(history.body.events.filter((e: { type: string }) => e.type === 'message').length, 1, 'bob\'s post was not written');
  assert.equal((await stack.stats()).parked, 0);
});
