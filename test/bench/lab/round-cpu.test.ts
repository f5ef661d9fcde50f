/**
 * The fan-out scenario's CPU per round (bench/lab/run-point.ts `perRoundCpu`): each round from its publish to the
 * next one's, the last to the window's end, per 1,000 of its deliveries.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { perRoundCpu } from '../../../bench/lab/run-point.js';

describe('perRoundCpu', () => {
  test('each round runs to the next publish, the last to the end; deliveries split evenly', () => {
    // 3 rounds of 1,000 deliveries: 0.9 s, 0.5 s and 0.3 s of CPU.
    const byRound = perRoundCpu([10, 10.9, 11.4], 11.7, 3000);
    assert.equal(byRound.length, 3);
    assert.deepEqual(byRound.map((c) => Math.round(c * 1000) / 1000), [0.9, 0.5, 0.3]);
  });

  test('the rounds add up to the window from the first publish', () => {
    const starts = [2, 2.25, 2.75, 3];
    const byRound = perRoundCpu(starts, 3.5, 4000);
    const total = byRound.reduce((a, b) => a + b, 0) * (4000 / 4 / 1000);
    assert.ok(Math.abs(total - 1.5) < 1e-9, String(total));
  });

  test('no deliveries divides by one, never by zero', () => {
    assert.deepEqual(perRoundCpu([1], 1.5, 0), [500]);
  });
});
