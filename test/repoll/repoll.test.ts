/**
 * Re-polls the proxy answers by itself (docs/protocol.md §13), against the real
 * stack: the app grants a lease with a poll's answer, and the client's next
 * polls are parked or answered from the channel buffer without reaching the
 * app. Everything the proxy cannot decide alone (another session, a changed
 * binding, a channel outside the lease, an expired or revoked lease, a cursor
 * older than the buffer, a restarted proxy) must reach the app as before.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { createHoldProxy } from '../../proxy/proxy.js';
import { adaAndBob, ChatClient, waitFor, type ChatEvent } from '../helpers/chat-client.js';
import { startStack, TEST_CONTROL_SECRET, TEST_LEASE_KEY, TEST_SECRET, type StackOverrides, type TestStack } from '../helpers/stack.js';

/** Counts the polls that reach the app (its own HTTP server, behind the proxy). */
function appPolls(stack: TestStack): { readonly count: number } {
  const counter = { count: 0 };
  stack.chat.server.on('request', (req) => {
    if (req.url?.startsWith('/api/poll')) counter.count++;
  });
  return counter;
}

/** Ada and Bob in `general`; Ada has polled once (through the app) and holds a lease. */
async function leased(t: TestContext, overrides: StackOverrides = {}) {
  const stack = await startStack(t, overrides);
  const polls = appPolls(stack);
  const { ada, bob } = await adaAndBob(stack.base);
  await deliverOne(stack, ada, bob, 'first');
  assert.equal(polls.count, 1, 'the first poll went to the app');
  assert.equal((await stack.stats()).leases, 1, 'the app granted a lease with it');
  return { stack, polls, ada, bob };
}

/** Ada polls, waits parked (by the app or the proxy), Bob posts: Ada gets exactly that message. */
async function deliverOne(stack: TestStack, ada: ChatClient, bob: ChatClient, text: string): Promise<void> {
  const before = (await stack.stats()).parked;
  const answer = ada.poll();
  await waitFor(async () => (await stack.stats()).parked > before, 'ada to be parked');
  await bob.post('general', text);
  const r = await answer;
  assert.equal(r.status, 200);
  assert.deepEqual(
    (r.body.events as ChatEvent[]).map((e) => e.text),
    [text],
  );
}

test('with a lease, re-polls are parked and answered by the proxy alone: the app sees none of them', async (t) => {
  const { stack, polls, ada, bob } = await leased(t);
  for (let i = 0; i < 5; i++) await deliverOne(stack, ada, bob, `m${i}`);
  assert.equal(polls.count, 1, 'no re-poll reached the app');
  const stats = await stack.stats();
  assert.ok(stats.repollParks >= 5, `parked by the proxy: ${stats.repollParks}`);
});

test('a client behind by several messages gets them in one answer, in order, with the headers of an app answer', async (t) => {
  const { stack, polls, ada, bob } = await leased(t);
  const publishes = (await stack.stats()).publishes;
  for (const text of ['a', 'b', 'c']) await bob.post('general', text);
  await waitFor(async () => (await stack.stats()).publishes >= publishes + 3, 'the three publishes');
  const r = await ada.poll();
  assert.equal(r.status, 200);
  assert.deepEqual((r.body.events as ChatEvent[]).map((e) => e.text), ['a', 'b', 'c']);
  assert.equal(r.headers.get('content-type'), 'application/json; charset=utf-8');
  assert.equal(r.headers.get('comet-connection-id'), ada.connectionId);
  assert.equal(r.headers.get('cache-control'), 'no-store');
  assert.equal(polls.count, 1, 'answered by the proxy');
  assert.equal((await stack.stats()).repollAnswers, 1);
});

test("another session presenting ada's connection ID gets the app's 403, never ada's messages", async (t) => {
  const { stack, polls, ada, bob } = await leased(t);
  const eve = new ChatClient(stack.base);
  await eve.login('eve');
  await eve.call('POST', '/api/rooms/general/join');
  await bob.post('general', 'for members who are ada');
  // Ada's exact poll (her cid, her cursor: news waiting in the buffer), with eve's cookie.
  const r = await eve.call('GET', ada.pollPath());
  assert.equal(r.status, 403);
  assert.equal(r.body.code, 'APP_ERR_FOREIGN_CONNECTION_ID');
  assert.equal(polls.count, 2, 'the app decided');
});

test('a lease presented with a changed binding (no cookie, or another value) goes to the app', async (t) => {
  const { stack, polls, ada } = await leased(t);
  const anonymous = await fetch(`${stack.base}${ada.pollPath()}`);
  assert.equal(anonymous.status, 401);
  const forged = await fetch(`${stack.base}${ada.pollPath()}`, { headers: { cookie: 'sid=not-adas-token' } });
  assert.equal(forged.status, 401);
  assert.equal(polls.count, 3);
});

test('a poll naming a room outside the lease goes to the app, which grants a lease for the new set', async (t) => {
  const { stack, polls, ada, bob } = await leased(t);
  await bob.call('POST', '/api/rooms', { name: 'random' });
  await ada.join('random');
  // Her lease names only general: the app holds this poll, with a lease for both rooms.
  await deliverOne(stack, ada, bob, 'after the join');
  assert.equal(polls.count, 2);
  await deliverOne(stack, ada, bob, 'on the new lease');
  assert.equal(polls.count, 2, 'the new lease covers both rooms');
});

test('leaving a room ends the lease: a poll that still names the room goes to the app and is refused', async (t) => {
  const { stack, polls, ada, bob } = await leased(t);
  await bob.call('POST', '/api/rooms', { name: 'random' });
  await bob.join('random');
  await ada.join('random');
  await deliverOne(stack, ada, bob, 'held by the app, with a lease for general and random');
  assert.equal(polls.count, 2);
  const publishes = (await stack.stats()).publishes;
  const left = await ada.call('POST', '/api/rooms/random/leave');
  assert.equal(left.status, 200);
  await waitFor(async () => (await stack.stats()).publishes > publishes, 'the leave event to be published', 1000);
  await bob.post('random', 'not for ada any more');
  const r = await ada.poll(); // still names random, with a cursor the buffer could serve
  assert.equal(r.status, 403);
  assert.equal(r.body.code, 'APP_ERR_NOT_MEMBER');
  assert.equal(polls.count, 3);
});

test('an expired lease goes to the app, which grants a fresh one', async (t) => {
  const { stack, polls, ada, bob } = await leased(t, { app: { leaseTtlS: 1 } });
  const grantedBy = Date.now() + 1000;
  await waitFor(() => Date.now() > grantedBy, 'the lease to expire', 2000);
  await deliverOne(stack, ada, bob, 'after expiry');
  assert.equal(polls.count, 2, 'the app answered');
  await deliverOne(stack, ada, bob, 'on the fresh lease');
  assert.equal(polls.count, 2);
});

test('a cursor older than the buffer goes to the app, which answers with everything since it', async (t) => {
  const { stack, polls, ada, bob } = await leased(t, { proxy: { bufferMaxItems: 2 } });
  const publishes = (await stack.stats()).publishes;
  for (const text of ['1', '2', '3', '4']) await bob.post('general', text);
  await waitFor(async () => (await stack.stats()).publishes >= publishes + 4, 'the publishes');
  const r = await ada.poll();
  assert.deepEqual((r.body.events as ChatEvent[]).map((e) => e.text), ['1', '2', '3', '4']);
  assert.equal(polls.count, 2, 'the app answered');
});

test('a restarted proxy knows no lease and no channel: the first re-poll goes to the app', async (t) => {
  const { stack, polls, ada, bob } = await leased(t);
  const fresh = createHoldProxy({
    secret: TEST_SECRET,
    controlSecret: TEST_CONTROL_SECRET,
    leaseKey: TEST_LEASE_KEY,
    upstreamUrl: `http://127.0.0.1:${stack.appPort}`,
    clientHost: '127.0.0.1',
    clientPort: 0,
    controlHost: '127.0.0.1',
    controlPort: 0,
  });
  t.after(() => fresh.close());
  const { clientPort } = await fresh.listen();
  const adaThere = new ChatClient(`http://127.0.0.1:${clientPort}`);
  (adaThere as unknown as { cookie: string }).cookie = (ada as unknown as { cookie: string }).cookie;
  adaThere.connectionId = ada.connectionId;
  for (const [room, cursor] of ada.cursors) adaThere.cursors.set(room, cursor);
  await bob.post('general', 'while ada moves');
  const r = await adaThere.poll();
  assert.deepEqual((r.body.events as ChatEvent[]).map((e) => e.text), ['while ada moves']);
  assert.equal(polls.count, 2, 'the restarted proxy asked the app');
});

test('a lease signed with another key is ignored: every poll goes to the app', async (t) => {
  const stack = await startStack(t, { proxy: { leaseKey: 'a-different-lease-key-0000' } });
  const polls = appPolls(stack);
  const { ada, bob } = await adaAndBob(stack.base);
  await deliverOne(stack, ada, bob, 'one');
  await deliverOne(stack, ada, bob, 'two');
  assert.equal(polls.count, 2);
  assert.equal((await stack.stats()).leases, 0);
});

test('a re-poll is the proxy\'s only with exactly the lease\'s two query parameters, in any order and escaping; anything else goes to the app', async (t) => {
  const { stack, polls, ada, bob } = await leased(t);
  await bob.post('general', 'waiting');
  await waitFor(async () => (await stack.stats()).bufferedItems >= 1, 'the message in the buffer');
  const [path, query] = ada.pollPath().split('?') as [string, string];
  const [rooms, cid] = query.split('&') as [string, string];
  const answeredByProxy = [`${cid}&${rooms}`, `${rooms.replace(':', '%3A')}&${cid}`];
  for (const q of answeredByProxy) {
    const r = await ada.call('GET', `${path}?${q}`);
    assert.equal(r.status, 200, q);
    assert.deepEqual((r.body.events as ChatEvent[]).map((e) => e.text), ['waiting'], q);
  }
  assert.equal(polls.count, 1, 'both answered by the proxy');
  const toApp = [`${query}&x=1`, `${query}&${cid}`, `${rooms}&${cid}%zz`, `${query}&`, `${rooms}`];
  for (const q of toApp) await ada.call('GET', `${path}?${q}`);
  assert.equal(polls.count, 1 + toApp.length, 'each of the others reached the app');
});
