/**
 * The retention job (server/session-pruner.ts) on an injected clock and
 * injected timers: what it ends and deletes, what it keeps, its batches, its
 * schedule, and the bound it puts on connection rows.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { createChatServer } from '../../server/chat-server.js';
import { APP_TEST_SECRET, defer, startApp, tempDir, testClock, type AppHarness, type TestUser } from '../helpers/app-harness.js';

const MINUTE = 60_000;
const IDLE_S = 3600;
const MAX_AGE_S = 6 * 3600;
const OPTIONS = { sessionIdleTimeoutS: IDLE_S, sessionMaxAgeS: MAX_AGE_S, livenessFlushMs: 0 };
/** The liveness window the pruner keeps connection rows for: the Bayeux client TTL, 55 s + 10 s + 60 s, above the 70 s presence window. */
const RETENTION_MS = 125_000;

const count = (h: AppHarness, sql: string, ...args: unknown[]): number => h.chat.db.prepare(sql).pluck().get(...args) as number;

async function firstPoll(user: TestUser): Promise<string> {
  return (await user.agent.get('/api/poll?rooms=lobby:0').expect(200)).body.connectionId;
}

test('pruning ends exactly the expired sessions (idle, or past their maximum age) and keeps live ones whole', async (t) => {
  const clock = testClock();
  const h = await startApp(t, { clock, options: OPTIONS });
  const old = await h.signIn('old');
  await old.agent.post('/api/rooms').send({ name: 'general' }).expect(201);
  await old.agent.post('/api/rooms/general/join').expect(200);
  // `old` stays active every half hour until it reaches its maximum age.
  for (let i = 0; i < 10; i++) {
    clock.advance(30 * MINUTE);
    await old.agent.get('/api/session').expect(200);
  }
  const idle = await h.signIn('idle');
  const live = await h.signIn('live');
  await live.agent.post('/api/rooms/general/join').expect(200);
  const idleCid = await firstPoll(idle);
  const liveCid = await firstPoll(live);
  h.chat.liveness.flush();
  clock.advance(30 * MINUTE);
  await old.agent.get('/api/session').expect(200);
  await live.agent.get(`/api/poll?rooms=lobby:0&cid=${liveCid}`).expect(200);
  clock.advance(30 * MINUTE); // old: 6 h since sign-in; idle: 1 h without a request
  await live.agent.get(`/api/poll?rooms=lobby:0&cid=${liveCid}`).expect(200);
  h.chat.liveness.flush();
  const eventsBefore = count(h, 'SELECT COUNT(*) FROM events');

  const result = await h.chat.pruner.runOnce();

  assert.equal(result.sessionsEnded, 2);
  const ended = h.chat.db.prepare('SELECT nick, end_reason AS reason FROM sessions WHERE ended_at IS NOT NULL ORDER BY nick').all();
  assert.deepEqual(ended, [{ nick: 'idle', reason: 'expired' }, { nick: 'old', reason: 'expired' }]);
  // One leave per membership: old in lobby and general, idle in lobby.
  const leaves = h.chat.db.prepare("SELECT user_id AS user, room_id AS room FROM events WHERE type = 'leave' ORDER BY id").all();
  assert.equal(leaves.length, 3);
  assert.equal(count(h, 'SELECT COUNT(*) FROM events'), eventsBefore + 3);
  const members = (await live.agent.get('/api/rooms/general/members').expect(200)).body.members.map((m: { nick: string }) => m.nick);
  assert.deepEqual(members, ['live']);
  assert.equal(count(h, 'SELECT COUNT(*) FROM connections WHERE id = ?', idleCid), 0);
  assert.equal(count(h, 'SELECT COUNT(*) FROM connections WHERE id = ?', liveCid), 1);
  // The idle tab's parked poll, if any, is closed on every proxy.
  const closed = (h.chat.db.prepare("SELECT payload FROM outbox WHERE kind = 'close'").pluck().all() as string[]).flatMap((p) => JSON.parse(p));
  assert.deepEqual(closed.map((c: { 'connection-id': string }) => c['connection-id']), [idleCid]);
  for (const user of [old, idle]) {
    const res = await user.agent.get('/api/session').expect(401);
    assert.equal(res.body.code, 'APP_ERR_SESSION_EXPIRED');
  }
  await live.agent.get('/api/session').expect(200);
  // A second run finds nothing.
  assert.equal((await h.chat.pruner.runOnce()).sessionsEnded, 0);
});

test('pruning deletes the connection rows not seen within the liveness window, with their Bayeux clients, and keeps the rest', async (t) => {
  const clock = testClock();
  const h = await startApp(t, { clock, options: OPTIONS });
  const ada = await h.signIn('ada');
  const stale = [await firstPoll(ada), await firstPoll(ada)];
  const [shake] = (await ada.agent.post('/cometd').send([{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'] }]).expect(200)).body;
  h.chat.liveness.flush();
  clock.advance(RETENTION_MS - 5000);
  const fresh = await firstPoll(ada);
  h.chat.liveness.flush();
  clock.advance(5001); // the first three are now just past the window; `fresh` is 5 s old

  const result = await h.chat.pruner.runOnce();

  assert.equal(result.connectionsDeleted, 3);
  const left = h.chat.db.prepare('SELECT id FROM connections').pluck().all();
  assert.deepEqual(left, [fresh]);
  assert.equal(count(h, 'SELECT COUNT(*) FROM bayeux_clients WHERE id = ?', shake.clientId), 0);
  // A signed ID whose row was pruned is still the session's: its next poll works and writes the row again.
  await ada.agent.get(`/api/poll?rooms=lobby:0&cid=${stale[0]}`).expect(200);
  h.chat.liveness.flush();
  assert.equal(count(h, 'SELECT COUNT(*) FROM connections WHERE id = ?', stale[0]), 1);
});

test('pruning deletes in transactions of at most pruneBatchSize rows', async (t) => {
  const clock = testClock();
  const h = await startApp(t, { clock, options: { ...OPTIONS, pruneBatchSize: 100 } });
  const ada = await h.signIn('ada');
  const old = clock.now() - RETENTION_MS - 1;
  h.chat.db.transaction(() => {
    for (let i = 0; i < 250; i++) h.chat.store.connections.record(`stale-${String(i).padStart(15, '0')}`, ada.id, old);
  })();
  const result = await h.chat.pruner.runOnce();
  assert.equal(result.connectionsDeleted, 250);
  // Sessions: one batch (none due); connections: 100, 100, 50; Bayeux clients: one.
  assert.equal(result.batches, 5);
  assert.ok(result.longestBatchMs < 1000, `a batch took ${result.longestBatchMs} ms`);
  assert.equal(count(h, 'SELECT COUNT(*) FROM connections'), 0);
});

test('connection rows stay bounded when a client never sends its cid back', async (t) => {
  const clock = testClock();
  const h = await startApp(t, { clock, options: OPTIONS });
  const ada = await h.signIn('ada');
  // One cid-less poll every 5 s for half an hour (each issues a new ID), the pruner every minute.
  let polls = 0;
  let most = 0;
  for (let s = 5; s <= 30 * 60; s += 5) {
    clock.advance(5000);
    await ada.agent.get('/api/poll?rooms=lobby:0').expect(200);
    polls++;
    h.chat.liveness.flush();
    if (s % 60 === 0) await h.chat.pruner.runOnce();
    most = Math.max(most, count(h, 'SELECT COUNT(*) FROM connections'));
  }
  assert.equal(polls, 360);
  t.diagnostic(`${polls} cid-less polls, at most ${most} connection rows at once`);
  // Rows live for the retention window plus at most one interval: (125 s + 60 s) / 5 s = 37.
  assert.ok(most <= 37, `at most ${most} rows at once`);
});

test('the pruner runs every pruneIntervalS once the server listens, one run at a time, and stops with the server', async (t) => {
  const dir = tempDir(t);
  const timers: Array<{ fn: () => void; ms: number; cleared: boolean }> = [];
  const chat = createChatServer(
    { secret: APP_TEST_SECRET, host: '127.0.0.1', port: 0, dbPath: join(dir, 'chat.db'), pruneIntervalS: 30 },
    {
      pruneTimers: {
        setTimeout: (fn, ms) => timers.push({ fn, ms, cleared: false }) - 1,
        clearTimeout: (handle) => {
          timers[handle as number]!.cleared = true;
        },
      },
    },
  );
  defer(t, () => chat.close());
  assert.equal(timers.length, 0, 'nothing is scheduled before listen()');
  await chat.listen();
  assert.deepEqual(timers.map((x) => x.ms), [30_000]);
  let runs = 0;
  const runOnce = chat.pruner.runOnce.bind(chat.pruner);
  chat.pruner.runOnce = () => {
    runs++;
    return runOnce();
  };
  timers[0]!.fn();
  assert.equal(timers.length, 1, 'the next run is scheduled only when this one has ended');
  const deadline = Date.now() + 5000;
  while (timers.length < 2 && Date.now() < deadline) await new Promise((resolve) => setImmediate(resolve));
  assert.equal(runs, 1);
  assert.deepEqual(timers.map((x) => x.ms), [30_000, 30_000]);
  await chat.close();
  assert.equal(timers[1]!.cleared, true);
});
