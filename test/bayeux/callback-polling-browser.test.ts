/**
 * The real CometD JavaScript client (node_modules/cometd, unchanged) forced to
 * `callback-polling` in Chromium, which is the transport's real use: a page on
 * another origin talks to the chat through `<script>` tags only. Two such
 * pages (one with the ack extension) and a browser-protocol client exchange N
 * messages each way in one room; every receiver gets the room's committed
 * sequence exactly once and in order, and the pages' connects are parked by
 * the proxy (no request of theirs is a POST or an XHR).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { launchBrowser } from '../helpers/browser.js';
import { ChatClient, waitFor, type ChatEvent } from '../helpers/chat-client.js';
import { createHoldProxy } from '../../proxy/proxy.js';
import { startStack } from '../helpers/stack.js';

const N = 25;
const ROOM = 'count';
const COMETD_DIR = join(process.cwd(), 'node_modules', 'cometd');

/** The page: CometD's ES modules, every transport but callback-polling unregistered. */
const PAGE = `<!doctype html><meta charset="utf-8"><title>callback-polling</title>
<script type="module">
import { CometD, AckExtension } from '/cometd-js/cometd.js';
const state = { received: [], failures: [], transport: null, connects: 0 };
let cometd = null;
window.bayeuxTest = {
  state,
  start(url, nick, room, ack) {
    cometd = new CometD();
    for (const type of cometd.getTransportTypes()) if (type !== 'callback-polling') cometd.unregisterTransport(type);
    cometd.configure({ url, logLevel: 'warn' });
    if (ack) cometd.registerExtension('ack', new AckExtension());
    cometd.addListener('/meta/connect', (m) => { if (m.successful) state.connects++; else state.failures.push(m); });
    return new Promise((resolve, reject) => {
      cometd.handshake({ ext: { 'comet-chat': { nick } } }, (hs) => {
        if (!hs.successful) return reject(new Error('handshake: ' + JSON.stringify(hs)));
        state.transport = cometd.getTransport().type;
        cometd.subscribe('/chat/' + room, (m) => state.received.push(m.data), (sub) => sub.successful ? resolve(hs.ext) : reject(new Error('subscribe: ' + JSON.stringify(sub))));
      });
    });
  },
  publish(room, text) {
    return new Promise((resolve) => cometd.publish('/chat/' + room, { text }, (reply) => resolve(reply.successful === true)));
  },
  stop() { return new Promise((resolve) => cometd.disconnect(() => resolve())); },
};
</script>`;

interface TestGlobals {
  bayeuxTest: {
    state: { received: ChatEvent[]; failures: unknown[]; transport: string | null; connects: number };
    start(url: string, nick: string, room: string, ack: boolean): Promise<unknown>;
    publish(room: string, text: string): Promise<boolean>;
    stop(): Promise<void>;
  };
}

/** Serves the page and CometD's files on an origin of its own (another port than the proxy's). */
async function startPageServer(): Promise<{ server: Server; origin: string }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (path === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE);
      return;
    }
    const file = /^\/cometd-js\/([A-Za-z0-9]+\.js)$/.exec(path)?.[1];
    if (file === undefined) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' }).end(readFileSync(join(COMETD_DIR, file)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

interface CometdRequest {
  method: string;
  url: string;
  type: string;
}

/**
 * A page of `origin` in a fresh browser context whose CometD client handshakes with `chatBase`'s
 * `/cometd` over callback-polling and subscribes to ROOM; its requests to `/cometd` go into `requests`.
 */
async function openCometdPage(t: TestContext, origin: string, chatBase: string, nick: string, ack: boolean, requests: CometdRequest[]): Promise<Page> {
  const context = await browser.newContext();
  t.after(() => context.close());
  const page = await context.newPage();
  page.on('request', (r) => {
    if (r.url().startsWith(`${chatBase}/cometd`)) requests.push({ method: r.method(), url: r.url(), type: r.resourceType() });
  });
  await page.goto(`${origin}/`);
  await page.waitForFunction(() => (globalThis as unknown as Partial<TestGlobals>).bayeuxTest !== undefined);
  const ext = await page.evaluate(
    ([url, n, room, a]) => (globalThis as unknown as TestGlobals).bayeuxTest.start(url, n, room, a),
    [`${chatBase}/cometd`, nick, ROOM, ack] as [string, string, string, boolean],
  );
  assert.equal((ext as { ack?: unknown }).ack, ack ? true : undefined, `${nick}: ack negotiated as asked`);
  assert.equal(await page.evaluate(() => (globalThis as unknown as TestGlobals).bayeuxTest.state.transport), 'callback-polling');
  return page;
}

let browser: Browser;
before(async () => {
  browser = await launchBrowser();
});
after(() => browser?.close());

function messageIds(events: readonly ChatEvent[]): number[] {
  return events.filter((e) => e.room === ROOM && e.type === 'message').map((e) => e.id);
}

test('the real CometD client on callback-polling in Chromium gets N messages each way exactly once and in order, its connects parked by the proxy', async (t) => {
  const stack = await startStack(t, { app: { holdTimeoutS: 5 } });
  const pages = await startPageServer();
  t.after(() => new Promise<void>((resolve) => pages.server.close(() => resolve())));
  const bob = new ChatClient(stack.base);
  await bob.login('bob');
  await bob.call('POST', '/api/rooms', { name: ROOM });
  await bob.join(ROOM);

  const cometdRequests: CometdRequest[] = [];
  const ada = await openCometdPage(t, pages.origin, stack.base, 'ada', false, cometdRequests);
  const dan = await openCometdPage(t, pages.origin, stack.base, 'dan', true, cometdRequests);
  // Both pages' connects are parked: their subscriptions' wakes have re-parked them on the room.
  await waitFor(async () => (await stack.stats()).parked === 2, 'both pages to have a connect parked by the proxy', 10_000);
  await bob.join(ROOM); // already a member: no event; a fresh cursor for bob's polls

  const received = (page: Page) => page.evaluate(() => (globalThis as unknown as TestGlobals).bayeuxTest.state.received);
  const fromBrowserProtocol = (async () => {
    for (let i = 0; i < N; i++) await bob.post(ROOM, `bob ${i}`);
  })();
  const fromPage = (async () => {
    for (let i = 0; i < N; i++) {
      const ok = await ada.evaluate(([room, text]) => (globalThis as unknown as TestGlobals).bayeuxTest.publish(room, text), [ROOM, `ada ${i}`] as [string, string]);
      assert.equal(ok, true, `ada's publish ${i}`);
    }
  })();
  const deadline = Date.now() + 60_000;
  // Known once both senders are done; until then bob keeps polling.
  const target: { ids: number[] | null } = { ids: null };
  const bobDone = (async () => {
    while ((target.ids === null || messageIds(bob.received).length < target.ids.length) && Date.now() < deadline) {
      const r = await bob.poll();
      if (r.status !== 200) throw new Error(`poll answered ${r.status}`);
    }
  })();
  await Promise.all([fromBrowserProtocol, fromPage]);

  const history = await bob.call('GET', `/api/rooms/${ROOM}/messages?limit=200`);
  const expected = messageIds(history.body.events as ChatEvent[]);
  assert.equal(expected.length, 2 * N);
  target.ids = expected;
  const all = expected;
  await waitFor(async () => messageIds(await received(ada)).length >= all.length && messageIds(await received(dan)).length >= all.length, 'both pages to have every message', 30_000);
  await bobDone;
  for (const [name, events] of [['ada', await received(ada)], ['dan (ack)', await received(dan)], ['bob', bob.received]] as const) {
    assert.deepEqual(messageIds(events), expected, `${name} got every message exactly once, in commit order`);
  }
  assert.deepEqual(
    bob.received.filter((e) => e.type === 'message' && e.text!.startsWith('ada')).map((e) => e.text),
    Array.from({ length: N }, (_, i) => `ada ${i}`),
    "ada's JSON-P publishes reached the browser protocol",
  );

  // Only script GETs with a jsonp callback: nothing here used XHR or POST.
  assert.ok(cometdRequests.length > 4);
  for (const r of cometdRequests) {
    assert.equal(r.method, 'GET', r.url);
    assert.equal(r.type, 'script', r.url);
    assert.match(new URL(r.url).searchParams.get('jsonp') ?? '', /^_cometd_jsonp_\d+$/);
  }
  for (const page of [ada, dan]) {
    assert.deepEqual(await page.evaluate(() => (globalThis as unknown as TestGlobals).bayeuxTest.state.failures), [], 'no failed connect');
    await page.evaluate(() => (globalThis as unknown as TestGlobals).bayeuxTest.stop());
  }
});

test('a callback-polling page loses nothing across a proxy restart: messages posted while the proxy was down arrive once, in order', async (t) => {
  const stack = await startStack(t, { app: { holdTimeoutS: 5 } });
  const pages = await startPageServer();
  t.after(() => new Promise<void>((resolve) => pages.server.close(() => resolve())));
  // Bob talks to the app directly, so he can post while the proxy is down.
  const bob = new ChatClient(`http://127.0.0.1:${stack.appPort}`);
  await bob.login('bob');
  await bob.call('POST', '/api/rooms', { name: ROOM });
  await bob.join(ROOM);
  const requests: CometdRequest[] = [];
  const dan = await openCometdPage(t, pages.origin, stack.base, 'dan', true, requests);
  await waitFor(async () => (await stack.stats()).parked === 1, "dan's connect to be parked", 10_000);
  const received = () => dan.evaluate(() => (globalThis as unknown as TestGlobals).bayeuxTest.state.received);

  const sent = [(await bob.post(ROOM, 'before')).id];
  await waitFor(async () => messageIds(await received()).length === 1, 'dan to get the first message', 10_000);
  // The parked connect gets its timeout answer (JSON-P); the page's next requests fail at the network level.
  const options = stack.proxy.options;
  await stack.proxy.close();
  for (let i = 0; i < 5; i++) sent.push((await bob.post(ROOM, `while down ${i}`)).id);
  const failedBefore = requests.length;
  await waitFor(() => requests.length > failedBefore, 'the page to try the stopped proxy', 10_000);
  const restarted = createHoldProxy({ ...options, clientPort: stack.clientPort, controlPort: stack.controlPort, upstreamUrl: `http://127.0.0.1:${stack.appPort}` });
  t.after(() => restarted.close());
  await restarted.listen();
  sent.push((await bob.post(ROOM, 'after')).id);

  await waitFor(async () => messageIds(await received()).length >= sent.length, 'dan to get every message after the restart', 30_000);
  assert.deepEqual(messageIds(await received()), sent, 'each once, in order');
  await dan.evaluate(() => (globalThis as unknown as TestGlobals).bayeuxTest.stop());
});
