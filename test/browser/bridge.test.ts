/**
 * The shard bridge (public/bridge.html): document.domain where the browser
 * allows it, the postMessage fallback where it does not, and what the bridge
 * refuses to do.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Frame } from 'playwright-core';
import { launchBrowser, WAIT_MS, type ChatPage } from '../helpers/browser.js';
import { startBrowserStack } from '../helpers/browser-stack.js';
import { ChatClient, waitFor } from '../helpers/chat-client.js';

let browser: Browser;
before(async () => {
  browser = await launchBrowser();
});
after(() => browser?.close());

/** Page-side view of a shard bridge's API (public/js/bridge.js). */
interface BridgeGlobals {
  CometBridge?: {
    request(method: string, path: string, body: string | null, cb: (err: { code: string } | null, status: number) => void): void;
  };
}

/** Adds an iframe with `src` to the page and returns its frame once loaded. */
async function addFrame(chat: ChatPage, src: string): Promise<Frame> {
  await chat.page.evaluate(
    (url) =>
      new Promise<void>((resolve) => {
        const doc = (globalThis as unknown as { document: { createElement(t: string): Record<string, unknown>; body: { appendChild(n: unknown): void } } }).document;
        const iframe = doc.createElement('iframe');
        iframe.onload = () => resolve();
        iframe.src = url;
        doc.body.appendChild(iframe);
      }),
    src,
  );
  const frame = chat.page.frames().find((f) => f.url() === src);
  assert.ok(frame, `frame ${src}`);
  return frame;
}

/**
 * On chat.localhost (a secure context, where Chromium honours Origin-Agent-Cluster)
 * the bridge's header alone decides: `?0` lets page and bridge share document.domain,
 * `?1` puts the bridge in an origin-keyed agent cluster where the setter is ignored,
 * and the page must fall back to postMessage.
 */
for (const [header, mode] of [['?0', 'document.domain'], ['?1', 'postMessage']] as const) {
  test(`with Origin-Agent-Cluster: ${header} on the bridge the page talks to it by ${mode}, and messages flow`, async (t) => {
    const base = 'chat.localhost';
    const stack = await startBrowserStack(t, browser, { baseDomain: base, proxy: { bridgeOriginAgentCluster: header } });
    const rooms = ['r1', 'r2', 'r3'];
    const bob = new ChatClient(`http://127.0.0.1:${stack.appPort}`);
    await bob.login('bob');
    for (const room of rooms) {
      await bob.call('POST', '/api/rooms', { name: room });
      await bob.join(room);
    }
    const ada = await stack.openPage('strategy=sharded');
    await ada.login('ada');
    await ada.joinRooms(rooms);
    await ada.activate('r2');
    await ada.waitForLoops(4);
    await waitFor(async () => (await stack.stats()).parked === 4, 'the 4 polls to be parked', WAIT_MS);

    // Every bridge chose the mode, and the page can (or cannot) reach into it.
    const { client } = await ada.state();
    assert.equal(client.strategy, 'sharded');
    assert.equal(Object.keys(client.bridges).length, 4);
    assert.ok(Object.values(client.bridges).every((m) => m === mode), JSON.stringify(client.bridges));
    const reach = await ada.page.evaluate(() => {
      const frames = (globalThis as unknown as { frames: ArrayLike<BridgeGlobals> }).frames;
      try {
        return typeof frames[0]!.CometBridge;
      } catch (err) {
        return (err as Error).name;
      }
    });
    assert.equal(reach, mode === 'postMessage' ? 'SecurityError' : 'object');

    // Messages arrive through the bridges, and the page's own post goes through.
    const posted = await Promise.all(rooms.map((room) => bob.post(room, `via ${mode} to ${room}`)));
    for (const event of posted) await ada.waitForEvent(event.room, event.id);
    await ada.typeAndSend('hello from the page');
    await ada.page.waitForSelector('li.pending', { state: 'detached' });
    assert.equal(await ada.page.locator('#post-error').textContent(), '');
    const mine = Number(await ada.page.locator('section[data-room="r2"] li.message.mine').last().getAttribute('data-event-id'));
    await waitFor(async () => (await stack.stats()).parked === 4, 'the r2 poll to be parked again after delivering our post', WAIT_MS);
    assert.equal(await ada.countEvent(mine), 1);
    const pollHosts = new Set(ada.requests.filter((u) => u.includes('/api/poll?')).map((u) => new URL(u).hostname));
    assert.deepEqual([...pollHosts].sort(), [1, 2, 3, 4].map((n) => `c${n}.${base}`));
    assert.deepEqual(ada.errors, []);
  });
}

test('the bridge serves only parents within the base domain, and only GET/POST under /api/ on its own host', async (t) => {
  const stack = await startBrowserStack(t, browser);
  const ada = await stack.openPage();
  await ada.login('ada');
  const shard = `http://c1.chat.test:${stack.clientPort}`;
  const page = encodeURIComponent(`http://chat.test:${stack.clientPort}`);

  const foreign = await addFrame(ada, `${shard}/bridge.html?parent=${encodeURIComponent('http://evil.example')}`);
  assert.equal(await foreign.evaluate(() => typeof (globalThis as unknown as BridgeGlobals).CometBridge), 'undefined');
  const wrongBase = await addFrame(ada, `${shard}/bridge.html?base=example.org&parent=${page}`);
  assert.equal(await wrongBase.evaluate(() => typeof (globalThis as unknown as BridgeGlobals).CometBridge), 'undefined');

  const bridge = await addFrame(ada, `${shard}/bridge.html?base=chat.test&parent=${page}`);
  // One call per case, no helper function: tsx (esbuild keepNames) would wrap a named
  // inner function in a `__name` call that does not exist in the page.
  const cases: Array<[string, string, string]> = [
    ['session', 'GET', '/api/session'],
    ['page', 'GET', '/bridge.html'],
    ['dotSegments', 'GET', '/api/../bridge.html'],
    ['absolute', 'GET', 'http://evil.example/api/x'],
    ['protocolRelative', 'GET', '//evil.example/api/x'],
    ['method', 'DELETE', '/api/session'],
  ];
  const answers = Object.fromEntries(
    await Promise.all(
      cases.map(async ([name, method, path]) => [
        name,
        await bridge.evaluate(
          ([m, p]) =>
            new Promise<string>((resolve) => {
              (globalThis as unknown as BridgeGlobals).CometBridge!.request(m, p, null, (err, status) => resolve(err ? err.code : String(status)));
            }),
          [method, path] as const,
        ),
      ]),
    ),
  );
  assert.deepEqual(answers, {
    session: '200', // same-origin XHR to the shard, with the session cookie scoped to chat.test
    page: 'COMET_ERR_BRIDGE_REFUSED',
    dotSegments: 'COMET_ERR_BRIDGE_REFUSED',
    absolute: 'COMET_ERR_BRIDGE_REFUSED',
    protocolRelative: 'COMET_ERR_BRIDGE_REFUSED',
    method: 'COMET_ERR_BRIDGE_REFUSED',
  });
  assert.deepEqual(ada.errors, []);
});
