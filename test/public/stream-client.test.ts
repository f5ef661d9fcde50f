/**
 * The client's streaming loop (public/js/comet-stream.js) in a vm with a fake EventSource, a scripted transport
 * (for history and the diagnosing long-poll) and fake timers: which transport is chosen, reopening from the
 * current cursors, the long-poll after a stream that would not open and what its answer leads to, staying with
 * long-polling, resync, recycling, and the forever iframe's entry point.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeTimers, loadClient, loadScripts, ScriptedTransport, type FakeBrowser } from '../helpers/browser-vm.js';

/** EventSource as the client uses it: listeners by type, `onerror`, `close()`. */
class FakeEventSource {
  static made: FakeEventSource[] = [];
  closed = false;
  onerror: (() => void) | null = null;
  private readonly listeners: Record<string, Array<(e: { data: string }) => void>> = {};

  constructor(readonly url: string) {
    FakeEventSource.made.push(this);
  }

  addEventListener(type: string, fn: (e: { data: string }) => void): void {
    (this.listeners[type] ??= []).push(fn);
  }

  close(): void {
    this.closed = true;
  }

  emit(type: string, data: unknown): void {
    assert.ok(!this.closed, `${type} on a closed EventSource`);
    (this.listeners[type] ?? []).forEach((fn) => fn({ data: JSON.stringify(data) }));
  }

  fail(): void {
    this.onerror?.();
  }

  param(name: string): string | null {
    return new URL(this.url, 'http://x').searchParams.get(name);
  }
}

interface Harness {
  browser: FakeBrowser;
  client: any;
  transport: ScriptedTransport;
  timers: FakeTimers;
  events: Array<[string, number]>;
  resets: string[];
  removed: string[];
  lost: number;
}

function event(id: number, room: string) {
  return { id, room, type: 'message', user: { id: 2, nick: 'bob' }, text: `m${id}`, at: '2026-11-21T10:00:00.000Z' };
}

function start(search = '', withEventSource = true, extra: Record<string, unknown> = {}): Harness {
  FakeEventSource.made = [];
  const browser = loadClient();
  loadScripts(browser, ['comet-stream.js']);
  if (withEventSource) browser.window.EventSource = FakeEventSource;
  (browser.window.location as { search: string }).search = search;
  const transport = new ScriptedTransport();
  const timers = new FakeTimers();
  const client = browser.window.CometChat.createClient({ transport, timers, random: () => 0.999, tabs: 'off', ...extra });
  const h: Harness = { browser, client, transport, timers, events: [], resets: [], removed: [], lost: 0 };
  client.on('events', (room: string, events: Array<{ id: number }>) => events.forEach((e) => h.events.push([room, e.id])));
  client.on('reset', (room: string) => h.resets.push(room));
  client.on('room-removed', (room: string) => h.removed.push(room));
  client.on('session-lost', () => h.lost++);
  client.start(() => {});
  transport.next('/api/config').answer(404, { code: 'APP_ERR_NOT_FOUND', message: 'no route' });
  transport.next('/api/session').answer(200, { user: { id: 1, nick: 'ada' } });
  return h;
}

function join(h: Harness, rooms: Array<[string, number]>): void {
  h.client.joinRooms(rooms.map(([name]) => name), () => {});
  for (const [room, cursor] of rooms) {
    h.transport.next(`/api/rooms/${room}/join`).answer(200, { room: { name: room, members: 1, lastEventId: cursor }, cursor });
    h.transport.next(`/api/rooms/${room}/messages`).answer(200, { events: [], cursor, hasMore: false });
  }
}

const latest = () => FakeEventSource.made.at(-1)!;
const open = () => FakeEventSource.made.filter((s) => !s.closed);

test('EventSource is chosen where the browser has one; without, or with ?transport=poll, the client long-polls', () => {
  const h = start();
  assert.equal(h.client.status().delivery, 'sse');
  join(h, [['lobby', 5]]);
  assert.equal(open().length, 1);
  assert.equal(h.transport.pending('/api/poll').length, 0);

  const old = start('', false);
  assert.equal(old.client.status().delivery, 'poll');
  assert.equal(old.client.status().deliveryNote, null, 'auto says nothing when it long-polls');
  const forced = start('?transport=poll');
  assert.equal(forced.client.status().delivery, 'poll');
  const wrong = start('?transport=carrier-pigeon');
  assert.equal(wrong.client.status().delivery, 'sse');
  assert.match(wrong.client.status().deliveryNote, /unknown transport/);
});

test('one stream for every room, from the cursors as they are when it opens; the hello gives the connection ID; repeats are dropped', () => {
  const h = start();
  join(h, [['lobby', 5]]);
  const first = latest();
  assert.equal(first.param('rooms'), 'lobby:5');
  assert.equal(first.param('cid'), null);
  first.emit('hello', { connectionId: 'C'.repeat(21) });
  first.emit('message', event(6, 'lobby'));
  first.emit('message', event(6, 'lobby'));
  first.emit('message', event(7, 'lobby'));
  assert.deepEqual(h.events, [['lobby', 6], ['lobby', 7]]);

  join(h, [['r1', 9]]);
  assert.ok(first.closed, 'a changed room set replaces the stream');
  const second = latest();
  assert.equal(second.param('rooms'), 'lobby:7,r1:9');
  assert.equal(second.param('cid'), 'C'.repeat(21));
  second.emit('hello', { connectionId: 'C'.repeat(21) });
  second.emit('message', event(7, 'lobby'));
  assert.deepEqual(h.events, [['lobby', 6], ['lobby', 7]], 'at or below the cursor: dropped');

  // The stream ends (a proxy restart): the client, not EventSource, reopens it, from the current cursors.
  second.emit('message', event(10, 'r1'));
  second.fail();
  assert.ok(second.closed, 'EventSource is closed so it does not reconnect by itself');
  assert.equal(open().length, 0);
  h.timers.fireNext();
  assert.equal(latest().param('rooms'), 'lobby:7,r1:10');
});

test('a stream that fails before its hello is followed by one long-poll, whose answer decides: events, then a stream again', () => {
  const h = start();
  join(h, [['lobby', 5]]);
  latest().fail();
  const poll = h.transport.next('/api/poll');
  assert.equal(poll.param('rooms'), 'lobby:5');
  poll.answer(200, { events: [event(6, 'lobby')], connectionId: 'D'.repeat(21) });
  assert.deepEqual(h.events, [['lobby', 6]]);
  assert.equal(latest().param('rooms'), 'lobby:6');
  assert.equal(latest().param('cid'), 'D'.repeat(21));
  assert.equal(open().length, 1);
});

test('the diagnosing long-poll\'s refusals: 403 drops the room, 401 ends the session, no answer backs off', () => {
  const h = start();
  join(h, [['lobby', 5]]);
  latest().fail();
  h.transport.next('/api/poll').answer(403, { code: 'APP_ERR_NOT_MEMBER', message: 'not a member of lobby' });
  assert.deepEqual(h.removed, ['lobby']);
  assert.equal(h.client.status().loops.length, 0);

  const g = start();
  join(g, [['lobby', 5]]);
  latest().fail();
  g.transport.next('/api/poll').fail();
  assert.equal(g.client.status().loops[0].state, 'waiting');
  g.timers.fireNext();
  latest().fail();
  g.transport.next('/api/poll').answer(401, { code: 'APP_ERR_SESSION_ENDED', message: 'signed out' });
  assert.equal(g.lost, 1);
  assert.equal(open().length, 0);
});

test('after three streams in a row fail to open while the long-poll works, the loop stays with long-polling', () => {
  const h = start();
  join(h, [['lobby', 5]]);
  for (let i = 0; i < 3; i++) {
    latest().fail();
    h.transport.next('/api/poll').answer(200, { events: [], connectionId: 'E'.repeat(21) });
  }
  const made = FakeEventSource.made.length;
  assert.equal(h.client.status().loops[0].transport, 'poll');
  h.transport.next('/api/poll').answer(200, { events: [event(6, 'lobby')], connectionId: 'E'.repeat(21) });
  h.transport.next('/api/poll');
  assert.equal(FakeEventSource.made.length, made, 'no stream is tried again');
});

test('a resync frame reloads the rooms, then streams from the reloaded cursors; an open stream is recycled', () => {
  const h = start();
  join(h, [['lobby', 5]]);
  const first = latest();
  first.emit('hello', { connectionId: 'F'.repeat(21) });
  first.emit('resync', 'reconnect');
  assert.ok(first.closed);
  h.transport.next('/api/rooms/lobby/messages').answer(200, { events: [], cursor: 40, hasMore: false });
  assert.deepEqual(h.resets, ['lobby', 'lobby']);
  const second = latest();
  assert.equal(second.param('rooms'), 'lobby:40');
  second.emit('hello', { connectionId: 'F'.repeat(21) });
  // The recycle timer is the one waiting now.
  assert.deepEqual(h.timers.delays(), [50000]);
  h.timers.fireNext();
  assert.ok(second.closed);
  assert.equal(open().length, 1);
});

test('the forever iframe: a hidden named iframe on format=iframe; its frames arrive through CometChat._s under its name only', () => {
  const h = start('?transport=iframe');
  assert.equal(h.client.status().delivery, 'iframe');
  join(h, [['lobby', 5]]);
  const frames = h.browser.window.document.iframes as unknown as Array<{ src: string; name: string }>;
  assert.equal(frames.length, 1);
  const frame = frames[0]!;
  assert.match(frame.src, /^\/api\/stream\?rooms=lobby:5&format=iframe$/);
  const cc = h.browser.window.CometChat;
  cc._s(frame.name, `\n\nevent: hello\ndata: {"connectionId":"${'G'.repeat(21)}"}\n:`);
  cc._s(frame.name, `\n\nid: 6\ndata: ${JSON.stringify(event(6, 'lobby'))}\n:`);
  cc._s('comet-stream-other', `\n\nid: 7\ndata: ${JSON.stringify(event(7, 'lobby'))}\n:`);
  assert.deepEqual(h.events, [['lobby', 6]]);
  assert.equal(h.client.status().loops[0].connectionId, 'G'.repeat(21));
  h.client.leaveRoom('lobby', () => {});
  assert.equal(frames.length, 0, 'the iframe is removed when its loop ends');
});

test('the forever iframe is replaced after its byte budget, from the cursors it got to', () => {
  const h = start('?transport=iframe', true, { streamByteBudget: 300 });
  join(h, [['lobby', 5]]);
  const frames = h.browser.window.document.iframes as unknown as Array<{ src: string; name: string }>;
  const first = frames[0]!;
  const cc = h.browser.window.CometChat;
  cc._s(first.name, `\n\nevent: hello\ndata: {"connectionId":"${'H'.repeat(21)}"}\n:`);
  cc._s(first.name, `\n\nid: 6\ndata: ${JSON.stringify(event(6, 'lobby'))}\n:`);
  assert.equal(frames.length, 1, 'under the budget');
  cc._s(first.name, `\n\nid: 7\ndata: ${JSON.stringify(event(7, 'lobby'))}\n:`);
  assert.deepEqual(h.events, [['lobby', 6], ['lobby', 7]], 'the frame that crossed the budget is delivered');
  assert.equal(frames.length, 0, 'then the iframe is removed');
  h.timers.fireAt(h.timers.delays().indexOf(Math.min(...h.timers.delays())));
  assert.equal(frames.length, 1);
  assert.match(frames[0]!.src, /rooms=lobby:7&cid=H{21}&format=iframe$/);
});
