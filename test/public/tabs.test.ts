/**
 * The tab group (public/js/comet-tabs.js) in several vm contexts, one per tab,
 * sharing one simulated localStorage: election (claims, the tie-break on tab
 * ids, takeover after the lease's silence, step-down), the leader's union of
 * rooms and its cursor rule, the relay through the storage key (no
 * BroadcastChannel here), and the fallback when storage starts throwing.
 * Time is simulated: timers run when the test advances the clock, and storage
 * events reach the other tabs when the test flushes them (as a browser
 * delivers them later, in another task).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';
import { plain, ScriptedTransport } from '../helpers/browser-vm.js';

const JS_DIR = fileURLToPath(new URL('../../public/js/', import.meta.url));
const FILES = ['comet-core.js', 'comet-transport.js', 'comet-api.js', 'comet-poller.js', 'comet-tabs.js'];
const SOURCES = FILES.map((file) => ({ file, code: readFileSync(join(JS_DIR, file), 'utf8') }));

interface ChatEvent {
  id: number;
  room: string;
}

/** One simulated browser profile: a clock, timers, and the localStorage its tabs share. */
class World {
  now = 1_700_000_000_000;
  /** Storage events are delivered to tabs in this order, or reversed. */
  reverseDelivery = false;
  readonly tabs: Tab[] = [];
  readonly data = new Map<string, string>();
  private seq = 0;
  private readonly timers = new Map<number, { due: number; fn: () => void; tab: Tab }>();
  private readonly pending: Array<{ to: Tab; key: string; newValue: string | null }> = [];

  timersFor(tab: Tab) {
    return {
      setTimeout: (fn: () => void, ms: number) => {
        this.timers.set(++this.seq, { due: this.now + ms, fn, tab });
        return this.seq;
      },
      clearTimeout: (id: unknown) => {
        this.timers.delete(id as number);
      },
    };
  }

  /** A write by `from`: every other tab gets a storage event later. */
  changed(from: Tab, key: string, newValue: string | null): void {
    const to = this.tabs.filter((t) => t !== from && !t.closed);
    for (const tab of this.reverseDelivery ? to.reverse() : to) this.pending.push({ to: tab, key, newValue });
  }

  /** Delivers queued storage events (and those they cause) to tabs that are not frozen. */
  flush(): void {
    for (let n = 0; n < 10_000; n++) {
      const at = this.pending.findIndex((e) => !e.to.frozen);
      if (at === -1) return;
      const [e] = this.pending.splice(at, 1);
      if (!e!.to.closed) e!.to.fire('storage', { key: e!.key, newValue: e!.newValue });
    }
    throw new Error('storage events never settle');
  }

  /** Drops the storage events waiting for `tab` (as if it never heard of those changes). */
  forget(tab: Tab): void {
    for (let i = this.pending.length - 1; i >= 0; i--) if (this.pending[i]!.to === tab) this.pending.splice(i, 1);
  }

  /** Moves the clock by `ms`, running due timers of tabs that are not frozen in order, flushing after each. */
  advance(ms: number): void {
    const until = this.now + ms;
    this.flush();
    for (let n = 0; n < 10_000; n++) {
      const due = [...this.timers.entries()].filter(([, t]) => t.due <= until && !t.tab.frozen && !t.tab.closed).sort((a, b) => a[1].due - b[1].due || a[0] - b[0])[0];
      if (!due) {
        this.now = until;
        this.flush();
        return;
      }
      this.timers.delete(due[0]);
      this.now = Math.max(this.now, due[1].due);
      due[1].fn();
      this.flush();
    }
    throw new Error('timers never settle');
  }
}

/** One tab: a vm context with the client files, a TabGroup, a scripted transport and what its handler saw. */
class Tab {
  frozen = false;
  closed = false;
  storageThrows = false;
  readonly transport = new ScriptedTransport();
  readonly cursors: Record<string, number> = {};
  /** [room, id] of each event the handler took (the client drops those at or below its cursor, as here). */
  readonly got: Array<[string, number]> = [];
  readonly calls: string[] = [];
  readonly group: any;
  private readonly listeners: Record<string, Array<(e: unknown) => void>> = {};

  constructor(readonly world: World, rooms: Record<string, number> = {}) {
    Object.assign(this.cursors, rooms);
    const storage = {
      getItem: (key: string) => this.guard(() => world.data.get(key) ?? null),
      setItem: (key: string, value: string) =>
        this.guard(() => {
          const old = world.data.get(key);
          world.data.set(key, String(value));
          if (old !== String(value)) world.changed(this, key, String(value));
        }),
      removeItem: (key: string) =>
        this.guard(() => {
          if (world.data.delete(key)) world.changed(this, key, null);
        }),
      key: (i: number) => this.guard(() => [...world.data.keys()][i] ?? null),
      get length() {
        return world.data.size;
      },
    };
    const window: Record<string, unknown> = {
      location: { search: '' },
      addEventListener: (type: string, fn: (e: unknown) => void) => (this.listeners[type] ??= []).push(fn),
      removeEventListener: (type: string, fn: (e: unknown) => void) => {
        this.listeners[type] = (this.listeners[type] ?? []).filter((f) => f !== fn);
      },
      setTimeout,
      clearTimeout,
    };
    window.window = window;
    vm.createContext(window);
    for (const { file, code } of SOURCES) vm.runInContext(code, window, { filename: file });
    const CometChat = (window as { CometChat: any }).CometChat;
    const timers = world.timersFor(this);
    const cursorOf = (room: string) => this.cursors[room] ?? 0;
    const handler = {
      events: (events: ChatEvent[]) => {
        for (const e of events) {
          if (e.id <= (this.cursors[e.room] ?? 0)) continue;
          this.cursors[e.room] = e.id;
          this.got.push([e.room, e.id]);
        }
      },
      resync: (rooms: string[], done: (err: unknown) => void) => {
        this.calls.push(`resync ${rooms.join(',')}`);
        done(null);
      },
      refused: (rooms: string[], err: { code: string }, done: () => void) => {
        this.calls.push(`refused ${rooms.join(',')} ${err.code}`);
        done();
      },
      sessionLost: (err: { code: string }) => this.calls.push(`session-lost ${err.code}`),
      state: () => undefined,
    };
    this.group = new CometChat.TabGroup({
      storage,
      scope: () => '7:multiplex',
      createPoller: (loopHandler: unknown, loopCursorOf: unknown) =>
        new CometChat.Poller({
          strategy: 'multiplex',
          apiFor: () => new CometChat.Api(this.transport),
          cursorOf: loopCursorOf,
          handler: loopHandler,
          timers,
          random: () => 0.5,
        }),
      cursorOf,
      handler,
      window,
      timers,
      now: () => world.now,
    });
    world.tabs.push(this);
    // Tab ids start with the start time: a tab opened later has a larger id.
    world.now += 1;
  }

  private guard<T>(fn: () => T): T {
    if (this.storageThrows) throw new Error('QuotaExceededError');
    return fn();
  }

  fire(type: string, event: unknown): void {
    for (const fn of (this.listeners[type] ?? []).slice()) fn(event);
  }

  get role(): string {
    return this.group.status().role;
  }

  /** The poll in flight (fails unless exactly one). */
  poll() {
    return this.transport.next('/api/poll');
  }

  polls() {
    return this.transport.pending('/api/poll');
  }

  /** Shows rooms (the client calls add after it loaded their history). */
  show(rooms: Record<string, number>): void {
    Object.assign(this.cursors, rooms);
    this.group.add(Object.keys(rooms));
  }
}

const SETTLE_MS = 200;

/** A world whose first tab leads with `rooms`. */
function withLeader(rooms: Record<string, number>): { world: World; a: Tab } {
  const world = new World();
  const a = new Tab(world);
  a.show(rooms);
  assert.equal(a.role, 'claiming');
  world.advance(SETTLE_MS);
  assert.equal(a.role, 'leader');
  return { world, a };
}

const events = (...list: Array<[string, number]>) => ({ events: list.map(([room, id]) => ({ id, room, type: 'message' })), connectionId: 'c'.repeat(21) });

test('the first tab leads once its claim settles; a tab that finds a fresh lease follows, never polls, and gets its rooms relayed', () => {
  const { world, a } = withLeader({ lobby: 5 });
  assert.equal(a.poll().param('rooms'), 'lobby:5');

  const b = new Tab(world);
  b.show({ lobby: 5, r1: 3 });
  assert.equal(b.role, 'follower');
  world.flush();
  // B's record reached the leader: one poll for the union, re-issued at once.
  assert.equal(a.poll().param('rooms'), 'lobby:5,r1:3');
  assert.equal(b.transport.requests.length, 0);

  a.poll().answer(200, events(['lobby', 6], ['r1', 4]));
  world.flush();
  assert.deepEqual(plain(a.got), [['lobby', 6]], 'the leader takes only its own rooms');
  assert.deepEqual(plain(b.got), [['lobby', 6], ['r1', 4]]);
  assert.deepEqual([...world.data.keys()].filter((k) => k.endsWith(':relay')), [], 'relayed text is not left in storage');
  assert.equal(a.poll().param('rooms'), 'lobby:6,r1:4');
  world.advance(5000);
  assert.deepEqual([a.role, b.role], ['leader', 'follower'], 'heartbeats keep the lease');
  assert.equal(b.transport.requests.length, 0);
});

test('a room a tab adds lowers its poll cursor to that tab\'s: what it missed is relayed again and each tab drops what it has', () => {
  const { world, a } = withLeader({ lobby: 10 });
  const b = new Tab(world);
  b.show({ lobby: 6 });
  world.flush();
  assert.equal(a.poll().param('rooms'), 'lobby:6');
  a.poll().answer(200, events(['lobby', 7], ['lobby', 8], ['lobby', 9], ['lobby', 10], ['lobby', 11]));
  world.flush();
  assert.deepEqual(plain(a.got), [['lobby', 11]]);
  assert.deepEqual(plain(b.got), [['lobby', 7], ['lobby', 8], ['lobby', 9], ['lobby', 10], ['lobby', 11]]);
  assert.equal(a.poll().param('rooms'), 'lobby:11');
});

test('the leader stops polling a room when no fresh record names it any more (the tab removed it, or went silent)', () => {
  const { world, a } = withLeader({ lobby: 1 });
  const b = new Tab(world);
  const c = new Tab(world);
  b.show({ lobby: 1, r1: 1 });
  c.show({ lobby: 1, r2: 1 });
  world.flush();
  assert.equal(a.poll().param('rooms'), 'lobby:1,r1:1,r2:1');
  b.group.remove(['r1']);
  world.flush();
  assert.equal(a.poll().param('rooms'), 'lobby:1,r2:1');
  // c hangs: its record is not renewed, and after 3 s its rooms are no longer polled.
  c.frozen = true;
  world.advance(4000);
  assert.equal(a.poll().param('rooms'), 'lobby:1');
});

for (const reverse of [false, true]) {
  test(`when the leader leaves, simultaneous claims settle on the older tab (events delivered ${reverse ? 'newest' : 'oldest'} tab first)`, () => {
    const { world, a } = withLeader({ lobby: 4 });
    const older = new Tab(world);
    const newer = new Tab(world);
    older.show({ lobby: 4 });
    newer.show({ lobby: 4, r1: 2 });
    world.advance(1000);
    world.reverseDelivery = reverse;
    // pagehide: the leader removes its lease and record; both followers claim at once.
    a.group.pause();
    world.flush();
    assert.ok(![older.role, newer.role].includes('leader'), 'nobody leads before a claim settles');
    world.advance(SETTLE_MS);
    assert.deepEqual([older.role, newer.role], ['leader', 'follower']);
    assert.equal(older.poll().param('rooms'), 'lobby:4,r1:2');
    assert.equal(newer.polls().length, 0);
    assert.equal(a.polls().length, 0, 'the old leader\'s poll is gone');
  });
}

test('a leader silent for 3 s is replaced; when it wakes it finds another id in the lease and steps down', () => {
  const { world, a } = withLeader({ lobby: 4 });
  const b = new Tab(world);
  b.show({ lobby: 4 });
  world.advance(1000);
  a.frozen = true;
  world.advance(2500);
  assert.equal(b.role, 'follower', 'not before 3 s of silence');
  world.advance(2000);
  assert.equal(b.role, 'leader');
  assert.equal(b.poll().param('rooms'), 'lobby:4');

  // Even without the storage events it missed while frozen, it learns of the new lease
  // (the new leader's next renewal, or its own heartbeat reading the lease).
  world.forget(a);
  a.frozen = false;
  assert.equal(a.role, 'leader');
  world.advance(1000);
  assert.deepEqual([a.role, b.role], ['follower', 'leader']);
  assert.equal(a.polls().length, 0, 'the old leader aborted its poll');
  b.poll().answer(200, events(['lobby', 5]));
  world.flush();
  assert.deepEqual(plain(a.got), [['lobby', 5]], 'and follows the new one');
});

test('relayed resync, refusal and session loss reach every tab\'s handler', () => {
  const { world, a } = withLeader({ lobby: 1 });
  const b = new Tab(world);
  b.show({ lobby: 1, r1: 1 });
  world.flush();
  a.poll().answer(200, { resync: { reason: 'queue-overflow', channels: ['room:r1'] } });
  world.flush();
  assert.deepEqual([a.calls, b.calls].map(plain), [['resync r1'], ['resync r1']]);
  a.poll().answer(403, { code: 'APP_ERR_NOT_MEMBER', message: 'not a member of r1' });
  world.flush();
  assert.deepEqual(plain(b.calls).slice(1), ['refused lobby,r1 APP_ERR_NOT_MEMBER']);
  world.advance(1000);
  a.poll().answer(401, { code: 'APP_ERR_SESSION_ENDED', message: 'signed out' });
  world.flush();
  assert.equal(plain(a.calls).at(-1), 'session-lost APP_ERR_SESSION_ENDED');
  assert.equal(plain(b.calls).at(-1), 'session-lost APP_ERR_SESSION_ENDED');
});

test('a tab whose storage starts throwing polls its own rooms alone, and the leader stops polling for it', () => {
  const { world, a } = withLeader({ lobby: 1 });
  const b = new Tab(world);
  b.show({ lobby: 2, r1: 5 });
  world.flush();
  assert.equal(a.poll().param('rooms'), 'lobby:1,r1:5');
  b.storageThrows = true;
  world.advance(1000);
  assert.equal(b.role, 'solo');
  assert.equal(b.poll().param('rooms'), 'lobby:2,r1:5');
  world.advance(4000);
  assert.equal(a.poll().param('rooms'), 'lobby:1');
});

test('without usable storage there is no group: usableStorage answers null when it is missing or throws', () => {
  const world = new World();
  const tab = new Tab(world);
  const usable = tab.group.constructor.usableStorage;
  assert.equal(usable({}), null);
  assert.equal(usable({ get localStorage() { throw new Error('SecurityError'); } }), null);
  assert.equal(usable({ localStorage: { setItem() { throw new Error('QuotaExceededError'); }, removeItem() {} } }), null);
  const ok = { setItem() {}, removeItem() {} };
  assert.equal(usable({ localStorage: ok }), ok);
});

test('a tab that leaves while its claim settles frees the lease, so the next tab leads without waiting 3 s', () => {
  const world = new World();
  const a = new Tab(world);
  a.show({ lobby: 1 });
  assert.equal(a.role, 'claiming');
  a.group.pause();
  const b = new Tab(world);
  b.show({ lobby: 1 });
  world.advance(SETTLE_MS);
  assert.equal(b.role, 'leader');
  assert.equal(b.poll().param('rooms'), 'lobby:1');
  assert.equal(a.transport.requests.length, 0);
});

test('a room named like an Object.prototype member ("constructor") is polled and relayed like any other', () => {
  const { world, a } = withLeader({ lobby: 1 });
  const b = new Tab(world);
  b.show({ constructor: 3 });
  world.flush();
  assert.equal(a.poll().param('rooms'), 'lobby:1,constructor:3');
  a.poll().answer(200, events(['constructor', 4]));
  world.flush();
  assert.deepEqual(plain(b.got), [['constructor', 4]]);
  assert.deepEqual(plain(a.got), []);
});
