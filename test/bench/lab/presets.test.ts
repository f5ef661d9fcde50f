import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LabUsageError, parseLabOptions, parseLabRuns } from '../../../bench/lab/options.js';
import { MODELS_CHAT_TARGETS, MODELS_MULTICAST_TARGETS, PRESETS } from '../../../bench/lab/presets.js';
import { selectTargets, TARGETS } from '../../../bench/models/registry.js';

describe('lab presets (--preset)', () => {
  test('--preset models is the chat table at 1,000 clients and the multicast experiment, 3 runs each, pinned, rewriting docs/models.md', () => {
    const runs = parseLabRuns(['--preset', 'models'], false);
    assert.equal(runs.preset, 'models');
    assert.equal(runs.doc, 'docs/models.md');
    assert.deepEqual(runs.stages.map((s) => s.name), ['chat', 'multicast']);
    const [chat, multicast] = runs.stages.map((s) => s.options);
    assert.equal(chat!.scenario, 'chat');
    assert.deepEqual(chat!.clients, [1000]);
    assert.deepEqual([chat!.rooms, chat!.ratePerS, chat!.durationS, chat!.repeat, chat!.pin], [100, 200, 20, 3, true]);
    assert.equal(multicast!.scenario, 'multicast');
    assert.deepEqual(multicast!.roomsList, [1, 10, 100]);
    assert.deepEqual([multicast!.ratePerS, multicast!.durationS, multicast!.repeat, multicast!.pin], [2, 10, 3, true]);
    for (const o of [chat!, multicast!]) assert.equal(o.out, 'docs/models-results');
  });

  test('the models preset runs every registered target but the scaled-out Suspend & Push ones, each name a real target', () => {
    const chat: string[] = selectTargets(parseLabRuns(['--preset', 'models'], false).stages[0]!.options.models).map((t) => t.name);
    assert.deepEqual(chat, MODELS_CHAT_TARGETS.map(String));
    const left = TARGETS.map((t) => t.name).filter((n) => !chat.includes(n));
    assert.deepEqual(left, ['suspend-push-w2', 'suspend-push-x2', 'suspend-push-x3']);
    for (const name of MODELS_MULTICAST_TARGETS) assert.ok(chat.includes(name), name);
  });

  test('overrides shrink every stage, and a resized run leaves the doc alone', () => {
    const runs = parseLabRuns(['--preset', 'models', '--clients', '100', '--duration', '2', '--repeat', '1', '--no-progress', '--out', '/tmp/x'], true);
    assert.equal(runs.doc, undefined);
    for (const { options } of runs.stages) {
      assert.deepEqual([options.clients, options.durationS, options.repeat, options.out, options.progress], [[100], 2, 1, '/tmp/x', false]);
    }
    // --no-progress alone keeps the run as the doc reports it.
    assert.equal(parseLabRuns(['--preset', 'models', '--no-progress'], true).doc, 'docs/models.md');
  });

  test('--models with a preset keeps each stage to the names given; a stage left with none is skipped', () => {
    const runs = parseLabRuns(['--preset', 'models', '--models', 'nchan,mailbox'], false);
    assert.deepEqual(runs.stages.map((s) => [s.name, s.options.models]), [['chat', 'mailbox,nchan'], ['multicast', 'mailbox']]);
    const chatOnly = parseLabRuns(['--preset', 'models', '--models', 'sse'], false);
    assert.deepEqual(chatOnly.stages.map((s) => s.name), ['chat']);
  });

  test('an unknown preset, a flag that would change the run, or a target outside the preset is a usage error', () => {
    assert.throws(() => parseLabRuns(['--preset', 'nope'], false), (e: unknown) => e instanceof LabUsageError && /--preset must be one of models/.test(e.message));
    assert.throws(() => parseLabRuns(['--preset', 'models', '--rate', '5'], false), (e: unknown) => e instanceof LabUsageError && /--preset run takes only/.test(e.message));
    assert.throws(() => parseLabRuns(['--preset', 'models', '--models', 'suspend-push-x2'], false), /subset of its targets/);
    assert.throws(() => parseLabRuns(['--preset', 'toString'], false), LabUsageError);
    // Overrides are validated like any command line: 50 clients cannot fill 100 rooms.
    assert.throws(() => parseLabRuns(['--preset', 'models', '--clients', '50'], false), LabUsageError);
  });

  test('without --preset the command line is one stage, parsed as before', () => {
    const argv = ['--models', 'sse', '--clients', '20', '--rate', '5'];
    const runs = parseLabRuns(argv, false);
    assert.deepEqual(runs, { preset: undefined, doc: undefined, stages: [{ name: 'chat', options: parseLabOptions(argv, false) }] });
  });

  test('every preset parses (its stages are valid command lines)', () => {
    for (const name of Object.keys(PRESETS)) assert.ok(parseLabRuns(['--preset', name], false).stages.length > 0, name);
  });
});
