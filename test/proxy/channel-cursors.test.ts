import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ChannelCursors } from '../../proxy/holds/channel-cursors.js';

function makeCursors(limits: Partial<{ ttlMs: number; maxChannels: number }> = {}) {
  const clock = { ms: 0 };
  const cursors = new ChannelCursors({ ttlMs: 1_000, maxChannels: 10, ...limits }, () => clock.ms);
  return { cursors, clock };
}

describe('ChannelCursors', () => {
  test('a publish sets the last id and advances the global sequence', () => {
    const { cursors } = makeCursors();
    assert.equal(cursors.seq, 0);
    cursors.record('a', '1');
    cursors.record('b', '7');
    assert.equal(cursors.seq, 2);
    assert.equal(cursors.lastId('a'), '1');
    assert.equal(cursors.lastId('b'), '7');
    assert.equal(cursors.lastId('never'), undefined);
  });

  test('an item without an id keeps the previous last id but still counts as a publish', () => {
    const { cursors } = makeCursors();
    cursors.record('a', '1');
    const seq = cursors.seq;
    cursors.record('a', undefined);
    assert.equal(cursors.lastId('a'), '1');
    assert.equal(cursors.publishedSince('a', seq), true);
  });

  test('publishedSince tells publishes after a captured sequence from earlier ones', () => {
    const { cursors } = makeCursors();
    cursors.record('a', '1');
    const sent = cursors.seq;
    assert.equal(cursors.publishedSince('a', sent), false);
    cursors.record('b', '2');
    assert.equal(cursors.publishedSince('a', sent), false, 'another channel does not count');
    cursors.record('a', '3');
    assert.equal(cursors.publishedSince('a', sent), true);
  });

  test('channels without publishes for the TTL are forgotten', () => {
    const { cursors, clock } = makeCursors({ ttlMs: 1_000 });
    cursors.record('old', '1');
    clock.ms = 600;
    cursors.record('recent', '2');
    clock.ms = 1_000;
    assert.equal(cursors.sweep(), 1);
    assert.equal(cursors.lastId('old'), undefined);
    assert.equal(cursors.lastId('recent'), '2');
  });

  test('an expired channel is forgotten on lookup even before a sweep', () => {
    const { cursors, clock } = makeCursors({ ttlMs: 1_000 });
    cursors.record('a', '1');
    clock.ms = 5_000;
    assert.equal(cursors.lastId('a'), undefined);
    assert.equal(cursors.knownChannels, 0);
  });

  test('over the cap the least recently published channel is evicted', () => {
    const { cursors } = makeCursors({ maxChannels: 2 });
    cursors.record('a', '1');
    cursors.record('b', '1');
    cursors.record('a', '2'); // 'a' is now the most recent
    cursors.record('c', '1');
    assert.equal(cursors.lastId('b'), undefined);
    assert.equal(cursors.lastId('a'), '2');
    assert.equal(cursors.lastId('c'), '1');
  });

  test('knownChannels counts only channels with a last id', () => {
    const { cursors } = makeCursors();
    cursors.record('with-id', '1');
    cursors.record('without-id', undefined);
    assert.equal(cursors.knownChannels, 1);
  });
});
