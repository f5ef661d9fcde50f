import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConnectionQueue } from '../../proxy/holds/connection-queue.js';

function makeQueue(limits: Partial<{ maxItems: number; maxBytes: number; ttlMs: number }> = {}) {
  const clock = { ms: 1_000 };
  const drops: number[] = [];
  const queue = new ConnectionQueue<string>({ maxItems: 3, maxBytes: 100, ttlMs: 1_000, ...limits }, () => clock.ms, (n) => drops.push(n));
  return { queue, clock, drops };
}

describe('ConnectionQueue', () => {
  test('hands items back oldest first and tracks count and bytes', () => {
    const { queue } = makeQueue();
    assert.deepEqual(queue.push('a', 10), { queued: true });
    assert.deepEqual(queue.push('b', 20), { queued: true });
    assert.equal(queue.size, 2);
    assert.equal(queue.bytes, 30);
    assert.equal(queue.shift(), 'a');
    assert.equal(queue.bytes, 20);
    assert.equal(queue.shift(), 'b');
    assert.equal(queue.shift(), undefined);
    assert.equal(queue.isIdle, true);
  });

  test('an item over the count limit empties the queue, drops everything and flags queue-overflow', () => {
    const { queue } = makeQueue({ maxItems: 2 });
    queue.push('a', 1);
    queue.push('b', 1);
    assert.deepEqual(queue.push('c', 1), { queued: false, dropped: 3 });
    assert.equal(queue.size, 0);
    assert.equal(queue.bytes, 0);
    assert.equal(queue.resyncPending, 'queue-overflow');
    assert.equal(queue.isIdle, false);
  });

  test('an item over the byte limit overflows even on an empty queue', () => {
    const { queue } = makeQueue({ maxBytes: 50 });
    assert.deepEqual(queue.push('big', 51), { queued: false, dropped: 1 });
    assert.equal(queue.resyncPending, 'queue-overflow');
  });

  test('items older than the TTL expire and flag queue-expired', () => {
    const { queue, clock } = makeQueue({ ttlMs: 1_000 });
    queue.push('old', 5);
    clock.ms += 600;
    queue.push('newer', 7);
    clock.ms += 400; // 'old' is now exactly 1 000 ms old
    assert.equal(queue.expire(), 1);
    assert.equal(queue.resyncPending, 'queue-expired');
    assert.equal(queue.resyncSinceMs, clock.ms);
    assert.equal(queue.size, 1);
    assert.equal(queue.bytes, 7);
  });

  test('shift never returns an expired item', () => {
    const { queue, clock } = makeQueue({ ttlMs: 1_000 });
    queue.push('stale', 1);
    clock.ms += 5_000;
    assert.equal(queue.shift(), undefined);
    assert.equal(queue.resyncPending, 'queue-expired');
  });

  test('takeResync clears the flag, empties the queue and reports what it discarded', () => {
    const { queue } = makeQueue({ maxItems: 1 });
    queue.push('a', 1);
    queue.push('b', 1); // overflow: both dropped
    queue.push('c', 1); // queued after the overflow
    assert.deepEqual(queue.takeResync(), { reason: 'queue-overflow', dropped: 1 });
    assert.equal(queue.resyncPending, null);
    assert.equal(queue.isIdle, true);
    assert.equal(queue.takeResync(), null);
  });

  test('the first resync reason is kept when a second one happens', () => {
    const { queue, clock } = makeQueue({ maxItems: 1, ttlMs: 1_000 });
    queue.push('a', 1);
    queue.push('b', 1); // overflow
    queue.push('c', 1);
    clock.ms += 2_000;
    queue.expire();
    assert.equal(queue.resyncPending, 'queue-overflow');
  });

  test('every discarded item is reported through onDrop exactly once', () => {
    const { queue, clock, drops } = makeQueue({ maxItems: 2, ttlMs: 1_000 });
    queue.push('a', 1);
    queue.push('b', 1);
    queue.push('c', 1); // overflow: a, b and c
    queue.push('d', 1);
    clock.ms += 1_000;
    assert.equal(queue.shift(), undefined); // d expires inside shift
    queue.push('e', 1);
    queue.takeResync(); // e discarded with the resync
    assert.equal(drops.reduce((a, b) => a + b, 0), 5);
  });
});
