/**
 * The streaming baselines served by the event-driven core: SSE
 * (bench/models/sse.ts) and the forever iframe (bench/models/forever-iframe.ts),
 * over real HTTP, read incrementally.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { scriptSafeJson } from '../../../bench/models/forever-iframe.js';
import { api, enterRoom, newSession, parkedNow, parseIframe, parseSse, startLab, TextStream, waitParked } from './event-driven-client.js';

type ChatEvent = { id: number; room: string; type: string; text?: string };

const post = async (base: string, cookie: string, room: string, text: string): Promise<ChatEvent> => {
  const answer = await api(base, 'POST', `/api/rooms/${room}/messages`, { cookie, body: { text } });
  assert.equal(answer.status, 201);
  return answer.body.event as ChatEvent;
};

test('SSE opens with 2 KiB of comment and a retry field, then delivers the backlog and new events in order', async (t) => {
  const { base } = await startLab(t);
  const { cookie } = await newSession(base, 'ada');
  const cursor = await enterRoom(base, cookie, 'general');
  const before = await post(base, cookie, 'general', 'before');

  const stream = await TextStream.open(`${base}/api/stream?rooms=general:${cursor}&transport=sse`, { cookie });
  t.after(() => stream.close());
  assert.equal(stream.response.status, 200);
  assert.match(stream.response.headers.get('content-type') ?? '', /^text\/event-stream/);
  await stream.readUntil((text) => parseSse(text).length === 1);
  assert.match(stream.received, /^: {2048}\nretry: \d+\n\n/);
  assert.deepEqual(parseSse(stream.received)[0], { id: String(before.id), data: before });
  await waitParked(base, 1);

  const sent: ChatEvent[] = [];
  for (let i = 0; i < 5; i++) sent.push(await post(base, cookie, 'general', `m${i}`));
  await stream.readUntil((text) => parseSse(text).length === 6);
  assert.deepEqual(
    parseSse(stream.received).slice(1),
    sent.map((e) => ({ id: String(e.id), data: e })),
  );
  stream.close();
  await waitParked(base, 0);
});

test('an SSE reconnect with Last-Event-ID resumes in every room without loss or duplicate', async (t) => {
  const { base } = await startLab(t);
  const { cookie } = await newSession(base, 'ada');
  await enterRoom(base, cookie, 'a');
  await enterRoom(base, cookie, 'b');
  const url = `${base}/api/stream?rooms=a:0,b:0&transport=sse`;

  const first = await TextStream.open(url, { cookie });
  t.after(() => first.close());
  await post(base, cookie, 'a', 'a1');
  await post(base, cookie, 'b', 'b1');
  await first.readUntil((text) => parseSse(text).length === 4); // two joins, two messages
  const seen = parseSse(first.received);
  first.close();
  await waitParked(base, 0);

  // Missed while disconnected, interleaved across the two rooms.
  const missed = [await post(base, cookie, 'b', 'b2'), await post(base, cookie, 'a', 'a2'), await post(base, cookie, 'b', 'b3')];

  // Cursors 0 in the URL: Last-Event-ID overrides them.
  const second = await TextStream.open(url, { cookie, 'last-event-id': seen.at(-1)!.id! });
  t.after(() => second.close());
  await second.readUntil((text) => parseSse(text).length === 3);
  const live = await post(base, cookie, 'a', 'a3');
  await second.readUntil((text) => parseSse(text).length === 4);

  const all = [...seen, ...parseSse(second.received)].map((e) => e.data as ChatEvent);
  assert.deepEqual(all.map((e) => e.id), [1, 2, 3, 4, 5, 6, 7, 8], 'every event once, in id order');
  assert.deepEqual(all.slice(4), [...missed, live]);
});

test('the forever iframe opens with 1 KiB+ of padding and delivers one escaped script chunk per event', async (t) => {
  const { base } = await startLab(t);
  const { cookie } = await newSession(base, 'ada');
  const cursor = await enterRoom(base, cookie, 'general');

  const stream = await TextStream.open(`${base}/api/stream?rooms=general:${cursor}&transport=iframe`, { cookie });
  t.after(() => stream.close());
  assert.equal(stream.response.headers.get('content-type'), 'text/html; charset=utf-8');
  await waitParked(base, 1);

  const hostile = '</script><b>bold</b><!-- \u2028';
  const sent = [await post(base, cookie, 'general', hostile), await post(base, cookie, 'general', 'plain')];
  await stream.readUntil((text) => parseIframe(text).length === 2);

  const text = stream.received;
  assert.ok(text.startsWith('<!DOCTYPE html><html>'));
  const firstScript = text.indexOf('<script>');
  assert.ok(firstScript >= 1024, `padding before the first script: ${firstScript} bytes`);
  assert.deepEqual(parseIframe(text), sent, 'the script arguments are the events, unchanged');
  // Exactly one </script> per chunk: the chat text cannot close the script early.
  assert.equal(text.split('</script>').length - 1, 2);
  assert.ok(!text.includes('<b>') && !text.includes('<!-- \u2028'));
  assert.ok(text.includes('\\u003c/script>\\u003cb>bold\\u003c/b>'));
});

test('scriptSafeJson escapes only what could break out of a script, and the value parses back unchanged', () => {
  const value = { text: '</SCRIPT><!--<script>\u2028\u2029 & > é' };
  const safe = scriptSafeJson(JSON.stringify(value));
  assert.ok(!/[<\u2028\u2029]/.test(safe));
  assert.deepEqual(JSON.parse(safe), value);
});

test('an iframe reconnect resumes from the cursors it sends', async (t) => {
  const { base } = await startLab(t);
  const { cookie } = await newSession(base, 'ada');
  const cursor = await enterRoom(base, cookie, 'general');
  const sent = [await post(base, cookie, 'general', 'one'), await post(base, cookie, 'general', 'two')];
  const stream = await TextStream.open(`${base}/api/stream?rooms=general:${sent[0]!.id}&transport=iframe`, { cookie });
  t.after(() => stream.close());
  await stream.readUntil((text) => parseIframe(text).length === 1);
  assert.deepEqual(parseIframe(stream.received), [sent[1]]);
  assert.ok(cursor < sent[0]!.id);
});

test('10 SSE and 10 iframe streams in 2 rooms get each of 200 concurrent posts of their room exactly once, in order', async (t) => {
  const { base } = await startLab(t);
  const rooms = ['red', 'blue'];
  const poster = await newSession(base, 'poster');
  for (const room of rooms) await enterRoom(base, poster.cookie, room);

  const readers = await Promise.all(
    Array.from({ length: 20 }, async (_, i) => {
      const room = rooms[i % 2]!;
      const transport = i < 10 ? 'sse' : 'iframe';
      const { cookie } = await newSession(base, `reader-${i}`);
      const cursor = await enterRoom(base, cookie, room);
      const stream = await TextStream.open(`${base}/api/stream?rooms=${room}:${cursor}&transport=${transport}`, { cookie });
      t.after(() => stream.close());
      return { room, transport, stream };
    }),
  );
  await waitParked(base, 20);
  const messagesOf = (r: (typeof readers)[number]): ChatEvent[] =>
    (r.transport === 'sse' ? parseSse(r.stream.received).map((e) => e.data) : parseIframe(r.stream.received)).filter(
      (e: ChatEvent | null): e is ChatEvent => e !== null && e.type === 'message',
    );

  const posted = await Promise.all(
    Array.from({ length: 200 }, (_, i) => post(base, poster.cookie, rooms[i % 2]!, `m-${i}`)),
  );
  await Promise.all(readers.map((r) => r.stream.readUntil(() => messagesOf(r).length >= 100, 20_000)));

  for (const r of readers) {
    const committed = posted.filter((e) => e.room === r.room).sort((a, b) => a.id - b.id);
    assert.deepEqual(messagesOf(r), committed, `${r.transport} reader in ${r.room}`);
  }
});

test('idle streams get keepalives: an SSE comment and an iframe parent.comet(null)', async (t) => {
  const { base } = await startLab(t, { keepaliveMs: 50 });
  const { cookie } = await newSession(base, 'ada');
  const cursor = await enterRoom(base, cookie, 'general');
  const sse = await TextStream.open(`${base}/api/stream?rooms=general:${cursor}&transport=sse`, { cookie });
  const iframe = await TextStream.open(`${base}/api/stream?rooms=general:${cursor}&transport=iframe`, { cookie });
  t.after(() => {
    sse.close();
    iframe.close();
  });
  await sse.readUntil((text) => text.split(': keepalive\n\n').length > 2);
  await iframe.readUntil((text) => parseIframe(text).length >= 2);
  assert.deepEqual(parseSse(sse.received), [], 'keepalives are not events');
  assert.ok(parseIframe(iframe.received).every((arg) => arg === null));
});

test('close() ends every open stream', async (t) => {
  const { base, lab } = await startLab(t);
  const { cookie } = await newSession(base, 'ada');
  const cursor = await enterRoom(base, cookie, 'general');
  const sse = await TextStream.open(`${base}/api/stream?rooms=general:${cursor}&transport=sse`, { cookie });
  const iframe = await TextStream.open(`${base}/api/stream?rooms=general:${cursor}&transport=iframe`, { cookie });
  t.after(() => {
    sse.close();
    iframe.close();
  });
  await waitParked(base, 2);
  await lab.close();
  await sse.readToEnd();
  await iframe.readToEnd();
  assert.equal(await parkedNow(base), 0);
});
