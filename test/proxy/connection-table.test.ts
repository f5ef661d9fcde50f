import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConnectionTable } from '../../proxy/holds/connection-table.js';

const ITEM = { headers: [], body: Buffer.from('abc') };

function makeTable() {
  const clock = { ms: 0 };
  let dropped = 0;
  const table = new ConnectionTable<string>(
    { queueMaxItems: 2, queueMaxBytes: 100, queueTtlMs: 1_000, resyncTtlMs: 5_000, closedTtlMs: 10_000, maxUnknownQueues: 3, maxParked: 2 },
    () => clock.ms,
    (n) => (dropped += n),
  );
  return { table, clock, dropped: () => dropped };
}

describe('ConnectionTable', () => {
  test('an ID with nothing parked, queued or pending is forgotten', () => {
    const { table } = makeTable();
    table.open('c1').parked = 'request';
    assert.equal(table.size, 1);
    table.forgetIfIdle('c1');
    assert.equal(table.size, 1, 'still parked');
    table.get('c1')!.parked = null;
    table.forgetIfIdle('c1');
    assert.equal(table.size, 0);
  });

  test('a parked ID keeps no queue until a push needs one, and the sweep drops a queue once it is empty (issue 15)', () => {
    const { table, clock } = makeTable();
    table.open('c1').parked = 'request';
    assert.equal(table.get('c1')!.queue, null, 'parking makes no queue');
    assert.deepEqual(table.queued(), { items: 0, bytes: 0 });
    const queued = table.openForPush('c1');
    assert.equal(queued.queue.push(ITEM, 3).queued, true);
    assert.equal(table.get('c1')!.queue?.size, 1);
    assert.equal(queued.queue.shift(), ITEM);
    table.sweep();
    assert.equal(table.get('c1')!.queue, null, 'emptied: dropped by the sweep');
    assert.equal(table.get('c1')!.parked, 'request', 'the parked request stays');
    // An expired item still leaves its resync behind: that queue is not idle, so it stays.
    table.openForPush('c1').queue.push(ITEM, 3);
    clock.ms += 1_000;
    table.sweep();
    assert.equal(table.get('c1')!.queue?.resyncPending, 'queue-expired');
  });

  test('closing discards the queue and refuses the ID until closedTtlMs has passed', () => {
    const { table, clock, dropped } = makeTable();
    table.withQueue(table.open('c1')).queue.push(ITEM, 3);
    assert.equal(table.close('c1'), 1);
    assert.equal(dropped(), 1);
    assert.equal(table.get('c1'), undefined);
    assert.equal(table.isClosed('c1'), true);
    assert.equal(table.size, 1, 'a tombstone counts as state');
    clock.ms = 10_000;
    assert.equal(table.isClosed('c1'), false);
    assert.equal(table.size, 0);
  });

  test('the sweep expires queues, forgets stale resyncs and old tombstones', () => {
    const { table, clock, dropped } = makeTable();
    table.withQueue(table.open('queued')).queue.push(ITEM, 3);
    table.open('parked').parked = 'request';
    table.close('closed');
    assert.deepEqual(table.queued(), { items: 1, bytes: 3 });

    clock.ms = 1_000;
    table.sweep();
    assert.equal(dropped(), 1);
    assert.equal(table.get('queued')?.queue?.resyncPending, 'queue-expired', 'kept: the client must learn it missed items');
    assert.deepEqual(table.queued(), { items: 0, bytes: 0 });

    clock.ms = 6_000;
    table.sweep();
    assert.equal(table.get('queued'), undefined, 'resync pending for resyncTtlMs with nothing parked: forgotten');
    assert.ok(table.get('parked'));
    assert.equal(table.isClosed('closed'), true);

    clock.ms = 10_000;
    table.sweep();
    assert.equal(table.size, 1, 'only the parked connection is left');
  });
  test('a sweep looks only at IDs that changed: quiet parked requests cost it nothing (idle CPU, issue 15)', () => {
    let reads = 0;
    const clock = { ms: 0 };
    const table = new ConnectionTable<string>(
      { queueMaxItems: 2, queueMaxBytes: 100, queueTtlMs: 1_000, resyncTtlMs: 5_000, closedTtlMs: 10_000, maxUnknownQueues: 3, maxParked: 2_000 },
      () => (reads++, clock.ms),
    );
    for (let i = 0; i < 1_000; i++) table.open(`c${i}`).parked = 'request';
    table.sweep(); // settles them: parked, nothing queued
    reads = 0;
    table.sweep();
    assert.ok(reads <= 2, `a sweep over 1,000 quiet parked IDs read the clock ${reads} times`);

    // A push to one of them, and another's request leaving, make exactly those two worth a look again.
    table.openForPush('c1').queue.push(ITEM, 3);
    table.get('c2')!.parked = null;
    table.forgetIfIdle('c2');
    assert.ok(table.get('c2') === undefined, 'nothing queued: forgotten at once');
    clock.ms = 1_000;
    table.sweep();
    assert.equal(table.get('c1')?.queue?.resyncPending, 'queue-expired', 'the queued item still expires while its ID is parked');
    table.get('c3')!.parked = null;
    table.withQueue(table.get('c3')!).queue.push(ITEM, 3);
    table.forgetIfIdle('c3');
    clock.ms = 2_000;
    table.sweep();
    assert.equal(table.get('c3')?.queue?.resyncPending, 'queue-expired', 'a queue left behind by its request is swept');
    clock.ms = 7_000;
    table.sweep();
    assert.equal(table.get('c3'), undefined, 'and forgotten once its resync waited resyncTtlMs');
    assert.ok(table.get('c1'), 'still parked: kept');
  });
});

describe('ConnectionTable: queues for IDs that never parked here are capped (issue 14 item 2)', () => {
  test('pushes to unknown IDs count toward maxUnknownQueues; the room shrinks and a closed ID opens nothing', () => {
    const { table } = makeTable();
    assert.equal(table.unknownRoom, 3);
    assert.equal(table.unknownAmong(['a', 'b', 'a']), 2, 'distinct IDs');
    table.openForPush('a').queue.push(ITEM, 3);
    table.openForPush('b').queue.push(ITEM, 3);
    assert.deepEqual([table.unknownQueues, table.unknownRoom], [2, 1]);
    assert.equal(table.unknownAmong(['a', 'b']), 0, 'existing queues open nothing new');
    table.close('gone');
    assert.equal(table.unknownAmong(['gone', 'c']), 1, 'a closed ID gets no queue');
  });

  test('a request parking under an unknown ID makes it known and frees its place', () => {
    const { table } = makeTable();
    table.openForPush('a').queue.push(ITEM, 3);
    assert.equal(table.unknownQueues, 1);
    table.open('a').parked = 'request';
    assert.equal(table.unknownQueues, 0);
    assert.equal(table.get('a')!.unknown, false);
  });

  test('an ID stays known for queueTtlMs after its parked request left, so a push between polls is not capped', () => {
    const { table, clock } = makeTable();
    table.open('real').parked = 'request';
    table.get('real')!.parked = null;
    table.forgetIfIdle('real');
    assert.equal(table.get('real'), undefined, 'no state between polls');
    clock.ms = 999;
    assert.equal(table.unknownAmong(['real']), 0);
    assert.equal(table.openForPush('real').unknown, false);
    table.get('real')!.queue!.shift();
    table.forgetIfIdle('real');
    clock.ms = 999 + 1_000;
    assert.equal(table.unknownAmong(['real']), 1, 'queueTtlMs after it last left, it is a stranger again');
  });

  test('forgotten unknown queues give their place back: idle, expired past resyncTtlMs, or closed', () => {
    const { table, clock } = makeTable();
    for (const id of ['a', 'b', 'c']) table.openForPush(id).queue.push(ITEM, 3);
    assert.equal(table.unknownRoom, 0);
    table.get('a')!.queue!.shift();
    table.forgetIfIdle('a');
    table.close('b');
    assert.deepEqual([table.unknownQueues, table.unknownRoom], [1, 2]);
    clock.ms = 1_000;
    table.sweep(); // c's item expires: resync pending, kept
    assert.equal(table.unknownQueues, 1);
    clock.ms = 6_000;
    table.sweep();
    assert.deepEqual([table.unknownQueues, table.unknownRoom, table.size], [0, 3, 1], 'only b\'s tombstone is left');
  });

  test('at most maxParked IDs are remembered as recently parked: the one that left longest ago goes first', () => {
    const { table, clock } = makeTable();
    for (const [i, id] of ['x', 'y', 'z'].entries()) {
      clock.ms = i;
      table.open(id).parked = 'request';
      table.get(id)!.parked = null;
      table.forgetIfIdle(id);
    }
    assert.deepEqual(['x', 'y', 'z'].map((id) => table.unknownAmong([id])), [1, 0, 0]);
  });
});

describe('ConnectionTable: a known ID rests between polls (issue 15)', () => {
  test('a resting ID holds no state, is remembered at most queueTtlMs and at most maxParked of them', () => {
    const { table, clock } = makeTable();
    for (const id of ['x', 'y']) {
      const conn = table.open(id);
      conn.parked = 'request';
      table.leave(conn, 'request');
    }
    assert.deepEqual([table.size, table.remembered, table.get('x')], [0, 2, undefined], 'no state, but remembered');
    const z = table.open('z');
    z.parked = 'request';
    table.leave(z, 'request');
    assert.equal(table.remembered, 2, 'maxParked (2): x, which left first, is forgotten');
    assert.equal(table.unknownAmong(['x']), 1);
    table.open('y').parked = 'request';
    assert.deepEqual([table.size, table.remembered], [1, 1], 'y polls again: its entry has state again');
    clock.ms = 1_000;
    table.sweep();
    assert.equal(table.remembered, 0, 'queueTtlMs after z left: forgotten');
    assert.equal(table.unknownAmong(['z']), 1);
    assert.equal(table.get('y')?.parked, 'request', 'the parked one stays');
  });

  test('leave ignores a request that is no longer the one parked under the ID', () => {
    const { table } = makeTable();
    const conn = table.open('c1');
    conn.parked = 'newer';
    table.leave(conn, 'older');
    assert.equal(table.get('c1')?.parked, 'newer');
  });

  test('a queue made on a resting ID (a requeue) is expired by the sweep like any other', () => {
    const { table, clock, dropped } = makeTable();
    const conn = table.open('c1');
    conn.parked = 'request';
    table.leave(conn, 'request');
    table.withQueue(table.open('c1')).queue.requeue(ITEM, 3);
    assert.deepEqual(table.queued(), { items: 1, bytes: 3 });
    clock.ms = 1_000;
    table.sweep();
    assert.equal(dropped(), 1);
    assert.equal(table.get('c1')?.queue?.resyncPending, 'queue-expired');
  });

  test('a push to a resting ID that left more than queueTtlMs ago counts as unknown even before a sweep', () => {
    const { table, clock } = makeTable();
    const conn = table.open('c1');
    conn.parked = 'request';
    table.leave(conn, 'request');
    clock.ms = 1_000;
    assert.equal(table.openForPush('c1').unknown, true);
    assert.equal(table.unknownQueues, 1);
    table.get('c1')!.queue!.shift();
    table.forgetIfIdle('c1');
    assert.deepEqual([table.unknownQueues, table.remembered, table.size], [0, 0, 0], 'an unknown ID is not remembered');
  });

  test('closing a resting ID forgets it and starts its tombstone', () => {
    const { table } = makeTable();
    const conn = table.open('c1');
    conn.parked = 'request';
    table.leave(conn, 'request');
    assert.equal(table.close('c1'), 0);
    assert.deepEqual([table.remembered, table.size, table.isClosed('c1')], [0, 1, true]);
  });
});
