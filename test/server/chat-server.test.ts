import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { createChatServer } from '../../server/chat-server.js';
import { startControlRecorder } from '../helpers/app-control-recorder.js';
import { APP_TEST_CONTROL_SECRET, APP_TEST_SECRET, defer, startApp, tempDir } from '../helpers/app-harness.js';

test('bad options are refused before the database file is created', (t) => {
  const dir = tempDir(t);
  assert.throws(
    () => createChatServer({ secret: 'short', dbPath: join(dir, 'sub', 'chat.db') }),
    { code: 'APP_ERR_BAD_OPTION' },
  );
  assert.throws(() => createChatServer({ secret: APP_TEST_SECRET, port: 99999, dbPath: join(dir, 'sub', 'chat.db') }), {
    code: 'APP_ERR_BAD_OPTION',
  });
});

test('listen() resolves with the bound port and starts the relay when controlUrl is set', async (t) => {
  const control = await startControlRecorder(t);
  const chat = createChatServer({
    secret: APP_TEST_SECRET,
    controlSecret: APP_TEST_CONTROL_SECRET,
    port: 0,
    dbPath: join(tempDir(t), 'chat.db'),
    controlUrl: control.url,
  });
  defer(t, () => chat.close());
  assert.equal(chat.relay.started, false);
  const port = await chat.listen();
  assert.ok(port > 0);
  assert.equal(chat.relay.started, true);
  const res = await fetch(`http://127.0.0.1:${port}/api/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ nick: 'ada' }),
  });
  assert.equal(res.status, 201);
  // Signing in writes no event (issue 18); a post does.
  const post = await fetch(`http://127.0.0.1:${port}/api/rooms/lobby/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', cookie: res.headers.getSetCookie()[0]!.split(';')[0]! },
    body: JSON.stringify({ text: 'hi' }),
  });
  assert.equal(post.status, 201);
  await control.waitForItems(1);
});

test('publishing to a control URL needs the control secret: refused at start, and by connectProxy()', async (t) => {
  const dir = tempDir(t);
  assert.throws(() => createChatServer({ secret: APP_TEST_SECRET, dbPath: join(dir, 'a.db'), controlUrl: 'http://127.0.0.1:5561' }), {
    code: 'APP_ERR_BAD_OPTION',
    message: "controlSecret is required to publish to the proxy's control API (CONTROL_SECRET)",
  });
  const chat = createChatServer({ secret: APP_TEST_SECRET, port: 0, dbPath: join(dir, 'b.db') });
  defer(t, () => chat.close());
  assert.throws(() => chat.connectProxy('http://127.0.0.1:5561'), { code: 'APP_ERR_BAD_OPTION' });
  assert.equal(chat.relay.started, false);
});

test('listen() rejects when the port is taken', async (t) => {
  const first = await startApp(t);
  const chat = createChatServer({
    secret: APP_TEST_SECRET,
    port: Number(new URL(first.base).port),
    dbPath: join(tempDir(t), 'chat.db'),
  });
  defer(t, () => chat.close());
  await assert.rejects(chat.listen(), { code: 'EADDRINUSE' });
});

test('close() is idempotent, closes kept-alive connections and the database', async (t) => {
  const h = await startApp(t);
  // fetch keeps its connection alive: close() must not wait for it to idle out.
  const res = await fetch(`${h.base}/`);
  assert.equal(res.status, 200);
  await Promise.all([h.chat.close(), h.chat.close()]);
  await h.chat.close();
  assert.equal(h.chat.server.listening, false);
  assert.equal(h.chat.db.open, false);
  await assert.rejects(h.chat.listen(), /closed/);
  assert.throws(() => h.chat.connectProxy('http://127.0.0.1:1'), /closed/);
});
