/**
 * One poll for all tabs (public/js/comet-tabs.js), in real Chromium against the
 * real stack. Three tabs of one browser profile (one context: shared cookies and
 * localStorage), each showing its own rooms:
 *   tab 0  lobby, r1        (opened first: it leads)
 *   tab 1  lobby, r2
 *   tab 2  lobby, r1, r2
 * Only the leader polls (the proxy holds one poll; the other tabs send none),
 * and bob's messages, posted from Node through the app, reach every tab that
 * shows their room once and in order: while all three run (multiplexed, and
 * sharded: the leader runs the strategy for everyone), when the leader tab is
 * closed mid-conversation, and when it hangs. Screenshots of each tab go to
 * test-artifacts/. Without usable localStorage,
 * or with `?tabs=off`, every tab polls for itself and still gets everything.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { ChatPage, launchBrowser, WAIT_MS } from '../helpers/browser.js';
import { startBrowserStack, type BrowserStack } from '../helpers/browser-stack.js';
import { ChatClient, waitFor, type ChatEvent } from '../helpers/chat-client.js';

const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));
const SHOWN = [['lobby', 'r1'], ['lobby', 'r2'], ['lobby', 'r1', 'r2']];
/** The three rooms bob talks in, round robin. */
const TALK = ['lobby', 'r1', 'r2'];

/** Init scripts: a browser without BroadcastChannel (relay through localStorage), and one whose localStorage throws. */
const NO_BROADCAST_CHANNEL = 'delete window.BroadcastChannel;';
const STORAGE_THROWS = `Object.defineProperty(window, 'localStorage', {
  configurable: true,
  get() { throw new DOMException('The user denied storage', 'SecurityError'); },
});`;

let browser: Browser;
before(async () => {
  browser = await launchBrowser();
});
after(() => browser?.close());

async function poster(stack: BrowserStack): Promise<ChatClient> {
  const bob = new ChatClient(`http://127.0.0.1:${stack.appPort}`);
  await bob.login('bob');
  for (const room of ['r1', 'r2']) {
    await bob.call('POST', '/api/rooms', { name: room });
    await bob.join(room);
  }
  return bob;
}

/** Ada signs in in tab 0; tabs 1 and 2 open in the same context (her session) and each shows its rooms. */
async function openTabs(stack: BrowserStack, query: string, initScript?: string): Promise<ChatPage[]> {
  const first = await stack.openPage(query);
  if (initScript) {
    await first.context.addInitScript({ content: initScript });
    await first.page.reload();
  }
  await first.login('ada');
  const tabs = [first];
  for (let i = 1; i < SHOWN.length; i++) {
    const tab = await ChatPage.openTab(first, stack.pageUrl(query));
    await tab.page.waitForSelector('body[data-ready="true"]');
    tabs.push(tab);
  }
  for (let i = 0; i < tabs.length; i++) await tabs[i]!.joinRooms(SHOWN[i]!.filter((r) => r !== 'lobby'));
  return tabs;
}

async function roles(tabs: ChatPage[]): Promise<string[]> {
  return Promise.all(tabs.map(async (tab) => (await tab.state()).client.tabs.role));
}

/** Waits until exactly one of `tabs` leads and the proxy holds `parked` polls; returns the leader's index. */
async function oneLeader(stack: BrowserStack, tabs: ChatPage[], parked = 1): Promise<number> {
  await waitFor(async () => {
    const r = await roles(tabs);
    return r.filter((x) => x === 'leader').length === 1 && r.filter((x) => x === 'follower').length === tabs.length - 1;
  }, 'one leader tab and the others following', WAIT_MS);
  await waitFor(async () => (await stack.stats()).parked === parked, `${parked} parked poll(s)`, WAIT_MS);
  return (await roles(tabs)).indexOf('leader');
}

const pollsOf = (tab: ChatPage) => tab.requests.filter((u) => u.includes('/api/poll?')).length;

/** Event ids shown in a tab's pane of `room`, in page order. */
function shownIds(tab: ChatPage, room: string): Promise<number[]> {
  return tab.page.locator(`section[data-room="${room}"] [data-event-id]`).evaluateAll((nodes) =>
    nodes.map((n) => Number((n as unknown as { getAttribute(a: string): string }).getAttribute('data-event-id'))),
  );
}

/**
 * Every tab in `tabs` (index into SHOWN given by `shows`) shows each posted
 * event of its rooms exactly once, each pane in strictly increasing id order,
 * and no pane for a room it does not show.
 */
async function assertDelivered(tabs: Array<{ tab: ChatPage; shows: string[] }>, posted: ChatEvent[]): Promise<void> {
  for (const { tab, shows } of tabs) {
    for (const event of posted.filter((e) => shows.includes(e.room))) await tab.waitForEvent(event.room, event.id);
    for (const room of TALK) {
      const ids = await shownIds(tab, room);
      if (!shows.includes(room)) {
        assert.deepEqual(ids, [], `a tab not showing ${room} has no pane for it`);
        continue;
      }
      for (let i = 1; i < ids.length; i++) assert.ok(ids[i]! > ids[i - 1]!, `${room}: ${ids.join(',')} once each, in order`);
      const expected = posted.filter((e) => e.room === room).map((e) => e.id);
      assert.deepEqual(ids.filter((id) => expected.includes(id)), expected, `${room}: every posted message`);
    }
    assert.deepEqual(tab.errors, []);
  }
}

async function talk(bob: ChatClient, count: number, label: string, into: ChatEvent[]): Promise<void> {
  for (let i = 0; i < count; i++) into.push(await bob.post(TALK[into.length % TALK.length]!, `${label} ${into.length}`));
}

async function screenshots(tabs: ChatPage[], name: string): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  for (let i = 0; i < tabs.length; i++) {
    if (!tabs[i]!.page.isClosed()) await tabs[i]!.page.screenshot({ path: join(ARTIFACTS, `tabs-${name}-${i}.png`) });
  }
}

for (const relay of ['BroadcastChannel', 'localStorage'] as const) {
  test(`three tabs share one poll (relay over ${relay}): only the leader polls, every tab gets its rooms' messages once and in order`, async (t) => {
    const stack = await startBrowserStack(t, browser);
    const bob = await poster(stack);
    const tabs = await openTabs(stack, '', relay === 'localStorage' ? NO_BROADCAST_CHANNEL : undefined);
    const leader = await oneLeader(stack, tabs);
    assert.equal(leader, 0, 'the first tab leads');
    const states = await Promise.all(tabs.map((tab) => tab.state()));
    assert.ok(states.every((s) => s.client.tabs.relay === relay && s.client.tabs.leader === states[0]!.client.tabs.id));
    // The leader polls the union of every tab's rooms, in one poll (multiplex).
    await waitFor(async () => {
      const loops = (await tabs[0]!.state()).client.loops;
      return loops.length === 1 && [...loops[0]!.rooms].sort().join() === 'lobby,r1,r2' && loops[0]!.state === 'polling';
    }, 'the leader to poll lobby, r1 and r2', WAIT_MS);

    const posted: ChatEvent[] = [];
    await talk(bob, 12, 'hello', posted);
    // Relayed text is still only text in the followers.
    const markup = '<img src=x onerror="document.body.dataset.owned=1"><b>bold?</b>';
    posted.push(await bob.post('lobby', markup));
    await assertDelivered(tabs.map((tab, i) => ({ tab, shows: SHOWN[i]! })), posted);
    for (const tab of tabs) {
      const shown = tab.page.locator(`[data-event-id="${posted.at(-1)!.id}"]`);
      assert.equal(await shown.locator('.msg-text').textContent(), markup);
      assert.equal(await shown.locator('img, b').count(), 0);
      assert.equal(await tab.page.locator('body[data-owned]').count(), 0);
    }

    // Only the leader ever sent a poll; the proxy holds one.
    assert.ok(pollsOf(tabs[0]!) > 0);
    assert.deepEqual(tabs.slice(1).map(pollsOf), [0, 0], 'followers send no polls');
    assert.equal((await stack.stats()).parked, 1);
    // What the storage relay carried is not left in the profile.
    const kept = await tabs[0]!.page.evaluate(() => Object.keys((globalThis as unknown as { localStorage: object }).localStorage));
    assert.deepEqual(kept.filter((k) => k.endsWith(':relay')), []);
    // The followers' status line mirrors the leader's poll.
    for (const tab of tabs) await tab.page.waitForSelector('#status[data-state="live"]');
    await screenshots(tabs, relay);
  });
}

test('sharded: the leader runs the strategy for every tab, one poll per room through the shard bridges, and relays', async (t) => {
  const stack = await startBrowserStack(t, browser);
  const bob = await poster(stack);
  const tabs = await openTabs(stack, 'strategy=sharded');
  assert.equal(await oneLeader(stack, tabs, 3), 0, 'three parked polls: lobby, r1 and r2, all from the leader');
  const loops = (await tabs[0]!.state()).client.loops;
  assert.deepEqual(loops.map((l) => l.rooms.join()).sort(), ['lobby', 'r1', 'r2']);
  const posted: ChatEvent[] = [];
  await talk(bob, 9, 'sharded', posted);
  await assertDelivered(tabs.map((tab, i) => ({ tab, shows: SHOWN[i]! })), posted);
  assert.deepEqual(tabs.slice(1).map(pollsOf), [0, 0], 'followers send no polls');
  assert.ok(tabs[0]!.requests.filter((u) => u.includes('/api/poll?')).every((u) => /^http:\/\/c\d\.chat\.test:/.test(u)), 'polls go to shard hosts');
});

test('tabs polling for themselves take every connection: six park at once and a post waits; sharing, seven hold one', async (t) => {
  const stack = await startBrowserStack(t, browser);
  const bob = await poster(stack);
  for (const [query, nick] of [['tabs=off', 'ada'], ['', 'eve']] as const) {
    // Unshared, a seventh tab could not even load its page: the six parked polls hold the host's 6 connections.
    const count = query === 'tabs=off' ? 6 : 7;
    const first = await stack.openPage(query);
    await first.login(nick);
    const tabs = [first];
    for (let i = 1; i < count; i++) {
      const tab = await ChatPage.openTab(first, stack.pageUrl(query));
      await tab.page.waitForSelector('body[data-ready="true"]');
      tabs.push(tab);
    }
    if (query === 'tabs=off') {
      // Their first polls differ by each page's t= tag (test/browser/poll-tag.test.ts), so all six park
      // without a message to answer them one by one, and every connection is held.
      await waitFor(async () => (await stack.stats()).parked === 6, '6 parked polls', WAIT_MS);
      await tabs[5]!.typeAndSend('behind six polls');
      await waitFor(async () => (await tabs[5]!.xhrLog()).some((r) => r.method === 'POST' && r.url.endsWith('/api/rooms/lobby/messages') && r.doneAt === null),
        'the post to wait in the browser', WAIT_MS);
      assert.equal((await stack.stats()).parked, 6);
      // A message answers the polls; the post gets a connection and arrives, once.
      await bob.post('lobby', 'wake up');
      await tabs[5]!.page.waitForSelector('section[data-room="lobby"] li.message.mine', { state: 'attached', timeout: WAIT_MS });
      await Promise.all(tabs.map((tab) => tab.context.close()));
      await waitFor(async () => (await stack.stats()).parked === 0, 'the closed tabs\' polls to go', WAIT_MS);
      continue;
    }
    await oneLeader(stack, tabs);
    // One connection for the poll leaves the others free: a post from the last tab goes straight through.
    await tabs[6]!.typeAndSend('from the seventh tab');
    await tabs[6]!.page.waitForSelector('section[data-room="lobby"] li.message.mine', { state: 'attached', timeout: 5000 });
    const hello = await bob.post('lobby', 'hello, all seven');
    for (const tab of tabs) await tab.waitForEvent('lobby', hello.id);
    assert.equal(tabs.filter((tab) => pollsOf(tab) > 0).length, 1);
    assert.equal((await stack.stats()).parked, 1);
  }
});

test('closing the leader tab mid-conversation: a follower takes over, the survivors get every message once and in order', async (t) => {
  const stack = await startBrowserStack(t, browser);
  const bob = await poster(stack);
  const tabs = await openTabs(stack, '');
  assert.equal(await oneLeader(stack, tabs), 0);
  const posted: ChatEvent[] = [];
  await talk(bob, 6, 'before', posted);
  await tabs[2]!.waitForEvent(posted.at(-1)!.room, posted.at(-1)!.id); // tab 2 shows every room

  // bob keeps talking while the leader closes and the others elect a new one.
  const closeStarted = Date.now();
  const closing = tabs[0]!.page.close();
  await talk(bob, 9, 'during', posted);
  await closing;
  const survivors = tabs.slice(1);
  await waitFor(async () => (await roles(survivors)).includes('leader'), 'a survivor to lead', WAIT_MS);
  // The closing leader removed its lease on pagehide. Had it not, no survivor could lead before the
  // lease went stale: 3 s after its last renewal, which was at most 1 s before the close.
  const handoverMs = Date.now() - closeStarted;
  t.diagnostic(`handover after close: ${handoverMs} ms`);
  assert.ok(handoverMs < 2000, `a survivor led ${handoverMs} ms after the close`);
  const newLeader = survivors[await oneLeader(stack, survivors)]!;
  await talk(bob, 6, 'after', posted);

  await assertDelivered(survivors.map((tab, i) => ({ tab, shows: SHOWN[i + 1]! })), posted);
  // The new leader polls for both: r1 is shown only by tab 2, r2 by both.
  assert.ok(pollsOf(newLeader) > 0, 'the new leader polls');
  const loops = (await newLeader.state()).client.loops;
  assert.deepEqual([...loops[0]!.rooms].sort(), ['lobby', 'r1', 'r2']);
  assert.equal(survivors.filter((tab) => pollsOf(tab) > 0).length, 1, 'one survivor polls');
  await screenshots(survivors, 'after-close');
});

test('a leader tab that hangs is replaced after its lease goes silent for 3 s, without loss', async (t) => {
  const stack = await startBrowserStack(t, browser);
  const bob = await poster(stack);
  const tabs = await openTabs(stack, '');
  assert.equal(await oneLeader(stack, tabs), 0);
  const posted: ChatEvent[] = [];
  await talk(bob, 3, 'before', posted);
  await tabs[2]!.waitForEvent(posted.at(-1)!.room, posted.at(-1)!.id); // tab 2 shows every room

  // Freeze the leader's script (as a hung or crashed tab): no heartbeat, no relay, no unload.
  const cdp = await tabs[0]!.context.newCDPSession(tabs[0]!.page);
  await cdp.send('Debugger.enable');
  await cdp.send('Debugger.pause');
  const frozenAt = Date.now();
  await talk(bob, 6, 'during', posted);
  const survivors = tabs.slice(1);
  // The hung tab's poll stays parked until answered; the new leader parks its own.
  await waitFor(async () => (await roles(survivors)).includes('leader'), 'a survivor to lead', WAIT_MS);
  const takeoverMs = Date.now() - frozenAt;
  t.diagnostic(`takeover after the leader hung: ${takeoverMs} ms`);
  // Not before the lease is 3 s old; its last renewal was at most 1 s before the freeze.
  assert.ok(takeoverMs >= 2000, `a survivor led ${takeoverMs} ms after the freeze`);
  await talk(bob, 3, 'after', posted);
  await assertDelivered(survivors.map((tab, i) => ({ tab, shows: SHOWN[i + 1]! })), posted);
  assert.equal(survivors.filter((tab) => pollsOf(tab) > 0).length, 1, 'one survivor polls');

  // Woken up, the old leader finds another tab's id in the lease and steps down.
  await cdp.send('Debugger.resume');
  await waitFor(async () => (await roles(tabs)).filter((r) => r === 'leader').length === 1 && (await roles(tabs))[0] === 'follower',
    'the old leader to follow', WAIT_MS);
  await talk(bob, 3, 'woken', posted);
  await assertDelivered(tabs.map((tab, i) => ({ tab, shows: SHOWN[i]! })), posted);
  await cdp.detach();
});

for (const variant of ['storage throws', 'tabs=off'] as const) {
  test(`${variant}: every tab polls for itself and still gets every message once and in order`, async (t) => {
    const stack = await startBrowserStack(t, browser);
    const bob = await poster(stack);
    const tabs = await openTabs(stack, variant === 'tabs=off' ? 'tabs=off' : '', variant === 'storage throws' ? STORAGE_THROWS : undefined);
    assert.deepEqual(await roles(tabs), ['off', 'off', 'off']);
    await waitFor(async () => (await stack.stats()).parked === 3, 'three parked polls, one per tab', WAIT_MS);
    const posted: ChatEvent[] = [];
    await talk(bob, 6, 'alone', posted);
    await assertDelivered(tabs.map((tab, i) => ({ tab, shows: SHOWN[i]! })), posted);
    assert.ok(tabs.every((tab) => pollsOf(tab) > 0));
  });
}
