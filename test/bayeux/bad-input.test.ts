/**
 * Bad Bayeux input: envelope errors are 4xx `{code, message}` answers; errors
 * inside a message are Bayeux replies (`successful: false`,
 * `error: "NNN:args:message"`, our code in `ext["comet-chat"].code`). Either
 * way it is logged once and changes nothing. And a connect that did not come
 * through the proxy is never held.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { ChatClient } from '../helpers/chat-client.js';
import { startStack, type TestStack } from '../helpers/stack.js';
import { bayeuxPost, RawBayeux } from './bayeux-helpers.js';

/** Row counts of every table a Bayeux request could write. */
function counts(stack: TestStack): Record<string, number> {
  const db = new Database(stack.dbPath, { readonly: true });
  try {
    const out: Record<string, number> = {};
    for (const table of ['sessions', 'memberships', 'events', 'connections', 'bayeux_clients', 'bayeux_subscriptions']) {
      out[table] = (db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;
    }
    out.cursors = (db.prepare('SELECT COALESCE(SUM(cursor + sent), 0) AS n FROM bayeux_subscriptions').get() as { n: number }).n;
    return out;
  } finally {
    db.close();
  }
}

/** A stack whose app logs JSON lines into `lines`. */
async function loggedStack(t: Parameters<typeof startStack>[0]): Promise<{ stack: TestStack; lines: Array<Record<string, unknown>> }> {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const stack = await startStack(t, { app: { holdTimeoutS: 20, logger: pino({ level: 'info' }, sink) } });
  return { stack, lines };
}

test('envelope errors get a 4xx JSON error, are logged once and change nothing', async (t) => {
  const { stack, lines } = await loggedStack(t);
  const bob = new ChatClient(stack.base);
  await bob.login('bob');
  await bob.call('POST', '/api/rooms', { name: 'general' });
  await bob.join('general');
  const ada = new RawBayeux(stack.base);
  await ada.handshake('ada');
  await ada.subscribe('general');
  const before = counts(stack);
  const publish = { channel: '/chat/general', clientId: ada.clientId, data: { text: 'must not be posted' } };

  const cases: Array<{ what: string; body: unknown; headers?: Record<string, string>; status: number; code: string }> = [
    { what: 'not JSON', body: '[{"channel": "/meta/connect"', status: 400, code: 'APP_ERR_BAD_JSON' },
    { what: 'an object, not an array', body: publish, status: 400, code: 'APP_ERR_INVALID_BODY' },
    { what: 'an empty array', body: [], status: 400, code: 'APP_ERR_INVALID_BODY' },
    { what: 'a valid message next to one without a channel', body: [publish, { data: 1 }], status: 400, code: 'APP_ERR_INVALID_BODY' },
    { what: 'a valid message next to a non-object', body: [publish, 'x'], status: 400, code: 'APP_ERR_INVALID_BODY' },
    { what: 'an id that is an object', body: [{ ...publish, id: { a: 1 } }], status: 400, code: 'APP_ERR_INVALID_BODY' },
    { what: 'more than 100 messages', body: Array.from({ length: 101 }, () => publish), status: 400, code: 'APP_ERR_INVALID_BODY' },
    { what: 'over 16 KiB', body: [{ ...publish, data: { text: 'x'.repeat(17_000) } }], status: 413, code: 'APP_ERR_BODY_TOO_LARGE' },
    { what: 'not JSON media type', body: JSON.stringify([publish]), headers: { 'content-type': 'text/plain' }, status: 415, code: 'APP_ERR_UNSUPPORTED_MEDIA_TYPE' },
    { what: 'invalid UTF-8', body: Buffer.from([0x5b, 0x22, 0xff, 0x22, 0x5d]), status: 400, code: 'APP_ERR_BAD_JSON' },
  ];
  for (const c of cases) {
    const logged = lines.length;
    const r = await bayeuxPost(stack.base, c.body, c.headers ? { headers: c.headers } : {});
    assert.equal(r.status, c.status, `${c.what}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.code, c.code, c.what);
    assert.equal(typeof r.body.message, 'string');
    const refusals = lines.slice(logged).filter((l) => l.msg === 'request refused');
    assert.equal(refusals.length, 1, `${c.what} is logged once`);
    assert.equal(refusals[0]!.code, c.code);
  }
  assert.deepEqual(counts(stack), before, 'nothing was written');

  // A GET is callback-polling (JSON-P): its envelope errors are JSON too, never JavaScript with a chosen name.
  const message = encodeURIComponent(JSON.stringify([publish]));
  const getCases: Array<{ what: string; query: string; status: number; code: string; direct?: boolean }> = [
    { what: 'a GET without jsonp', query: '', status: 400, code: 'APP_ERR_BAD_JSONP_CALLBACK' },
    { what: 'a jsonp name with a parenthesis', query: `?jsonp=alert(1)//&message=${message}`, status: 400, code: 'APP_ERR_BAD_JSONP_CALLBACK' },
    { what: 'a jsonp name with a bracket', query: `?jsonp=a%5B0%5D&message=${message}`, status: 400, code: 'APP_ERR_BAD_JSONP_CALLBACK' },
    { what: 'a jsonp name starting with a digit', query: `?jsonp=1cb&message=${message}`, status: 400, code: 'APP_ERR_BAD_JSONP_CALLBACK' },
    { what: 'an empty jsonp name', query: `?jsonp=&message=${message}`, status: 400, code: 'APP_ERR_BAD_JSONP_CALLBACK' },
    { what: 'a jsonp name over 128 characters', query: `?jsonp=${'a'.repeat(129)}&message=${message}`, status: 400, code: 'APP_ERR_BAD_JSONP_CALLBACK' },
    { what: 'two jsonp names', query: `?jsonp=a&jsonp=b&message=${message}`, status: 400, code: 'APP_ERR_BAD_JSONP_CALLBACK' },
    { what: 'a JSON-P request without message', query: '?jsonp=cb', status: 400, code: 'APP_ERR_INVALID_BODY' },
    { what: 'a JSON-P message that is not JSON', query: '?jsonp=cb&message=%5B%7B', status: 400, code: 'APP_ERR_BAD_JSON' },
    { what: 'a JSON-P message that is not UTF-8', query: '?jsonp=cb&message=%5B%22%FF%22%5D', status: 400, code: 'APP_ERR_BAD_JSON' },
    { what: 'a JSON-P message that is an object', query: `?jsonp=cb&message=${encodeURIComponent(JSON.stringify(publish))}`, status: 400, code: 'APP_ERR_INVALID_BODY' },
    // Through the proxy such a URL is over its 16 KiB head limit (431); the app refuses it on its own too.
    { what: 'a JSON-P message over 16 KiB', query: `?jsonp=cb&message=${encodeURIComponent(JSON.stringify([{ ...publish, data: { text: 'x'.repeat(16_340) } }]))}`, status: 413, code: 'APP_ERR_BODY_TOO_LARGE', direct: true },
  ];
  for (const c of getCases) {
    const logged = lines.length;
    const res = await fetch(`${c.direct ? `http://127.0.0.1:${stack.appPort}` : stack.base}/cometd${c.query}`);
    assert.equal(res.status, c.status, c.what);
    assert.match(String(res.headers.get('content-type')), /^application\/json/, `${c.what}: a JSON error, not a script`);
    const body = (await res.json()) as { code: string; message: string };
    assert.equal(body.code, c.code, c.what);
    const refusals = lines.slice(logged).filter((l) => l.msg === 'request refused');
    assert.equal(refusals.length, 1, `${c.what} is logged once`);
  }
  const head = await fetch(`${stack.base}/cometd?jsonp=cb&message=${encodeURIComponent(JSON.stringify([{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['callback-polling'], ext: { 'comet-chat': { nick: 'eve' } } }]))}`, { method: 'HEAD' });
  assert.equal(head.status, 404, 'a HEAD runs no message');
  assert.deepEqual(counts(stack), before, 'nothing was written by the GETs (or the HEAD) either');
});

test('bad messages get a Bayeux error reply naming the problem, logged once, and change nothing', async (t) => {
  const { stack, lines } = await loggedStack(t);
  const bob = new ChatClient(stack.base);
  await bob.login('bob');
  await bob.call('POST', '/api/rooms', { name: 'general' });
  await bob.call('POST', '/api/rooms', { name: 'private' });
  await bob.join('general');
  await bob.join('private');
  const ada = new RawBayeux(stack.base);
  await ada.handshake('ada');
  await ada.subscribe('general');
  const before = counts(stack);
  const cid = ada.clientId;
  const hs = { channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'] };

  const cases: Array<{ what: string; message: Record<string, unknown>; error: string; code: string; advice?: unknown }> = [
    { what: 'unknown meta channel', message: { channel: '/meta/nope', clientId: cid }, error: '400:/meta/nope:unknown meta channel', code: 'BAYEUX_ERR_UNKNOWN_META_CHANNEL' },
    { what: 'handshake without identity', message: hs, error: '403::a chat identity is required: ext.comet-chat.nick or a session cookie', code: 'BAYEUX_ERR_HANDSHAKE_DENIED', advice: { reconnect: 'none' } },
    { what: 'handshake with a bad nick', message: { ...hs, ext: { 'comet-chat': { nick: '<ada>' } } }, error: '400::nick must be 1-32 letters, digits, spaces, "_", "." or "-" after trimming', code: 'APP_ERR_INVALID_NICK', advice: { reconnect: 'none' } },
    { what: 'handshake with no transport served here', message: { ...hs, supportedConnectionTypes: ['websocket'], ext: { 'comet-chat': { nick: 'eve' } } }, error: '400:supportedConnectionTypes:supportedConnectionTypes must include long-polling or callback-polling', code: 'BAYEUX_ERR_CONNECTION_TYPE', advice: { reconnect: 'none' } },
    { what: 'handshake without version', message: { channel: '/meta/handshake', supportedConnectionTypes: ['long-polling'], ext: { 'comet-chat': { nick: 'eve' } } }, error: '400:version:version is required', code: 'BAYEUX_ERR_BAD_MESSAGE', advice: { reconnect: 'none' } },
    { what: 'connect without clientId', message: { channel: '/meta/connect', connectionType: 'long-polling' }, error: '400:clientId:clientId is required', code: 'BAYEUX_ERR_BAD_MESSAGE', advice: { reconnect: 'none' } },
    { what: 'connect with another connection type', message: { channel: '/meta/connect', clientId: cid, connectionType: 'callback-polling' }, error: '400:connectionType:connectionType must be long-polling', code: 'BAYEUX_ERR_CONNECTION_TYPE', advice: { reconnect: 'none' } },
    { what: 'connect with an unknown clientId', message: { channel: '/meta/connect', clientId: 'x'.repeat(43), connectionType: 'long-polling' }, error: '402::Unknown client', code: 'BAYEUX_ERR_UNKNOWN_CLIENT', advice: { reconnect: 'handshake', interval: 0 } },
    { what: 'a pattern outside /chat', message: { channel: '/meta/subscribe', clientId: cid, subscription: '/**' }, error: '403:/**:the only channel patterns are /chat/* and /chat/** (the rooms this session is a member of)', code: 'BAYEUX_ERR_WILDCARD' },
    { what: 'a pattern under a room', message: { channel: '/meta/unsubscribe', clientId: cid, subscription: '/chat/general/*' }, error: '403:/chat/general/*:the only channel patterns are /chat/* and /chat/** (the rooms this session is a member of)', code: 'BAYEUX_ERR_WILDCARD' },
    { what: 'subscription outside /chat', message: { channel: '/meta/subscribe', clientId: cid, subscription: '/service/x' }, error: '404:/service/x:only /chat/<room> channels can be subscribed to', code: 'BAYEUX_ERR_UNKNOWN_CHANNEL' },
    { what: 'subscription without a channel', message: { channel: '/meta/subscribe', clientId: cid }, error: '400:subscription:subscription must be a channel name', code: 'BAYEUX_ERR_BAD_MESSAGE' },
    { what: 'subscription to a missing room', message: { channel: '/meta/subscribe', clientId: cid, subscription: '/chat/nowhere' }, error: '404:/chat/nowhere:room "nowhere" does not exist', code: 'APP_ERR_ROOM_NOT_FOUND' },
    { what: 'publish with an unknown clientId', message: { channel: '/chat/general', clientId: 'nobody', data: { text: 'hi' } }, error: '402::Unknown client', code: 'BAYEUX_ERR_UNKNOWN_CLIENT', advice: { reconnect: 'handshake', interval: 0 } },
    { what: 'publish in a room one is not a member of', message: { channel: '/chat/private', clientId: cid, data: { text: 'hi' } }, error: '403:/chat/private:you are not a member of room "private"', code: 'APP_ERR_NOT_MEMBER' },
    { what: 'publish of an empty message', message: { channel: '/chat/general', clientId: cid, data: { text: '   ' } }, error: '400:/chat/general:the message is empty', code: 'APP_ERR_EMPTY_MESSAGE' },
    { what: 'publish without text', message: { channel: '/chat/general', clientId: cid, data: { body: 'hi' } }, error: '400:/chat/general:text must be a string, got undefined', code: 'APP_ERR_INVALID_BODY' },
    { what: 'publish of a string', message: { channel: '/chat/general', clientId: cid, data: 'hi' }, error: '400:/chat/general:data must be an object {"text": "..."}', code: 'BAYEUX_ERR_BAD_MESSAGE' },
    { what: 'publish too long', message: { channel: '/chat/general', clientId: cid, data: { text: 'y'.repeat(2001) } }, error: '413:/chat/general:the message is longer than 2000 characters', code: 'APP_ERR_MESSAGE_TOO_LONG' },
    { what: 'publish to a pattern', message: { channel: '/chat/**', clientId: cid, data: { text: 'hi' } }, error: '403:/chat/**:cannot publish to a channel pattern', code: 'BAYEUX_ERR_WILDCARD' },
    { what: 'publish to another channel', message: { channel: '/service/echo', clientId: cid, data: { text: 'hi' } }, error: '404:/service/echo:only /chat/<room> channels exist here', code: 'BAYEUX_ERR_UNKNOWN_CHANNEL' },
  ];
  for (const [i, c] of cases.entries()) {
    const logged = lines.length;
    const r = await bayeuxPost(stack.base, [{ ...c.message, id: `m${i}` }]);
    assert.equal(r.status, 200, c.what);
    assert.equal(r.body.length, 1, c.what);
    const reply = r.body[0];
    assert.equal(reply.successful, false, c.what);
    assert.equal(reply.id, `m${i}`, `${c.what}: the reply names the message`);
    assert.equal(reply.channel, c.message.channel);
    assert.equal(reply.error, c.error, c.what);
    assert.equal(reply.ext['comet-chat'].code, c.code, c.what);
    assert.deepEqual(reply.advice, c.advice, `${c.what}: advice`);
    const refusals = lines.slice(logged).filter((l) => l.msg === 'bayeux message refused');
    assert.equal(refusals.length, 1, `${c.what} is logged once`);
    assert.equal(refusals[0]!.code, c.code);
  }
  assert.deepEqual(counts(stack), before, 'nothing was written');

  // Each message of a batch stands alone: the bad one is refused, the good one goes through.
  const mixed = await bayeuxPost(stack.base, [
    { channel: '/chat/general', id: 'bad', clientId: cid, data: { text: '' } },
    { channel: '/chat/general', id: 'good', clientId: cid, data: { text: 'fine' } },
  ]);
  assert.deepEqual(mixed.body.map((m: { id: string; successful: boolean }) => [m.id, m.successful]), [['bad', false], ['good', true]]);
  assert.equal(typeof mixed.body[1].ext['comet-chat'].eventId, 'number');
});

test('connects are never held without a valid Grip-Sig, and a forged one is refused', async (t) => {
  const stack = await startStack(t, { app: { holdTimeoutS: 20 } });
  const direct = `http://127.0.0.1:${stack.appPort}`;
  const ada = new RawBayeux(direct);
  await ada.handshake('ada');
  await ada.connect(); // the first connect is never held anyway
  const r = await ada.connect();
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('grip-hold'), null, 'no hold instruction to a client that bypassed the proxy');
  assert.equal(r.body[0].successful, true);
  assert.equal(r.body[0].advice.interval, 1000, 'the client is told to poll, not spin');

  const forged = await bayeuxPost(direct, [{ channel: '/meta/connect', clientId: ada.clientId, connectionType: 'long-polling' }], { headers: { 'grip-sig': 'forged' } });
  assert.equal(forged.status, 401);
  assert.equal(forged.body.code, 'APP_ERR_BAD_GRIP_SIG');
});

test('a client subscribes to at most 50 rooms; the refused subscription joins nothing', async (t) => {
  const stack = await startStack(t);
  const bob = new ChatClient(stack.base);
  await bob.login('bob');
  for (let i = 0; i <= 50; i++) assert.equal((await bob.call('POST', '/api/rooms', { name: `r${i}` })).status, 201);
  const ada = new RawBayeux(stack.base);
  await ada.handshake('ada');
  for (let i = 0; i < 50; i++) assert.equal((await ada.subscribe(`r${i}`)).successful, true, `room r${i}`);
  assert.equal((await ada.subscribe('r0')).successful, true, 'subscribing again to one of them is fine');

  const refused = await ada.subscribe('r50');
  assert.equal(refused.successful, false);
  assert.equal(refused.error, '403:/chat/r50:at most 50 subscriptions per client');
  assert.equal(refused.ext['comet-chat'].code, 'BAYEUX_ERR_TOO_MANY_SUBSCRIPTIONS');
  const rooms = await bob.call('GET', '/api/rooms');
  const r50 = (rooms.body.rooms as Array<{ name: string; members: number }>).find((r) => r.name === 'r50')!;
  assert.equal(r50.members, 0, 'no join was written');
});
