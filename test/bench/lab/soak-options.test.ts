import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LabUsageError, parseLabOptions } from '../../../bench/lab/options.js';

describe('the soak scenario on the lab command line', () => {
  test('--scenario soak takes the soak defaults (suspend-push, 2,000 clients, 40 rooms, 100 s, 20 s holds, 15 posts/s, 2 workers)', () => {
    const o = parseLabOptions(['--scenario', 'soak', '--seed', '7'], false);
    assert.equal(o.models, 'suspend-push');
    assert.deepEqual(o.clients, [2000]);
    assert.equal(o.rooms, 40);
    assert.equal(o.durationS, 100);
    assert.equal(o.holdTimeoutS, 20);
    assert.deepEqual(o.soak, {
      workers: 2, initialRoomsMin: 1, initialRoomsMax: 3, postsPerS: 15, joinsLeavesPerS: 4, abortsPerS: 10, restarts: true, seed: 7, keep: false,
    });
  });

  test('--smoke is the CI size (200 clients, 8 rooms, 10 s, 5 s holds, one worker); explicit flags win', () => {
    const o = parseLabOptions(['--scenario', 'soak', '--smoke', '--clients', '300', '--rate', '3', '--no-restarts', '--keep', '--models', 'suspend-push-plain'], false);
    assert.equal(o.models, 'suspend-push-plain');
    assert.deepEqual(o.clients, [300]);
    assert.equal(o.rooms, 8);
    assert.equal(o.durationS, 10);
    assert.equal(o.holdTimeoutS, 5);
    assert.equal(o.soak?.workers, 1);
    assert.equal(o.soak?.postsPerS, 3);
    assert.equal(o.soak?.restarts, false);
    assert.equal(o.soak?.keep, true);
  });

  test('the other scenarios have no soak settings', () => {
    assert.equal(parseLabOptions(['--smoke'], false).soak, undefined);
  });

  test('bad soak flags are usage errors that name the problem', () => {
    const cases: Array<[string[], RegExp]> = [
      [['--abort-rate', '3'], /--abort-rate belongs to --scenario soak/],
      [['--scenario', 'park', '--no-restarts'], /--no-restarts belongs to --scenario soak/],
      [['--scenario', 'soak', '--clients', '100,200'], /one --clients value/],
      [['--scenario', 'soak', '--repeat', '3'], /--repeat does not apply to --scenario soak/],
      [['--scenario', 'soak', '--pin'], /--pin does not apply to --scenario soak/],
      [['--scenario', 'soak', '--rates', '5,10'], /one --rate, not a sweep/],
      [['--scenario', 'soak', '--rooms', '1'], /--rooms >= 2/],
      [['--scenario', 'soak', '--join-leave-rate=-1'], /--join-leave-rate must be a number >= 0/],
      [['--scenario', 'soak', '--clients', '20000', '--workers', '2'], /at most 8000 soak clients per worker/],
      [['--scenario', 'soak', '--clients', '3', '--rooms', '2', '--workers', '4'], /--workers must not exceed --clients/],
    ];
    for (const [argv, message] of cases) {
      assert.throws(() => parseLabOptions(argv, false), (err: Error) => err instanceof LabUsageError && message.test(err.message), argv.join(' '));
    }
  });
});
