import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConnectionTable } from '../../proxy/holds/connection-table.js';

const ITEM = { headers: [], body: Buffer.from('abc') };

function makeTable() {
  const clock = { ms: 0 };
  let dropped = 0;
  const table = new ConnectionTable<string>(
    { queueMaxItems: 2, queueMaxBytes: 100, queueTtlMs: 1_000, resyncTtlMs: 5_000, closedTtlMs: 10_000 },
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

  test('closing discards the queue and refuses the ID until closedTtlMs has passed', () => {
    const { table, clock, dropped } = makeTable();
    table.open('c1').queue.push(ITEM, 3);
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
    table.open('queued').queue.push(ITEM, 3);
    table.open('parked').parked = 'request';
    table.close('closed');
    assert.deepEqual(table.queued(), { items: 1, bytes: 3 });

    clock.ms = 1_000;
    table.sweep();
    assert.equal(dropped(), 1);
    assert.equal(table.get('queued')?.queue.resyncPending, 'queue-expired', 'kept: the client must learn it missed items');
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
});
