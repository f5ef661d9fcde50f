/**
 * A leased re-poll's query and cursors read on indexes (proxy/repoll/repoll-query.ts), against the split-and-slice
 * reading it replaced (test/helpers/reference-repoll-query.ts) on many generated targets: the same connection ID,
 * the same subscriptions, the same refusal.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readCursors, readRepollQuery, type CursorLease } from '../../proxy/repoll/repoll-query.js';
import { referenceParseCursors, referenceParseTwo } from '../helpers/reference-repoll-query.js';
import { prng as seeded } from '../../bench/lib/prng.js';

function lease(names: string[]): CursorLease {
  return { channels: new Set(names), claims: { ch: names.map((name): [string, string] => [name, '1']) } };
}
/** Few channels (the lease's own strings are used) and many (a name is made and looked up). */
const LEASES = [lease(['chat:room:0', 'chat:room:1']), lease(Array.from({ length: 12 }, (_, i) => `chat:room:${i}`))];
const PREFIX = 'chat:';

const NAMES = ['cid', 'cid', 'cid', 'c', 'c', 'c', 'c%69d', '%63', 'x', '', '%zz', 'ci+d', 'cid2'];
const CIDS = ['c1', 'c1', 'c%201', 'a+b', '%E2%82%AC', '%zz', '', 'c=1'];
const CURSORS = [
  'room:0:5', 'room:0:5', 'room:1:5,room:0:3', 'room%3A0%3A5', 'room:0:5,room:0:6', 'other:0:1', ':5', 'room:0:', 'room:0:bad id',
  'room:0:5,', ',room:0:5', `room:0:${'x'.repeat(129)}`, '', 'room:0:5,room:11:7', 'room:11:2', 'room+0:5', 'room:0:a%2Cb', 'room:0:5,,room:1:1',
  'room:0:5%2Croom:1:2', 'room', 'room:0:5:6', 'room:1:1,other:2:2',
];

function generatedTarget(random: () => number): string {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  if (random() < 0.8) {
    // The usual shape, either order.
    const cid = `cid=${pick(CIDS)}`;
    const cursors = `c=${pick(CURSORS)}`;
    return random() < 0.5 ? `/poll?${cid}&${cursors}` : `/poll?${cursors}&${cid}`;
  }
  const parts: string[] = [];
  const count = 1 + Math.floor(random() * 3);
  for (let i = 0; i < count; i++) {
    const name = pick(NAMES);
    const value = name.startsWith('c') && !name.startsWith('ci') ? pick(CURSORS) : pick(CIDS);
    parts.push(random() < 0.05 ? name : `${name}=${value}`);
  }
  return `/poll?${parts.join(random() < 0.03 ? '&&' : '&')}`;
}

test('on 20,000 generated targets the query and cursors read on indexes are what the split-and-slice reading found', () => {
  const random = seeded(15);
  let parked = 0;
  for (let n = 0; n < 20_000; n++) {
    const url = generatedTarget(random);
    const q = url.indexOf('?');
    const label = JSON.stringify(url);
    const want = referenceParseTwo(url.slice(q + 1), 'cid', 'c');
    const got = readRepollQuery(url, q + 1, 'cid', 'c');
    if (want === null) {
      assert.equal(got, null, label);
      continue;
    }
    assert.ok(got !== null, label);
    assert.equal(got.cid, want[0], label);
    assert.equal(got.text.slice(got.start, got.end), want[1], label);
    const { text, start, end } = got;
    for (const l of LEASES) {
      const subs = readCursors(text, start, end, PREFIX, l);
      assert.deepEqual(subs, referenceParseCursors(want[1], PREFIX, l), `${label} with ${l.channels.size} channels`);
      if (typeof subs !== 'string') parked++;
    }
  }
  assert.ok(parked > 5000, `only ${parked} readings found subscriptions`);
});
