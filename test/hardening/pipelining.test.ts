/**
 * Issue 14, item 1: pipelined requests must not exhaust the proxy's pool of
 * sockets to the app. One connection writes a few hundred pipelined history
 * requests for a room with more than 100 KB of history, reads nothing, and
 * closes after half a second. Node hands every pipelined request to the proxy
 * at once while it queues their answers, so each answer waiting behind the
 * unread one used to hold an upstream socket until the 30 s idle timeout: every
 * other client's sign-in, post and poll waited for the pool. Now a connection
 * is answered one request at a time, holds at most one upstream socket, and is
 * logged once at warn; other clients are answered within a couple of seconds.
 */
import assert from 'node:assert/strict';
import type { Agent } from 'node:http';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { ChatClient } from '../helpers/chat-client.js';
import { startStack, type TestStack } from '../helpers/stack.js';
import { memoryLogger, type LogLine } from './raw-http.js';

const ROOM = 'lobby';
/** 60 messages of 1,900 characters: a history page of about 120 KB. */
const HISTORY_MESSAGES = 60;
const MESSAGE_CHARS = 1900;
const PIPELINED = 300;
/** What "still answered" means for another client while the attack runs. */
const ANSWER_DEADLINE_MS = 3000;

/** Upstream sockets in use now (not the idle keep-alive ones). */
function inUse(agent: Agent): number {
  return Object.values(agent.sockets).reduce((n, list) => n + (list?.length ?? 0), 0);
}

/** Samples `agent` every few ms until stopped; resolves with the largest number of sockets in use seen. */
function watchAgent(agent: Agent): { stop(): number } {
  let peak = inUse(agent);
  const timer = setInterval(() => (peak = Math.max(peak, inUse(agent))), 2);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, inUse(agent));
    },
  };
}

/** Signs in a client and gives `room` about 120 KB of history (`messages` of 1,900 characters). */
async function seedHistory(stack: TestStack, messages = HISTORY_MESSAGES): Promise<ChatClient> {
  const writer = new ChatClient(stack.base);
  await writer.login('writer');
  for (let i = 0; i < messages; i++) await writer.post(ROOM, `${i} `.padEnd(MESSAGE_CHARS, 'x'));
  return writer;
}

/**
 * One connection writes `count` pipelined history requests in one write and reads nothing (its socket is
 * paused, so the kernel's receive window fills); it is destroyed after `closeAfterMs`.
 */
function pipelineFlood(port: number, cookie: string, count: number, closeAfterMs: number): { socket: Socket; closed: Promise<void> } {
  const socket = connect(port, '127.0.0.1');
  socket.pause();
  socket.on('error', () => undefined);
  const one = `GET /api/rooms/${ROOM}/messages?limit=200 HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nCookie: ${cookie}\r\n\r\n`;
  socket.once('connect', () => socket.write(one.repeat(count)));
  const closed = new Promise<void>((resolve) => {
    const timer = setTimeout(() => socket.destroy(), closeAfterMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  return { socket, closed };
}

/** Sign-in, post, and a poll that the post answers: each must come back within the deadline. */
async function otherClientIsServed(stack: TestStack, nick: string): Promise<number[]> {
  const eve = new ChatClient(stack.base);
  const times: number[] = [];
  const timed = async <T>(what: string, call: (signal: AbortSignal) => Promise<T>): Promise<T> => {
    const started = performance.now();
    try {
      return await call(AbortSignal.timeout(ANSWER_DEADLINE_MS));
    } catch (err) {
      throw new Error(`${nick}'s ${what} got no answer within ${ANSWER_DEADLINE_MS} ms: ${(err as Error).message}`);
    } finally {
      times.push(performance.now() - started);
    }
  };
  const signIn = await timed('sign-in', (signal) => eve.call('POST', '/api/session', { nick }, signal));
  assert.equal(signIn.status, 201);
  const cursor = await timed('history', (signal) => eve.call('GET', `/api/rooms/${ROOM}/messages?limit=1`, undefined, signal));
  assert.equal(cursor.status, 200);
  const post = await timed('post', (signal) => eve.call('POST', `/api/rooms/${ROOM}/messages`, { text: `hi from ${nick}` }, signal));
  assert.equal(post.status, 201);
  eve.cursors.set(ROOM, (cursor.body as { cursor: number }).cursor);
  const poll = await timed('poll', (signal) => eve.poll(signal));
  assert.equal(poll.status, 200);
  assert.ok(eve.received.some((e) => e.text === `hi from ${nick}`), 'the poll brings the post');
  return times;
}

function pipeliningWarnings(lines: LogLine[]): LogLine[] {
  return lines.filter((l) => l.level === 40 && /pipelin|stopped reading/i.test(l.msg));
}

test('a connection that pipelines 300 history requests and reads nothing cannot starve other clients', { timeout: 60_000 }, async (t) => {
  const log = memoryLogger('info');
  const stack = await startStack(t, { proxy: { logger: log.logger } });
  const agent = stack.proxy.upstreamAgent;
  await seedHistory(stack);
  const mallory = new ChatClient(stack.base);
  await mallory.login('mallory');
  const page = await mallory.call('GET', `/api/rooms/${ROOM}/messages?limit=200`);
  assert.ok(JSON.stringify(page.body).length > 100_000, 'the history page is over 100 KB');
  const cookie = (mallory as unknown as { cookie: string }).cookie;

  let appRequests = 0;
  stack.chat.server.on('request', () => appRequests++);
  const watch = watchAgent(agent);
  const attack = pipelineFlood(stack.clientPort, cookie, PIPELINED, 500);
  const deadline = Date.now() + 5000;
  while (appRequests === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
  assert.ok(appRequests > 0, 'the attack reached the app');

  const during = await otherClientIsServed(stack, 'eve');
  await attack.closed;
  const after = await otherClientIsServed(stack, 'finn');
  const peak = watch.stop();
  t.diagnostic(`others' latencies during the attack ${during.map(Math.round).join('/')} ms, after ${after.map(Math.round).join('/')} ms; peak upstream sockets in use ${peak}`);

  // One socket for the attacker's connection, one for eve's or finn's call in flight, one spare for the relay's timing.
  assert.ok(peak <= 3, `at most 3 upstream sockets in use at any time, saw ${peak}`);
  const settle = Date.now() + 2000;
  while (inUse(agent) > 0 && Date.now() < settle) await new Promise((resolve) => setTimeout(resolve, 5));
  assert.equal(inUse(agent), 0, 'no upstream socket is held once the attacker is gone');
  assert.equal(stack.proxy.stats().parked, 0);

  const warnings = pipeliningWarnings(log.lines);
  assert.equal(warnings.length, 1, `one warn line for the connection, got ${JSON.stringify(warnings)}`);
  assert.equal(warnings[0]!.clientAddress, '127.0.0.1');
  assert.equal(typeof warnings[0]!.requestId, 'string');
});

test('a connection that keeps pipelined answers unread is closed after clientWriteTimeoutMs, and its stalled answer holds no upstream socket meanwhile', { timeout: 60_000 }, async (t) => {
  const log = memoryLogger('info');
  const stack = await startStack(t, { proxy: { logger: log.logger, clientWriteTimeoutMs: 2000 } });
  const agent = stack.proxy.upstreamAgent;
  // 200 messages: 16 pages of about 400 KB overflow the kernel's socket buffers, so the proxy's writes stall.
  await seedHistory(stack, 200);
  const mallory = new ChatClient(stack.base);
  await mallory.login('mallory');
  const cookie = (mallory as unknown as { cookie: string }).cookie;
  const proxySide = new Promise<Socket>((resolve) => stack.proxy.clientServer.once('connection', resolve));
  const started = performance.now();
  const attack = pipelineFlood(stack.clientPort, cookie, stack.proxy.options.pipelineMaxQueued + 1, 30_000);
  t.after(() => attack.socket.destroy());
  const socket = await proxySide;

  const watch = watchAgent(agent);
  await otherClientIsServed(stack, 'eve');
  // Once the writes to the attacker back up, its answer has been read from the app ahead of it: the pool has the
  // socket back while the attacker is still connected.
  const stalled = () => socket.writableNeedDrain && inUse(agent) === 0;
  const released = Date.now() + 5000;
  while (!stalled() && !socket.destroyed && Date.now() < released) await new Promise((resolve) => setTimeout(resolve, 5));
  assert.equal(socket.destroyed, false, 'the attacker is still connected');
  assert.ok(stalled(), `its answer is stuck (${socket.writableNeedDrain}) and no upstream socket is in use (${inUse(agent)})`);
  const closedAfterMs = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the proxy did not close the connection within 10 s')), 10_000);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(performance.now() - started);
    });
  });
  const peak = watch.stop();
  t.diagnostic(`closed after ${Math.round(closedAfterMs)} ms; peak upstream sockets in use ${peak}`);
  assert.ok(closedAfterMs >= 2000, `not before the write timeout (${Math.round(closedAfterMs)} ms)`);
  assert.ok(peak <= 2, `at most 2 upstream sockets in use at any time, saw ${peak}`);
  assert.equal(inUse(agent), 0);
  const warnings = pipeliningWarnings(log.lines);
  assert.equal(warnings.length, 1, JSON.stringify(warnings));
  assert.match(warnings[0]!.msg, /stopped reading/);
  assert.equal(warnings[0]!.clientAddress, '127.0.0.1');
  assert.equal(typeof warnings[0]!.requestId, 'string');
});

test('parked long-polls hold no upstream socket, and a post answers them all', { timeout: 30_000 }, async (t) => {
  const stack = await startStack(t);
  const agent = stack.proxy.upstreamAgent;
  const clients = await Promise.all(
    Array.from({ length: 20 }, async (_, i) => {
      const c = new ChatClient(stack.base);
      await c.login(`p${i}`);
      const page = await c.call('GET', `/api/rooms/${ROOM}/messages?limit=1`);
      c.cursors.set(ROOM, (page.body as { cursor: number }).cursor);
      return c;
    }),
  );
  // Each sign-in announces itself in the lobby: the newest cursor read is past every one of them, so all polls park.
  const settled = Math.max(...clients.map((c) => c.cursors.get(ROOM)!));
  for (const c of clients) c.cursors.set(ROOM, settled);
  const polls = clients.map((c) => c.poll(AbortSignal.timeout(10_000)));
  const deadline = Date.now() + 5000;
  while (stack.proxy.stats().parked < clients.length && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
  assert.equal(stack.proxy.stats().parked, clients.length);
  assert.equal(inUse(agent), 0, 'no upstream socket is held by a parked poll');
  await clients[0]!.post(ROOM, 'wake up');
  await Promise.all(polls);
  for (const c of clients) assert.ok(c.received.some((e) => e.text === 'wake up'));
});
