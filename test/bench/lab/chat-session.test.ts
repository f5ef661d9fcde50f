/**
 * The lab's sign-in against the real app (bench/lab/clients/chat-session.ts): nicks are unique among live
 * sessions, so a retried sign-in whose first answer was lost (the session exists, the cookie never arrived)
 * must not fail the load point on 409: it signs in under a variant of the nick.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { signIn, type CallContext } from '../../../bench/lab/clients/chat-session.js';
import { HttpClient } from '../../../bench/lab/http-client.js';
import { startApp } from '../../helpers/app-harness.js';

function context(baseUrl: string): CallContext {
  return {
    http: new HttpClient({ baseUrl, requestTimeoutMs: 5000 }),
    deadline: performance.now() + 10_000,
    signal: AbortSignal.timeout(15_000),
    requestTimeoutMs: 5000,
  };
}

test('signIn takes <nick>-2 when the nick is held by an orphaned session, and keeps the new cookie', async (t) => {
  const h = await startApp(t);
  // The session a lost answer would leave behind: committed, its cookie never seen by the client.
  await h.signIn('s7');
  const ctx = context(h.base);
  t.after(() => ctx.http.stop());
  await signIn(ctx, 's7');
  const sid = ctx.http.cookie('sid');
  assert.ok(sid !== undefined);
  const me = await fetch(`${h.base}/api/session`, { headers: { cookie: `sid=${sid}` } });
  assert.equal(me.status, 200);
  assert.equal(((await me.json()) as { user: { nick: string } }).user.nick, 's7-2');
});

test('signIn signs in under the nick itself when it is free', async (t) => {
  const h = await startApp(t);
  const ctx = context(h.base);
  t.after(() => ctx.http.stop());
  await signIn(ctx, 'publisher');
  const me = await fetch(`${h.base}/api/session`, { headers: { cookie: `sid=${ctx.http.cookie('sid')}` } });
  assert.equal(((await me.json()) as { user: { nick: string } }).user.nick, 'publisher');
});
