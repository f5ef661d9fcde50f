import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { pino } from 'pino';
import { signGripSig } from '../../protocol/grip-sig.js';
import { findPublicDir } from '../../common/public-dir.js';
import { startApp } from '../helpers/app-harness.js';

test('GET / serves the chat page from public/ with its client scripts', async (t) => {
  const h = await startApp(t);
  const res = await h.anonymous().get('/').expect(200);
  assert.match(res.headers['content-type'] ?? '', /^text\/html/);
  assert.match(res.text, /<title>[^<]*comet-chat[^<]*<\/title>/);
  assert.match(res.text, /<script src="\/?js\/comet\.js"/);
});

test('responses do not advertise Express', async (t) => {
  const h = await startApp(t);
  const res = await h.anonymous().get('/');
  assert.equal(res.headers['x-powered-by'], undefined);
});

test('unknown routes and methods are 404 APP_ERR_NOT_FOUND in JSON', async (t) => {
  const h = await startApp(t);
  const ada = await h.signIn('ada');
  for (const [method, path] of [
    ['get', '/nope'],
    ['get', '/api/nope'],
    ['put', '/api/session'],
    ['delete', '/api/rooms/lobby'],
    ['get', '/api/rooms/lobby/bogus'],
    ['get', '/api/rooms/%E0%A4%A/members'], // an undecodable path names nothing
  ] as const) {
    const res = await ada.agent[method](path).expect(404);
    assert.equal(res.body.code, 'APP_ERR_NOT_FOUND', `${method} ${path}`);
    assert.equal(typeof res.body.message, 'string');
  }
});

test('a request with an invalid Grip-Sig is refused on every path, a valid one is served', async (t) => {
  const h = await startApp(t);
  const bad = await h.anonymous().get('/').set('Grip-Sig', await signGripSig('wrong-secret-0123456789')).expect(401);
  assert.deepEqual(Object.keys(bad.body).sort(), ['code', 'message']);
  assert.equal(bad.body.code, 'APP_ERR_BAD_GRIP_SIG');
  await h.anonymous().get('/').set('Grip-Sig', await h.gripSig()).expect(200);
});

test('an unexpected error is a 500 APP_ERR_INTERNAL that leaks nothing and is logged once with its stack', async (t) => {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  const h = await startApp(t, { options: { logger: pino({ level: 'info' }, sink) } });
  const ada = await h.signIn('ada');
  h.chat.db.exec("CREATE TRIGGER events_fail BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'disk on fire'); END");
  const res = await ada.agent.post('/api/rooms/lobby/messages').send({ text: 'hi' }).expect(500);
  assert.deepEqual(res.body, { code: 'APP_ERR_INTERNAL', message: 'internal error' });
  assert.doesNotMatch(res.text, /disk on fire/);
  const errors = lines.filter((l) => l.level === 50);
  assert.equal(errors.length, 1);
  const err = errors[0]!.err as { message: string; stack: string };
  assert.match(err.message, /disk on fire/);
  assert.match(err.stack, /at /);
  assert.equal(errors[0]!.url, '/api/rooms/lobby/messages');
});

test('public/ is found from the compiled location too (dist/server/http/)', () => {
  const repo = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');
  const compiled = pathToFileURL(join(repo, 'dist', 'server', 'http', 'static-files.js')).href;
  assert.equal(findPublicDir(compiled), join(repo, 'public'));
  assert.equal(findPublicDir(), join(repo, 'public'));
});
