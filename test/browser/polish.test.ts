/**
 * Issue 18 follow-ups in the page: a follower tab's status line names the shared poll, the Transport menu's
 * strategy switch keeps `?tabs=off`, and open drawers and menus keep the keyboard focus inside them.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { ChatPage, launchBrowser, PHONE, WAIT_MS } from '../helpers/browser.js';
import { startBrowserStack } from '../helpers/browser-stack.js';
import { waitFor } from '../helpers/chat-client.js';

let browser: Browser;
before(async () => {
  browser = await launchBrowser();
});
after(() => browser?.close());

interface Doc {
  document: { activeElement: { id: string; closest(selector: string): unknown } | null };
}

/** Whether the focused element is inside `selector`, and its id. */
function focusIn(page: Page, selector: string): Promise<{ inside: boolean; id: string }> {
  return page.evaluate((sel) => {
    const active = (globalThis as unknown as Doc).document.activeElement;
    return { inside: !!active && active.closest(sel) !== null, id: active?.id ?? '' };
  }, selector);
}

test('a follower tab\'s status line says its poll is shared, led by another tab; the leader\'s counts its poll', async (t) => {
  const stack = await startBrowserStack(t, browser);
  const first = await stack.openPage();
  await first.login('ada');
  const second = await ChatPage.openTab(first, stack.pageUrl());
  await second.page.waitForSelector('body[data-ready="true"]');
  const tabs = [first, second];
  await waitFor(async () => (await Promise.all(tabs.map(async (tab) => (await tab.state()).client.tabs.role))).sort().join() === 'follower,leader',
    'one leader and one follower', WAIT_MS);
  const roles = await Promise.all(tabs.map(async (tab) => (await tab.state()).client.tabs.role));
  const leader = tabs[roles.indexOf('leader')]!;
  const follower = tabs[roles.indexOf('follower')]!;
  await follower.page.waitForFunction(() => /shared poll \(leader: another tab\)/.test((globalThis as unknown as { document: { getElementById(id: string): { textContent: string } } }).document.getElementById('status-text').textContent));
  assert.match(await leader.page.textContent('#status-text') ?? '', /· 1 poll$/);
  assert.doesNotMatch(await follower.page.textContent('#status-text') ?? '', /1 poll/);
  assert.deepEqual(tabs.flatMap((tab) => tab.errors), []);
});

test('switching strategy in the Transport menu keeps ?tabs=off', async (t) => {
  const stack = await startBrowserStack(t, browser);
  const ada = await stack.openPage('tabs=off');
  await ada.login('ada');
  await ada.page.click('#transport-toggle');
  await Promise.all([ada.page.waitForURL(/strategy=per-room/), ada.page.selectOption('#strategy', 'per-room')]);
  const url = new URL(ada.page.url());
  assert.equal(url.searchParams.get('strategy'), 'per-room');
  assert.equal(url.searchParams.get('tabs'), 'off');
  await ada.page.waitForSelector('body[data-ready="true"]');
  assert.equal((await ada.state()).client.tabs.role, 'off', 'the reloaded page still polls for itself');
});

test('375 px: Tab and Shift+Tab cycle inside the open rooms drawer and Transport menu; Escape closes them', async (t) => {
  const stack = await startBrowserStack(t, browser);
  const ada = await stack.openPage('', PHONE);
  await ada.login('ada');
  const page = ada.page;

  await page.click('#rooms-toggle');
  assert.equal(await page.isVisible('#sidebar'), true);
  assert.equal((await focusIn(page, '#sidebar')).inside, true, 'focus lands in the drawer');
  const count = await page.locator('#sidebar button:visible, #sidebar input:visible, #sidebar select:visible').count();
  assert.ok(count >= 3, `controls in the drawer: ${count}`);
  // Twice round, and then some: never outside.
  for (let i = 0; i < 2 * count + 2; i++) {
    await page.keyboard.press('Tab');
    assert.equal((await focusIn(page, '#sidebar')).inside, true, `Tab ${i + 1} stays in the drawer`);
  }
  for (let i = 0; i < 2 * count + 2; i++) {
    await page.keyboard.press('Shift+Tab');
    assert.equal((await focusIn(page, '#sidebar')).inside, true, `Shift+Tab ${i + 1} stays in the drawer`);
  }
  await page.keyboard.press('Escape');
  assert.equal(await page.isVisible('#sidebar'), false);
  assert.equal((await focusIn(page, 'body')).id, 'rooms-toggle');

  await page.click('#transport-toggle');
  for (let i = 0; i < 3; i++) {
    await page.keyboard.press('Tab');
    assert.equal((await focusIn(page, '#transport-menu')).id, 'strategy', 'the menu\'s one control keeps the focus');
  }
  await page.keyboard.press('Escape');
  assert.equal(await page.isVisible('#transport-menu'), false);
  assert.deepEqual(ada.errors, []);
});

test('a room name is lowered as it is typed, under a hint saying names are lower-case, and created as shown', async (t) => {
  const stack = await startBrowserStack(t, browser);
  const ada = await stack.openPage();
  await ada.login('ada');
  const page = ada.page;
  assert.match(await page.textContent('#new-room-hint') ?? '', /lower-case/);
  assert.match(await page.getAttribute('#new-room', 'aria-describedby') ?? '', /new-room-hint/);
  await page.click('#new-room');
  await page.keyboard.type('Design-Team');
  assert.equal(await page.inputValue('#new-room'), 'design-team', 'lowered while typing');
  // The caret stays where the typing is: a letter typed in the middle lands there, lowered.
  await page.keyboard.press('Home');
  await page.keyboard.type('X');
  assert.equal(await page.inputValue('#new-room'), 'xdesign-team');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#joined-rooms [data-room="xdesign-team"]', { state: 'attached' });
  assert.deepEqual(ada.errors, []);
});
