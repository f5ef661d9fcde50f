/**
 * Two races between a publish and a push notification's take, run against any set of proxies that share
 * connection state (a cluster's workers, or proxies on one Redis bus; docs/scaleout.md "An item out"). Each
 * client's poll holds on channel `ticks` and its own connection ID, as the chat app's do, so a publish answers
 * it; each poll goes out on a new connection (`pollUrl` may pick a different proxy every time). A publish is
 * sent with every push: when its entry follows the push's, it answers polls whose takes are in flight.
 *
 * - `itemsInOrder`: two items per ID in each push; the taken item goes back, and the client's next poll must
 *   take it, not the one behind it. Every item once, in order.
 * - `everyOverflowTold`: five items into queues of two (`QUEUE_MAX_ITEMS=2` on the proxies); the take brings
 *   the overflow's resync for a poll already answered, and it must be set again. One resync per overflow.
 */
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import type { TestContext } from 'node:test';
import { request, type HttpResult } from './proxy-harness.js';
import { writeHold } from './scripted-app.js';
import { until } from './worker-cluster.js';

export interface RaceTarget {
  /** The client poll URL for `id`, its `n`th poll. */
  pollUrl(id: string, n: number): string;
  /** A control call (answered status and text). */
  call(path: string, body: unknown): Promise<{ status: number; text: string }>;
}

/** The app's answer to every poll: hold on `ticks` and the poll's `cid`. */
export function holdOnTicks(req: { url: string }, res: ServerResponse): void {
  writeHold(res, { channel: 'ticks', connectionId: new URL(req.url, 'http://x').searchParams.get('cid')!, timeoutS: 30 });
}

const TICK = { items: [{ channel: 'ticks', formats: { 'http-response': { body: 'tick' } } }] };
const ids = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}_${i}`.padEnd(21, '_'));
const item = (id: string, body: string) => ({ 'connection-id': id, formats: { 'http-response': { body } } });

/** Polls until `stop()`, each on a new connection; `each` sees every answer. Bounded by count and `deadline`. */
async function pollLoop(target: RaceTarget, id: string, stop: () => boolean, deadline: number, each: (text: string) => void): Promise<void> {
  for (let n = 0; n < 20_000 && !stop() && Date.now() < deadline; n++) {
    const res: HttpResult = await request(target.pollUrl(id, n), { signal: AbortSignal.timeout(35_000) });
    assert.equal(res.status, 200, res.text);
    each(res.text);
  }
}

async function pushWithPublish(target: RaceTarget, items: unknown[]): Promise<void> {
  const [pushed, published] = await Promise.all([target.call('/push/', { items }), target.call('/publish/', TICK)]);
  assert.equal(pushed.status, 200, pushed.text);
  assert.equal(published.status, 200, published.text);
}

export async function itemsInOrder(t: TestContext, target: RaceTarget, { clients = 8, items = 200, budgetMs = 70_000 } = {}): Promise<void> {
  const deadline = Date.now() + budgetMs;
  const received = new Map<string, number[]>(ids('ordered', clients).map((id) => [id, []]));
  let ticks = 0;
  const loops = [...received].map(([id, got]) =>
    pollLoop(target, id, () => got.length >= items, deadline, (text) => (text === 'tick' ? ticks++ : got.push(Number(text)))),
  );
  for (let n = 1; n <= items; n += 2) {
    // Paced by the clients (the previous push received), so no queue overflows.
    await until(() => [...received.values()].every((got) => got.length >= n - 1), `items before ${n} received`, 10_000);
    await pushWithPublish(target, [...received.keys()].flatMap((id) => [item(id, String(n)), item(id, String(n + 1))]));
  }
  await Promise.all(loops).catch((err: unknown) => {
    for (const [id, got] of received) t.diagnostic(`${id}: ${got.length} items, last ${got.slice(-6).join(',')}`);
    throw err;
  });
  t.diagnostic(`publish answers among the polls: ${ticks}`);
  for (const [id, got] of received) assert.deepEqual(got, Array.from({ length: items }, (_, k) => k + 1), `${id}: every item once, in order`);
}

export async function everyOverflowTold(target: RaceTarget, { clients = 8, rounds = 40, budgetMs = 50_000 } = {}): Promise<void> {
  const deadline = Date.now() + budgetMs;
  const resyncs = new Map<string, number>(ids('overflow', clients).map((id) => [id, 0]));
  let done = false;
  const loops = [...resyncs.keys()].map((id) =>
    pollLoop(target, id, () => done, deadline, (text) => {
      if (text.includes('"resync"')) resyncs.set(id, resyncs.get(id)! + 1);
    }),
  );
  for (let round = 1; round <= rounds; round++) {
    // Five items into a queue of two: it overflows even if the client's poll takes one or two between the
    // enqueues (the Redis bus enqueues a push's items one script at a time).
    await pushWithPublish(target, [...resyncs.keys()].flatMap((id) => ['a', 'b', 'c', 'd', 'e'].map((body) => item(id, body))));
    await until(() => [...resyncs.values()].every((n) => n >= round), `round ${round}: every client told of its overflow (${[...resyncs.values()].join(',')})`, 10_000);
  }
  done = true;
  // One more publish answers the polls still parked.
  assert.equal((await target.call('/publish/', TICK)).status, 200);
  await Promise.all(loops);
  for (const [id, n] of resyncs) assert.equal(n, rounds, `${id}: one resync per overflow`);
}
