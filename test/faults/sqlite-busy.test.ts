/**
 * Fault: the SQLite database is busy. Another connection (a backup, a
 * maintenance script, a second app process by mistake) holds the write lock.
 * The app waits `sqliteBusyTimeoutMs` for it (on timers: the event loop keeps
 * serving), then
 * answers a clear `503 APP_ERR_DB_BUSY` with `Retry-After` instead of a bare
 * 500, and writes nothing; once the lock is gone the same request succeeds.
 * An event and its outbox row commit together or not at all.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import Database from 'better-sqlite3';
import { startApp, waitFor, type AppHarness } from '../helpers/app-harness.js';
import { raceDeadline } from '../helpers/fault-stack.js';
import { ChatClient } from '../helpers/chat-client.js';
import { startStack } from '../helpers/stack.js';

function counts(h: AppHarness): { events: number; outbox: number } {
  const one = (sql: string) => (h.chat.db.prepare(sql).get() as { n: number }).n;
  return { events: one('SELECT COUNT(*) AS n FROM events'), outbox: one('SELECT COUNT(*) AS n FROM outbox') };
}

/** Opens a second connection to the app's database and takes the write lock, released after the test at the latest. */
function holdWriteLock(t: TestContext, dbPath: string): { release(): void } {
  const other = new Database(dbPath);
  other.exec('BEGIN IMMEDIATE');
  const release = () => {
    if (other.inTransaction) other.exec('ROLLBACK');
  };
  t.after(() => {
    release();
    other.close();
  });
  return { release };
}

function assertBusy(res: { status: number; headers: Record<string, unknown>; body: unknown }): void {
  assert.equal(res.status, 503);
  assert.equal(res.headers['retry-after'], '1');
  const body = res.body as { code: string; message: string };
  assert.equal(body.code, 'APP_ERR_DB_BUSY');
  assert.match(body.message, /busy/);
}

test('while another connection holds the write lock, writes wait sqliteBusyTimeoutMs, then answer 503 APP_ERR_DB_BUSY with Retry-After and write nothing', async (t) => {
  const h = await startApp(t, { options: { sqliteBusyTimeoutMs: 50 } });
  const ada = await h.signIn('ada');
  const before = counts(h);
  const lock = holdWriteLock(t, h.dbPath);

  const started = performance.now();
  const post = await ada.agent.post('/api/rooms/lobby/messages').send({ text: 'blocked' });
  const waitedMs = performance.now() - started;
  assertBusy(post);
  assert.ok(waitedMs >= 45, `the app retried for the busy timeout first (answered after ${waitedMs.toFixed(0)} ms)`);
  assertBusy(await h.anonymous().post('/api/session').send({ nick: 'bob' }));
  assertBusy(await ada.agent.post('/api/rooms').send({ name: 'blocked' }));
  // A first poll only reads (its signed connection ID is written later, batched): it is answered while locked.
  const poll = await ada.agent.get('/api/poll?rooms=lobby:0');
  assert.equal(poll.status, 200);
  const cid = poll.body.connectionId as string;
  // Reads do not need the write lock (WAL): history still answers.
  assert.equal((await ada.agent.get('/api/rooms/lobby/messages')).status, 200);
  assert.deepEqual(counts(h), before, 'nothing half-written');
  const connectionRows = () => (h.chat.db.prepare('SELECT COUNT(*) AS n FROM connections WHERE id = ?').get(cid) as { n: number }).n;
  assert.equal(connectionRows(), 0, 'the poll\'s batched write waits for the lock');

  lock.release();
  await waitFor('the batched connection row once the lock is gone', () => connectionRows() === 1 || undefined, 2000);
  const retried = await ada.agent.post('/api/rooms/lobby/messages').send({ text: 'blocked' });
  assert.equal(retried.status, 201);
  assert.deepEqual(counts(h), { events: before.events + 1, outbox: before.outbox + 1 }, 'the event and its outbox row, together');
  const row = h.chat.store.outbox.all().at(-1)!;
  assert.equal(row.itemId, String(retried.body.event.id));
});

test('a busy database reaches the browser through the proxy as the same 503, and the retry goes through', async (t) => {
  const stack = await startStack(t, { app: { sqliteBusyTimeoutMs: 50 } });
  const ada = new ChatClient(stack.base);
  await ada.login('ada');
  const lock = holdWriteLock(t, stack.dbPath);

  const res = await ada.call('POST', '/api/rooms/lobby/messages', { text: 'through the proxy' });
  assertBusy({ status: res.status, headers: Object.fromEntries(res.headers), body: res.body });
  lock.release();
  const retried = await ada.call('POST', '/api/rooms/lobby/messages', { text: 'through the proxy' });
  assert.equal(retried.status, 201);
});

test('a lock released while a write waits for it costs only latency, and the app keeps serving meanwhile', async (t) => {
  const h = await startApp(t, { options: { sqliteBusyTimeoutMs: 10_000 } });
  const ada = await h.signIn('ada');
  const lock = holdWriteLock(t, h.dbPath);

  // supertest sends on then(); the write then waits for the lock on timers, not inside SQLite.
  const post = ada.agent.post('/api/rooms/lobby/messages').send({ text: 'patient' }).then((r) => r);
  await waitFor('the write to wait for the lock', () => h.chat.busy.retries > 0);
  const read = await raceDeadline(ada.agent.get('/api/rooms/lobby/messages?limit=1').then((r) => r), 5000, null);
  assert.ok(read !== null && read.status === 200, 'reads are answered while a write waits for the lock');

  lock.release();
  const answer = await raceDeadline(post, 5000, null);
  assert.ok(answer !== null, 'answered once the lock was released, well within the patience');
  assert.equal(answer.status, 201);
  assert.equal(answer.body.event.text, 'patient');
});

test('an event whose outbox row cannot be written is rolled back with it', async (t) => {
  const h = await startApp(t);
  const ada = await h.signIn('ada');
  const before = counts(h);
  // Another connection makes every outbox insert fail, after the event's insert in the same transaction.
  const other = new Database(h.dbPath);
  t.after(() => other.close());
  other.exec("CREATE TRIGGER fault_outbox BEFORE INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'injected fault'); END");

  const post = await ada.agent.post('/api/rooms/lobby/messages').send({ text: 'half' });
  assert.equal(post.status, 500);
  assert.equal(post.body.code, 'APP_ERR_INTERNAL');
  assert.deepEqual(counts(h), before, 'no event without its outbox row');

  other.exec('DROP TRIGGER fault_outbox');
  assert.equal((await ada.agent.post('/api/rooms/lobby/messages').send({ text: 'whole' })).status, 201);
  assert.deepEqual(counts(h), { events: before.events + 1, outbox: before.outbox + 1 });
});
