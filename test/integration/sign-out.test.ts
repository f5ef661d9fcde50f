/**
 * Sign-out through the real proxy and app (issue 14, item 7): the session's
 * parked polls and held Bayeux connect end at once, its leases stop answering,
 * the other members see it leave, and its cookie is refused afterwards.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startStack, type TestStack } from '../helpers/stack.js';
import { waitFor } from '../helpers/chat-client.js';

interface Answer {
  status: number;
  headers: Headers;
  body: any;
}

async function call(stack: TestStack, method: string, path: string, cookie?: string, body?: unknown): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (cookie !== undefined) headers.cookie = cookie;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${stack.base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text === '' ? null : JSON.parse(text) };
}

async function login(stack: TestStack, nick: string): Promise<string> {
  const res = await fetch(`${stack.base}/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ nick }) });
  assert.equal(res.status, 201);
  return res.headers.getSetCookie()[0]!.split(';')[0]!;
}

/** ada in lobby and general (bob's room), both rooms' cursors at their last event: her polls park. */
async function setUp(stack: TestStack): Promise<{ ada: string; bob: string; cursors: string }> {
  const ada = await login(stack, 'ada');
  const bob = await login(stack, 'bob');
  assert.equal((await call(stack, 'POST', '/api/rooms', bob, { name: 'general' })).status, 201);
  assert.equal((await call(stack, 'POST', '/api/rooms/general/join', bob)).status, 200);
  const joined = await call(stack, 'POST', '/api/rooms/general/join', ada);
  const lobby = await call(stack, 'GET', '/api/rooms/lobby/messages?limit=1', ada);
  return { ada, bob, cursors: `general:${joined.body.cursor},lobby:${lobby.body.cursor}` };
}

test('signing out answers every parked poll of the session at once with 401 APP_ERR_SESSION_ENDED, and a replayed cookie gets 401', async (t) => {
  const stack = await startStack(t);
  const { ada, bob, cursors } = await setUp(stack);
  // Two tabs of ada and one of bob, all parked.
  const tabs = [call(stack, 'GET', `/api/poll?rooms=${cursors}`, ada), call(stack, 'GET', `/api/poll?rooms=${cursors}`, ada)];
  const bobPoll = call(stack, 'GET', `/api/poll?rooms=${cursors}`, bob);
  await waitFor(async () => (await stack.stats()).parked === 3, 'three polls parked');

  const started = performance.now();
  const out = await call(stack, 'DELETE', '/api/session', ada);
  assert.equal(out.status, 204);
  const answers = await Promise.all(tabs);
  const endedMs = performance.now() - started;
  for (const answer of answers) {
    assert.equal(answer.status, 401);
    assert.deepEqual(Object.keys(answer.body).sort(), ['code', 'message']);
    assert.equal(answer.body.code, 'APP_ERR_SESSION_ENDED');
  }
  assert.ok(endedMs < 2000, `the parked polls ended ${Math.round(endedMs)} ms after the sign-out, not at their timeout`);
  t.diagnostic(`parked polls ended ${endedMs.toFixed(1)} ms after DELETE /api/session was sent`);

  // Bob sees ada leave; nothing stays parked.
  const seen = await bobPoll;
  assert.equal(seen.status, 200);
  assert.deepEqual(seen.body.events.map((e: { type: string; user: { nick: string } }) => [e.type, e.user.nick]), [['leave', 'ada']]);
  await waitFor(async () => (await stack.stats()).parked === 0, 'nothing parked');

  // The cookie replayed, with the connection IDs its polls had (and leases the proxy held for them): the app refuses it.
  const cids = answers.map((a) => a.headers.get('comet-connection-id'));
  assert.ok(cids.every((cid) => typeof cid === 'string' && cid.length === 21), 'the close answer keeps the held response headers');
  const repollsBefore = (await stack.stats()).repollAnswers;
  for (const cid of cids) {
    const replay = await call(stack, 'GET', `/api/poll?rooms=${cursors}&cid=${cid}`, ada);
    assert.equal(replay.status, 401);
    assert.equal(replay.body.code, 'APP_ERR_SESSION_ENDED');
  }
  assert.equal((await stack.stats()).repollAnswers, repollsBefore, 'no lease answered for the ended session');
  const me = await call(stack, 'GET', '/api/session', ada);
  assert.deepEqual([me.status, me.body.code], [401, 'APP_ERR_SESSION_ENDED']);
  assert.equal((await call(stack, 'GET', '/api/session', bob)).status, 200);
});

test('signing out ends the session’s held Bayeux connect: it is re-asked and answered 402', async (t) => {
  const stack = await startStack(t);
  const ada = await login(stack, 'ada');
  const bayeux = (cookie: string, messages: unknown[]) => call(stack, 'POST', '/cometd', cookie, messages);
  const [shake] = (await bayeux(ada, [{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'] }])).body;
  assert.equal(shake.successful, true);
  const connect = { channel: '/meta/connect', clientId: shake.clientId, connectionType: 'long-polling' };
  assert.equal((await bayeux(ada, [connect])).body[0].successful, true); // the first connect is never held
  const held = bayeux(ada, [connect]);
  await waitFor(async () => (await stack.stats()).parked === 1, 'the connect held');

  assert.equal((await call(stack, 'DELETE', '/api/session', ada)).status, 204);
  const [reply] = (await held).body;
  assert.equal(reply.successful, false);
  assert.match(String(reply.error), /^402::/);
  assert.equal((await stack.stats()).parked, 0);
});
