import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import type { SubscriberSpec } from '../../../bench/lab/load-api.js';
import { createLoadGenerator } from '../../../bench/lab/load-workers.js';
import { roomNames } from '../../../bench/lab/workload.js';
import { defer, startApp, waitFor } from '../../helpers/app-harness.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** A loopback port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('the lab load generator', () => {
  test('short-poll subscribers in two workers get every message of their room once, in order, with latency and traffic counted', async (t) => {
    // The real chat app without the proxy: it answers every poll at once, which is short polling.
    const app = await startApp(t, { options: { logger: pino({ level: 'warn' }) } });
    const generator = createLoadGenerator(ROOT);
    const rooms = roomNames(2);

    const publisher = await generator.startPublisher({ protocol: 'chat-short-poll', publishUrl: app.base, rooms, ratePerS: 40 });
    defer(t, () => publisher.kill());
    const subscribers = await generator.startSubscribers({
      protocol: 'chat-short-poll',
      clientUrl: app.base,
      rooms,
      clients: 6,
      workers: 2,
      shortPollIntervalMs: 50,
      requestTimeoutMs: 5_000,
    });
    defer(t, () => subscribers.kill());

    await publisher.setup(15_000);
    await subscribers.setup(15_000);
    await subscribers.subscribe(15_000);
    await waitFor('progress reports from both workers', () => {
      const p = subscribers.progress();
      return p.ready === 6 && p.subscribed === 6 && p.requests > 0;
    });
    const windowStart = await subscribers.snapshot(5_000);

    const published = await publisher.run(1_000, 15_000);
    assert.deepEqual(published.publishedPerRoom, { 'room-0': 20, 'room-1': 20 });
    assert.equal(published.published, 40);
    assert.equal(published.errors, 0);
    // Open loop: 40 messages fell due, all were sent; none dropped or left unsent.
    assert.deepEqual([published.offered, published.dropped, published.unsent], [40, 0, 0]);
    assert.ok(published.requests >= 40, `publisher requests ${published.requests}`);
    assert.ok(published.bytes > 0);
    assert.ok(published.ratePerS > 30 && published.ratePerS <= 40.5, `achieved rate ${published.ratePerS}`);

    assert.equal(await subscribers.waitAllReceived(published.publishedPerRoom, 15_000), true);
    const totals = await subscribers.finish(published.publishedPerRoom, windowStart, 15_000);
    assert.equal(totals.expectedDeliveries, 6 * 20);
    assert.equal(totals.deliveries, 6 * 20);
    assert.equal(totals.lost, 0);
    assert.equal(totals.duplicated, 0);
    assert.equal(totals.outOfOrder, 0);
    assert.equal(totals.latency.count, 6 * 20);
    assert.ok(totals.latency.p50 > 0 && totals.latency.p50 <= totals.latency.max, JSON.stringify(totals.latency));
    assert.ok(totals.requests > 0, `requests ${totals.requests}`);
    assert.ok(totals.bytes > 0, `bytes ${totals.bytes}`);
    assert.equal(totals.errors, 0, JSON.stringify(totals.badStatuses));
    assert.ok(totals.latencyHistogram.length > 0);
  });

  test('a publisher whose target refuses connections counts failed publishes and still answers by its deadline', async (t) => {
    const generator = createLoadGenerator(ROOT);
    const url = `http://127.0.0.1:${await closedPort()}`;
    const publisher = await generator.startPublisher({ protocol: 'chat-short-poll', publishUrl: url, rooms: roomNames(2), ratePerS: 20 });
    defer(t, () => publisher.kill());

    await assert.rejects(publisher.setup(1_500), /sign in as publisher: no success before the deadline/);
    const started = Date.now();
    const totals = await publisher.run(500, 3_000);
    assert.ok(Date.now() - started < 3_000, `run took ${Date.now() - started} ms`);
    assert.equal(totals.published, 0);
    assert.deepEqual(totals.publishedPerRoom, { 'room-0': 0, 'room-1': 0 });
    // Every message that fell due is accounted for: never accepted, so unsent at the deadline (none dropped: the
    // 10 due fit the room queues).
    assert.deepEqual([totals.offered, totals.dropped, totals.unsent], [10, 0, 10]);
    assert.ok(totals.errors > 0);
    assert.ok(totals.requests >= totals.errors);
  });

  test('killing a worker rejects its pending call with a message naming it; kill is idempotent', async (t) => {
    const generator = createLoadGenerator(ROOT);
    const url = `http://127.0.0.1:${await closedPort()}`;
    const publisher = await generator.startPublisher({ protocol: 'nchan-long-poll', publishUrl: url, rooms: ['a'], ratePerS: 10 });
    defer(t, () => publisher.kill());

    const run = publisher.run(30_000, 60_000); // pending from here: the request is registered synchronously
    await publisher.kill();
    await publisher.kill();
    await assert.rejects(run, /load worker publisher was killed while waiting for "run"/);
    await assert.rejects(publisher.setup(1_000), /load worker publisher was killed \(before "setup"\)/);
  });

  test('a spec the generator cannot run is refused before any process starts', async () => {
    const generator = createLoadGenerator(ROOT);
    const spec: SubscriberSpec = {
      protocol: 'sse',
      clientUrl: 'http://127.0.0.1:1',
      rooms: ['a'],
      clients: 10,
      workers: 0,
      shortPollIntervalMs: 100,
      requestTimeoutMs: 1000,
    };
    await assert.rejects(generator.startSubscribers(spec), /workers must be an integer from 1 to 245/);
    await assert.rejects(generator.startSubscribers({ ...spec, workers: 1, rooms: [] }), /at least one room/);
    await assert.rejects(generator.startPublisher({ protocol: 'sse', publishUrl: 'ftp://x', rooms: ['a'], ratePerS: 1 }), /absolute http URL/);
  });
});
