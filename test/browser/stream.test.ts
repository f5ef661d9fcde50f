/**
 * The page's streaming transports in Chromium (public/js/comet-stream.js, docs/protocol.md §10.2): two users
 * talk both ways over one stream each, the proxy restarts mid-conversation and messages are posted while it is
 * down, and each page shows every message once, in order. The automatic choice is EventSource; `?transport=`
 * forces XHR streaming, the forever iframe or long-polling.
 */
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser } from 'playwright-core';
import { ChatPage, launchBrowser, WAIT_MS, type PageGlobals } from '../helpers/browser.js';
import { startBrowserStack, type BrowserStack } from '../helpers/browser-stack.js';
import { ChatClient, waitFor } from '../helpers/chat-client.js';

let browser: Browser;
before(async () => {
  browser = await launchBrowser();
});
after(() => browser?.close());

/** Ids of the events shown in the lobby, in page order. */
function lobbyIds(page: ChatPage): Promise<number[]> {
  return page.page.locator('section[data-room="lobby"] [data-event-id]').evaluateAll((nodes) =>
    nodes.map((n) => Number((n as unknown as { getAttribute(a: string): string }).getAttribute('data-event-id'))),
  );
}

/** Committed lobby messages after `after`, read by a member straight from the app. */
async function lobbyMessages(reader: ChatClient, after: number): Promise<number[]> {
  const page = (await reader.call('GET', '/api/rooms/lobby/messages?limit=200')).body as { events: Array<{ id: number; type: string }> };
  return page.events.filter((e) => e.type === 'message' && e.id > after).map((e) => e.id);
}

async function conversation(t: TestContext, transport: string, stack: BrowserStack): Promise<void> {
  const ada = await stack.openPage(`transport=${transport}`);
  await ada.login('ada');
  const bob = await stack.openPage(`transport=${transport}`);
  await bob.login('bob');
  for (const page of [ada, bob]) {
    const state = (await page.state()).client;
    assert.equal(state.delivery, transport);
    await page.page.waitForFunction(() => {
      const loops = (globalThis as unknown as PageGlobals).CometChat.app.state().client.loops;
      return loops.length === 1 && loops[0]!.state === 'streaming' && loops[0]!.connectionId !== null;
    });
  }
  await waitFor(async () => (await stack.stats()).streams === 2, 'one stream per page', WAIT_MS);
  const server = new ChatClient(`http://127.0.0.1:${stack.appPort}`);
  await server.login('carol');
  const start = (await server.call('GET', '/api/rooms/lobby/messages?limit=1')).body.cursor as number;

  const say = async (who: ChatPage, text: string) => {
    await who.typeAndSend(text);
    await who.page.waitForSelector(`section[data-room="lobby"] [data-event-id]:has-text("${text}")`, { state: 'attached' });
  };
  for (let i = 0; i < 3; i++) {
    await say(ada, `ada ${i}`);
    await say(bob, `bob ${i}`);
  }
  await stack.restartProxy(async () => {
    // Both pages saw their stream end and are trying again; meanwhile the conversation goes on at the app.
    for (const page of [ada, bob]) {
      await page.page.waitForFunction(() => (globalThis as unknown as PageGlobals).CometChat.app.state().client.loops[0]!.state !== 'streaming');
    }
    for (let i = 0; i < 3; i++) await server.post('lobby', `while the proxy is down ${i}`);
  });
  await waitFor(async () => (await stack.stats()).streams === 2, 'both pages streaming again', WAIT_MS);
  for (let i = 3; i < 6; i++) {
    await say(bob, `bob ${i}`);
    await say(ada, `ada ${i}`);
  }
  // Markup, a character reference, a script end tag and the line separators a script context would choke on.
  const markup = '</script><script>window.__pwned=1</script><img src=x onerror="window.__pwned=2"> &lt;b&gt; \u2028\u2029 & done';
  const tricky = await server.post('lobby', markup);
  const expected = await lobbyMessages(server, start);
  assert.equal(expected.length, 16);
  for (const page of [ada, bob]) {
    await page.waitForEvent('lobby', expected.at(-1)!);
    const shown = (await lobbyIds(page)).filter((id) => id > start);
    // Shown: the 15 messages and the presence events between them (carol's join was before `start`).
    assert.deepEqual(shown.filter((id) => expected.includes(id)), expected, 'every message once, in order');
    assert.deepEqual(shown, [...new Set(shown)].sort((a, b) => a - b), 'no event twice, all in id order');
    assert.equal((await page.state()).client.loops[0]!.transport, transport, 'still streaming after the restart');
    const text = await page.page.locator(`[data-event-id="${tricky.id}"]`).textContent();
    assert.ok(text!.includes(markup), `the markup is shown as the text it is: ${JSON.stringify(text)}`);
    assert.equal(await page.page.evaluate(() => (globalThis as unknown as { __pwned?: number }).__pwned), undefined, 'and never ran');
    assert.deepEqual(page.errors, []);
  }
  const polls = [...ada.requests, ...bob.requests].filter((u) => u.includes('/api/poll'));
  t.diagnostic(`${polls.length} long-polls (diagnosing the streams that failed to open while the proxy was down)`);
  assert.ok(
    (await stack.stats()).streamChunks >= 6,
    'the messages after the restart reached the pages as chunks of their streams',
  );
}

test('over EventSource: two users both ways, a proxy restart mid-conversation, every message once and in order', async (t) => {
  const stack = await startBrowserStack(t, browser, { app: { relayRetryMaxMs: 200 } });
  await conversation(t, 'sse', stack);
});

test('over XHR streaming (forced with ?transport=xhr-stream): the same conversation, the same guarantees', async (t) => {
  const stack = await startBrowserStack(t, browser, { app: { relayRetryMaxMs: 200 } });
  await conversation(t, 'xhr-stream', stack);
});

test('over the forever iframe (forced with ?transport=iframe): the same conversation, the same guarantees, and markup stays text', async (t) => {
  const stack = await startBrowserStack(t, browser, { app: { relayRetryMaxMs: 200 } });
  await conversation(t, 'iframe', stack);
});

test('the automatic choice in Chromium is EventSource; ?transport=poll forces long-polling', async (t) => {
  const stack = await startBrowserStack(t, browser);
  const auto = await stack.openPage('transport=auto');
  await auto.login('ada');
  assert.equal((await auto.state()).client.delivery, 'sse');
  await waitFor(async () => (await stack.stats()).streams === 1, 'the automatic page streams', WAIT_MS);

  const polling = await stack.openPage('transport=poll');
  await polling.login('bob');
  assert.equal((await polling.state()).client.delivery, 'poll');
  await waitFor(async () => (await stack.stats()).parked === 1, 'the forced page long-polls', WAIT_MS);
  assert.equal((await stack.stats()).streams, 1);
  await polling.typeAndSend('by long-poll');
  await auto.typeAndSend('by stream');
  for (const page of [auto, polling]) {
    for (const text of ['by long-poll', 'by stream']) {
      await page.page.waitForSelector(`section[data-room="lobby"] [data-event-id]:has-text("${text}")`, { state: 'attached' });
    }
    assert.deepEqual(page.errors, []);
  }
  assert.equal(auto.requests.filter((u) => u.includes('/api/poll')).length, 0, 'the streaming page sent no long-poll');
  assert.equal(polling.requests.filter((u) => u.includes('/api/stream')).length, 0, 'the polling page opened no stream');
});

test('tabs share one stream: the leader streams for all of them, and when it closes another tab leads and streams', async (t) => {
  const stack = await startBrowserStack(t, browser, { app: { relayRetryMaxMs: 200 } });
  const bob = new ChatClient(`http://127.0.0.1:${stack.appPort}`);
  await bob.login('bob');
  await bob.call('POST', '/api/rooms', { name: 'r1' });
  await bob.join('r1');
  const first = await stack.openPage('transport=sse');
  await first.login('ada');
  const second = await ChatPage.openTab(first, stack.pageUrl('transport=sse'));
  await second.page.waitForSelector('body[data-ready="true"]');
  await second.joinRooms(['r1']);
  const tabs = [first, second];
  const roles = () => Promise.all(tabs.map(async (tab) => (await tab.state()).client.tabs.role));
  await waitFor(async () => (await roles()).sort().join() === 'follower,leader', 'one leader, one follower', WAIT_MS);
  await waitFor(async () => (await stack.stats()).streams === 1, 'one stream for both tabs', WAIT_MS);

  const posted: Array<{ id: number; room: string }> = [];
  for (let i = 0; i < 4; i++) posted.push(await bob.post(i % 2 ? 'r1' : 'lobby', `shared ${i}`));
  for (const e of posted) await second.waitForEvent(e.room, e.id);
  for (const e of posted.filter((p) => p.room === 'lobby')) await first.waitForEvent('lobby', e.id);

  const leader = (await roles()).indexOf('leader');
  const survivor = tabs[1 - leader]!;
  await tabs[leader]!.page.close();
  await waitFor(async () => (await survivor.state()).client.tabs.role === 'leader', 'the other tab leads', WAIT_MS);
  await waitFor(async () => (await stack.stats()).streams === 1, 'and streams', WAIT_MS);
  for (let i = 4; i < 8; i++) posted.push(await bob.post(i % 2 ? 'r1' : 'lobby', `shared ${i}`));
  const mine = survivor === second ? posted : posted.filter((p) => p.room === 'lobby');
  for (const e of mine) await survivor.waitForEvent(e.room, e.id);
  for (const e of mine) assert.equal(await survivor.countEvent(e.id), 1, `event ${e.id} once`);
  assert.equal((await survivor.state()).client.loops[0]!.transport, 'sse');
  assert.deepEqual(survivor.errors, []);
});

test('switching the strategy keeps ?transport= (and ?tabs=); a stream needs multiplex, so per-room long-polls and says why', async (t) => {
  const stack = await startBrowserStack(t, browser);
  const ada = await stack.openPage('transport=xhr-stream&tabs=off');
  await ada.login('ada');
  const switchTo = async (strategy: string) => {
    await Promise.all([
      ada.page.waitForNavigation(),
      ada.page.evaluate((value) => {
        const select = (globalThis as unknown as { document: { getElementById(id: string): { value: string; dispatchEvent(e: unknown): void } } }).document.getElementById('strategy');
        select.value = value;
        select.dispatchEvent(new (globalThis as unknown as { Event: new (type: string) => unknown }).Event('change'));
      }, strategy),
    ]);
    await ada.page.waitForSelector('body[data-ready="true"]');
  };
  await switchTo('per-room');
  assert.match(ada.page.url(), /\?strategy=per-room&tabs=off&transport=xhr-stream$/);
  let client = (await ada.state()).client;
  assert.deepEqual([client.strategy, client.delivery, client.deliveryNote], ['per-room', 'poll', 'streams need the multiplex strategy']);
  await switchTo('multiplex');
  client = (await ada.state()).client;
  assert.deepEqual([client.strategy, client.delivery], ['multiplex', 'xhr-stream']);
  await waitFor(async () => (await stack.stats()).streams === 1, 'streaming again', WAIT_MS);
  assert.deepEqual(ada.errors, []);
});
