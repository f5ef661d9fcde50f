/**
 * Tabs that poll for themselves (`?tabs=off`) and open together: each first poll carries the tab's own `t=`, so
 * no two are identical GETs, which Chromium's HTTP cache would let out one at a time (docs/protocol.md §10.1).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser } from 'playwright-core';
import { ChatPage, launchBrowser, WAIT_MS } from '../helpers/browser.js';
import { startBrowserStack } from '../helpers/browser-stack.js';
import { waitFor } from '../helpers/chat-client.js';

let browser: Browser;
before(async () => {
  browser = await launchBrowser();
});
after(() => browser?.close());

test('three unshared tabs on a quiet lobby all have a poll parked at the proxy, each first poll with its own t=', async (t) => {
  const stack = await startBrowserStack(t, browser);
  const first = await stack.openPage('tabs=off');
  await first.login('ada');
  const tabs = [first];
  for (let i = 1; i < 3; i++) {
    const tab = await ChatPage.openTab(first, stack.pageUrl('tabs=off'));
    await tab.page.waitForSelector('body[data-ready="true"]');
    tabs.push(tab);
  }
  // Nobody writes: only distinct URLs let all three out (identical ones would wait for the first's 55 s hold).
  await waitFor(async () => (await stack.stats()).parked === 3, '3 parked polls', WAIT_MS);
  const firstPolls = tabs.map((tab) => tab.requests.find((u) => u.includes('/api/poll?') && !u.includes('cid='))!);
  const tags = firstPolls.map((u) => new URL(u).searchParams.get('t'));
  assert.equal(new Set(tags).size, 3, `three distinct tags: ${tags.join(', ')}`);
  assert.deepEqual(tabs.flatMap((tab) => tab.errors), []);
});
