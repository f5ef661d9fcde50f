/**
 * Signed connection IDs (server/connection-ids.ts) and the liveness log
 * (server/liveness-log.ts): first polls issue IDs without a write on the
 * request path, ownership holds without rows, IDs survive restarts and are
 * accepted by every app process on the same database.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { CONNECTION_ID_PATTERN } from '../../protocol/ids.js';
import { ConnectionIds, MAX_SIGNED_SESSION_ID } from '../../server/connection-ids.js';
import { startApp, testClock, type AppHarness } from '../helpers/app-harness.js';

function changes(h: AppHarness): number {
  return (h.chat.db.prepare('SELECT total_changes() AS n').get() as { n: number }).n;
}

function countConnections(h: AppHarness): number {
  return (h.chat.db.prepare('SELECT COUNT(*) AS n FROM connections').get() as { n: number }).n;
}

/** The same ID with character `at` replaced by another of the alphabet. */
function alter(id: string, at: number): string {
  return id.slice(0, at) + (id[at] === 'A' ? 'B' : 'A') + id.slice(at + 1);
}

test('signed IDs have the protocol format, name their session, and verify only under their key', () => {
  const ids = new ConnectionIds(randomBytes(32));
  for (const sessionId of [0, 1, 42, 1_000_000, MAX_SIGNED_SESSION_ID]) {
    const id = ids.issue(sessionId)!;
    assert.match(id, CONNECTION_ID_PATTERN);
    assert.equal(ids.ownerOf(id), sessionId);
  }
  assert.notEqual(ids.issue(7), ids.issue(7), 'each ID of a session is new');
  assert.equal(ids.issue(MAX_SIGNED_SESSION_ID + 1), null, 'too large to sign: the caller stores a random ID');
  const id = ids.issue(7)!;
  for (let at = 0; at < id.length; at++) assert.equal(ids.ownerOf(alter(id, at)), null, `character ${at} altered`);
  assert.equal(new ConnectionIds(randomBytes(32)).ownerOf(id), null, 'another key');
  assert.equal(ids.ownerOf('V1StGXR8_Z5jdHi6B-myT'), null, 'a nanoid');
});

test("a session's IDs differ in all 42 random bits: 2,000 are distinct and each random digit takes many values", () => {
  const ids = new ConnectionIds(randomBytes(32));
  const issued = Array.from({ length: 2000 }, () => ids.issue(7)!);
  assert.equal(new Set(issued).size, issued.length);
  for (const id of issued) assert.equal(ids.ownerOf(id), 7);
  // Characters 6-12 are the random part (connection-ids.ts): each takes 64 values, so 2,000 draws see nearly all.
  for (let at = 6; at < 13; at++) {
    const seen = new Set(issued.map((id) => id[at]));
    assert.ok(seen.size >= 56, `random digit ${at - 6} took only ${seen.size} values`);
  }
  assert.equal(new Set(issued.map((id) => id.slice(0, 6))).size, 1, 'the session part stays');
});

test('first polls only read: their IDs and presence are written later, all in one transaction', async (t) => {
  const clock = testClock();
  const h = await startApp(t, { clock, options: { livenessFlushMs: 1000 } });
  const users = await Promise.all(['ada', 'bob', 'cy', 'dee', 'eve'].map((nick) => h.signIn(nick)));
  // Presence older than the refresh (10 s): the first polls owe a presence write too.
  clock.advance(20_000);
  const before = changes(h);
  const cids = [];
  for (const user of users) {
    const res = await user.agent.get('/api/poll?rooms=lobby:0').set('Grip-Sig', await h.gripSig()).expect(200);
    cids.push(res.body.connectionId as string);
  }
  assert.equal(changes(h), before, 'no first poll wrote anything');
  assert.equal(countConnections(h), 0);
  assert.equal(new Set(cids).size, users.length);

  const flushes = h.chat.liveness.flushes;
  h.chat.liveness.flush();
  assert.equal(h.chat.liveness.flushes, flushes + 1, 'one transaction for all of them');
  assert.equal(countConnections(h), users.length);
  for (const [i, user] of users.entries()) {
    const row = h.chat.db.prepare('SELECT session_id AS s, last_seen_at AS t FROM connections WHERE id = ?').get(cids[i]) as { s: number; t: number };
    assert.deepEqual(row, { s: user.id, t: clock.now() });
    const polled = h.chat.db.prepare('SELECT last_poll_at AS t FROM sessions WHERE id = ?').get(user.id) as { t: number };
    assert.equal(polled.t, clock.now());
  }
});

test('members listed right after a first poll see its presence, written or not', async (t) => {
  const clock = testClock();
  const h = await startApp(t, { clock, options: { livenessFlushMs: 1000 } });
  const ada = await h.signIn('ada');
  const bob = await h.signIn('bob');
  clock.advance(80_000); // past the presence window: both offline
  await ada.agent.get('/api/poll?rooms=lobby:0').expect(200);
  const members = (await bob.agent.get('/api/rooms/lobby/members').expect(200)).body.members as Array<{ nick: string; online: boolean }>;
  assert.deepEqual(members.map((m) => [m.nick, m.online]).sort(), [['ada', true], ['bob', false]]);
});

test("another session's signed ID is 403 and changes nothing, written or not", async (t) => {
  const h = await startApp(t, { options: { livenessFlushMs: 1000 } });
  const ada = await h.signIn('ada');
  const bob = await h.signIn('bob');
  const adaCid = (await ada.agent.get('/api/poll?rooms=lobby:0').expect(200)).body.connectionId as string;
  for (const written of [false, true]) {
    if (written) h.chat.liveness.flush();
    const before = { changes: changes(h), pending: h.chat.liveness.pending };
    const res = await bob.agent.get(`/api/poll?rooms=lobby:0&cid=${adaCid}`).set('Grip-Sig', await h.gripSig()).expect(403);
    assert.equal(res.body.code, 'APP_ERR_FOREIGN_CONNECTION_ID');
    assert.equal(res.headers['grip-hold'], undefined);
    assert.deepEqual({ changes: changes(h), pending: h.chat.liveness.pending }, before, `row written: ${written}`);
  }
});

test('an altered signed ID, or one signed for another database, is 400 APP_ERR_BAD_CONNECTION_ID and changes nothing', async (t) => {
  const h = await startApp(t);
  const other = await startApp(t);
  const ada = await h.signIn('ada');
  const bob = await h.signIn('bob');
  const adaCid = (await ada.agent.get('/api/poll?rooms=lobby:0').expect(200)).body.connectionId as string;
  const elsewhere = await other.signIn('ada');
  const foreignDbCid = (await elsewhere.agent.get('/api/poll?rooms=lobby:0').expect(200)).body.connectionId as string;
  h.chat.liveness.flush();
  const before = changes(h);
  // Altered tag, altered random part, and the session part changed to bob's id (the tag no longer matches).
  const bobPart = adaCid.replace(/^.{6}/, new ConnectionIds(randomBytes(32)).issue(bob.id)!.slice(0, 6));
  for (const [user, cid] of [[ada, alter(adaCid, 20)], [ada, alter(adaCid, 8)], [bob, bobPart], [ada, foreignDbCid]] as const) {
    const res = await user.agent.get(`/api/poll?rooms=lobby:0&cid=${cid}`).set('Grip-Sig', await h.gripSig()).expect(400);
    assert.equal(res.body.code, 'APP_ERR_BAD_CONNECTION_ID', cid);
    assert.match(res.body.message, /not a connection ID this app issued/);
  }
  h.chat.liveness.flush();
  assert.equal(changes(h), before);
});

test('IDs stored before signed IDs (random, one row each) keep their owner', async (t) => {
  const h = await startApp(t);
  const ada = await h.signIn('ada');
  const bob = await h.signIn('bob');
  const legacy = 'V1StGXR8_Z5jdHi6B-myT';
  h.chat.db.prepare('INSERT INTO connections (id, session_id, created_at, last_seen_at) VALUES (?, ?, ?, ?)').run(legacy, ada.id, Date.now(), Date.now());
  assert.equal((await ada.agent.get(`/api/poll?rooms=lobby:0&cid=${legacy}`).expect(200)).body.connectionId, legacy);
  assert.equal((await bob.agent.get(`/api/poll?rooms=lobby:0&cid=${legacy}`).expect(403)).body.code, 'APP_ERR_FOREIGN_CONNECTION_ID');
});

test('an ID issued before a restart is accepted after it, even if its row was never written', async (t) => {
  const first = await startApp(t, { options: { livenessFlushMs: 1000 } });
  const ada = await first.signIn('ada');
  const cid = (await ada.agent.get('/api/poll?rooms=lobby:0').expect(200)).body.connectionId as string;
  // Drop the pending row, as a crash would.
  (first.chat.liveness as unknown as { ids: Map<string, unknown>; sessions: Map<number, unknown> }).ids.clear();
  (first.chat.liveness as unknown as { ids: Map<string, unknown>; sessions: Map<number, unknown> }).sessions.clear();
  await first.chat.close();

  const second = await startApp(t, { dir: first.dir });
  assert.equal(countConnections(second), 0, 'the row was never written');
  const res = await second.anonymous().get(`/api/poll?rooms=lobby:0&cid=${cid}`).set('Cookie', ada.cookie).expect(200);
  assert.equal(res.body.connectionId, cid);
  // Nothing recorded when the ID last polled: that re-poll took the write path and wrote its row.
  assert.equal(countConnections(second), 1);
});

test('two app processes on one database accept each other’s IDs at once (the key is in the database)', async (t) => {
  const a = await startApp(t, { options: { livenessFlushMs: 1000 } });
  const b = await startApp(t, { dir: a.dir, options: { livenessFlushMs: 1000 } });
  const ada = await a.signIn('ada');
  const bob = await a.signIn('bob');
  const cid = (await ada.agent.get('/api/poll?rooms=lobby:0').expect(200)).body.connectionId as string;
  assert.equal(countConnections(a), 0, 'not written yet');
  const res = await b.anonymous().get(`/api/poll?rooms=lobby:0&cid=${cid}`).set('Cookie', ada.cookie).expect(200);
  assert.equal(res.body.connectionId, cid);
  const stolen = await b.anonymous().get(`/api/poll?rooms=lobby:0&cid=${cid}`).set('Cookie', bob.cookie).expect(403);
  assert.equal(stolen.body.code, 'APP_ERR_FOREIGN_CONNECTION_ID');
});
