/**
 * Sign-out, `DELETE /api/session` (server/session-end.ts), against the app
 * alone: what it answers and what it leaves in the database and the outbox.
 * The same through the real proxy (parked polls ending) is in
 * test/integration/sign-out.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { join } from 'node:path';
import type { CloseItem, HttpResponseFormat, RevokeItem } from '../../protocol/control-api.js';
import { createChatCore } from '../../server/chat-core.js';
import { resolveAppOptions } from '../../server/options.js';
import { openDatabase } from '../../server/store/database.js';
import { startControlRecorder } from '../helpers/app-control-recorder.js';
import { APP_TEST_SECRET, defer, startApp, tempDir, waitFor, type AppHarness } from '../helpers/app-harness.js';

interface Row {
  kind: string;
  channel: string;
  payload: string;
  revoke: string | null;
}

const outbox = (h: AppHarness): Row[] => h.chat.db.prepare('SELECT kind, channel, payload, revoke FROM outbox ORDER BY id').all() as Row[];
const count = (h: AppHarness, sql: string, ...args: unknown[]): number => h.chat.db.prepare(sql).pluck().get(...args) as number;

test('DELETE /api/session answers 204, clears the sid cookie, and the old cookie then gets 401 APP_ERR_SESSION_ENDED everywhere', async (t) => {
  const h = await startApp(t);
  const ada = await h.signIn('ada');
  const res = await ada.agent.delete('/api/session').expect(204);
  const cleared = (res.headers['set-cookie'] as unknown as string[])[0]!;
  assert.match(cleared, /^sid=; /);
  assert.match(cleared, /Expires=Thu, 01 Jan 1970/);
  assert.match(cleared, /; Path=\//);

  // The cookie replayed by hand (a copy an attacker kept), on every kind of endpoint.
  const replay = h.anonymous();
  for (const [method, path] of [
    ['get', '/api/session'],
    ['get', '/api/rooms'],
    ['get', '/api/rooms/lobby/messages'],
    ['get', '/api/poll?rooms=lobby:0'],
    ['post', '/api/rooms/lobby/join'],
    ['delete', '/api/session'],
  ] as const) {
    const answer = await replay[method](path).set('Cookie', ada.cookie).expect(401);
    assert.equal(answer.body.code, 'APP_ERR_SESSION_ENDED', `${method} ${path}`);
  }
  const post = await replay.post('/api/rooms/lobby/messages').set('Cookie', ada.cookie).send({ text: 'hi' }).expect(401);
  assert.equal(post.body.code, 'APP_ERR_SESSION_ENDED');
  // The browser signs in again.
  await ada.agent.post('/api/session').send({ nick: 'ada' }).expect(201);
  await ada.agent.get('/api/session').expect(200);
});

test('DELETE /api/session without a session is 401 APP_ERR_NO_SESSION and changes nothing', async (t) => {
  const h = await startApp(t);
  await h.signIn('ada');
  const before = count(h, 'SELECT COUNT(*) FROM events');
  const res = await h.anonymous().delete('/api/session').expect(401);
  assert.equal(res.body.code, 'APP_ERR_NO_SESSION');
  assert.equal(count(h, 'SELECT COUNT(*) FROM events'), before);
});

test('signing out leaves every room: members see a leave event carrying the lease revocation, and the user is listed nowhere', async (t) => {
  const h = await startApp(t, { options: { leaseKey: 'app-test-lease-key-0123456789' } });
  const ada = await h.signIn('ada');
  const bob = await h.signIn('bob');
  for (const room of ['general', 'random']) {
    await ada.agent.post('/api/rooms').send({ name: room }).expect(201);
    await ada.agent.post(`/api/rooms/${room}/join`).expect(200);
    await bob.agent.post(`/api/rooms/${room}/join`).expect(200);
  }
  const before = outbox(h).length;
  await ada.agent.delete('/api/session').expect(204);

  for (const room of ['lobby', 'general', 'random']) {
    const members = (await bob.agent.get(`/api/rooms/${room}/members`).expect(200)).body.members as Array<{ nick: string }>;
    assert.deepEqual(members.map((m) => m.nick), ['bob'], room);
    const last = (await bob.agent.get(`/api/rooms/${room}/messages?limit=1`).expect(200)).body.events[0];
    assert.deepEqual([last.type, last.user], ['leave', { id: ada.id, nick: 'ada' }], room);
  }
  const leaves = outbox(h).slice(before).filter((r) => r.kind === 'publish' && r.channel.startsWith('room:'));
  assert.equal(leaves.length, 3);
  // Then the end of its SSE streams (docs/protocol.md §10.2).
  assert.equal(outbox(h).at(-1)!.channel, `streams:${ada.id}`);
  for (const row of leaves) {
    const revoke = JSON.parse(row.revoke!) as RevokeItem[];
    assert.deepEqual(revoke.map((r) => r.subject), [`s${ada.id}`]);
  }
  assert.equal(count(h, 'SELECT COUNT(*) FROM memberships WHERE session_id = ?', ada.id), 0);
  // The row stays, ended: its id and nick are the author of ada's events.
  const row = h.chat.db.prepare('SELECT nick, ended_at AS endedAt, end_reason AS reason FROM sessions WHERE id = ?').get(ada.id) as Record<string, unknown>;
  assert.equal(row.nick, 'ada');
  assert.equal(row.reason, 'signed-out');
  assert.equal(typeof row.endedAt, 'number');
});

test('signing out queues one /close/ per poll connection ID, answered with the 401 a new poll gets, and forgets its connections and Bayeux clients', async (t) => {
  const h = await startApp(t);
  const ada = await h.signIn('ada');
  const bob = await h.signIn('bob');
  // Two tabs polling (two connection IDs), a CometD client, and bob, who must keep his.
  const cids = new Set<string>();
  for (let i = 0; i < 2; i++) cids.add((await ada.agent.get('/api/poll?rooms=lobby:0').expect(200)).body.connectionId);
  await bob.agent.get('/api/poll?rooms=lobby:0').expect(200);
  const [shake] = (await ada.agent.post('/cometd').send([{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'] }]).expect(200)).body;
  assert.equal(shake.successful, true);
  h.chat.liveness.flush();
  assert.equal(count(h, 'SELECT COUNT(*) FROM connections WHERE session_id = ?', ada.id), 3);
  const before = outbox(h).length;

  await ada.agent.delete('/api/session').expect(204);

  const rows = outbox(h).slice(before);
  // Closes first: the parked polls get their 401 before the leave events go out.
  assert.equal(rows[0]!.kind, 'close');
  const closes = rows.filter((r) => r.kind === 'close').flatMap((r) => JSON.parse(r.payload) as CloseItem[]);
  assert.deepEqual(new Set(closes.map((c) => c['connection-id'])), cids, 'the poll IDs, not the Bayeux one');
  for (const close of closes) {
    const format = close.formats!['http-response'] as HttpResponseFormat;
    assert.equal(format.code, 401);
    assert.deepEqual(Object.keys(JSON.parse(format.body!)).sort(), ['code', 'message']);
    assert.equal(JSON.parse(format.body!).code, 'APP_ERR_SESSION_ENDED');
  }
  assert.ok(rows.some((r) => r.kind === 'publish' && r.channel.startsWith('bayeux:c:')), 'the held connect is woken (and gets 402)');
  assert.equal(count(h, 'SELECT COUNT(*) FROM connections WHERE session_id = ?', ada.id), 0);
  assert.equal(count(h, 'SELECT COUNT(*) FROM bayeux_clients WHERE session_id = ?', ada.id), 0);
  assert.equal(count(h, 'SELECT COUNT(*) FROM connections WHERE session_id = ?', bob.id), 1);
  const [connect] = (await h.anonymous().post('/cometd').send([{ channel: '/meta/connect', clientId: shake.clientId, connectionType: 'long-polling' }]).expect(200)).body;
  assert.match(String(connect.error), /^402::/);
});

test('a request that authenticated before its session ended writes nothing: no message, no join outlives the session', async (t) => {
  const dir = tempDir(t);
  const options = resolveAppOptions({ secret: APP_TEST_SECRET, dbPath: join(dir, 'chat.db') });
  const db = openDatabase(options.dbPath, { busyTimeoutMs: 1000 });
  defer(t, () => db.close());
  const core = createChatCore(db, options, Date.now, { relayLease: false });
  defer(t, () => core.liveness.close());
  const { session } = await core.chat.createSession('ada');
  await core.chat.createRoom(session, 'general');
  // `session` is the row the request read; the sign-out commits before its write.
  await core.ender.signOut(session);
  await assert.rejects(core.chat.postMessage(session, 'lobby', 'late'), { code: 'APP_ERR_SESSION_ENDED' });
  await assert.rejects(core.chat.joinRoom(session, 'general'), { code: 'APP_ERR_SESSION_ENDED' });
  assert.equal(db.prepare('SELECT COUNT(*) FROM memberships WHERE session_id = ?').pluck().get(session.id), 0);
  assert.equal(await core.ender.signOut(session), false, 'a second sign-out ends nothing more');
});

test('behind a control API without /close/ (Pushpin) the close rows are skipped with one warning and the outbox keeps flowing', async (t) => {
  const recorder = await startControlRecorder(t);
  const warnings: string[] = [];
  const { pino } = await import('pino');
  const logger = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(line) });
  const h = await startApp(t, { options: { logger } });
  h.chat.connectProxy(recorder.url);
  const ada = await h.signIn('ada');
  await ada.agent.get('/api/poll?rooms=lobby:0').expect(200);
  await ada.agent.delete('/api/session').expect(204);
  const bob = await h.signIn('bob');
  await bob.agent.post('/api/rooms/lobby/messages').send({ text: 'after' }).expect(201);
  await h.chat.relay.waitIdle(5000);
  // Items with an http-response (the session's streams end with an http-stream-only item).
  const bodies = recorder.items().filter((i) => i.formats['http-response'] !== undefined).map((i) => JSON.parse(i.formats['http-response']!.body!).events[0]);
  assert.deepEqual(bodies.map((e: { type: string }) => e.type), ['leave', 'message']);
  await waitFor('one warning', () => warnings.length === 1);
  assert.match(warnings[0]!, /has no \/close\//);
});
