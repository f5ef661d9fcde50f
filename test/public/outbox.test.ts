/**
 * The page's outbox (public/js/chat-outbox.js) in a vm with fake timers: posts
 * go one at a time in the order written, every attempt at one message carries
 * the same Idempotency-Key, failures that may pass are resent (after the
 * backoff, at least Retry-After, or at once on reconnect), refusals are not,
 * and the error texts say what happens (public/js/chat-errors.js).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeTimers, loadClient, loadScripts } from '../helpers/browser-vm.js';

interface Sent {
  room: string;
  text: string;
  key: string;
  answer(err: { code: string; status: number; retryAfterMs?: number } | null, event?: unknown): void;
}

function harness(now = () => 1_000_000) {
  const browser = loadClient();
  loadScripts(browser, ['chat-errors.js', 'chat-outbox.js']);
  const timers = new FakeTimers();
  const sent: Sent[] = [];
  const delivered: string[] = [];
  const changes: string[] = [];
  let lost = 0;
  const outbox = new browser.window.CometChat.Outbox({
    post: (room: string, text: string, key: string, cb: Sent['answer']) => sent.push({ room, text, key, answer: cb }),
    onChange: (item: { text: string; state: string }) => changes.push(`${item.text}:${item.state}`),
    onSent: (item: { text: string }) => delivered.push(item.text),
    onSessionLost: () => lost++,
    timers,
    random: () => 0.999,
    now,
  });
  return { outbox, timers, sent, delivered, changes, lost: () => lost, errors: browser.window.CometChat.errors };
}

const NETWORK = { code: 'COMET_ERR_NETWORK', status: 0 };

test('posts go one at a time in the order written, each with its own key', () => {
  const h = harness();
  h.outbox.add('lobby', 'one');
  h.outbox.add('lobby', 'two');
  h.outbox.add('dev', 'three');
  assert.equal(h.sent.length, 1, 'the second waits for the first');
  h.sent[0]!.answer(null, { id: 1 });
  assert.equal(h.sent.length, 2);
  h.sent[1]!.answer(null, { id: 2 });
  h.sent[2]!.answer(null, { id: 3 });
  assert.deepEqual(h.sent.map((s) => s.text), ['one', 'two', 'three']);
  assert.deepEqual(h.delivered, ['one', 'two', 'three']);
  assert.equal(new Set(h.sent.map((s) => s.key)).size, 3);
  assert.ok(h.sent.every((s) => /^[A-Za-z0-9_.~:-]{1,64}$/.test(s.key)), 'keys the server accepts');
  assert.equal(h.outbox.items.length, 0);
});

test('a post that got no answer or a 5xx is resent under the same key after the backoff, and at once on reconnect', () => {
  const h = harness();
  h.outbox.add('lobby', 'hello');
  h.outbox.add('lobby', 'after');
  h.sent[0]!.answer(NETWORK);
  assert.deepEqual(h.timers.delays(), [499], 'first backoff: full jitter under 500 ms');
  assert.equal(h.sent.length, 1, 'the next one waits its turn: order is kept');
  h.timers.fireNext();
  h.sent[1]!.answer({ code: 'PROXY_ERR_UPSTREAM_UNAVAILABLE', status: 502 });
  assert.deepEqual(h.timers.delays(), [999]);
  h.outbox.kick(); // the poll got through again
  assert.deepEqual(h.timers.delays(), [], 'no need to wait out the backoff');
  assert.equal(h.sent.length, 3);
  assert.deepEqual(h.sent.map((s) => s.key), [h.sent[0]!.key, h.sent[0]!.key, h.sent[0]!.key]);
  h.sent[2]!.answer(null, { id: 9 });
  assert.equal(h.sent[3]!.text, 'after');
  assert.notEqual(h.sent[3]!.key, h.sent[0]!.key);
  assert.ok(h.changes.includes('hello:retrying'));
});

test('Retry-After is a floor: neither the backoff nor a reconnect resends sooner', () => {
  let now = 1_000_000;
  const h = harness(() => now);
  h.outbox.add('lobby', 'hello');
  h.sent[0]!.answer({ code: 'APP_ERR_RATE_LIMITED', status: 429, retryAfterMs: 3000 });
  assert.deepEqual(h.timers.delays(), [3000]);
  now += 1000;
  h.outbox.kick();
  assert.equal(h.sent.length, 1, 'a kick inside the Retry-After does nothing');
  now += 2000;
  h.outbox.kick();
  assert.equal(h.sent.length, 2, 'past it, a kick resends');
});

test('a refused post is not resent and does not hold up the next; Retry sends it again under its key, Discard drops it', () => {
  const h = harness();
  h.outbox.add('gone', 'to a room we left');
  h.outbox.add('lobby', 'next');
  h.sent[0]!.answer({ code: 'APP_ERR_NOT_MEMBER', status: 403 });
  assert.deepEqual(h.timers.delays(), []);
  assert.equal(h.sent[1]!.text, 'next', 'the refusal does not block the queue');
  h.sent[1]!.answer(null, { id: 2 });
  assert.deepEqual([...h.outbox.items.map((i: { state: string }) => i.state)], ['failed']);
  const key = h.outbox.items[0].key;
  h.outbox.retry(key);
  assert.equal(h.sent[2]!.key, key);
  h.sent[2]!.answer({ code: 'APP_ERR_NOT_MEMBER', status: 403 });
  h.outbox.discard(key);
  assert.equal(h.outbox.items.length, 0);
});

test('a lost session fails the post and says so once; nothing is retried', () => {
  const h = harness();
  h.outbox.add('lobby', 'hello');
  h.sent[0]!.answer({ code: 'APP_ERR_SESSION_EXPIRED', status: 401 });
  assert.equal(h.lost(), 1);
  assert.deepEqual(h.timers.delays(), []);
  h.outbox.clear();
  assert.equal(h.outbox.items.length, 0);
});

test('error codes read as sentences that say what happens next', () => {
  const { errors } = harness();
  assert.equal(errors.describe('send', NETWORK, true), 'Could not send: you are offline or the server cannot be reached, will retry.');
  assert.equal(errors.describe('send', { code: 'APP_ERR_DB_BUSY', status: 503 }, 1000), 'Could not send: the server is busy, retrying in 1 s.');
  // Measured a moment after it was scheduled, a 1 s Retry-After has a few ms less left: still "in 1 s".
  assert.equal(errors.describe('send', { code: 'APP_ERR_DB_BUSY', status: 503 }, 999), 'Could not send: the server is busy, retrying in 1 s.');
  assert.equal(errors.describe('send', { code: 'APP_ERR_DB_BUSY', status: 503 }, 200), 'Could not send: the server is busy, will retry.');
  assert.equal(errors.describe('join #dev', { code: 'APP_ERR_ROOM_NOT_FOUND', status: 404 }), 'Could not join #dev: that room no longer exists.');
  assert.equal(errors.describe('send', { code: 'COMET_ERR_HTTP_500', status: 500 }), 'Could not send: the server had a problem (500).');
  assert.equal(errors.retryable({ code: 'APP_ERR_RATE_LIMITED', status: 429 }), true);
  assert.equal(errors.retryable({ code: 'APP_ERR_MESSAGE_TOO_LONG', status: 413 }), false);
});
