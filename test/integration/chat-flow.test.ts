/**
 * The chat through the real proxy and app: the quick-start story (log in, join,
 * poll parks, another user posts, the poll returns the message) and the
 * protocol's visible behaviour at the client side.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startStack } from '../helpers/stack.js';
import { adaAndBob, ChatClient, waitFor } from '../helpers/chat-client.js';

test('a parked poll returns the message another user posts', async (t) => {
  const stack = await startStack(t);
  const { ada, bob } = await adaAndBob(stack.base);

  const pending = ada.poll();
  await waitFor(async () => (await stack.stats()).parked === 1, 'the poll to be parked');
  const posted = await bob.post('general', 'hello ada');
  const answer = await pending;

  assert.equal(answer.status, 200);
  assert.deepEqual(
    answer.body.events.map((e: { id: number; text: string }) => [e.id, e.text]),
    [[posted.id, 'hello ada']],
  );
  for (const name of answer.headers.keys()) assert.ok(!name.startsWith('grip-'), `${name} leaked to the client`);
  assert.equal((await stack.stats()).parked, 0);
});

test('one poll covers several rooms and each room keeps its own cursor', async (t) => {
  const stack = await startStack(t);
  const ada = new ChatClient(stack.base);
  const bob = new ChatClient(stack.base);
  await ada.login('ada');
  await bob.login('bob');
  for (const name of ['red', 'blue']) {
    await bob.call('POST', '/api/rooms', { name });
    await bob.join(name);
    await ada.join(name);
  }

  let pending = ada.poll();
  await waitFor(async () => (await stack.stats()).parked === 1, 'the first poll to be parked');
  const inBlue = await bob.post('blue', 'to blue');
  assert.deepEqual((await pending).body.events.map((e: { id: number }) => e.id), [inBlue.id]);
  assert.equal(ada.cursors.get('blue'), inBlue.id);

  pending = ada.poll();
  await waitFor(async () => (await stack.stats()).parked === 1, 'the second poll to be parked');
  const inRed = await bob.post('red', 'to red');
  assert.deepEqual((await pending).body.events.map((e: { id: number }) => e.id), [inRed.id]);
  assert.deepEqual(
    ada.received.map((e) => [e.room, e.text]),
    [['blue', 'to blue'], ['red', 'to red']],
  );
});

test('a poll with news past its cursor is answered at once without parking', async (t) => {
  const stack = await startStack(t);
  const { ada, bob } = await adaAndBob(stack.base);
  const first = await bob.post('general', 'one');
  const second = await bob.post('general', 'two');

  const answer = await ada.poll();
  assert.deepEqual(answer.body.events.map((e: { id: number }) => e.id), [first.id, second.id]);
  const stats = await stack.stats();
  assert.equal(stats.parked, 0);
  assert.equal(stats.holds, 0);
});

test('a parked poll that times out gets the app\'s held response and the client re-polls from its cursor', async (t) => {
  const stack = await startStack(t, { app: { holdTimeoutS: 0.1 }, proxy: { minHoldTimeoutMs: 0 } });
  const ada = new ChatClient(stack.base);
  await ada.login('ada');
  await ada.call('POST', '/api/rooms', { name: 'quiet' });
  await ada.join('quiet');

  const answer = await ada.poll();
  assert.equal(answer.status, 200);
  assert.deepEqual(answer.body.events, []);
  assert.equal(answer.body.connectionId, ada.connectionId);
  assert.equal(answer.headers.get('comet-connection-id'), ada.connectionId);
  const stats = await stack.stats();
  assert.equal(stats.timeouts, 1);
  assert.equal(stats.parked, 0);
});

test('the page and other non-held responses pass through the proxy', async (t) => {
  const stack = await startStack(t);
  const page = await fetch(`${stack.base}/`);
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type') ?? '', /text\/html/);
  assert.match(await page.text(), /comet-chat/);

  const missing = await fetch(`${stack.base}/api/nope`);
  assert.equal(missing.status, 404);
  assert.equal(((await missing.json()) as { code: string }).code, 'APP_ERR_NOT_FOUND');
});

test('a client cannot poll with another session\'s connection ID', async (t) => {
  const stack = await startStack(t);
  const ada = new ChatClient(stack.base);
  const eve = new ChatClient(stack.base);
  await ada.login('ada');
  await eve.login('eve');
  await ada.call('POST', '/api/rooms', { name: 'general' });
  await ada.join('general');
  await eve.join('general');
  await ada.post('general', 'so ada has news and her poll answers at once');
  await ada.poll();
  assert.ok(ada.connectionId);

  eve.connectionId = ada.connectionId;
  const stolen = await eve.poll();
  assert.equal(stolen.status, 403);
  assert.equal(stolen.body.code, 'APP_ERR_FOREIGN_CONNECTION_ID');
  assert.equal((await stack.stats()).parked, 0);
});
