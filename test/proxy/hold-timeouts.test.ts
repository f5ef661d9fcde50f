import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HOLD_TIMEOUT_GRANULARITY_MS, HoldTimeouts, NO_SLOT, type TimeoutLinks } from '../../proxy/holds/hold-timeouts.js';
import type { ProxyTimers } from '../../proxy/options.js';
import { startHarness } from '../helpers/proxy-harness.js';
import { writeHold } from '../helpers/scripted-app.js';

/** Injected timers: time moves only when the test says, and due callbacks run in due order. */
function fakeTimers(startMs = 1_765_000_000_000) {
  let now = startMs;
  let nextId = 1;
  const pending = new Map<number, { at: number; fn: () => void }>();
  const timers: ProxyTimers = {
    now: () => now,
    setTimeout: (fn, ms) => {
      const id = nextId++;
      pending.set(id, { at: now + ms, fn });
      return id;
    },
    clearTimeout: (id) => {
      pending.delete(id as number);
    },
  };
  return {
    timers,
    get now() {
      return now;
    },
    pendingCount: () => pending.size,
    /** Moves the clock to `now + ms`, running each timer as the clock passes its time (at most 10,000 runs). */
    advance(ms: number): void {
      const end = now + ms;
      for (let runs = 0; runs < 10_000; runs++) {
        let first: [number, { at: number; fn: () => void }] | undefined;
        for (const entry of pending) if (entry[1].at <= end && (first === undefined || entry[1].at < first[1].at)) first = entry;
        if (first === undefined) break;
        pending.delete(first[0]);
        now = Math.max(now, first[1].at);
        first[1].fn();
      }
      now = end;
    },
  };
}

/** What the wheel times: anything carrying its links; `of(name)` gives the same item for the same name. */
interface Item extends TimeoutLinks<Item> {
  name: string;
}
function itemsByName() {
  const items = new Map<string, Item>();
  return (name: string | number): Item => {
    const key = String(name);
    let item = items.get(key);
    if (item === undefined) items.set(key, (item = { name: key, timeoutSlot: NO_SLOT, timeoutPrev: null, timeoutNext: null }));
    return item;
  };
}

describe('the hold timeout wheel', () => {
  test('a hold times out no sooner than its timeout and at most one granularity later', () => {
    for (const offset of [0, 1, 99, 100, 137]) {
      const clock = fakeTimers(1_765_000_000_000 + offset);
      const fired: Array<{ id: string; at: number }> = [];
      const of = itemsByName();
      const wheel = new HoldTimeouts<Item>(clock.timers, (item) => fired.push({ id: item.name, at: clock.now }), 100);
      clock.advance(offset * 7); // not aligned to the slot width
      const parkedAt = clock.now;
      wheel.add(of('a'), 1_000);
      clock.advance(999);
      assert.equal(fired.length, 0, `not before its timeout (offset ${offset})`);
      clock.advance(100);
      assert.equal(fired.length, 1, `within timeout + granularity (offset ${offset})`);
      const late = fired[0]!.at - parkedAt - 1_000;
      assert.ok(late >= 0 && late <= 100, `late by ${late} ms, at most the granularity`);
    }
  });

  test('holds time out in deadline order and each exactly once, whatever order they were added in', () => {
    const clock = fakeTimers();
    const fired: number[] = [];
    const of = itemsByName();
    const wheel = new HoldTimeouts<Item>(clock.timers, (item) => fired.push(Number(item.name)), 250);
    const timeouts = [5_000, 1_000, 3_000, 1_000, 300_000, 2_500, 1_250];
    timeouts.forEach((ms, i) => wheel.add(of(i), ms));
    assert.equal(wheel.size, timeouts.length);
    clock.advance(300_250);
    assert.deepEqual(fired, [1, 3, 6, 5, 2, 0, 4]);
    assert.equal(wheel.size, 0);
    assert.equal(wheel.armed, false, 'no timer left once nothing waits');
  });

  test('one timer serves every hold: adding later deadlines arms nothing new, an earlier one re-arms', () => {
    const clock = fakeTimers();
    const of = itemsByName();
    const wheel = new HoldTimeouts<Item>(clock.timers, () => {}, 250);
    for (let i = 0; i < 1_000; i++) wheel.add(of(i), 10_000 + i * 7);
    assert.equal(clock.pendingCount(), 1, 'one timer for 1,000 holds');
    const fired: number[] = [];
    const ofEarly = itemsByName();
    const early = new HoldTimeouts<Item>(clock.timers, (item) => fired.push(Number(item.name)), 250);
    early.add(ofEarly(1), 5_000);
    early.add(ofEarly(2), 1_000); // earlier than the armed slot
    assert.equal(clock.pendingCount(), 2, 'the re-armed wheel still has one timer (plus the other wheel)');
    clock.advance(1_250);
    assert.deepEqual(fired, [2]);
  });

  test('a removed hold never times out, and removing the last one stops the timer', () => {
    const clock = fakeTimers();
    const fired: string[] = [];
    const of = itemsByName();
    const wheel = new HoldTimeouts<Item>(clock.timers, (item) => fired.push(item.name), 250);
    wheel.add(of('a'), 1_000);
    wheel.add(of('b'), 1_000);
    wheel.add(of('c'), 1_000);
    wheel.remove(of('b')); // from the middle of its slot
    wheel.remove(of('b')); // twice: a no-op
    wheel.remove(of('never')); // never on the wheel: a no-op
    assert.deepEqual([wheel.size, of('b').timeoutSlot], [2, NO_SLOT]);
    clock.advance(1_250);
    assert.deepEqual(fired, ['a', 'c']);
    wheel.add(of('d'), 60_000);
    assert.equal(wheel.armed, true);
    wheel.remove(of('d'));
    assert.equal(wheel.armed, false);
    assert.equal(clock.pendingCount(), 0, 'an empty wheel keeps no timer');
  });

  test('a slot keeps its order when its first or last item leaves, and a removed item can be added again', () => {
    const clock = fakeTimers();
    const fired: string[] = [];
    const of = itemsByName();
    const wheel = new HoldTimeouts<Item>(clock.timers, (item) => fired.push(item.name), 250);
    for (const name of ['a', 'b', 'c', 'd']) wheel.add(of(name), 1_000);
    wheel.remove(of('a'));
    wheel.remove(of('d'));
    wheel.add(of('a'), 1_000); // back, now last in its slot
    clock.advance(1_250);
    assert.deepEqual(fired, ['b', 'c', 'a']);
    assert.equal(wheel.size, 0);
  });

  test('a callback that removes a later item of its slot does not stop the rest of the slot', () => {
    const clock = fakeTimers();
    const fired: string[] = [];
    const of = itemsByName();
    const wheel = new HoldTimeouts<Item>(clock.timers, (item) => {
      fired.push(item.name);
      if (item.name === 'a') wheel.remove(of('b'));
    }, 250);
    for (const name of ['a', 'b', 'c']) wheel.add(of(name), 1_000);
    clock.advance(1_250);
    assert.deepEqual(fired, ['a', 'b', 'c'], 'every item due when the slot came due is called, as before');
    assert.equal(wheel.size, 0);
  });

  test('a hold added from a timeout callback is timed from then, and an earlier waiting slot is not delayed by it', () => {
    const clock = fakeTimers();
    const fired: Array<[string, number]> = [];
    const of = itemsByName();
    const start = clock.now;
    const wheel: HoldTimeouts<Item> = new HoldTimeouts<Item>(
      clock.timers,
      (item) => {
        fired.push([item.name, clock.now - start]);
        if (item.name === 'first') wheel.add(of('re-parked'), 10_000);
      },
      250,
    );
    wheel.add(of('first'), 1_000);
    wheel.add(of('second'), 2_000);
    clock.advance(20_000);
    assert.deepEqual(fired.map(([id]) => id), ['first', 'second', 're-parked']);
    assert.ok(fired[1]![1] >= 2_000 && fired[1]![1] <= 2_250, `second at ${fired[1]![1]} ms`);
    assert.ok(fired[2]![1] >= 11_000 && fired[2]![1] <= 11_250, `re-parked at ${fired[2]![1]} ms`);
  });

  test('a callback that throws does not leave the rest of its slot parked; the error still surfaces', () => {
    const clock = fakeTimers();
    const fired: string[] = [];
    const of = itemsByName();
    const wheel = new HoldTimeouts<Item>(clock.timers, (item) => {
      fired.push(item.name);
      if (item.name === 'a') throw new Error('boom');
    }, 250);
    wheel.add(of('a'), 1_000);
    wheel.add(of('b'), 1_000);
    assert.throws(() => clock.advance(1_250), /boom/);
    assert.deepEqual(fired, ['a', 'b']);
    assert.equal(wheel.size, 0);
  });

  test('a timer that runs a little before the clock reaches its slot still answers that slot', () => {
    // Node may run a timer when Date.now() reads a millisecond early; the slot it was armed for is due.
    let now = 1_000_000;
    const calls: Array<() => void> = [];
    const timers: ProxyTimers = { now: () => now, setTimeout: (fn) => (calls.push(fn), calls.length), clearTimeout: () => {} };
    const fired: string[] = [];
    const of = itemsByName();
    const wheel = new HoldTimeouts<Item>(timers, (item) => fired.push(item.name), 250);
    wheel.add(of('a'), 1_000);
    now += 999; // one ms short of the slot
    calls.at(-1)!();
    assert.deepEqual(fired, ['a']);
  });

  test('the granularity is validated', () => {
    const clock = fakeTimers();
    assert.throws(() => new HoldTimeouts(clock.timers, () => {}, 0), RangeError);
    assert.throws(() => new HoldTimeouts(clock.timers, () => {}, 2.5), RangeError);
  });
});

describe('hold timeouts in the proxy', { timeout: 10_000 }, () => {
  test('hold timeouts run on the monotonic clock: a wall clock stepped back or forward an hour moves no deadline', async (t) => {
    for (const stepMs of [-3_600_000, 3_600_000]) {
      const clock = fakeTimers();
      let wallOffset = 0;
      const h = await startHarness(t, {
        timers: { ...clock.timers, now: () => clock.now + wallOffset, monotonicNow: () => clock.now },
      });
      h.app.handle = (_req, res) => writeHold(res, { channel: 'room:a', timeoutS: 2 });
      const first = h.get('/poll');
      await h.waitParked(1);
      clock.advance(1_000);
      wallOffset += stepMs;
      const second = h.get('/poll');
      await h.waitParked(2);
      clock.advance(999);
      assert.equal(h.proxy.stats().parked, 2, `step ${stepMs}: none early`);
      clock.advance(HOLD_TIMEOUT_GRANULARITY_MS + 1);
      assert.equal((await first).status, 200);
      assert.equal(h.proxy.stats().parked, 1, `step ${stepMs}: the first on time, the second still parked`);
      clock.advance(1_000);
      assert.equal((await second).status, 200);
      assert.equal(h.proxy.stats().timeouts, 2);
    }
  });

  test('parked requests share one timer and each gets its timeout response within its timeout plus the granularity', async (t) => {
    const clock = fakeTimers();
    const h = await startHarness(t, { timers: clock.timers });
    h.app.handle = (_req, res) => writeHold(res, { channel: 'room:a', timeoutS: 2, body: '{"events":[],"timeout":true}' });
    const timersBefore = clock.pendingCount(); // the registry's sweep
    const polls = Array.from({ length: 20 }, () => h.get('/poll'));
    await h.waitParked(20);
    assert.equal(clock.pendingCount(), timersBefore + 1, 'one timer for 20 parked requests');

    clock.advance(1_999);
    assert.equal(h.proxy.stats().parked, 20, 'none before its timeout');
    clock.advance(HOLD_TIMEOUT_GRANULARITY_MS + 1);
    for (const res of await Promise.all(polls)) {
      assert.equal(res.status, 200);
      assert.equal(res.text, '{"events":[],"timeout":true}');
    }
    assert.equal(h.proxy.stats().timeouts, 20);
    assert.equal(clock.pendingCount(), timersBefore, 'no timer left for holds once none is parked');
  });

  test('a request answered before its timeout leaves the wheel: it gets one answer, and the timeout counts nothing', async (t) => {
    const clock = fakeTimers();
    const h = await startHarness(t, { timers: clock.timers });
    h.app.handle = (_req, res) => writeHold(res, { channel: 'room:a; prev-id=1', timeoutS: 2 });
    const poll = h.get('/poll');
    await h.waitParked(1);
    const published = await h.control('/publish/', {
      items: [{ channel: 'room:a', id: '2', 'prev-id': '1', formats: { 'http-response': { body: '{"n":2}' } } }],
    });
    assert.equal(published.status, 200);
    assert.equal((await poll).text, '{"n":2}');
    clock.advance(10_000);
    assert.equal(h.proxy.stats().timeouts, 0);
    assert.equal(h.proxy.stats().deliveries, 1);
  });
});
