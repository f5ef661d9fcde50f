/**
 * `callback-polling` over raw HTTP: the JSON-P form of every Bayeux request
 * (`GET /cometd?jsonp=NAME&message=...`), answered as `NAME([...])` JavaScript,
 * with an idle connect parked by the proxy exactly as a long-polling one is
 * and its timeout answer in JSON-P too. The real CometD client driving this
 * transport in Chromium is in callback-polling-browser.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ChatClient, waitFor } from '../helpers/chat-client.js';
import { startStack } from '../helpers/stack.js';
import { connectReply, deliveredEvents, jsonpGet, login } from './bayeux-helpers.js';

const HANDSHAKE = { channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['callback-polling'] };

test('every Bayeux message works over JSON-P, and an idle connect is parked by the proxy and answered in JSON-P', async (t) => {
  const stack = await startStack(t, { app: { holdTimeoutS: 20 } });
  const bob = new ChatClient(stack.base);
  await bob.login('bob');
  await bob.call('POST', '/api/rooms', { name: 'general' });
  await bob.join('general');

  const hs = await jsonpGet(stack.base, '_cometd_jsonp_0', [{ ...HANDSHAKE, id: '1', ext: { 'comet-chat': { nick: 'ada' } } }], '/handshake');
  assert.equal(hs.status, 200);
  assert.equal(hs.contentType, 'text/javascript; charset=utf-8');
  assert.equal(hs.nosniff, 'nosniff');
  assert.ok(hs.text.startsWith('/**/_cometd_jsonp_0('), hs.text);
  assert.ok(hs.text.endsWith(');'), hs.text);
  const hsReply = hs.replies[0];
  assert.equal(hsReply.successful, true, JSON.stringify(hsReply));
  assert.deepEqual(hsReply.supportedConnectionTypes, ['long-polling', 'callback-polling']);
  const clientId = hsReply.clientId as string;

  const sub = await jsonpGet(stack.base, 'dojo.io.script.jsonp_1._jsonpCallback', [{ channel: '/meta/subscribe', id: '2', clientId, subscription: '/chat/general' }]);
  assert.ok(sub.text.startsWith('/**/dojo.io.script.jsonp_1._jsonpCallback('), 'dotted callback names are accepted');
  assert.equal(sub.replies[0].successful, true);

  const connect = (id: string) => jsonpGet(stack.base, `_cometd_jsonp_${id}`, [{ channel: '/meta/connect', id, clientId, connectionType: 'callback-polling' }], '/connect');
  const first = await connect('3');
  assert.equal(connectReply(first.replies).successful, true, 'the first connect is answered at once');

  const held = connect('4');
  await waitFor(async () => (await stack.stats()).parked === 1, 'the JSON-P connect to be parked by the proxy');
  const posted = await bob.post('general', 'hello\u2028<b>ada</b>');
  const answer = await held;
  assert.equal(answer.contentType, 'text/javascript; charset=utf-8');
  assert.ok(answer.text.startsWith('/**/_cometd_jsonp_4('), answer.text);
  assert.ok(!answer.text.includes('\u2028'), 'U+2028 is escaped: old engines end a line there');
  assert.deepEqual(deliveredEvents(answer.replies).map((e) => [e.id, e.text]), [[posted.id, 'hello\u2028<b>ada</b>']]);
  assert.equal(connectReply(answer.replies).id, '4');

  const published = await jsonpGet(stack.base, '_cometd_jsonp_5', [{ channel: '/chat/general', id: '5', clientId, data: { text: 'from JSON-P' } }]);
  assert.equal(published.replies[0].successful, true);
  const history = await bob.call('GET', '/api/rooms/general/messages?limit=5');
  const last = (history.body.events as Array<{ id: number; text?: string }>).at(-1)!;
  assert.deepEqual([last.id, last.text], [published.replies[0].ext['comet-chat'].eventId, 'from JSON-P'], 'posted as ada');

  const bye = await jsonpGet(stack.base, '_cometd_jsonp_6', [{ channel: '/meta/disconnect', id: '6', clientId }], '/disconnect');
  assert.equal(bye.replies[0].successful, true);
});

test('a held JSON-P connect times out with the empty connect reply in JSON-P', async (t) => {
  const stack = await startStack(t, { app: { holdTimeoutS: 1 } });
  const hs = await jsonpGet(stack.base, 'cb', [{ ...HANDSHAKE, ext: { 'comet-chat': { nick: 'ada' } } }]);
  const clientId = hs.replies[0].clientId as string;
  const connect = () => jsonpGet(stack.base, 'cb', [{ channel: '/meta/connect', clientId, connectionType: 'callback-polling' }]);
  await connect();
  const started = Date.now();
  const timedOut = await connect();
  assert.ok(Date.now() - started >= 900, 'it was held for the hold timeout');
  assert.equal(timedOut.status, 200);
  assert.equal(timedOut.contentType, 'text/javascript; charset=utf-8');
  assert.ok(timedOut.text.startsWith('/**/cb('), timedOut.text);
  assert.deepEqual(deliveredEvents(timedOut.replies), []);
  assert.equal(connectReply(timedOut.replies).successful, true);
  assert.equal(timedOut.gripHold, null, 'no Grip-* header reaches the client');
});

test('a JSON-P handshake never takes its identity from the session cookie: any page can read a JSON-P answer', async (t) => {
  const stack = await startStack(t);
  const { cookie } = await login(stack.base, 'ada');
  const r = await jsonpGet(stack.base, 'steal', [HANDSHAKE], '', { cookie });
  assert.equal(r.status, 200);
  assert.equal(r.replies[0].successful, false);
  assert.equal(r.replies[0].error, '403::a chat identity is required: ext.comet-chat.nick (callback-polling never uses the session cookie)');
  assert.equal(r.replies[0].clientId, undefined);

  // A long-polling connect over JSON-P (or the other way round) names the wrong transport.
  const hs = await jsonpGet(stack.base, 'cb', [{ ...HANDSHAKE, ext: { 'comet-chat': { nick: 'bob' } } }]);
  const wrong = await jsonpGet(stack.base, 'cb', [{ channel: '/meta/connect', clientId: hs.replies[0].clientId, connectionType: 'long-polling' }]);
  assert.equal(wrong.replies[0].error, '400:connectionType:connectionType must be callback-polling');
});
