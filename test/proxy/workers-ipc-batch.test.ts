/**
 * proxy/cluster/ipc-batch.ts: what the primary and a worker send each other in one event-loop turn leaves as one
 * write, in order, and the receiver sees the same messages in the same order as if each had been sent alone.
 */
import assert from 'node:assert/strict';
import { setImmediate as turn } from 'node:timers/promises';
import { test } from 'node:test';
import { IpcBatcher, unbatch, type Batch } from '../../proxy/cluster/ipc-batch.js';

type M = { k: string; n: number };

test('messages sent in one turn leave as one write, in order; the receiver gets them one by one', async () => {
  const writes: Array<M | Batch<M>> = [];
  const out = new IpcBatcher<M>((message) => writes.push(message));
  for (let n = 1; n <= 100; n++) out.send({ k: 'take', n });
  assert.equal(writes.length, 0, 'nothing written before the turn ends');
  await turn();
  assert.equal(writes.length, 1, 'one write for the turn');
  const received: number[] = [];
  unbatch(writes[0], (m) => received.push((m as M).n));
  assert.deepEqual(received, Array.from({ length: 100 }, (_, i) => i + 1));
});

test('a message alone in its turn travels as itself; the next turn is a write of its own', async () => {
  const writes: Array<M | Batch<M>> = [];
  const out = new IpcBatcher<M>((message) => writes.push(message));
  out.send({ k: 'ready', n: 1 });
  await turn();
  out.send({ k: 'take', n: 2 });
  out.send({ k: 'shutdown', n: 3 });
  await turn();
  assert.deepEqual(writes[0], { k: 'ready', n: 1 });
  assert.deepEqual(writes[1], { k: 'batch', m: [{ k: 'take', n: 2 }, { k: 'shutdown', n: 3 }] });
  const seen: unknown[] = [];
  for (const w of writes) unbatch(w, (m) => seen.push(m));
  assert.deepEqual(seen.map((m) => (m as M).k), ['ready', 'take', 'shutdown']);
  unbatch('not a message', (m) => seen.push(m));
  assert.equal(seen.at(-1), 'not a message', 'anything else is passed on as it is');
});
