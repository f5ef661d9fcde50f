import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ChannelBuffer, type ChannelBufferLimits } from '../../proxy/repoll/channel-buffer.js';
import type { ItemResponse } from '../../proxy/http/response.js';

const LIMITS: ChannelBufferLimits = { maxItems: 100, maxBytes: 1 << 20, maxAgeMs: 60_000, maxChannels: 100, maxTotalBytes: 1 << 24 };

function item(body: string): ItemResponse {
  return { headers: [], body: Buffer.from(body) };
}

function setup(limits: Partial<ChannelBufferLimits> = {}) {
  let now = 1_000;
  const buffer = new ChannelBuffer({ ...LIMITS, ...limits }, () => now);
  let seq = 0;
  const publish = (channel: string, id: string | undefined, prevId: string | undefined, body = `b${id}`) =>
    buffer.record(channel, id, prevId, item(body), ++seq);
  return { buffer, publish, advance: (ms: number) => (now += ms) };
}

const ids = (items: ReturnType<ChannelBuffer['after']>) => (items === null ? null : items.map((i) => i.id));

test('a channel it never saw is unknown: the app must answer', () => {
  const { buffer } = setup();
  assert.equal(buffer.after('room:a', '0'), null);
});

test('a chain answers every cursor on it: the head with nothing, older ids and the first prev-id with what follows', () => {
  const { buffer, publish } = setup();
  publish('room:a', '1', '0');
  publish('room:a', '3', '1');
  publish('room:a', '7', '3');
  assert.deepEqual(ids(buffer.after('room:a', '7')), []);
  assert.deepEqual(ids(buffer.after('room:a', '3')), ['7']);
  assert.deepEqual(ids(buffer.after('room:a', '1')), ['3', '7']);
  assert.deepEqual(ids(buffer.after('room:a', '0')), ['1', '3', '7']);
  assert.equal(buffer.after('room:a', '2'), null, 'an id not on the chain is never guessed at');
});

test('a publish whose prev-id is not the head starts a new chain, so no hole is ever served', () => {
  const { buffer, publish } = setup();
  publish('room:a', '1', '0');
  publish('room:a', '5', '4'); // 2..4 were never seen
  assert.equal(buffer.after('room:a', '1'), null, 'the client at 1 lacks 2..4: only the app has them');
  assert.deepEqual(ids(buffer.after('room:a', '4')), ['5']);
});

test('a re-published item changes nothing', () => {
  const { buffer, publish } = setup();
  publish('room:a', '1', '0');
  publish('room:a', '2', '1');
  publish('room:a', '1', '0');
  assert.deepEqual(ids(buffer.after('room:a', '0')), ['1', '2']);
});

test('an item without an id or prev-id makes the channel unknown rather than guessed', () => {
  const { buffer, publish } = setup();
  publish('room:a', '1', '0');
  publish('room:a', undefined, undefined);
  assert.equal(buffer.after('room:a', '1'), null);
});

test('count, byte and age bounds drop the oldest items; the head stays known', () => {
  const { buffer, publish, advance } = setup({ maxItems: 2, maxBytes: 100, maxAgeMs: 1000 });
  publish('room:a', '1', '0');
  publish('room:a', '2', '1');
  publish('room:a', '3', '2');
  assert.equal(buffer.after('room:a', '0'), null, 'item 1 left by count');
  assert.deepEqual(ids(buffer.after('room:a', '1')), ['2', '3']);
  publish('room:a', '4', '3', 'x'.repeat(99));
  assert.deepEqual(ids(buffer.after('room:a', '3')), ['4'], 'item 3 left by bytes');
  assert.equal(buffer.after('room:a', '2'), null);
  advance(1000);
  buffer.sweep();
  assert.equal(buffer.after('room:a', '3'), null, 'aged out');
  assert.deepEqual(ids(buffer.after('room:a', '4')), [], 'the head is still known');
  assert.equal(buffer.bytes, 0);
});

test('channels beyond the channel or total byte cap are forgotten, least recently published first', () => {
  const { buffer, publish } = setup({ maxChannels: 2, maxTotalBytes: 10 });
  publish('room:a', '1', '0', 'aaaa');
  publish('room:b', '1', '0', 'bbbb');
  publish('room:c', '1', '0', 'cc');
  assert.equal(buffer.after('room:a', '0'), null);
  assert.deepEqual(ids(buffer.after('room:c', '0')), ['1']);
  publish('room:c', '2', '1', 'c'.repeat(8));
  assert.equal(buffer.after('room:b', '0'), null, 'b went for bytes');
  assert.ok(buffer.bytes <= 10);
});

test('a seeded head serves only the client at it, and only for a channel it knew nothing of', () => {
  const { buffer, publish } = setup();
  buffer.seedHead('room:a', '9');
  assert.deepEqual(ids(buffer.after('room:a', '9')), []);
  assert.equal(buffer.after('room:a', '8'), null);
  publish('room:a', '10', '9');
  assert.deepEqual(ids(buffer.after('room:a', '9')), ['10']);
  buffer.seedHead('room:a', '4');
  assert.deepEqual(ids(buffer.after('room:a', '10')), [], 'a known chain is not overwritten by a seed');
});

test('forget and clear make channels unknown', () => {
  const { buffer, publish } = setup();
  publish('room:a', '1', '0');
  publish('room:b', '1', '0');
  buffer.forget('room:a');
  assert.equal(buffer.after('room:a', '1'), null);
  buffer.clear();
  assert.equal(buffer.after('room:b', '1'), null);
  assert.equal(buffer.bytes, 0);
});
