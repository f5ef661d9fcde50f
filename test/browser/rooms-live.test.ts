/**
 * The rooms list is updated by an event: a created room is announced by a `room` event in the lobby, which every
 * signed-in page polls, so another user's "Other rooms" shows it at once, without asking GET /api/rooms.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser } from 'playwright-core';
import { launchBrowser, WAIT_MS } from '../helpers/browser.js';
import { startBrowserStack } from '../helpers/browser-stack.js';
import { waitFor } from '../helpers/chat-client.js';

/** Far below the 60 s fallback refresh: only the event can bring the room this soon. */
const LIVE_MS = 2000;

let browser: Browser;
before(async () => {
  browser = await launchBrowser();
});
after(() => browser?.close());

const listAsks = (requests: string[]) => requests.filter((url) => /\/api\/rooms(\?|$)/.test(url)).length;

test('a room bob creates shows in ada\'s Other rooms within 2 s, from the lobby event, without a list request', async (t) => {
  const stack = await startBrowserStack(t, browser);
  const ada = await stack.openPage();
  await ada.login('ada');
  const bob = await stack.openPage();
  await bob.login('bob');
  // ada's page settles (its sign-in's list request answered) before bob acts.
  await ada.page.waitForSelector('#all-rooms li', { state: 'attached' });
  await waitFor(async () => (await stack.stats()).parked === 2, 'both pages\' polls to be parked', WAIT_MS);
  const asked = listAsks(ada.requests);

  await bob.page.fill('#new-room', 'design');
  await bob.page.press('#new-room', 'Enter');
  await ada.page.waitForSelector('[data-available="design"]', { state: 'attached', timeout: LIVE_MS });
  assert.equal(listAsks(ada.requests), asked, 'no GET /api/rooms: the event listed the room');
  // The lobby shows who created it, as text.
  const notice = ada.page.locator('section[data-room="lobby"] li[data-type="room"] .notice-text');
  await notice.waitFor({ state: 'attached' });
  assert.equal(await notice.textContent(), 'bob created the room #design');
  // ada can join it from there.
  await ada.page.click('[data-join="design"]');
  await ada.page.waitForSelector('#joined-rooms [data-room="design"]', { state: 'attached' });
  assert.deepEqual([...ada.errors, ...bob.errors], []);
});
