/**
 * The page side of the shard bridge (public/js/comet-bridge-client.js) and the
 * sharded client's host assignment, in a vm with a fake document: which
 * shard each room polls on, the bridge iframe's URL, the choice between
 * document.domain and postMessage, the postMessage protocol with its origin
 * checks, and the fallback when a bridge never answers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeTimers, loadClient, plain, ScriptedTransport, type FakeBrowser, type FakeIframe } from '../helpers/browser-vm.js';

const C1 = 'http://c1.chat.test:8080';

/** A sharded client with `shards` shard hosts, signed in (fake timers: bridges never time out unless told). */
function shardedClient(shards: number): { browser: FakeBrowser; client: any; transport: ScriptedTransport } {
  const browser = loadClient('chat.test');
  const transport = new ScriptedTransport();
  const client = browser.window.CometChat.createClient({ strategy: 'sharded', transport, timers: new FakeTimers() });
  client.start(() => {});
  transport.next('/api/config').answer(200, { baseDomain: 'chat.test', shards });
  transport.next('/api/session').answer(200, { user: { id: 1, nick: 'ada' } });
  return { browser, client, transport };
}

function join(client: any, transport: ScriptedTransport, rooms: string[]): void {
  client.joinRooms(rooms, () => {});
  for (const room of rooms) {
    transport.next(`/api/rooms/${room}/join`).answer(200, { room: {}, cursor: 1 });
    transport.next(`/api/rooms/${room}/messages`).answer(200, { events: [], cursor: 1, hasMore: false });
  }
}

function message(origin: string, source: unknown, data: unknown) {
  return { origin, source, data: typeof data === 'string' ? data : JSON.stringify(data) };
}

function iframeFor(browser: FakeBrowser, origin: string): FakeIframe {
  const frame = browser.window.document.iframes.find((f) => f.src.startsWith(`${origin}/`));
  assert.ok(frame, `no bridge iframe for ${origin}`);
  return frame;
}

test('rooms are spread over the shard hosts, least used first, each loaded as c<N>.<base domain> on the page\'s port', () => {
  const { browser, client, transport } = shardedClient(3);
  join(client, transport, ['lobby', 'r1', 'r2', 'r3']);
  assert.equal(client.status().strategy, 'sharded');
  assert.deepEqual(plain(client.shardOf), { lobby: 0, r1: 1, r2: 2, r3: 0 });
  const srcs = browser.window.document.iframes.map((f) => f.src);
  assert.deepEqual(srcs, [1, 2, 3].map((n) => `http://c${n}.chat.test:8080/bridge.html?base=chat.test&parent=${encodeURIComponent('http://chat.test:8080')}`));
  // Nothing is polled on the page's own host.
  assert.equal(transport.pending('/api/poll').length, 0);

  // A room that leaves frees its shard for the next one.
  client.leaveRoom('r1', () => {});
  transport.next('/api/rooms/r1/leave').answer(200, { room: {} });
  join(client, transport, ['r4']);
  assert.equal(plain(client.shardOf).r4, 1);
});

test('a bridge whose window is reachable after document.domain is called directly', () => {
  const { browser, client, transport } = shardedClient(1);
  join(client, transport, ['lobby']);
  const frame = iframeFor(browser, C1);
  const calls: string[] = [];
  frame.contentWindow.CometBridge = {
    request: (method: string, path: string) => {
      calls.push(`${method} ${path}`);
      return { abort() {} };
    },
  };
  frame.listeners.load!.forEach((fn) => fn({}));
  assert.equal(browser.window.document.domain, 'chat.test');
  assert.equal(client.status().bridges[C1], 'document.domain');
  // A first poll (no connection ID yet) carries the page's tag, so tabs' first polls differ (docs/chat-api.md).
  assert.equal(calls.length, 1);
  assert.match(calls[0]!, /^GET \/api\/poll\?rooms=lobby:1&t=[0-9a-z]+$/);
});

test('otherwise the page speaks postMessage: JSON strings, the bridge origin named, answers accepted only from that bridge', () => {
  const { browser, client, transport } = shardedClient(1);
  const events: number[] = [];
  client.on('events', (_room: string, list: Array<{ id: number }>) => list.forEach((e) => events.push(e.id)));
  join(client, transport, ['lobby']);
  const frame = iframeFor(browser, C1);

  // Ready from a stranger is ignored; from the bridge it settles the mode.
  browser.fire('message', message('http://evil.example', frame.contentWindow, { cometBridge: 1, ready: true }));
  assert.equal(client.status().bridges[C1], 'pending');
  browser.fire('message', message(C1, frame.contentWindow, { cometBridge: 1, ready: true }));
  assert.equal(client.status().bridges[C1], 'postMessage');

  assert.equal(frame.contentWindow.posted.length, 1);
  const sent = frame.contentWindow.posted[0]!;
  assert.equal(typeof sent.data, 'string', 'IE8 posts strings only');
  assert.equal(sent.targetOrigin, C1);
  const request = JSON.parse(sent.data);
  const { path, ...rest } = request as { path: string };
  assert.deepEqual(rest, { cometBridge: 1, id: 1, method: 'GET', body: null });
  assert.match(path, /^\/api\/poll\?rooms=lobby:1&t=[0-9a-z]+$/);

  const answer = { cometBridge: 1, id: 1, status: 200, body: JSON.stringify({ events: [{ id: 2, room: 'lobby', type: 'message' }], connectionId: 'CID-1' }), headers: {} };
  browser.fire('message', message('http://c2.chat.test:8080', frame.contentWindow, answer));
  browser.fire('message', message(C1, {}, answer));
  assert.deepEqual(events, [], 'answers from another origin or window are ignored');
  browser.fire('message', message(C1, frame.contentWindow, answer));
  assert.deepEqual(events, [2]);

  // The next poll went out the same way, with the connection ID; leaving aborts it through the bridge.
  const second = JSON.parse(frame.contentWindow.posted[1]!.data);
  assert.equal(second.path, '/api/poll?rooms=lobby:2&cid=CID-1');
  client.leaveRoom('lobby', () => {});
  assert.deepEqual(JSON.parse(frame.contentWindow.posted[2]!.data), { cometBridge: 1, id: 2, abort: true });
});

test('a bridge that never gets ready hands its requests to the page\'s own host after the timeout', () => {
  const browser = loadClient('chat.test');
  const transport = new ScriptedTransport();
  const timers = new FakeTimers();
  const client = browser.window.CometChat.createClient({ strategy: 'sharded', transport, timers, bridgeReadyTimeoutMs: 3000 });
  client.start(() => {});
  transport.next('/api/config').answer(200, { baseDomain: 'chat.test', shards: 2 });
  transport.next('/api/session').answer(200, { user: { id: 1, nick: 'ada' } });
  join(client, transport, ['lobby']);
  assert.equal(transport.pending('/api/poll').length, 0, 'waiting for the bridge');
  assert.deepEqual(timers.delays(), [75_000, 3000], 'the poll watchdog and the ready timeout');

  timers.fireAt(1); // the ready timeout
  assert.equal(client.status().bridges[C1], 'fallback');
  assert.equal(transport.next('/api/poll').param('rooms'), 'lobby:1');
  assert.equal(browser.window.document.iframes.length, 0, 'the useless iframe is removed');
});
