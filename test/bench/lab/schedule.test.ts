import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { OpenLoopSchedule } from '../../../bench/lab/schedule.js';

/** An injected clock: the schedule only ever sees the readings the test gives it. */
function schedule(overrides: Partial<ConstructorParameters<typeof OpenLoopSchedule>[0]> = {}): OpenLoopSchedule {
  return new OpenLoopSchedule({ ratePerS: 100, total: 10, rooms: 2, maxQueuePerRoom: 100, startMs: 1_000, ...overrides });
}

describe('the open-loop publish schedule', () => {
  test('message k is stamped with its due time start + k / rate, however late the clock is read', () => {
    const s = schedule();
    // Nothing is due before the start; message 0 is due at the start.
    assert.deepEqual(s.advance(999.9), []);
    assert.deepEqual(s.advance(1_000), [0]);
    // The loop wakes 45 ms late: the 4 messages due meanwhile carry their own due times, not the wake-up time.
    assert.deepEqual(s.advance(1_045).sort(), [0, 1]);
    const room0 = [s.take(0), s.take(0), s.take(0)];
    const room1 = [s.take(1), s.take(1), s.take(1)];
    assert.deepEqual(room0, [1_000, 1_020, 1_040]);
    assert.deepEqual(room1, [1_010, 1_030, null]);
    assert.equal(s.offered, 5);
    assert.equal(s.nextDueMs(), 1_050);
  });

  test('a message taken from the queue long after it fell due keeps its due time (the queue wait is latency)', () => {
    const s = schedule({ rooms: 1 });
    s.advance(1_000);
    // The room's publish is slow: the message leaves the queue 500 ms after it fell due.
    assert.equal(s.take(0), 1_000);
    s.advance(1_500);
    assert.equal(s.take(0), 1_010);
  });

  test('messages due while a room queue is full are dropped and counted, never queued', () => {
    const s = schedule({ rooms: 1, maxQueuePerRoom: 3, total: 10 });
    s.advance(1_095); // all 10 due, nobody taking: 3 queued, 7 dropped
    assert.equal(s.waiting(0), 3);
    assert.equal(s.dropped, 7);
    assert.equal(s.offered, 10);
    assert.equal(s.done, true);
    assert.equal(s.nextDueMs(), null);
    assert.deepEqual([s.take(0), s.take(0), s.take(0), s.take(0)], [1_000, 1_010, 1_020, null]);
  });

  test('the total bounds the schedule and clear() empties a room that gave up', () => {
    const s = schedule({ rooms: 2, total: 4 });
    s.advance(1_000_000);
    assert.equal(s.offered, 4);
    assert.equal(s.clear(0), 2);
    assert.equal(s.take(0), null);
    assert.equal(s.waiting(1), 2);
  });

  test('bad options are refused', () => {
    assert.throws(() => schedule({ ratePerS: 0 }), /ratePerS must be > 0/);
    assert.throws(() => schedule({ rooms: 0 }), /rooms must be an integer >= 1/);
    assert.throws(() => schedule({ total: -1 }), /total must be an integer >= 0/);
  });
});
