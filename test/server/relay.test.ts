import assert from 'node:assert/strict';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { startControlRecorder } from '../helpers/app-control-recorder.js';
import { APP_TEST_CONTROL_SECRET, startApp, waitFor, type AppHarness, type TestUser } from '../helpers/app-harness.js';

/** Event ids in commit order, as the outbox item ids the relay must publish. */
function eventIds(h: AppHarness): string[] {
  return (h.chat.db.prepare('SELECT id FROM events ORDER BY id').all() as Array<{ id: number }>).map((r) => String(r.id));
}

async function post(user: TestUser, text: string): Promise<void> {
  await user.agent.post('/api/rooms/lobby/messages').send({ text }).expect(201);
}

/** Signs in and posts one short message: the row each test starts from (a sign-in wrote an `online` event before issue 18). */
async function signInAndGreet(h: AppHarness, nick: string): Promise<TestUser> {
  const user = await h.signIn(nick);
  await post(user, 'hi');
  return user;
}

// Fast retries, and a sweep too slow to matter: publishing must come from nudges.
const FAST = { relayRetryMinMs: 5, relayRetryMaxMs: 20, relayIntervalMs: 3_600_000 };

test('the relay publishes outbox rows in order to POST /publish/ with the secret, then deletes them', async (t) => {
  const control = await startControlRecorder(t);
  const h = await startApp(t, { options: FAST });
  const ada = await signInAndGreet(h, 'ada');
  for (let i = 0; i < 4; i++) await post(ada, `m${i}`);
  assert.equal(h.chat.store.outbox.count(), 5, 'nothing is published before the proxy is connected');

  h.chat.connectProxy(control.url);
  await h.chat.relay.waitIdle(5000);

  assert.deepEqual(control.items().map((i) => i.id), eventIds(h));
  assert.equal(h.chat.store.outbox.count(), 0);
  for (const publish of control.accepted) {
    assert.equal(publish.authorization, `Bearer ${APP_TEST_CONTROL_SECRET}`, 'the control secret, never the Grip-Sig key');
    assert.equal(publish.contentType, 'application/json');
  }
  const first = control.items()[0]!;
  assert.equal(first.channel, 'room:lobby');
  assert.equal(first['prev-id'], '0');
  assert.equal(typeof first.formats['http-response']?.body, 'string');
  assert.deepEqual(h.chat.relay.stats, { published: 5, failures: 0 });
});

test('the relay sends at most relayBatchSize rows per publish, batches in order', async (t) => {
  const control = await startControlRecorder(t);
  const h = await startApp(t, { options: { ...FAST, relayBatchSize: 2 } });
  const ada = await signInAndGreet(h, 'ada');
  for (let i = 0; i < 4; i++) await post(ada, `m${i}`);
  h.chat.connectProxy(control.url);
  await h.chat.relay.waitIdle(5000);
  assert.deepEqual(control.accepted.map((p) => p.items.length), [2, 2, 1]);
  assert.deepEqual(control.items().map((i) => i.id), eventIds(h));
});

test('the relay splits batches that would exceed relayBatchMaxBytes', async (t) => {
  const control = await startControlRecorder(t);
  const h = await startApp(t, { options: { ...FAST, relayBatchMaxBytes: 4096 } });
  const ada = await signInAndGreet(h, 'ada');
  // Payloads: ~250 bytes for the greeting, ~1750 for each message.
  for (let i = 0; i < 3; i++) await post(ada, 'x'.repeat(1500));
  h.chat.connectProxy(control.url);
  await h.chat.relay.waitIdle(5000);
  assert.deepEqual(control.accepted.map((p) => p.items.length), [3, 1]);
  assert.deepEqual(control.items().map((i) => i.id), eventIds(h));
});

test('a write is published promptly after its commit, without waiting for the safety sweep', async (t) => {
  const control = await startControlRecorder(t);
  const h = await startApp(t, { options: FAST });
  h.chat.connectProxy(control.url);
  const ada = await signInAndGreet(h, 'ada');
  await control.waitForItems(1, 2000);
  await post(ada, 'prompt');
  const items = await control.waitForItems(2, 2000);
  assert.equal(JSON.parse(items[1]!.formats['http-response']!.body!).events[0].text, 'prompt');
});

test('the safety sweep publishes rows written behind the relay’s back', async (t) => {
  const control = await startControlRecorder(t);
  const h = await startApp(t, { options: { ...FAST, relayIntervalMs: 20 } });
  h.chat.connectProxy(control.url);
  await h.chat.relay.waitIdle(5000);
  // Another process (or a missed nudge) adds a row: only the sweep can find it.
  const other = new Database(h.dbPath);
  t.after(() => other.close());
  other.prepare("INSERT INTO outbox (channel, item_id, prev_id, payload, created_at) VALUES ('room:lobby', '77', '0', ?, 0)")
    .run(JSON.stringify({ code: 200, body: '{"events":[]}' }));
  const items = await control.waitForItems(1, 5000);
  assert.equal(items[0]!.id, '77');
});

test('while the control API answers 503 the relay retries the same batch, then publishes everything in order', async (t) => {
  const control = await startControlRecorder(t);
  control.status = 503;
  const h = await startApp(t, { options: FAST });
  h.chat.connectProxy(control.url);
  const ada = await signInAndGreet(h, 'ada');
  await post(ada, 'a');
  await control.waitForAttempts(3);
  await post(ada, 'b'); // written during the outage
  await control.waitForAttempts(5);
  assert.equal(h.chat.store.outbox.count(), 3, 'rows stay until published');

  const [failedBatch] = control.attemptItemIds;
  for (const attempt of control.attemptItemIds) assert.deepEqual(attempt, failedBatch, 'each retry is the same batch');

  control.status = 200;
  await h.chat.relay.waitIdle(5000);
  assert.deepEqual(control.accepted[0]!.items.map((i) => i.id), failedBatch, 'the failed batch goes through first');
  assert.deepEqual(control.items().map((i) => i.id), eventIds(h), 'no loss, no duplicate, no reordering');
  assert.equal(h.chat.store.outbox.count(), 0);
  assert.ok(h.chat.relay.stats.failures >= 5);
  assert.equal(h.chat.relay.stats.published, 3);
});

test('while the control API is down the relay keeps retrying and publishes everything once it is back', async (t) => {
  const control = await startControlRecorder(t);
  await control.down();
  const h = await startApp(t, { options: FAST });
  h.chat.connectProxy(control.url);
  const ada = await signInAndGreet(h, 'ada');
  for (let i = 0; i < 3; i++) await post(ada, `m${i}`);
  await waitFor('failed publishes', () => h.chat.relay.stats.failures >= 3);
  assert.equal(h.chat.store.outbox.count(), 4);

  await control.up();
  await h.chat.relay.waitIdle(5000);
  assert.deepEqual(control.items().map((i) => i.id), eventIds(h));
});

test('retry delays start at relayRetryMinMs and double up to relayRetryMaxMs', async (t) => {
  const control = await startControlRecorder(t);
  control.status = 503;
  const h = await startApp(t, { options: { relayRetryMinMs: 10, relayRetryMaxMs: 40, relayIntervalMs: 3_600_000 } });
  h.chat.connectProxy(control.url);
  await signInAndGreet(h, 'ada');
  await control.waitForAttempts(6);
  const times = control.attemptTimes;
  const gaps = times.slice(1, 6).map((at, i) => at - times[i]!);
  // Delay n is in [base/2, base] with base = min(40, 10 * 2^(n-1)), and never under 10: at least
  // 10, 10, 20, 20, 20 ms. Only lower bounds are checked; upper bounds would make the test flaky.
  const floors = [10, 10, 20, 20, 20];
  gaps.forEach((gap, i) => assert.ok(gap >= floors[i]! - 1, `gap ${i + 1} is ${gap.toFixed(1)} ms, expected >= ${floors[i]}`));
  control.status = 200;
  await h.chat.relay.waitIdle(5000);
});

test('closing the app waits for an in-flight publish and deletes what it published', async (t) => {
  const control = await startControlRecorder(t);
  control.pause();
  const h = await startApp(t, { options: FAST });
  h.chat.connectProxy(control.url);
  await signInAndGreet(h, 'ada');
  await control.waitForAttempts(1);

  let closed = false;
  const closing = h.chat.close().then(() => {
    closed = true;
  });
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(closed, false, 'close waits for the publish');
  control.resume();
  await closing;

  const db = new Database(h.dbPath, { readonly: true });
  t.after(() => db.close());
  assert.equal((db.prepare('SELECT COUNT(*) AS n FROM outbox').get() as { n: number }).n, 0);
  assert.equal(control.items().length, 1);
});

test('connectProxy refuses a malformed URL and a second connection', async (t) => {
  const control = await startControlRecorder(t);
  const h = await startApp(t, { options: FAST });
  assert.throws(() => h.chat.connectProxy('not a url'), { code: 'APP_ERR_BAD_OPTION' });
  assert.throws(() => h.chat.connectProxy('ftp://127.0.0.1:1'), { code: 'APP_ERR_BAD_OPTION' });
  h.chat.connectProxy(control.url);
  assert.throws(() => h.chat.connectProxy(control.url), /already started/);
});
