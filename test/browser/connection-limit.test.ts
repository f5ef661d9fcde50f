/**
 * The per-host connection limit (Chromium: 6 per host name) and the three poll
 * strategies, with one page in 9 rooms (the lobby and 8 more):
 *   per-room  9 polls on one host: 6 park, the rest and every other request
 *             (a post!) wait in the browser until a poll answers;
 *   sharded   one poll per room spread over c1..c8.chat.test through bridges:
 *             all park at once, posts go straight through;
 *   multiplex one poll for all rooms.
 * Messages come from a second user posting through the app's API from Node.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser } from 'playwright-core';
import { launchBrowser, WAIT_MS, type XhrRecord } from '../helpers/browser.js';
import { startBrowserStack, SHARD_COUNT, type BrowserStack } from '../helpers/browser-stack.js';
import { ChatClient, waitFor } from '../helpers/chat-client.js';

const ROOMS = ['r1', 'r2', 'r3', 'r4', 'r5', 'r6', 'r7', 'r8'];
/** "Promptly": far below the 55 s hold a stalled request would wait for. */
const PROMPT_MS = 5000;

let browser: Browser;
before(async () => {
  browser = await launchBrowser();
});
after(() => browser?.close());

/**
 * bob creates and joins the rooms. He talks to the app directly (not through
 * the proxy, which only serves chat.test names); his writes still reach the
 * page through the outbox relay and the proxy.
 */
async function poster(stack: BrowserStack): Promise<ChatClient> {
  const bob = new ChatClient(`http://127.0.0.1:${stack.appPort}`);
  await bob.login('bob');
  for (const room of ROOMS) {
    await bob.call('POST', '/api/rooms', { name: room });
    await bob.join(room);
  }
  return bob;
}

async function parked(stack: BrowserStack, n: number, what: string): Promise<void> {
  await waitFor(async () => (await stack.stats()).parked === n, what, WAIT_MS);
}

const isPoll = (r: XhrRecord) => r.url.includes('/api/poll?');
const pending = (r: XhrRecord) => r.doneAt === null;

/** The most poll XHRs the page had open at the same time. */
function maxConcurrentPolls(log: XhrRecord[]): number {
  const polls = log.filter(isPoll);
  let max = 0;
  for (const p of polls) {
    const open = polls.filter((q) => q.sentAt <= p.sentAt && (q.doneAt === null || q.doneAt > p.sentAt)).length;
    max = Math.max(max, open);
  }
  return max;
}

test('per-room polls on one host stall the page: a post waits behind the 6 parked polls', async (t) => {
  const stack = await startBrowserStack(t, browser);
  const bob = await poster(stack);
  const ada = await stack.openPage('strategy=per-room');
  await ada.login('ada');
  await ada.joinRooms(ROOMS);
  await ada.activate('r1');

  // The page runs 9 polls, but only 6 reach the proxy: the browser queues the rest.
  await ada.waitForLoops(9);
  await parked(stack, 6, '6 polls to be parked');
  assert.equal((await ada.xhrLog()).filter((r) => isPoll(r) && pending(r)).length, 9);

  await ada.typeAndSend('stuck behind my own polls');
  // The post waits in the page's outbox, shown as sending.
  await ada.page.waitForSelector('li.pending[data-state="sending"]');

  // r1's poll was among the first 6 sent (lobby, r1..r5), so it is parked and answers bob's message...
  const fromBob = await bob.post('r1', 'ping from bob');
  await ada.waitForEvent('r1', fromBob.id);
  // ...yet the connection it freed went to the next queued poll, not to the post.
  let log = await ada.xhrLog();
  const post = () => log.find((r) => r.method === 'POST' && r.url.endsWith('/api/rooms/r1/messages'))!;
  const answered = log.find((r) => isPoll(r) && r.url.includes('rooms=r1:') && r.status === 200)!;
  assert.ok(answered, 'the r1 poll answered');
  assert.ok(post().sentAt < answered.doneAt!, 'the post was sent before the poll answered');
  assert.equal(post().doneAt, null, 'the post is still waiting for a connection');
  assert.equal(await ada.page.locator('li.pending[data-state="sending"]').count(), 1);
  await parked(stack, 6, 'a queued poll to take the freed connection');

  // Answering the parked polls frees connections, and the post finally goes out.
  await Promise.all(['lobby', ...ROOMS].map((room) => bob.post(room, `wake ${room}`)));
  await ada.page.waitForSelector('li.pending', { state: 'detached' });
  log = await ada.xhrLog();
  assert.equal(post().status, 201);
  assert.deepEqual(ada.errors, []);
});

test('sharded polls park on c1..c8 at once; every room hears promptly and posts are not held up', async (t) => {
  const stack = await startBrowserStack(t, browser);
  const bob = await poster(stack);
  const ada = await stack.openPage('strategy=sharded');
  await ada.login('ada');
  await ada.joinRooms(ROOMS);
  await ada.activate('r1');

  await ada.waitForLoops(9);
  await parked(stack, 9, 'all 9 polls to be parked at the same time');
  const state = await ada.state();
  assert.equal(state.client.strategy, 'sharded');
  const shardOrigins = Array.from({ length: SHARD_COUNT }, (_, i) => `http://c${i + 1}.chat.test:${stack.clientPort}`);
  assert.deepEqual(Object.keys(state.client.bridges).sort(), [...shardOrigins].sort());
  assert.ok(Object.values(state.client.bridges).every((mode) => mode === 'document.domain'), JSON.stringify(state.client.bridges));
  // Polls went to the shard hosts only; the page's host served everything else.
  const pollHosts = new Set(ada.requests.filter((u) => u.includes('/api/poll?')).map((u) => new URL(u).host));
  assert.deepEqual([...pollHosts].sort(), shardOrigins.map((o) => new URL(o).host).sort());

  // The page's own post completes at once while the polls stay parked.
  const started = Date.now();
  await ada.typeAndSend('straight through');
  // Sent when its pending copy in the page's outbox is gone (replaced by the committed message).
  await ada.page.waitForSelector('section[data-room="r1"] li.message.mine', { state: 'attached', timeout: PROMPT_MS });
  await ada.page.waitForSelector('li.pending', { state: 'detached', timeout: PROMPT_MS });
  assert.ok(Date.now() - started < PROMPT_MS);
  assert.equal(await ada.page.locator('#post-error').textContent(), '');

  // A message in each of the 8 rooms reaches the page promptly.
  const posted = await Promise.all(ROOMS.map((room) => bob.post(room, `news in ${room}`)));
  for (const event of posted) await ada.waitForEvent(event.room, event.id, PROMPT_MS);
  for (const event of posted) assert.equal(await ada.countEvent(event.id), 1);
  const unread = (await ada.state()).unread;
  for (const room of ROOMS.filter((r) => r !== 'r1')) assert.equal(unread[room], 1, `unread in ${room}`);
  assert.deepEqual(ada.errors, []);
});

test('multiplex: one poll carries all 9 rooms, and only one is ever outstanding', async (t) => {
  const stack = await startBrowserStack(t, browser);
  const bob = await poster(stack);
  const ada = await stack.openPage(); // multiplex is the default
  await ada.login('ada');
  await ada.joinRooms(ROOMS);

  await ada.waitForLoops(1);
  await parked(stack, 1, 'the one poll to be parked');
  const posted = await Promise.all(ROOMS.map((room) => bob.post(room, `all over ${room}`)));
  for (const event of posted) await ada.waitForEvent(event.room, event.id, PROMPT_MS);
  await parked(stack, 1, 'the poll to be parked again');

  const log = await ada.xhrLog();
  assert.equal(maxConcurrentPolls(log), 1, 'never more than one poll open');
  const last = log.filter(isPoll).at(-1)!;
  const rooms = new URL(last.url, 'http://x').searchParams.get('rooms')!.split(',').map((p) => p.split(':')[0]);
  assert.deepEqual(rooms, ['lobby', ...ROOMS]);
  const pollHosts = new Set(ada.requests.filter((u) => u.includes('/api/poll?')).map((u) => new URL(u).host));
  assert.deepEqual([...pollHosts], [`chat.test:${stack.clientPort}`]);
  for (const event of posted) assert.equal(await ada.countEvent(event.id), 1);
  assert.deepEqual(ada.errors, []);
});
