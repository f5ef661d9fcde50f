/**
 * bus/redis-connections.ts, an item out (docs/scaleout.md "An item out"), against a real redis-server: while the
 * item one proxy (owner) took is unsettled, another's take answers none and marks it waited; the taker's requeue
 * or delivery ends it, announced only when a take waited; an out past OUT_MAX_MS goes back at the next take; a
 * close ends it and a late requeue then drops the item. And a resync a late take cleared, set again; a resync a
 * take returned, out until it is told.
 */
import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import { Redis } from 'ioredis';
import { OUT_MAX_MS, RedisConnections } from '../../proxy/bus/redis-connections.js';
import type { TakeResult } from '../../proxy/holds/shared-connections.js';
import { startRedis } from '../helpers/redis-server.js';
import { connectionKeys, outKey } from '../../protocol/bus.js';

const ID = 'redis_out_id_00000000';
const LIMITS = { queueMaxItems: 10, queueMaxBytes: 10_000, queueTtlMs: 600_000, resyncTtlMs: 600_000, closedTtlMs: 600_000 };

async function setup(t: TestContext) {
  const redis = await startRedis(t);
  const client = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  t.after(() => client.disconnect());
  let now = 1_000_000;
  const announced: string[][] = [];
  const connections = new RedisConnections(client, LIMITS, () => now, async (ids) => {
    announced.push(ids);
  });
  const item = (body: string) => ({ headers: [['content-type', 'text/plain']] as Array<[string, string]>, body: Buffer.from(body) });
  const push = async (...bodies: string[]) => {
    for (const b of bodies) assert.deepEqual(await connections.enqueue(ID, item(b)), { kind: 'queued' });
  };
  return { connections, announced, push, item, advance: (ms: number) => (now += ms), client };
}

function body(result: TakeResult): string {
  assert.equal(result.kind, 'item');
  return (result as { item: { body: Buffer } }).item.body.toString();
}

/** Until the out for ID is gone (`delivered` settles in the background), with a deadline. */
async function settled(client: Redis): Promise<void> {
  const deadline = Date.now() + 5000;
  while ((await client.exists(outKey(ID))) === 1) {
    if (Date.now() > deadline) throw new Error('the out was not settled within 5 s');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('Redis connection queues: an item out', () => {
  test('another owner\'s take answers none while item 1 is out; the requeue puts 1 first and is announced', async (t) => {
    const { connections, announced, push, item, client } = await setup(t);
    await push('1', '2');
    assert.equal(body(await connections.take(ID, 'a')), '1');
    assert.deepEqual(await connections.take(ID, 'b'), { kind: 'none' }, 'not item 2 while item 1 is out');
    await connections.requeue(ID, item('not used: Redis kept the item'), 'b');
    assert.deepEqual(announced, [], 'only the taker gives it back');
    await connections.requeue(ID, item('not used: Redis kept the item'), 'a');
    assert.deepEqual(announced, [[ID]], 'the refused take hears of it');
    const again = await connections.take(ID, 'b');
    assert.equal(body(again), '1');
    assert.deepEqual((again as { item: { headers: unknown } }).item.headers, [['content-type', 'text/plain']], 'the item as it was pushed');
    connections.delivered(ID, 'b');
    await settled(client);
    assert.equal(body(await connections.take(ID, 'a')), '2');
  });

  test('a delivery nobody waited for is not announced; one a take waited for is', async (t) => {
    const { connections, announced, push, client } = await setup(t);
    await push('1', '2');
    assert.equal(body(await connections.take(ID, 'a')), '1');
    connections.delivered(ID, 'a');
    await settled(client);
    assert.deepEqual(announced, []);
    assert.equal(body(await connections.take(ID, 'a')), '2');
    assert.deepEqual(await connections.take(ID, 'b'), { kind: 'none' });
    connections.delivered(ID, 'a');
    await settled(client);
    assert.deepEqual(announced, [[ID]]);
  });

  test('an out older than OUT_MAX_MS (its taker died) goes back at the next take', async (t) => {
    const { connections, push, advance } = await setup(t);
    await push('1', '2');
    assert.equal(body(await connections.take(ID, 'dead')), '1');
    advance(OUT_MAX_MS - 1);
    assert.deepEqual(await connections.take(ID, 'b'), { kind: 'none' });
    advance(2);
    assert.equal(body(await connections.take(ID, 'b')), '1', 'at least once');
  });

  test('a close ends the out: the taker\'s late requeue drops the item and the tombstone answers', async (t) => {
    const { connections, announced, push, item, client } = await setup(t);
    await push('1');
    assert.equal(body(await connections.take(ID, 'a')), '1');
    assert.equal(await connections.close(ID), 0);
    await connections.requeue(ID, item('1'), 'a');
    assert.deepEqual(announced, []);
    assert.deepEqual(await connections.take(ID, 'b'), { kind: 'closed' });
    assert.equal(await client.llen(connectionKeys(ID)[0]), 0);
  });

  test('a resync a late take cleared is set again and announced; not for a closed ID', async (t) => {
    const { connections, announced } = await setup(t);
    await connections.resyncAgain(ID, 'queue-overflow');
    assert.deepEqual(announced, [[ID]]);
    assert.deepEqual(await connections.take(ID, 'a'), { kind: 'resync', reason: 'queue-overflow', dropped: 0 });
    assert.deepEqual(await connections.take(ID, 'a'), { kind: 'none' }, 'once');
    await connections.close(ID);
    await connections.resyncAgain(ID, 'queue-overflow');
    assert.equal(announced.length, 1);
    assert.deepEqual(await connections.take(ID, 'a'), { kind: 'closed' });
  });

  test('a resync a take returned is out until it is told: a take whose reply was lost gives it back after OUT_MAX_MS', async (t) => {
    const { connections, announced, advance, client } = await setup(t);
    await connections.resyncAgain(ID, 'queue-overflow'); // a resync pending, as an overflow leaves it
    announced.length = 0;
    // Owner a's take clears the flag, but its reply is lost (a command timeout): the resync stays out with a.
    assert.deepEqual(await connections.take(ID, 'a'), { kind: 'resync', reason: 'queue-overflow', dropped: 0 });
    assert.deepEqual(await connections.take(ID, 'b'), { kind: 'none' }, 'out: not told twice meanwhile');
    advance(OUT_MAX_MS + 1);
    assert.deepEqual(await connections.take(ID, 'b'), { kind: 'resync', reason: 'queue-overflow', dropped: 0 }, 'given back, then told');
    connections.delivered(ID, 'b');
    await settled(client);
    assert.deepEqual(await connections.take(ID, 'a'), { kind: 'none' }, 'told once it was written');
    // The taker's own resyncAgain (its poll was answered meanwhile) ends its out and sets the flag.
    await connections.resyncAgain(ID, 'queue-expired');
    assert.deepEqual(await connections.take(ID, 'a'), { kind: 'resync', reason: 'queue-expired', dropped: 0 });
    await connections.resyncAgain(ID, 'queue-expired', 'a');
    assert.deepEqual(await connections.take(ID, 'b'), { kind: 'resync', reason: 'queue-expired', dropped: 0 }, 'not refused: the out ended');
  });
});
