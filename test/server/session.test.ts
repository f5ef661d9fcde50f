import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startApp } from '../helpers/app-harness.js';

test('creating a session answers 201 with the user and sets an HttpOnly, SameSite=Lax sid cookie', async (t) => {
  const h = await startApp(t);
  const res = await h.anonymous().post('/api/session').send({ nick: '  Ada Lovelace ' }).expect(201);
  assert.deepEqual(res.body, { user: { id: res.body.user.id, nick: 'Ada Lovelace' } });
  assert.equal(typeof res.body.user.id, 'number');
  const cookie = (res.headers['set-cookie'] as unknown as string[])[0]!;
  assert.match(cookie, /^sid=[A-Za-z0-9_-]{43}; /);
  assert.match(cookie, /; Path=\//);
  assert.match(cookie, /; HttpOnly/);
  assert.match(cookie, /; SameSite=Lax/);
  assert.doesNotMatch(cookie, /Secure/);
});

test('the sid cookie is Secure when cookieSecure is set', async (t) => {
  const h = await startApp(t, { options: { cookieSecure: true } });
  const res = await h.anonymous().post('/api/session').send({ nick: 'ada' }).expect(201);
  assert.match((res.headers['set-cookie'] as unknown as string[])[0]!, /; Secure/);
});

test('GET /api/session returns the user of the cookie', async (t) => {
  const h = await startApp(t);
  const ada = await h.signIn('ada');
  const res = await ada.agent.get('/api/session').expect(200);
  assert.deepEqual(res.body, { user: { id: ada.id, nick: 'ada' } });
  assert.equal(res.headers['cache-control'], 'no-store');
});

test('GET /api/session without a cookie, or with an unknown token, is 401 APP_ERR_NO_SESSION', async (t) => {
  const h = await startApp(t);
  const none = await h.anonymous().get('/api/session').expect(401);
  assert.equal(none.body.code, 'APP_ERR_NO_SESSION');
  const unknown = await h.anonymous().get('/api/session').set('Cookie', 'sid=not-a-real-token').expect(401);
  assert.equal(unknown.body.code, 'APP_ERR_NO_SESSION');
});

test('a new session is a member of the lobby without posting anything there (issue 18: a quiet lobby)', async (t) => {
  const h = await startApp(t);
  const ada = await h.signIn('ada');
  const history = await ada.agent.get('/api/rooms/lobby/messages').expect(200);
  assert.deepEqual(history.body, { events: [], cursor: 0, hasMore: false });
  const members = await ada.agent.get('/api/rooms/lobby/members').expect(200);
  assert.deepEqual(members.body.members, [{ id: ada.id, nick: 'ada', online: true }]);
});

test('nicks must be 1-32 letters, digits, spaces, "_", "." or "-" after trimming', async (t) => {
  const h = await startApp(t);
  for (const nick of ['ada', 'A', 'x'.repeat(32), 'José', 'ada_l.ove-lace 2', '  padded  ']) {
    const res = await h.anonymous().post('/api/session').send({ nick });
    assert.equal(res.status, 201, `nick ${JSON.stringify(nick)} should be accepted`);
  }
  for (const nick of ['', '   ', 'x'.repeat(33), 'ada!', '<b>', 'a\tb', 'a;b', 'emoji🙂']) {
    const res = await h.anonymous().post('/api/session').send({ nick });
    assert.equal(res.status, 400, `nick ${JSON.stringify(nick)} should be refused`);
    assert.equal(res.body.code, 'APP_ERR_INVALID_NICK');
  }
});

test('a nick of the wrong type or a missing nick is 400 APP_ERR_INVALID_BODY', async (t) => {
  const h = await startApp(t);
  for (const body of [{ nick: 5 }, { nick: null }, {}, ['ada']]) {
    const res = await h.anonymous().post('/api/session').send(body).expect(400);
    assert.equal(res.body.code, 'APP_ERR_INVALID_BODY', JSON.stringify(body));
  }
});
