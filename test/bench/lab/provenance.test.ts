import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { coreShares, generatorSaturated } from '../../../bench/lab/headroom.js';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { parseLabOptions } from '../../../bench/lab/options.js';
import { pinPids, pinPlan } from '../../../bench/lab/pin.js';
import {
  parseCpuModel,
  parseNchanModuleVersion,
  parseNginxVersion,
  parseProcStat,
  parsePushpinVersion,
  readProvenance,
  stealShare,
} from '../../../bench/lab/provenance.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

describe('lab provenance', () => {
  test('versions are read from what the binaries print, not hard-coded', () => {
    assert.equal(parseNginxVersion('nginx version: nginx/1.22.1\n'), '1.22.1');
    assert.equal(parseNginxVersion('command not found'), null);
    assert.equal(parsePushpinVersion('pushpin 1.36.0\n'), '1.36.0');
    assert.equal(parsePushpinVersion('Usage: pushpin [options]'), null);
  });

  test("Nchan's version is the dotted number next to the module's own strings, and only when unambiguous", () => {
    const so = (...strings: string[]) => Buffer.from(`\0${strings.join('\0')}\0`, 'latin1');
    assert.equal(parseNchanModuleVersion(so('zlib', '1.2.13', 'a', 'b', 'c', 'Access-Control', '1.3.6', 'nchan_channel_id')), '1.3.6');
    // Alignment padding: several NULs between strings.
    assert.equal(parseNchanModuleVersion(Buffer.from('Access\0\0\x001.3.6\0%fK\0%l\0nchan_channel_id\0', 'latin1')), '1.3.6');
    assert.equal(parseNchanModuleVersion(so('1.2.13', 'other')), null);
    // zlib's version next to Nchan's log messages is not Nchan's.
    assert.equal(parseNchanModuleVersion(so('nchan: failed to compress message', 'invalid value', '1.2.13', './src/util/nchan_util.c')), null);
    assert.equal(parseNchanModuleVersion(so('nchan_a', '1.3.6', 'x', 'nchan_b', '1.3.7')), null);
  });

  test('CPU model and steal time come from /proc/cpuinfo and /proc/stat', () => {
    assert.equal(parseCpuModel('processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\nflags\t: fpu\n'), 'AMD EPYC 7B13');
    assert.equal(parseCpuModel('processor : 0\n'), null);
    // user nice system idle iowait irq softirq steal guest guest_nice: guest is inside user, not added again.
    const a = parseProcStat('cpu  100 0 50 800 10 0 0 40 30 0\ncpu0 1 2 3\n')!;
    assert.deepEqual(a, { total: 1000, steal: 40, idle: 810 });
    const b = parseProcStat('cpu  200 0 100 1500 10 0 0 140 60 0\n')!;
    assert.equal(stealShare(a, b), 100 / 950);
    assert.equal(stealShare(a, a), null);
    assert.equal(stealShare(null, b), null);
    assert.equal(parseProcStat('intr 1 2 3\n'), null);
  });

  test('the run records the commit it ran and whether the tree was dirty', () => {
    const p = readProvenance(ROOT);
    assert.equal(p.git.commit, execFileSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim());
    assert.equal(typeof p.git.dirty, 'boolean');
    assert.equal(p.node, process.version);
    assert.ok(p.cpuModel.length > 0);
    for (const b of Object.values(p.versions)) assert.ok(b.version !== null || b.source.length > 0, JSON.stringify(b));
  });
});

describe('load generator headroom', () => {
  test('a worker above 90% of a core flags the point; a worker that exited has no reading', () => {
    assert.deepEqual(coreShares([3, 9.3], 10), [0.3, 0.93]);
    assert.equal(generatorSaturated(coreShares([3, 9.3], 10)), true);
    assert.equal(generatorSaturated(coreShares([3, 9], 10)), false, '90% exactly is not past it');
    assert.equal(generatorSaturated(coreShares([-1, 2], 10)), false);
    assert.ok(Number.isNaN(coreShares([-1], 10)[0]));
    assert.ok(coreShares([1], 0).every(Number.isNaN));
  });
});

describe('--pin', () => {
  test('generator and target get separate cores: one each on 2 cores, halves on more, none on 1', () => {
    assert.deepEqual(pinPlan(2), { generator: [0], target: [1] });
    assert.deepEqual(pinPlan(5), { generator: [0, 1], target: [2, 3, 4] });
    assert.equal(pinPlan(1), null);
    assert.equal(parseLabOptions(['--pin'], false).pin, true);
    assert.equal(parseLabOptions([], false).pin, false);
  });

  test('taskset moves every thread of a running process to the target cores', { skip: os.cpus().length < 2 }, async (t) => {
    const child = spawn(process.execPath, ['-e', 'process.stdout.write("up\\n"); setInterval(() => {}, 1000)'], { stdio: ['ignore', 'pipe', 'inherit'] });
    t.after(() => child.kill('SIGKILL'));
    await once(child.stdout!, 'data');
    const plan = pinPlan(os.cpus().length)!;
    assert.deepEqual(pinPids([child.pid!], plan.target), []);
    const allowed = (tid: string) => /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync(`/proc/${child.pid}/task/${tid}/status`, 'utf8'))![1];
    const expected = plan.target.length === 1 ? String(plan.target[0]) : `${plan.target[0]}-${plan.target.at(-1)}`;
    // Node runs several threads (libuv pool, V8 platform): `-a` moves them all.
    for (const tid of readdirSync(`/proc/${child.pid}/task`)) assert.equal(allowed(tid), expected, `thread ${tid}`);
    assert.match(pinPids([2 ** 22 + 7], plan.target)[0] ?? '', /^taskset 4194311:/, 'a pid that does not exist is reported');
  });
});
