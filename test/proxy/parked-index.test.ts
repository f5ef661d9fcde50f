import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Exchange } from '../../proxy/forward/exchange.js';
import { ConnectionTable } from '../../proxy/holds/connection-table.js';
import type { Held } from '../../proxy/holds/held.js';
import { NO_SLOT } from '../../proxy/holds/hold-timeouts.js';
import { ParkedIndex } from '../../proxy/holds/parked-index.js';

/** A held record as the lifecycle makes one (hold-lifecycle.ts `adopt`); the index reads only these fields. */
function held(name: string, channels: string[], opts: { connectionId?: string; address?: string; bytes?: number } = {}): Held & { name: string } {
  const exchange = { clientAddress: opts.address } as unknown as Exchange;
  const record: Held & { name: string } = {
    name,
    exchange,
    instruction: {
      channels: channels.map((c) => ({ name: c })),
      ...(opts.connectionId === undefined ? {} : { connectionId: opts.connectionId }),
      timeoutMs: 1_000,
      timeoutResponse: { code: 200, headers: {}, body: Buffer.alloc(0) },
    },
    state: 'parked',
    timeoutSlot: NO_SLOT,
    timeoutPrev: null,
    timeoutNext: null,
    parkedAt: 0,
    parkedBytes: opts.bytes ?? 0,
    reaskAttempt: null,
    parkedPrev: null,
    parkedNext: null,
    channelLinks: null,
    connection: null,
  };
  return record;
}

function makeIndex() {
  const connections = new ConnectionTable<Held>(
    { queueMaxItems: 10, queueMaxBytes: 1_000, queueTtlMs: 1_000, resyncTtlMs: 5_000, closedTtlMs: 10_000, maxUnknownQueues: 10, maxParked: 10 },
    () => 0,
  );
  return { index: new ParkedIndex(connections), connections };
}

const names = (list: readonly Held[] | undefined) => list?.map((h) => (h as Held & { name: string }).name);

describe('ParkedIndex (issue 15: lists through the held records)', () => {
  test('a channel lists its subscribers in parking order, and a request leaving from the middle keeps that order', () => {
    const { index } = makeIndex();
    const [a, b, c] = [held('a', ['room']), held('b', ['room']), held('c', ['room'])];
    for (const h of [a, b, c]) index.addParked(h);
    assert.deepEqual(names(index.subscribers('room')), ['a', 'b', 'c']);
    index.remove(b);
    assert.deepEqual(names(index.subscribers('room')), ['a', 'c']);
    index.remove(a);
    index.remove(c);
    assert.equal(index.subscribers('room'), undefined, 'an empty channel is forgotten');
    index.addParked(b);
    assert.deepEqual(names(index.subscribers('room')), ['b'], 'a request can be indexed again after it left');
  });

  test('a request on several channels is on each, and leaves all of them at once', () => {
    const { index } = makeIndex();
    const multi = held('multi', ['r1', 'r2', 'r3']);
    const other = held('other', ['r2']);
    index.addParked(multi);
    index.addParked(other);
    assert.deepEqual(['r1', 'r2', 'r3'].map((c) => names(index.subscribers(c))), [['multi'], ['multi', 'other'], ['multi']]);
    index.remove(multi);
    assert.deepEqual(['r1', 'r2', 'r3'].map((c) => names(index.subscribers(c))), [undefined, ['other'], undefined]);
    assert.equal(multi.channelLinks, null);
  });

  test('counts, bytes and per-address counts follow parks and removals; removing twice changes nothing', () => {
    const { index } = makeIndex();
    const a = held('a', ['room'], { address: '10.0.0.1', bytes: 100 });
    const b = held('b', [], { address: '10.0.0.1', bytes: 50 });
    index.addParked(a);
    index.addParked(b);
    assert.deepEqual([index.parkedCount, index.parkedBytes, index.parkedFrom('10.0.0.1')], [2, 150, 2]);
    assert.deepEqual(names(index.allParked()), ['a', 'b']);
    index.remove(a);
    index.remove(a);
    assert.deepEqual([index.parkedCount, index.parkedBytes, index.parkedFrom('10.0.0.1')], [1, 50, 1]);
    assert.deepEqual(names(index.allParked()), ['b']);
    index.remove(held('never', ['room']));
    assert.equal(index.parkedCount, 1, 'a request that was never indexed is not removed');
  });

  test('a request parked under a connection ID is found by it until it leaves', () => {
    const { index, connections } = makeIndex();
    const a = held('a', ['room'], { connectionId: 'c1' });
    index.addParked(a);
    assert.equal(index.parkedUnder('c1'), a);
    index.remove(a);
    assert.equal(index.parkedUnder('c1'), undefined);
    assert.equal(connections.size, 0, 'no state left for the ID');
  });
});
