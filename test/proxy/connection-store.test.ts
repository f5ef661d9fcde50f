import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConnectionStore } from '../../proxy/cluster/connection-store.js';
import { TooManyQueuesError } from '../../proxy/holds/hold-delivery.js';

const LIMITS = {
  queueMaxItems: 3,
  queueMaxBytes: 1000,
  queueTtlMs: 60_000,
  resyncTtlMs: 600_000,
  closedTtlMs: 600_000,
  maxUnknownQueues: 2,
  maxParked: 100,
  unknownQueuesRetryAfterS: 7,
  requestTimeoutMs: 30_000,
};

function push(id: string, text: string) {
  return { connectionId: id, response: { headers: [] as Array<[string, string]>, body: Buffer.from(text) } };
}

describe('the cluster primary\'s connection store', () => {
  test('queued items are taken oldest first, once; a requeued item comes back first', () => {
    const store = new ConnectionStore(LIMITS, () => 0);
    assert.deepEqual(store.push([push('a', '1'), push('a', '2')]).result, { delivered: 0, queued: 2, dropped: 0, reasked: 0 });
    const first = store.take('a', 1);
    assert.equal(first.kind === 'item' && first.item.body.toString(), '1');
    if (first.kind === 'item') store.requeue('a', first.item, 1);
    const again = store.take('a', 1);
    assert.equal(again.kind === 'item' && again.item.body.toString(), '1');
    store.delivered('a', 1);
    const second = store.take('a', 1);
    assert.equal(second.kind === 'item' && second.item.body.toString(), '2');
    store.delivered('a', 1);
    assert.deepEqual(store.take('a', 1), { kind: 'none' });
  });

  test('an overflow empties the queue and the next take answers the resync once', () => {
    const store = new ConnectionStore(LIMITS, () => 0);
    store.push([push('a', '1'), push('a', '2'), push('a', '3'), push('a', '4')]);
    assert.deepEqual(store.take('a', 1), { kind: 'resync', reason: 'queue-overflow', dropped: 0 });
    assert.deepEqual(store.take('a', 1), { kind: 'none' });
    assert.equal(store.dropped, 4);
  });

  test('a closed ID refuses takes and pushes; its queue is dropped', () => {
    const store = new ConnectionStore(LIMITS, () => 0);
    store.push([push('a', '1')]);
    assert.equal(store.close('a'), 1);
    assert.deepEqual(store.take('a', 1), { kind: 'closed' });
    assert.deepEqual(store.push([push('a', '2')]), { result: { delivered: 0, queued: 0, dropped: 1, reasked: 0 }, notify: [] });
  });

  test('pushes to IDs no client polled are capped by maxUnknownQueues, refused whole; an ID that polled is known', () => {
    const store = new ConnectionStore(LIMITS, () => 0);
    store.take('polled', 1); // a client polled under it, on some worker
    store.push([push('u1', 'x'), push('u2', 'x')]);
    assert.throws(
      () => store.push([push('u3', 'x'), push('polled', 'x')]),
      (err: unknown) => err instanceof TooManyQueuesError && err.retryAfterS === 7,
    );
    assert.equal(store.queued().items, 2, 'nothing of the refused call was queued');
    assert.deepEqual(store.push([push('polled', 'y')]).notify, ['polled']);
  });
});
