import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkDeliveries, type EventRow } from '../../bench/lab/soak/deliveries.js';
import { histogramQuantile, parsePromText } from '../../bench/lab/soak/prom-text.js';

// Room a: 1 join(ada), 2 msg, 3 msg, 5 msg, 7 leave(ada), 8 msg.  Room b: 4 msg, 6 msg.
const EVENTS: EventRow[] = [
  { id: 1, room: 'a', type: 'join' },
  { id: 2, room: 'a', type: 'message' },
  { id: 3, room: 'a', type: 'message' },
  { id: 4, room: 'b', type: 'message' },
  { id: 5, room: 'a', type: 'message' },
  { id: 6, room: 'b', type: 'message' },
  { id: 7, room: 'a', type: 'leave' },
  { id: 8, room: 'a', type: 'message' },
];
const LAST = { a: 8, b: 6 };

describe('the soak report', () => {
  test('every message inside a membership interval (from, to] is expected once; an open interval runs to the last id', () => {
    const check = checkDeliveries(EVENTS, LAST, [
      { nick: 'ada', intervals: [['a', 1, 5]], received: [2, 3, 5] },
      { nick: 'bob', intervals: [['b', 0, null], ['a', 3, null]], received: [4, 5, 6, 7, 8] },
    ]);
    assert.equal(check.committedMessages, 6);
    assert.equal(check.committedEvents, 8);
    assert.equal(check.expected, 3 + 2 + 2);
    assert.equal(check.delivered, 7);
    assert.equal(check.lost, 0);
    assert.equal(check.duplicated, 0);
    assert.equal(check.outsideWindow, 0);
  });

  test('a missing message is lost, a second reception is a duplicate, an id not in the database is unknown', () => {
    const check = checkDeliveries(EVENTS, LAST, [
      { nick: 'ada', intervals: [['a', 1, null]], received: [2, 5, 5, 8, 99] },
    ]);
    assert.equal(check.expected, 4);
    assert.equal(check.delivered, 3);
    assert.equal(check.lost, 1);
    assert.deepEqual(check.lostExamples, [{ client: 'ada', room: 'a', eventId: 3 }]);
    assert.equal(check.duplicated, 1);
    assert.deepEqual(check.duplicateExamples, [{ client: 'ada', eventId: 5, times: 2 }]);
    assert.equal(check.unknown, 1);
  });

  test('messages received outside every interval are counted apart, not as deliveries', () => {
    const check = checkDeliveries(EVENTS, LAST, [{ nick: 'ada', intervals: [['a', 3, 5]], received: [2, 5, 8] }]);
    assert.equal(check.expected, 1);
    assert.equal(check.delivered, 1);
    assert.equal(check.outsideWindow, 2);
  });

  test('quantiles are read from cumulative histogram buckets, summed over label sets', () => {
    const samples = parsePromText(
      [
        '# HELP x_seconds help',
        'x_seconds_bucket{kind="publish",le="0.01"} 50',
        'x_seconds_bucket{kind="publish",le="0.1"} 90',
        'x_seconds_bucket{kind="publish",le="+Inf"} 100',
        'x_seconds_bucket{kind="push",le="0.01"} 0',
        'x_seconds_bucket{kind="push",le="0.1"} 0',
        'x_seconds_bucket{kind="push",le="+Inf"} 0',
        'x_seconds_count{kind="publish"} 100',
      ].join('\n'),
    );
    assert.equal(histogramQuantile(samples, 'x_seconds', 0.5), 0.01);
    assert.ok(Math.abs(histogramQuantile(samples, 'x_seconds', 0.7)! - 0.055) < 1e-9);
    assert.equal(histogramQuantile(samples, 'x_seconds', 0.99), 0.1, 'beyond the last finite bucket: its bound');
    assert.equal(histogramQuantile(samples, 'x_seconds', 0.5, { kind: 'push' }), undefined);
  });
});
