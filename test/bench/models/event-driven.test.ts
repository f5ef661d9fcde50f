/**
 * The event-driven lab server (bench/models/event-driven.ts) over real HTTP:
 * long-poll answers, parking, hold timeout, short-poll mode, concurrency
 * (exactly once, in order) and refusals. Streams: streams.test.ts.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { createEventDrivenServer } from '../../../bench/models/event-driven.js';
import { api, enterRoom, newSession, parkedNow, startLab, waitParked } from './event-driven-client.js';

test('a session, a room and a join have the chat API shapes, and the join cursor includes the join event', async (t) => {
  const { base } = await startLab(t);
  const session = await api(base, 'POST', '/api/session', { body: { nick: 'ada' } });
  assert.equal(session.status, 201);
  assert.deepEqual(session.body, { user: { id: 1, nick: 'ada' } });
  assert.match(session.headers.get('set-cookie') ?? '', /^sid=[A-Za-z0-9_-]+; HttpOnly; SameSite=Lax; Path=\/$/);
  const cookie = (session.headers.get('set-cookie') ?? '').split(';')[0]!;

  const created = await api(base, 'POST', '/api/rooms', { cookie, body: { name: 'general' } });
  assert.equal(created.status, 201);
  assert.deepEqual(created.body, { room: { name: 'general', members: 0, lastEventId: 0 } });

  const joined = await api(base, 'POST', '/api/rooms/general/join', { cookie });
  assert.equal(joined.status, 200);
  assert.deepEqual(joined.body, { room: { name: 'general', members: 1, lastEventId: 1 }, cursor: 1 });
  const again = await api(base, 'POST', '/api/rooms/general/join', { cookie });
  assert.deepEqual(again.body, { room: { name: 'general', members: 1, lastEventId: 1 }, cursor: 1 }, 'no second join event');

  const posted = await api(base, 'POST', '/api/rooms/general/messages', { cookie, body: { text: '  hello  ' } });
  assert.equal(posted.status, 201);
  const { at, ...event } = posted.body.event;
  assert.deepEqual(event, { id: 2, room: 'general', type: 'message', user: { id: 1, nick: 'ada' }, text: 'hello' });
  assert.ok(!Number.isNaN(Date.parse(at)));
  assert.equal(posted.headers.get('x-content-type-options'), 'nosniff');
});

test('a poll with events past its cursors is answered at once, oldest first across rooms, with a connection id', async (t) => {
  const { base } = await startLab(t);
  const { cookie } = await newSession(base, 'ada');
  await enterRoom(base, cookie, 'a');
  await enterRoom(base, cookie, 'b');
  await api(base, 'POST', '/api/rooms/a/messages', { cookie, body: { text: 'one' } });
  await api(base, 'POST', '/api/rooms/b/messages', { cookie, body: { text: 'two' } });

  const first = await api(base, 'GET', '/api/poll?rooms=a:0,b:0', { cookie });
  assert.equal(first.status, 200);
  assert.deepEqual(
    first.body.events.map((e: { id: number; room: string; type: string }) => [e.id, e.room, e.type]),
    [[1, 'a', 'join'], [2, 'b', 'join'], [3, 'a', 'message'], [4, 'b', 'message']],
  );
  const cid = first.body.connectionId as string;
  assert.match(cid, /^[A-Za-z0-9_-]{21}$/);
  assert.equal(first.headers.get('comet-connection-id'), cid);

  const second = await api(base, 'GET', `/api/poll?rooms=a:1,b:4&cid=${cid}`, { cookie });
  assert.deepEqual(second.body.events.map((e: { id: number }) => e.id), [3]);
  assert.equal(second.body.connectionId, cid, 'a given cid is kept');
  assert.equal(second.headers.get('comet-connection-id'), cid);
});

test('an idle poll parks until a post in its room answers it', async (t) => {
  const { base } = await startLab(t, { holdTimeoutS: 30 });
  const { cookie } = await newSession(base, 'ada');
  const cursor = await enterRoom(base, cookie, 'general');

  const started = Date.now();
  const parked = api(base, 'GET', `/api/poll?rooms=general:${cursor}`, { cookie });
  await waitParked(base, 1);
  const posted = await api(base, 'POST', '/api/rooms/general/messages', { cookie, body: { text: 'news' } });
  const answer = await parked;
  assert.equal(answer.status, 200);
  assert.deepEqual(answer.body.events, [posted.body.event]);
  assert.ok(Date.now() - started < 5_000);
  assert.equal(await parkedNow(base), 0);
});

test('a parked poll is answered with no events when the hold times out', async (t) => {
  const { base } = await startLab(t, { holdTimeoutS: 1 });
  const { cookie } = await newSession(base, 'ada');
  const cursor = await enterRoom(base, cookie, 'general');

  const started = Date.now();
  const answer = await api(base, 'GET', `/api/poll?rooms=general:${cursor}`, { cookie, timeoutMs: 5_000 });
  const heldMs = Date.now() - started;
  assert.equal(answer.status, 200);
  assert.deepEqual(answer.body.events, []);
  assert.match(answer.body.connectionId, /^[A-Za-z0-9_-]{21}$/);
  assert.ok(heldMs >= 950 && heldMs < 3_000, `held ${heldMs} ms`);
  assert.equal(await parkedNow(base), 0);
});

test('a poll whose client goes away is unparked', async (t) => {
  const { base } = await startLab(t);
  const { cookie } = await newSession(base, 'ada');
  const cursor = await enterRoom(base, cookie, 'general');
  const controller = new AbortController();
  const poll = api(base, 'GET', `/api/poll?rooms=general:${cursor}`, { cookie, signal: controller.signal });
  await waitParked(base, 1);
  controller.abort();
  await assert.rejects(poll);
  await waitParked(base, 0);
  // The room still works for the next reader.
  const posted = await api(base, 'POST', '/api/rooms/general/messages', { cookie, body: { text: 'after' } });
  assert.equal(posted.status, 201);
});

test('short-poll mode answers every poll at once and never parks', async (t) => {
  const { base } = await startLab(t, { mode: 'short-poll', holdTimeoutS: 30 });
  const { cookie } = await newSession(base, 'ada');
  const cursor = await enterRoom(base, cookie, 'general');
  for (let i = 0; i < 3; i++) {
    const started = Date.now();
    const answer = await api(base, 'GET', `/api/poll?rooms=general:${cursor}`, { cookie, timeoutMs: 2_000 });
    assert.deepEqual(answer.body.events, []);
    assert.ok(Date.now() - started < 1_000);
    assert.equal(await parkedNow(base), 0);
  }
  await api(base, 'POST', '/api/rooms/general/messages', { cookie, body: { text: 'hi' } });
  const news = await api(base, 'GET', `/api/poll?rooms=general:${cursor}`, { cookie });
  assert.deepEqual(news.body.events.map((e: { text: string }) => e.text), ['hi']);
});

test('an unknown mode or a bad hold timeout is refused before any socket opens', () => {
  assert.throws(() => createEventDrivenServer({ dbPath: '', holdTimeoutS: 1, mode: 'comet' }), /mode must be one of/);
  assert.throws(() => createEventDrivenServer({ dbPath: '', holdTimeoutS: 0 }), /holdTimeoutS/);
});

test('close() answers parked polls with no events', async (t) => {
  const { base, lab } = await startLab(t);
  const { cookie } = await newSession(base, 'ada');
  const cursor = await enterRoom(base, cookie, 'general');
  const poll = api(base, 'GET', `/api/poll?rooms=general:${cursor}`, { cookie });
  await waitParked(base, 1);
  await lab.close();
  assert.deepEqual((await poll).body.events, []);
  assert.equal(lab.parked(), 0);
  await lab.close(); // idempotent
});

test('20 clients polling in loops in 2 rooms get each of 200 concurrent posts of their room exactly once, in order', async (t) => {
  const { base } = await startLab(t, { holdTimeoutS: 5 });
  const rooms = ['red', 'blue'];
  const poster = await newSession(base, 'poster');
  for (const room of rooms) await enterRoom(base, poster.cookie, room);

  const clients = await Promise.all(
    Array.from({ length: 20 }, async (_, i) => {
      const room = rooms[i % 2]!;
      const { cookie } = await newSession(base, `client-${i}`);
      const cursor = await enterRoom(base, cookie, room);
      return { room, cookie, cursor, texts: [] as string[], ids: [] as number[] };
    }),
  );
  const perRoom = 100;
  const deadline = Date.now() + 30_000;

  // Each client polls from its cursor until it holds its room's 100 messages; joins of later clients are skipped.
  const loops = clients.map(async (c) => {
    let cid = '';
    while (c.texts.length < perRoom) {
      if (Date.now() > deadline) throw new Error(`client in ${c.room} stuck at ${c.texts.length}`);
      const answer = await api(base, 'GET', `/api/poll?rooms=${c.room}:${c.cursor}&cid=${cid}`, { cookie: c.cookie, timeoutMs: 10_000 });
      assert.equal(answer.status, 200);
      cid = answer.body.connectionId;
      for (const e of answer.body.events as { id: number; type: string; text: string; room: string }[]) {
        assert.equal(e.room, c.room);
        assert.ok(e.id > c.cursor, 'ids increase and never repeat');
        c.cursor = e.id;
        if (e.type === 'message') {
          c.texts.push(e.text);
          c.ids.push(e.id);
        }
      }
    }
  });
  await waitParked(base, 20);

  const posted = await Promise.all(
    Array.from({ length: 2 * perRoom }, (_, i) =>
      api(base, 'POST', `/api/rooms/${rooms[i % 2]}/messages`, { cookie: poster.cookie, body: { text: `m-${i}` } }),
    ),
  );
  await Promise.all(loops);

  for (const room of rooms) {
    const committed = posted
      .map((p) => p.body.event as { id: number; room: string; text: string })
      .filter((e) => e.room === room)
      .sort((a, b) => a.id - b.id);
    assert.equal(committed.length, perRoom);
    for (const c of clients.filter((x) => x.room === room)) {
      assert.deepEqual(c.texts, committed.map((e) => e.text), `a ${room} client got every message once, in commit order`);
    }
  }
});

/** A raw request (for bodies fetch will not send: chunked over the limit, invalid UTF-8). */
function rawRequest(
  base: string,
  options: http.RequestOptions,
  chunks: Buffer[],
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: any }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, timeout: 5_000, ...options }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: JSON.parse(text) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('raw request timed out')));
    // The server may answer (and close) before the whole body is written.
    req.on('error', (err) => (err.message.includes('EPIPE') || err.message.includes('ECONNRESET') ? undefined : reject(err)));
    for (const chunk of chunks) req.write(chunk);
    req.end();
  });
}

test('bad input gets the chat API status and code as JSON, and the server keeps answering', async (t) => {
  const { base } = await startLab(t);
  const { cookie } = await newSession(base, 'ada');
  const outsider = await newSession(base, 'bob');
  await enterRoom(base, cookie, 'general');
  const longText = 'x'.repeat(2001);

  type Case = [string, string, string, { cookie?: string; body?: unknown; headers?: Record<string, string> }, number, string];
  const cases: Case[] = [
    ['no session', 'POST', '/api/rooms', { body: { name: 'x' } }, 401, 'APP_ERR_NO_SESSION'],
    ['unknown sid', 'GET', '/api/poll?rooms=general:0', { cookie: 'sid=nope' }, 401, 'APP_ERR_NO_SESSION'],
    ['bad JSON', 'POST', '/api/rooms', { cookie, body: '{"name":' }, 400, 'APP_ERR_BAD_JSON'],
    ['array body', 'POST', '/api/rooms', { cookie, body: [] }, 400, 'APP_ERR_INVALID_BODY'],
    ['number name', 'POST', '/api/rooms', { cookie, body: { name: 5 } }, 400, 'APP_ERR_INVALID_BODY'],
    ['empty body', 'POST', '/api/session', {}, 400, 'APP_ERR_INVALID_BODY'],
    ['bad room name', 'POST', '/api/rooms', { cookie, body: { name: 'Bad Name' } }, 400, 'APP_ERR_INVALID_ROOM_NAME'],
    ['taken room name', 'POST', '/api/rooms', { cookie, body: { name: 'general' } }, 409, 'APP_ERR_ROOM_EXISTS'],
    ['not JSON', 'POST', '/api/rooms', { cookie, body: 'name=x', headers: { 'content-type': 'text/plain' } }, 415, 'APP_ERR_UNSUPPORTED_MEDIA_TYPE'],
    ['announced body over 16 KiB', 'POST', '/api/rooms', { cookie, body: { name: 'x'.repeat(17_000) } }, 413, 'APP_ERR_BODY_TOO_LARGE'],
    ['bad nick', 'POST', '/api/session', { body: { nick: '   ' } }, 400, 'APP_ERR_INVALID_NICK'],
    ['join unknown room', 'POST', '/api/rooms/nope/join', { cookie }, 404, 'APP_ERR_ROOM_NOT_FOUND'],
    ['post as non-member', 'POST', '/api/rooms/general/messages', { cookie: outsider.cookie, body: { text: 'hi' } }, 403, 'APP_ERR_NOT_MEMBER'],
    ['empty message', 'POST', '/api/rooms/general/messages', { cookie, body: { text: ' \n ' } }, 400, 'APP_ERR_EMPTY_MESSAGE'],
    ['long message', 'POST', '/api/rooms/general/messages', { cookie, body: { text: longText } }, 413, 'APP_ERR_MESSAGE_TOO_LONG'],
    ['control character', 'POST', '/api/rooms/general/messages', { cookie, body: { text: 'a\u0000b' } }, 400, 'APP_ERR_INVALID_MESSAGE'],
    ['poll without rooms', 'GET', '/api/poll', { cookie }, 400, 'APP_ERR_BAD_CURSOR'],
    ['poll with bad cursor', 'GET', '/api/poll?rooms=general:-1', { cookie }, 400, 'APP_ERR_BAD_CURSOR'],
    ['poll with rooms twice', 'GET', '/api/poll?rooms=general:0&rooms=general:1', { cookie }, 400, 'APP_ERR_BAD_CURSOR'],
    ['poll with bad cid', 'GET', '/api/poll?rooms=general:0&cid=short', { cookie }, 400, 'APP_ERR_BAD_CONNECTION_ID'],
    ['poll unknown room', 'GET', '/api/poll?rooms=nope:0', { cookie }, 404, 'APP_ERR_ROOM_NOT_FOUND'],
    ['poll as non-member', 'GET', '/api/poll?rooms=general:0', { cookie: outsider.cookie }, 403, 'APP_ERR_NOT_MEMBER'],
    ['stream with unknown transport', 'GET', '/api/stream?rooms=general:0&transport=ws', { cookie }, 400, 'APP_ERR_BAD_TRANSPORT'],
    ['stream with bad Last-Event-ID', 'GET', '/api/stream?rooms=general:0&transport=sse', { cookie, headers: { 'last-event-id': 'x1' } }, 400, 'APP_ERR_BAD_CURSOR'],
    ['stream as non-member', 'GET', '/api/stream?rooms=general:0&transport=iframe', { cookie: outsider.cookie }, 403, 'APP_ERR_NOT_MEMBER'],
    ['unknown path', 'GET', '/nowhere', {}, 404, 'APP_ERR_NOT_FOUND'],
    ['unknown method', 'DELETE', '/api/rooms', { cookie }, 404, 'APP_ERR_NOT_FOUND'],
    ['unknown room action', 'POST', '/api/rooms/general/leave/now', { cookie }, 404, 'APP_ERR_NOT_FOUND'],
  ];
  for (const [title, method, path, options, status, code] of cases) {
    const answer = await api(base, method, path, options);
    assert.equal(answer.status, status, title);
    assert.equal(answer.body.code, code, title);
    assert.equal(typeof answer.body.message, 'string', title);
    assert.equal(answer.headers.get('x-content-type-options'), 'nosniff', title);
  }

  const chunked = await rawRequest(
    base,
    { method: 'POST', path: '/api/rooms', headers: { cookie, 'content-type': 'application/json', 'transfer-encoding': 'chunked' } },
    Array.from({ length: 20 }, () => Buffer.alloc(1024, 0x20)),
  );
  assert.deepEqual([chunked.status, chunked.body.code], [413, 'APP_ERR_BODY_TOO_LARGE'], 'chunked body over 16 KiB');
  const notUtf8 = await rawRequest(
    base,
    { method: 'POST', path: '/api/rooms', headers: { cookie, 'content-type': 'application/json' } },
    [Buffer.from('{"name":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')],
  );
  assert.deepEqual([notUtf8.status, notUtf8.body.code], [400, 'APP_ERR_BAD_JSON'], 'invalid UTF-8');

  // Still serving, and nothing was created or parked by the refusals.
  assert.equal(await parkedNow(base), 0);
  const poll = await api(base, 'GET', '/api/poll?rooms=general:0', { cookie });
  assert.deepEqual(poll.body.events.map((e: { type: string }) => e.type), ['join']);
  assert.equal((await api(base, 'POST', '/api/rooms', { cookie, body: { name: 'x' } })).status, 201);
});
