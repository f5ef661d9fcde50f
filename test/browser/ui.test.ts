/**
 * The chat as people use it (issue 18), in Chromium at 375x740 (a phone) and
 * 1280x800: the layout (header fixed, message box pinned to the bottom, no
 * horizontal scroll, rooms, members and the Transport menu reachable), focus
 * and labels, character counters that refuse instead of cutting, posts resent
 * by themselves after a failure without duplicates, Retry-After honoured by
 * posts and polls (timed from the page's own request log), the per-room
 * warning, rooms created by others appearing live, and a new tab opening the
 * session's rooms. Screenshots go to test-artifacts/screenshots/ (not committed).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest, type ClientRequest } from 'node:http';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import type { Browser, Page } from 'playwright-core';
import { DESKTOP, launchBrowser, PHONE, WAIT_MS, type ChatPage, type PageGlobals, type Viewport, type XhrRecord } from '../helpers/browser.js';
import { startBrowserStack } from '../helpers/browser-stack.js';
import { ChatClient, waitFor } from '../helpers/chat-client.js';

const SCREENSHOTS = fileURLToPath(new URL('../../test-artifacts/screenshots/', import.meta.url));

let browser: Browser;
before(async () => {
  browser = await launchBrowser();
  mkdirSync(SCREENSHOTS, { recursive: true });
});
after(() => browser?.close());

/** The page's globals, typed loosely: these checks read the DOM, which this project's TypeScript has no types for. */
type Doc = any; // eslint-disable-line @typescript-eslint/no-explicit-any

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`) });
}

function activeId(page: Page): Promise<string> {
  return page.evaluate(() => ((globalThis as Doc).document.activeElement?.id as string) ?? '');
}

/** The element's box; fails when it is not rendered. */
async function box(page: Page, selector: string): Promise<{ x: number; y: number; width: number; height: number }> {
  const b = await page.locator(selector).boundingBox();
  assert.ok(b, `${selector} is not rendered`);
  return b;
}

/** Inside the viewport horizontally and vertically (half a pixel of rounding allowed). */
async function assertInViewport(page: Page, selector: string, viewport: Viewport): Promise<void> {
  const b = await box(page, selector);
  assert.ok(b.x >= -0.5 && b.y >= -0.5, `${selector} starts off screen: ${JSON.stringify(b)}`);
  assert.ok(b.x + b.width <= viewport.width + 0.5, `${selector} is wider than the screen: ${JSON.stringify(b)}`);
  assert.ok(b.y + b.height <= viewport.height + 0.5, `${selector} ends below the screen: ${JSON.stringify(b)}`);
}

/** Neither the document nor any element makes the page scroll sideways, and the page itself does not scroll. */
async function assertNoPageScroll(page: Page): Promise<void> {
  const m = await page.evaluate(() => {
    const g = globalThis as Doc;
    const root = g.document.documentElement;
    return { scrollWidth: root.scrollWidth, scrollHeight: root.scrollHeight, innerWidth: g.innerWidth, innerHeight: g.innerHeight, scrollY: g.scrollY };
  });
  assert.ok(m.scrollWidth <= m.innerWidth, `horizontal overflow: ${JSON.stringify(m)}`);
  assert.ok(m.scrollHeight <= m.innerHeight, `the page scrolls (only the message list should): ${JSON.stringify(m)}`);
  assert.equal(m.scrollY, 0);
}

async function posts(chat: ChatPage, room = 'lobby'): Promise<XhrRecord[]> {
  return (await chat.xhrLog()).filter((r) => r.method === 'POST' && r.url.endsWith(`/api/rooms/${room}/messages`));
}

/** Texts of the room's message events as the page shows them, in order, with their ids. */
async function shownMessages(chat: ChatPage, room: string): Promise<Array<{ id: number; text: string }>> {
  return chat.page.locator(`section[data-room="${room}"] li.message`).evaluateAll((nodes: Doc[]) =>
    nodes.map((n) => ({ id: Number(n.getAttribute('data-event-id')), text: n.querySelector('.msg-text').textContent as string })),
  );
}

for (const viewport of [PHONE, DESKTOP]) {
  const size = `${viewport.width}x${viewport.height}`;
  const phone = viewport === PHONE;

  test(`${size}: header fixed, message box pinned in view, no sideways scroll; rooms, members and Transport reachable; focus and labels`, async (t) => {
    const stack = await startBrowserStack(t, browser);
    const bob = new ChatClient(`http://127.0.0.1:${stack.appPort}`);
    const bobUser = await bob.login('bob');
    const ada = await stack.openPage('', viewport);
    await ada.page.waitForSelector('body[data-screen="login"]');
    await shot(ada.page, `login-${size}`);
    await assertNoPageScroll(ada.page);
    await ada.login('ada');
    assert.equal(await activeId(ada.page), 'post-text', 'focus is in the message box after sign-in');

    // Enough messages that the list must scroll: the page itself must not.
    let last = 0;
    for (let i = 0; i < 40; i++) last = (await bob.post('lobby', `line ${i}: ${'a fairly long message that wraps on a phone '.repeat(2)}`)).id;
    await ada.waitForEvent('lobby', last);
    const header = await box(ada.page, '.topbar');
    assert.equal(header.y, 0, 'the header is at the top');
    await assertInViewport(ada.page, '#post-form', viewport);
    const form = await box(ada.page, '#post-form');
    assert.ok(form.y + form.height >= viewport.height - 1, `the post box is pinned to the bottom: ${JSON.stringify(form)}`);
    await assertInViewport(ada.page, '#post-text', viewport);
    await assertInViewport(ada.page, '#post-button', viewport);
    await assertNoPageScroll(ada.page);
    assert.equal(await ada.page.locator(`[data-event-id="${last}"]`).isVisible(), true, 'the newest message is scrolled into view');
    await shot(ada.page, `chat-${size}`);

    // Keyboard: from the message box, Tab reaches Send.
    await ada.page.focus('#post-text');
    await ada.page.keyboard.press('Tab');
    assert.equal(await activeId(ada.page), 'post-button');

    // Every field has a label a screen reader can read; new messages are announced; toggles are buttons.
    const unlabelled = await ada.page.evaluate(() =>
      Array.from((globalThis as Doc).document.querySelectorAll('input, select, textarea') as Doc[])
        .filter((f: Doc) => f.labels.length === 0 && !f.getAttribute('aria-label'))
        .map((f: Doc) => f.id as string),
    );
    assert.deepEqual(unlabelled, []);
    assert.equal(await ada.page.getAttribute('section[data-room="lobby"] ol.messages', 'aria-live'), 'polite');
    for (const id of ['rooms-toggle', 'members-toggle', 'transport-toggle']) {
      assert.equal(await ada.page.evaluate((i) => (globalThis as Doc).document.getElementById(i).tagName, id), 'BUTTON');
    }

    // Members: a panel on a wide screen, a drawer behind a button on a phone.
    const bobInList = `#members li[data-user-id="${bobUser.id}"]`;
    if (phone) {
      assert.equal(await ada.page.isVisible('#members-panel'), false);
      await ada.page.click('#members-toggle');
      await ada.page.waitForSelector(bobInList, { state: 'visible' });
      await assertInViewport(ada.page, '#members-panel', viewport);
      await assertNoPageScroll(ada.page);
      await shot(ada.page, `members-${size}`);
      await ada.page.keyboard.press('Escape');
      assert.equal(await ada.page.isVisible('#members-panel'), false, 'Escape closes the drawer');
      assert.equal(await activeId(ada.page), 'members-toggle', 'and gives the focus back to its button');
    } else {
      await ada.page.waitForSelector(bobInList, { state: 'visible' });
      assert.equal(await ada.page.isVisible('#members-toggle'), false, 'no toggle where the panel always shows');
    }

    // Rooms: created by someone else, listed within seconds without a reload (no event announces it).
    await bob.call('POST', '/api/rooms', { name: 'random' });
    if (phone) {
      assert.equal(await ada.page.isVisible('#sidebar'), false, 'on a phone the rooms list starts closed');
      await ada.page.click('#rooms-toggle');
      await ada.page.waitForSelector('#sidebar', { state: 'visible' });
      await assertInViewport(ada.page, '#sidebar', viewport);
    }
    await ada.page.waitForSelector('#all-rooms button[data-join="random"]', { state: 'visible', timeout: WAIT_MS });
    await shot(ada.page, `rooms-${size}`);
    await ada.page.click('#all-rooms button[data-join="random"]');
    await ada.page.waitForSelector('#joined-rooms li[data-room="random"].active', { state: 'attached' });
    assert.equal(await activeId(ada.page), 'post-text', 'focus is in the message box after switching room');
    assert.equal(await ada.page.isVisible('#sidebar'), !phone, 'a rooms drawer closes once a room is chosen');
    if (phone) await ada.page.click('#rooms-toggle');
    await ada.page.click('#joined-rooms li[data-room="lobby"] button');
    assert.equal(await activeId(ada.page), 'post-text');
    assert.equal(await ada.page.isVisible('section[data-room="lobby"]'), true);
    // News in another room shows on the rooms button, where a phone user can see it.
    await bob.join('random');
    assert.equal(await ada.page.isVisible('#rooms-unread'), false);
    await bob.post('random', 'over here');
    await ada.page.waitForSelector('#rooms-unread', { state: 'visible' });
    assert.equal(await ada.page.textContent('#rooms-unread'), '1');
    if (!phone) {
      // The wide list collapses (more room for messages) and comes back.
      const before = await box(ada.page, '#post-text');
      await ada.page.click('#rooms-toggle');
      assert.equal(await ada.page.isVisible('#sidebar'), false);
      assert.ok((await box(ada.page, '#post-text')).width > before.width);
      await ada.page.click('#rooms-toggle');
      assert.equal(await ada.page.isVisible('#sidebar'), true);
    }

    // The Transport menu opens at every width, inside the screen, with the select focused.
    assert.equal(await ada.page.isVisible('#transport-menu'), false);
    await ada.page.click('#transport-toggle');
    await assertInViewport(ada.page, '#transport-menu', viewport);
    assert.equal(await activeId(ada.page), 'strategy');
    assert.equal(await ada.page.inputValue('#strategy'), 'multiplex');
    await assertNoPageScroll(ada.page);
    await shot(ada.page, `transport-${size}`);
    await ada.page.keyboard.press('Escape');
    assert.equal(await ada.page.isVisible('#transport-menu'), false);
    assert.equal(await activeId(ada.page), 'transport-toggle');
    assert.deepEqual(ada.errors, []);
  });
}

test('limits are counted before sending, from GET /api/config; too long is refused with a word and never cut', async (t) => {
  const stack = await startBrowserStack(t, browser, { app: { messageMaxChars: 2000 } });
  const ada = await stack.openPage('', PHONE);
  await ada.page.waitForSelector('body[data-screen="login"]');
  // A nick over 32 characters: counted, refused here, nothing sent, nothing cut.
  const longNick = 'n'.repeat(40);
  await ada.page.fill('#nick', longNick);
  assert.equal(await ada.page.textContent('#nick-counter'), '40 / 32');
  assert.equal(await ada.page.getAttribute('#nick-counter', 'data-over'), 'true');
  await ada.page.press('#nick', 'Enter');
  assert.match((await ada.page.textContent('#login-error')) ?? '', /40 characters; the limit is 32/);
  assert.equal(await ada.page.inputValue('#nick'), longNick, 'the field keeps every character');
  assert.equal((await ada.xhrLog()).filter((r) => r.url.endsWith('/api/session') && r.method === 'POST').length, 0);
  await ada.login('ada');
  assert.equal(await ada.page.textContent('#post-counter'), '0 / 2000');

  // The case: a 5,000-character paste.
  const paste = 'p'.repeat(5000);
  await ada.page.fill('#post-text', paste);
  assert.equal(await ada.page.textContent('#post-counter'), '5000 / 2000');
  assert.equal(await ada.page.getAttribute('#post-counter', 'data-over'), 'true');
  assert.equal(await ada.page.isDisabled('#post-button'), true, 'Send is off past the limit');
  await ada.page.press('#post-text', 'Enter');
  await ada.page.waitForSelector('#post-error[data-code="APP_ERR_MESSAGE_TOO_LONG"]');
  assert.equal(await ada.page.textContent('#post-error'), 'This message is 5000 characters; the limit is 2000. Shorten it to send.');
  assert.equal((await ada.page.inputValue('#post-text')).length, 5000, 'not cut');
  assert.equal((await posts(ada)).length, 0, 'nothing was sent');
  await shot(ada.page, 'too-long-375x740');
  // And the server refuses it too (a client that does not count is not cut either).
  const direct = new ChatClient(`http://127.0.0.1:${stack.appPort}`);
  await direct.login('curl');
  const refused = await direct.call('POST', '/api/rooms/lobby/messages', { text: paste });
  assert.equal(refused.status, 413);
  assert.equal(refused.body.code, 'APP_ERR_MESSAGE_TOO_LONG');

  // Exactly the limit, in emoji (two UTF-16 units each): the page counts as the server does, and it is sent whole.
  const emoji = '\u{1F600}'.repeat(2000);
  await ada.page.fill('#post-text', emoji);
  assert.equal(await ada.page.textContent('#post-counter'), '2000 / 2000');
  assert.equal(await ada.page.textContent('#post-error'), '', 'back under the limit, the refusal is gone');
  assert.equal(await ada.page.isDisabled('#post-button'), false);
  await ada.page.press('#post-text', 'Enter');
  await ada.page.waitForSelector('section[data-room="lobby"] li.message.mine');
  assert.deepEqual((await shownMessages(ada, 'lobby')).map((m) => m.text), [emoji]);

  // A room name over 32: refused here with the limit, nothing sent.
  await ada.page.click('#rooms-toggle');
  await ada.page.fill('#new-room', 'r'.repeat(33));
  assert.equal(await ada.page.textContent('#new-room-counter'), '33 / 32');
  await ada.page.press('#new-room', 'Enter');
  assert.match((await ada.page.textContent('#room-error')) ?? '', /33 characters; the limit is 32/);
  assert.equal((await ada.xhrLog()).filter((r) => r.method === 'POST' && r.url.endsWith('/api/rooms')).length, 0);
  assert.deepEqual(ada.errors, []);
});

test('a post whose answer was lost, and posts written while the proxy is down, are sent again by themselves: once each, in order', async (t) => {
  const stack = await startBrowserStack(t, browser, { app: { relayRetryMaxMs: 200 } });
  const bob = new ChatClient(`http://127.0.0.1:${stack.appPort}`);
  await bob.login('bob');
  const ada = await stack.openPage('', PHONE);
  await ada.login('ada');
  const keys: string[] = [];
  ada.page.on('request', (r) => {
    if (r.method() === 'POST' && r.url().endsWith('/api/rooms/lobby/messages')) keys.push(r.headers()['idempotency-key'] ?? '');
  });

  // 1. The server commits the post, but the answer never reaches the page (a reset on the way back).
  let lost = false;
  await ada.page.route('**/api/rooms/lobby/messages', async (route) => {
    if (lost) return route.continue();
    lost = true;
    // The request reaches the app as sent (cookie, key, body) and is committed; the page gets a reset instead of the answer.
    const req = route.request();
    const h = req.headers();
    const committed = await fetch(`http://127.0.0.1:${stack.appPort}/api/rooms/lobby/messages`, {
      method: 'POST',
      headers: { cookie: h.cookie!, 'content-type': h['content-type']!, 'idempotency-key': h['idempotency-key']! },
      body: req.postData()!,
    });
    assert.equal(committed.status, 201);
    await route.abort('connectionreset');
  });
  await ada.typeAndSend('answer lost on the way back');
  await ada.page.waitForSelector('section[data-room="lobby"] li.message.mine', { state: 'attached' });
  await ada.page.waitForSelector('li.pending', { state: 'detached' });
  assert.equal(keys.length, 2, 'sent twice');
  assert.ok(keys[0] !== '' && keys[0] === keys[1], `with one Idempotency-Key: ${JSON.stringify(keys)}`);
  const replay = (await posts(ada)).at(-1)!;
  assert.equal(replay.status, 200, 'the resend was answered as a replay, nothing new written');
  await ada.page.unroute('**/api/rooms/lobby/messages');

  // 2. The proxy goes away: two posts wait, say so, and go when it is back.
  await stack.restartProxy(async () => {
    await ada.typeAndSend('written while offline 1');
    await ada.typeAndSend('written while offline 2');
    await ada.page.waitForSelector('li.pending[data-state="retrying"]');
    assert.match((await ada.page.locator('li.pending[data-state="retrying"] .pending-text').first().textContent()) ?? '', /^Could not send: you are offline or the server cannot be reached, will retry\.$/);
    assert.equal(await ada.page.locator('li.pending').count(), 2);
    assert.equal(await ada.page.inputValue('#post-text'), '', 'the box is free for the next message meanwhile');
    await shot(ada.page, 'retrying-375x740');
  });
  await ada.page.waitForSelector('li.pending', { state: 'detached', timeout: 15_000 });

  const expected = ['answer lost on the way back', 'written while offline 1', 'written while offline 2'];
  await waitFor(async () => (await shownMessages(ada, 'lobby')).length === 3, 'three messages shown', WAIT_MS);
  const shown = await shownMessages(ada, 'lobby');
  assert.deepEqual(shown.map((m) => m.text), expected, 'each once, in the order written');
  assert.deepEqual(shown.map((m) => m.id), [...shown.map((m) => m.id)].sort((a, b) => a - b));
  // What the server committed: each once (bob reads the history).
  const history = await bob.call('GET', '/api/rooms/lobby/messages?limit=200');
  const committed = (history.body.events as Array<{ type: string; text?: string }>).filter((e) => e.type === 'message').map((e) => e.text);
  assert.deepEqual(committed, expected);
  assert.deepEqual(ada.errors, []);
});

async function parkedCount(stack: { stats(): Promise<{ parked: number }> }, n: number): Promise<void> {
  await waitFor(async () => (await stack.stats()).parked === n, `${n} parked polls`, WAIT_MS);
}

/** Holds SQLite's write lock from a second connection until released (or the test ends). */
function holdWriteLock(t: { after(fn: () => void): void }, dbPath: string): { release(): void } {
  const other = new Database(dbPath);
  other.exec('BEGIN IMMEDIATE');
  let held = true;
  const release = () => {
    if (!held) return;
    held = false;
    other.exec('ROLLBACK');
    other.close();
  };
  t.after(release);
  return { release };
}

test('a post refused 503 with Retry-After waits at least that long before it is sent again, and says so', async (t) => {
  // The app's real answer to a locked database: 503 APP_ERR_DB_BUSY, Retry-After: 1.
  const stack = await startBrowserStack(t, browser, { app: { sqliteBusyTimeoutMs: 100 } });
  const ada = await stack.openPage();
  await ada.login('ada');
  const lock = holdWriteLock(t, stack.dbPath);
  await ada.typeAndSend('sent while the database is locked');
  await ada.page.waitForSelector('li.pending[data-state="retrying"]');
  assert.equal(await ada.page.textContent('li.pending .pending-text'), 'Could not send: the server is busy, retrying in 1 s.');
  await waitFor(async () => (await posts(ada)).filter((p) => p.status === 503).length >= 2, 'a second refusal', WAIT_MS);
  lock.release();
  await ada.page.waitForSelector('section[data-room="lobby"] li.message.mine', { state: 'attached' });

  const attempts = await posts(ada);
  assert.ok(attempts.length >= 3, `refused at least twice, then sent: ${attempts.map((a) => a.status).join(',')}`);
  assert.equal(attempts.at(-1)!.status, 201);
  for (let i = 1; i < attempts.length; i++) {
    assert.equal(attempts[i - 1]!.status, 503);
    const gap = attempts[i]!.sentAt - attempts[i - 1]!.doneAt!;
    assert.ok(gap >= 1000, `attempt ${i + 1} went ${gap.toFixed(0)} ms after a Retry-After: 1`);
  }
  assert.equal(await ada.page.locator('section[data-room="lobby"] li.message.mine').count(), 1);
  assert.deepEqual(ada.errors, []);
});

test('a poll refused 503 with Retry-After (the proxy full for this address) waits at least that long before polling again', async (t) => {
  const stack = await startBrowserStack(t, browser, { proxy: { maxParkedPerAddress: 1, parkedRetryAfterS: 2 } });
  // Someone else from this address takes the only parking place: a poll on a quiet room, parked until we end it.
  const carol = new ChatClient(`http://127.0.0.1:${stack.appPort}`);
  await carol.login('carol');
  await carol.call('POST', '/api/rooms', { name: 'quiet' });
  const cursor = await carol.join('quiet');
  const cookie = (carol as unknown as { cookie: string }).cookie;
  const parked: ClientRequest = httpRequest({
    host: '127.0.0.1',
    port: stack.clientPort,
    path: `/api/poll?rooms=quiet:${cursor}`,
    headers: { host: `chat.test:${stack.clientPort}`, cookie },
  });
  parked.on('error', () => undefined); // ended by the test
  parked.end();
  t.after(() => parked.destroy());
  await waitFor(async () => (await stack.stats()).parked === 1, 'carol parked', WAIT_MS);

  const ada = await stack.openPage();
  await ada.login('ada');
  const polls = async () => (await ada.xhrLog()).filter((r) => r.url.includes('/api/poll'));
  await waitFor(async () => (await polls()).filter((p) => p.status === 503).length >= 2, 'two refused polls', 15_000);
  // The status says why, in words.
  await ada.page.waitForFunction(() => (globalThis as Doc).document.getElementById('status-text').textContent === 'Reconnecting… · the server is full');
  parked.destroy();
  await waitFor(async () => (await stack.stats()).parked === 1 && (await polls()).some((p) => p.status === null), 'ada parked', 15_000);

  const all = await polls();
  const refused = all.filter((p) => p.status === 503);
  assert.ok(refused.length >= 2);
  for (const r of refused) {
    const next = all[all.indexOf(r) + 1]!;
    const gap = next.sentAt - r.doneAt!;
    assert.ok(gap >= 2000, `a poll went ${gap.toFixed(0)} ms after a Retry-After: 2`);
  }
  assert.deepEqual(ada.errors, []);
});

test('per-room with more than 5 rooms is flagged in the Transport menu; 5 are fine', async (t) => {
  const stack = await startBrowserStack(t, browser);
  const bob = new ChatClient(`http://127.0.0.1:${stack.appPort}`);
  await bob.login('bob');
  for (let i = 1; i <= 5; i++) await bob.call('POST', '/api/rooms', { name: `r${i}` });
  const ada = await stack.openPage('strategy=per-room', PHONE);
  // The page's timers on a clock the test can move (it also runs at its own pace meanwhile).
  await ada.page.clock.install();
  await ada.login('ada');
  await ada.joinRooms(['r1', 'r2', 'r3', 'r4']);
  assert.equal((await ada.state()).client.rooms.length, 5);
  assert.equal(await ada.page.isVisible('#transport-flag'), false);
  await ada.page.click('#transport-toggle');
  assert.equal(await ada.page.isVisible('#strategy-warning'), false, 'no warning with 5 rooms');
  await ada.page.keyboard.press('Escape');

  await ada.joinRooms(['r5']);
  assert.equal(await ada.page.isVisible('#transport-flag'), true, 'the Transport button is flagged');
  await ada.page.click('#transport-toggle');
  await ada.page.waitForSelector('#strategy-warning', { state: 'visible' });
  assert.match((await ada.page.textContent('#strategy-warning')) ?? '', /with 6 rooms .* more than the 5 connections/);
  await assertInViewport(ada.page, '#strategy-warning', PHONE);
  await shot(ada.page, 'per-room-warning-375x740');

  // The 6 polls hold every connection, so the periodic room-list refresh queues in the browser;
  // 30 s of refresh ticks later there is still only one such request waiting, not one per tick.
  await parkedCount(stack, 6);
  await ada.page.clock.runFor(30_000);
  const lists = (await ada.xhrLog()).filter((r) => r.method === 'GET' && r.url.endsWith('/api/rooms'));
  assert.equal(lists.filter((r) => r.doneAt === null).length, 1, `room-list requests waiting: ${lists.length} sent`);
  assert.deepEqual(ada.errors, []);
});

test('a new tab of the same session opens the rooms it joined elsewhere, not only the lobby', async (t) => {
  const stack = await startBrowserStack(t, browser);
  const bob = new ChatClient(`http://127.0.0.1:${stack.appPort}`);
  await bob.login('bob');
  for (const name of ['dev', 'random', 'zzz']) await bob.call('POST', '/api/rooms', { name });
  const ada = await stack.openPage();
  await ada.login('ada');
  await ada.joinRooms(['random', 'dev']);

  // Same browser context: same cookie, so same session; a new tab has its own (empty) sessionStorage.
  const tab = await ada.context.newPage();
  await tab.goto(stack.pageUrl());
  await tab.waitForSelector('body[data-ready="true"]');
  const rooms = await tab.evaluate(() => (globalThis as unknown as PageGlobals).CometChat.app.state().client.rooms.map((r) => r.name));
  assert.deepEqual([...rooms].sort(), ['dev', 'lobby', 'random']);
  assert.equal(await tab.locator('#joined-rooms li[data-room]').count(), 3);
  await tab.waitForSelector('#all-rooms button[data-join="zzz"]', { state: 'attached' }); // rooms not joined stay on offer
  assert.equal(await tab.locator('#all-rooms button[data-join]').count(), 1);
  assert.equal(await tab.evaluate(() => (globalThis as Doc).document.activeElement.id), 'post-text');
});
