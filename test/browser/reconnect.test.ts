/**
 * Reconnecting without loss or duplicates: the proxy restarts while a page is
 * polling (its parked poll is answered with the timeout response, then requests
 * fail at the network level), a message is posted meanwhile, and the page shows
 * it exactly once after it reconnects, although the app's relay also publishes
 * it to the restarted proxy.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser } from 'playwright-core';
import { launchBrowser, WAIT_MS, type PageGlobals } from '../helpers/browser.js';
import { startBrowserStack } from '../helpers/browser-stack.js';
import { ChatClient, waitFor, type ChatEvent } from '../helpers/chat-client.js';

let browser: Browser;
before(async () => {
  browser = await launchBrowser();
});
after(() => browser?.close());

for (const strategy of ['multiplex', 'sharded'] as const) {
  test(`${strategy}: a message posted while the proxy restarts appears exactly once after the page reconnects`, async (t) => {
    // A short relay backoff so the restarted proxy gets the missed publish soon.
    const stack = await startBrowserStack(t, browser, { app: { relayRetryMaxMs: 200 } });
    const bob = new ChatClient(`http://127.0.0.1:${stack.appPort}`);
    await bob.login('bob');
    const ada = await stack.openPage(`strategy=${strategy}`);
    await ada.login('ada');
    assert.equal((await ada.state()).client.strategy, strategy);
    await waitFor(async () => (await stack.stats()).parked === 1, 'the poll to be parked', WAIT_MS);

    let missed: ChatEvent | undefined;
    await stack.restartProxy(async () => {
      // The page noticed: its re-poll failed and it is backing off.
      await ada.page.waitForFunction(() => (globalThis as unknown as PageGlobals).CometChat.app.state().client.loops[0]!.attempt > 0);
      await ada.page.waitForSelector('#status[data-state="reconnecting"]');
      missed = await bob.post('lobby', 'posted while the proxy was down');
    });

    await ada.waitForEvent('lobby', missed!.id);
    // The relay publishes in order, so once this one is shown the missed one has been re-published too.
    const later = await bob.post('lobby', 'posted after the restart');
    await ada.waitForEvent('lobby', later.id);
    await ada.page.waitForSelector('#status[data-state="live"]');

    assert.equal(await ada.countEvent(missed!.id), 1);
    assert.equal(await ada.countEvent(later.id), 1);
    const ids = await ada.page.locator('section[data-room="lobby"] [data-event-id]').evaluateAll((nodes) =>
      nodes.map((n) => Number((n as unknown as { getAttribute(a: string): string }).getAttribute('data-event-id'))),
    );
    assert.deepEqual(ids, [...new Set(ids)].sort((a, b) => a - b), 'each event once, in id order');
    assert.deepEqual(ada.errors, []);
  });
}
