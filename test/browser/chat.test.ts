/**
 * The chat page in a real browser against the real stack: two people (two
 * browser contexts, so two sessions) sign in, see each other arrive, chat, and
 * see each other in the members panel.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { launchBrowser, type ChatPage } from '../helpers/browser.js';
import { startBrowserStack } from '../helpers/browser-stack.js';

const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));

let browser: Browser;
before(async () => {
  browser = await launchBrowser();
});
after(() => browser?.close());

/** Sends through the post box; resolves with the new event's id once the POST has answered. */
async function send(chat: ChatPage, text: string): Promise<number> {
  const mine = chat.page.locator('section[data-room="lobby"] li.message.mine');
  const count = await mine.count();
  await chat.typeAndSend(text);
  await chat.page.waitForSelector(`section[data-room="lobby"] li.message.mine >> nth=${count}`, { state: 'attached' });
  return Number(await mine.nth(count).getAttribute('data-event-id'));
}

test('two people chat in the lobby and each sees the other arrive, post and be online', async (t) => {
  const stack = await startBrowserStack(t, browser);
  const ada = await stack.openPage();
  await ada.login('ada');
  // A room made in the UI: ada joins it at once; bob will find it in the sidebar.
  await ada.page.fill('#new-room', 'random');
  await ada.page.press('#new-room', 'Enter');
  await ada.page.waitForSelector('#joined-rooms li[data-room="random"].active');
  await ada.activate('lobby');
  const bob = await stack.openPage();
  await bob.login('bob');
  const adaId = (await ada.state()).user!.id;
  const bobId = (await bob.state()).user!.id;

  // bob's arrival is not posted in the lobby (issue 18: a quiet lobby); the members panel shows him (below).
  // (Its one notice is ada's own room, announced by the lobby's room event.)
  await ada.page.waitForSelector('section[data-room="lobby"] li.notice[data-type="room"]', { state: 'attached' });
  assert.equal(await ada.page.locator('section[data-room="lobby"] li.notice').count(), 1);
  assert.equal(await ada.page.locator('section[data-room="lobby"] li.notice[data-type="room"]').count(), 1);
  assert.equal(await ada.page.locator(`section[data-room="lobby"] li.notice[data-user-id="${bobId}"]`).count(), 0);

  // Markup typed by a user is shown as text, never interpreted.
  const hello = 'Hi bob! <b>welcome</b> & enjoy';
  const helloId = await send(ada, hello);
  await bob.waitForEvent('lobby', helloId);
  const shown = bob.page.locator(`[data-event-id="${helloId}"]`);
  assert.equal(await shown.locator('.msg-text').textContent(), hello);
  assert.equal(await shown.locator('.msg-text b').count(), 0);
  assert.equal(await shown.locator('.msg-nick').textContent(), 'ada');

  const replyId = await send(bob, 'Thanks ada, glad to be here.\nSecond line.');
  await ada.waitForEvent('lobby', replyId);
  const followUpId = await send(bob, 'How does the long-poll work?');
  await ada.waitForEvent('lobby', followUpId);
  // An error from the API is shown under the post box; the text stays for another try.
  const tooLong = 'x'.repeat(2001);
  await ada.page.evaluate((text) => {
    (globalThis as unknown as { document: { getElementById(id: string): { value: string } } }).document.getElementById('post-text').value = text;
  }, tooLong);
  await ada.page.press('#post-text', 'Enter');
  await ada.page.waitForSelector('#post-error[data-code="APP_ERR_MESSAGE_TOO_LONG"]');
  assert.match((await ada.page.locator('#post-error').textContent()) ?? '', /2000/);
  assert.equal(await ada.page.inputValue('#post-text'), tooLong);

  await send(ada, 'One held request per page, answered when something happens.');
  assert.equal(await ada.page.locator('#post-error').textContent(), '', 'a successful post clears the error');

  await bob.page.waitForSelector(`#members li[data-user-id="${adaId}"][data-online="true"]`);
  await ada.page.waitForSelector(`#members li[data-user-id="${bobId}"][data-online="true"]`);
  // Each message exactly once, although the poll delivers one's own posts again.
  for (const id of [helloId, replyId, followUpId]) {
    assert.equal(await ada.countEvent(id), 1);
    assert.equal(await bob.countEvent(id), 1);
  }

  // The room ada created is listed for bob; he joins it from the sidebar.
  await bob.page.click('#all-rooms button[data-join="random"]');
  await bob.page.waitForSelector('#joined-rooms li[data-room="random"].active');
  await ada.page.waitForSelector(`section[data-room="random"] li.notice[data-type="join"][data-user-id="${bobId}"]`, { state: 'attached' });
  await bob.activate('lobby');

  const state = await ada.state();
  assert.equal(state.client.strategy, 'multiplex');
  assert.equal(state.client.loops.length, 1, 'one poll for all rooms');
  assert.deepEqual(state.client.loops[0]!.rooms, ['lobby', 'random']);

  mkdirSync(ARTIFACTS, { recursive: true });
  await ada.page.screenshot({ path: join(ARTIFACTS, 'chat.png') });
  assert.deepEqual(ada.errors, []);
  assert.deepEqual(bob.errors, []);
});
