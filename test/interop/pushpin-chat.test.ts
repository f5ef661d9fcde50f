/**
 * Our chat app behind the real Pushpin (the Debian package, 1.36), unchanged
 * except that its outbox relay publishes to Pushpin's publish endpoint: login,
 * join, a poll held by Pushpin, post, receive, the timeout answer, and a
 * counting test, with our own browser-protocol client. Pushpin runs as a
 * private instance (bench/models/pushpin-config.ts: own config, run directory
 * and ipc sockets, `sig_key` = the app's secret) on ephemeral loopback ports.
 *
 * Pushpin is required: `.ci/run` installs it. Without it these tests fail
 * with a message saying so; they never skip.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { findExecutable, freePort, logTail, serverEnv, spawnChild, type ManagedChild } from '../../bench/models/child-process.js';
import { writePushpinConfig } from '../../bench/models/pushpin-config.js';
import { HttpPublisher, PublishError } from '../../server/outbox/publisher.js';
import { createChatServer, type ChatServer } from '../../server/chat-server.js';
import { defer } from '../helpers/app-harness.js';
import { adaAndBob, ChatClient, waitFor, type ChatEvent } from '../helpers/chat-client.js';

/** The binaries the runner starts (services=condure,zurl,pushpin-proxy,pushpin-handler). */
const PUSHPIN_BINARIES = ['pushpin', 'condure', 'zurl', 'pushpin-proxy', 'pushpin-handler'];
/** Pushpin raises any Grip-Timeout below this to it (MINIMUM_RESPONSE_TIMEOUT in its handler/instruct.cpp), s. */
const PUSHPIN_MIN_TIMEOUT_S = 5;
/** Start-up of Pushpin's four services and the first round trip, ms. */
const READY_MS = 30_000;

interface PushpinStack {
  chat: ChatServer;
  pushpin: ManagedChild;
  /** Pushpin's client port: what browsers would use. */
  base: string;
  /** Pushpin's publish endpoint base (the handler's HTTP control server). */
  publishUrl: string;
  /** Poll answers the app has sent, and how many of them were hold instructions. */
  pollAnswers(): { total: number; holds: number };
}

/** Fails (never skips) when Pushpin is not installed. */
function requirePushpin(): string {
  const missing = PUSHPIN_BINARIES.filter((bin) => findExecutable(bin) === null);
  if (missing.length > 0) {
    assert.fail(`Pushpin is required for this interop test and is not installed (${missing.join(', ')} not on PATH): apt-get install -y pushpin (.ci/run does)`);
  }
  return findExecutable('pushpin')!;
}

/** Starts the chat app (real SQLite file) and a private Pushpin in front of it; teardown on `t`. */
async function startPushpinStack(t: TestContext, { holdTimeoutS = PUSHPIN_MIN_TIMEOUT_S } = {}): Promise<PushpinStack> {
  const pushpinBin = requirePushpin();
  // Short path: Pushpin's ZeroMQ ipc sockets live in the run directory (a Unix socket path holds 107 bytes).
  const dir = mkdtempSync(join(tmpdir(), 'pp-chat-'));
  // defer: last registered, first run (polls end, then Pushpin stops, then the app closes, then this goes).
  defer(t, () => rmSync(dir, { recursive: true, force: true }));
  const configDir = join(dir, 'conf');
  const runDir = join(dir, 'run');
  const logDir = join(dir, 'log');
  for (const d of [configDir, runDir, logDir]) mkdirSync(d, { recursive: true });

  // Pushpin signs Grip-Sig with sig_key as plain bytes: a hex secret is the same bytes for both.
  const secret = randomBytes(32).toString('hex');
  const chat = createChatServer({
    secret,
    // Pushpin's publish endpoint takes no credential; the app sends its control secret all the same.
    controlSecret: randomBytes(32).toString('hex'),
    host: '127.0.0.1',
    port: 0,
    dbPath: join(dir, 'chat.db'),
    // Pushpin parses Grip-Timeout as whole seconds.
    holdTimeoutS,
    postsPerMinute: 0,
  });
  defer(t, () => chat.close());
  let total = 0;
  let holds = 0;
  // Observes the app's own answers (adds a listener; the app is unchanged).
  chat.server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (!req.url?.startsWith('/api/poll')) return;
    res.on('finish', () => {
      total++;
      if (res.getHeader('grip-hold') !== undefined) holds++;
    });
  });
  const appPort = await chat.listen();

  const [httpPort, publishPort] = [await freePort(), await freePort()];
  const confPath = writePushpinConfig(configDir, { runDir, logDir, httpPort, publishPort, appPort, sigKey: secret, maxClients: 20 });
  const pushpin = await spawnChild({
    name: 'pushpin',
    command: pushpinBin,
    args: ['--config', confPath],
    cwd: configDir,
    env: serverEnv({}),
    logPath: join(dir, 'pushpin.log'),
    processGroup: true,
  });
  // Registered before any wait, so a failed start still stops the runner and its four services.
  defer(t, () => pushpin.stop());

  const base = `http://127.0.0.1:${httpPort}`;
  const publishUrl = `http://127.0.0.1:${publishPort}`;
  const alive = (): void => {
    if (!pushpin.running()) {
      throw new Error(`pushpin exited during start-up:\n${logTail(pushpin.logPath)}\n${logTail(join(logDir, 'pushpin-handler.log'))}`);
    }
  };
  const answers = async (url: string, ok: (status: number, text: string) => boolean): Promise<boolean> => {
    alive();
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      return ok(res.status, await res.text());
    } catch {
      return false; // not listening yet
    }
  };
  // Ready when a request makes the whole trip (condure, proxy, zurl, app and back) and the publish API answers.
  await waitFor(() => answers(`${base}/api/session`, (s, text) => s === 401 && text.includes('APP_ERR_NO_SESSION')), 'Pushpin to pass a request to the app', READY_MS);
  await waitFor(() => answers(`${publishUrl}/publish/`, (s) => s < 500), "Pushpin's publish API", READY_MS);
  // The one change to the app: its relay publishes to Pushpin instead of our proxy's control API.
  chat.connectProxy(publishUrl);
  // pushpin-proxy may pass requests before its handler's accept service is connected: a hold then gets
  // `500 Accept service unavailable`. Ready means one held poll (in a room of its own) answered by a publish.
  const probe = new ChatClient(base);
  await probe.login('probe');
  assert.equal((await probe.call('POST', '/api/rooms', { name: 'probe' })).status, 201);
  await probe.join('probe');
  const heldRoundTrip = async (): Promise<boolean> => {
    alive();
    const before = holds;
    const poll = tracked(probe.poll(AbortSignal.timeout(15_000)));
    await waitFor(() => holds > before || poll.settled(), 'the app to answer the probe poll');
    if (poll.settled()) return false; // answered at once: news behind its cursor, or an error
    const posted = await probe.post('probe', 'ready?');
    // Before its handler is wired, Pushpin may also drop a held poll's connection ("other side closed", seen in
    // CI from a cold start) instead of answering 500: that too means "not ready yet", so probe again.
    const res = await poll.promise.catch(() => null);
    return res !== null && res.status === 200 && (res.body.events as ChatEvent[]).some((e) => e.id === posted.id);
  };
  await waitFor(heldRoundTrip, 'a poll held by Pushpin and answered by a publish', READY_MS);
  return { chat, pushpin, base, publishUrl, pollAnswers: () => ({ total, holds }) };
}

/** A promise that can say whether it has settled, without waiting. */
function tracked<T>(promise: Promise<T>): { promise: Promise<T>; settled: () => boolean } {
  let done = false;
  void promise.then(
    () => (done = true),
    () => (done = true),
  );
  return { promise, settled: () => done };
}

function messagesOf(events: readonly ChatEvent[]): Array<[number, string | undefined]> {
  return events.filter((e) => e.type === 'message').map((e) => [e.id, e.text]);
}

/** Polls until the client has `count` message events (bounded polls and time); returns them as received. */
async function followMessages(t: TestContext, client: ChatClient, count: number, timeoutMs: number): Promise<ChatEvent[]> {
  // Ends with the test even when it failed early, so no poll outlives Pushpin and the app.
  const stop = new AbortController();
  defer(t, () => stop.abort());
  const deadline = Date.now() + timeoutMs;
  const messages = (): ChatEvent[] => client.received.filter((e) => e.type === 'message');
  for (let polls = 0; messages().length < count; polls++) {
    if (polls > count * 4 + 20 || Date.now() > deadline || stop.signal.aborted) {
      throw new Error(`${messages().length} of ${count} messages after ${polls} polls`);
    }
    const res = await client.poll(AbortSignal.any([stop.signal, AbortSignal.timeout(Math.max(1, deadline - Date.now()))]));
    assert.equal(res.status, 200, JSON.stringify(res.body));
  }
  return messages();
}

describe('the chat app behind Pushpin', () => {
  test('login, join, a poll held by Pushpin, a post from another session, and the message in the held answer', { timeout: 60_000 }, async (t) => {
    const { base, pollAnswers, chat } = await startPushpinStack(t);
    const { ada, bob } = await adaAndBob(base, 'interop');
    const holdsBefore = pollAnswers().holds;
    const poll = tracked(ada.poll(AbortSignal.timeout(15_000)));
    // The app answered the poll with a hold instruction: it believed Pushpin's Grip-Sig (else it answers at once).
    await waitFor(() => pollAnswers().holds === holdsBefore + 1, 'the app to answer the poll with a hold instruction');
    assert.equal(poll.settled(), false, 'Pushpin holds the poll while there is no news');

    const posted = await bob.post('interop', 'hello through pushpin');
    const answer = await poll.promise;
    assert.equal(answer.status, 200);
    assert.deepEqual(messagesOf(answer.body.events), [[posted.id, 'hello through pushpin']]);
    assert.equal(answer.body.events.length, 1);
    assert.equal(typeof answer.headers.get('comet-connection-id'), 'string');
    assert.deepEqual([...answer.headers.keys()].filter((h) => h.startsWith('grip-')), []);
    // The relay took Pushpin's `Published` as acceptance: the outbox empties and no publish failed.
    await chat.relay.waitIdle(5000);
    assert.equal((chat.db.prepare('SELECT count(*) AS n FROM outbox').get() as { n: number }).n, 0);
    assert.ok(chat.relay.stats.published > 0);
    assert.equal(chat.relay.stats.failures, 0);

    // And back. Bob's cursor is still at his join: his first poll catches up at once (ada's join, his own post).
    const catchUp = await bob.poll(AbortSignal.timeout(15_000));
    assert.deepEqual(messagesOf(catchUp.body.events), [[posted.id, 'hello through pushpin']]);
    const bobHoldsBefore = pollAnswers().holds;
    const bobPoll = tracked(bob.poll(AbortSignal.timeout(15_000)));
    await waitFor(() => pollAnswers().holds === bobHoldsBefore + 1, "the app to hold bob's poll");
    assert.equal(bobPoll.settled(), false);
    const reply = await ada.post('interop', 'hi bob');
    const bobAnswer = await bobPoll.promise;
    assert.deepEqual(messagesOf(bobAnswer.body.events), [[reply.id, 'hi bob']]);
  });

  test('a poll with no news gets the app\'s empty answer when the hold times out; Pushpin raises a 2 s Grip-Timeout to 5 s', { timeout: 60_000 }, async (t) => {
    const { base, pollAnswers } = await startPushpinStack(t, { holdTimeoutS: 2 });
    const ada = new ChatClient(base);
    await ada.login('ada');
    await ada.join('lobby');
    const started = Date.now();
    const res = await ada.poll(AbortSignal.timeout(20_000));
    const heldMs = Date.now() - started;
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body.events, []);
    assert.equal(res.body.connectionId, ada.connectionId);
    assert.ok(pollAnswers().holds >= 1);
    // At least Pushpin's minimum; its first hold on a new channel may be re-asked once (~1 s), restarting the timer.
    assert.ok(heldMs >= PUSHPIN_MIN_TIMEOUT_S * 1000 - 300, `held ${heldMs} ms, less than Pushpin's 5 s minimum`);
    assert.ok(heldMs < PUSHPIN_MIN_TIMEOUT_S * 1000 + 4000, `held ${heldMs} ms`);
  });

  test('counting: four clients in one room each receive all 40 messages from two posters, exactly once, in order', { timeout: 120_000 }, async (t) => {
    const PER_POSTER = 20;
    const { base, chat } = await startPushpinStack(t);
    const nicks = ['ada', 'bob', 'cy', 'dee'];
    const clients = nicks.map(() => new ChatClient(base));
    for (const [i, c] of clients.entries()) await c.login(nicks[i]!);
    assert.equal((await clients[0]!.call('POST', '/api/rooms', { name: 'count' })).status, 201);
    for (const c of clients) await c.join('count');
    const total = 2 * PER_POSTER;
    const followers = clients.map((c) => followMessages(t, c, total, 90_000));
    for (const f of followers) f.catch(() => {}); // awaited below; keeps an early failure above from going unhandled
    // Two clients post concurrently, each one message after another, while all four follow the room.
    const posted = (
      await Promise.all(
        [clients[1]!, clients[2]!].map(async (poster, p) => {
          const events: ChatEvent[] = [];
          for (let i = 0; i < PER_POSTER; i++) events.push(await poster.post('count', `p${p}-${i}`));
          return events;
        }),
      )
    ).flat();
    const expected = posted.map((e) => [e.id, e.text] as [number, string | undefined]).sort((a, b) => a[0] - b[0]);
    const received = await Promise.all(followers);
    for (const [i, messages] of received.entries()) {
      assert.deepEqual(messagesOf(messages), expected, `${nicks[i]} got the room's messages once each, in order`);
      const allIds = clients[i]!.received.map((e) => e.id);
      assert.deepEqual(allIds, [...new Set(allIds)].sort((a, b) => a - b), `${nicks[i]}: no event twice, ids increasing`);
      assert.equal(clients[i]!.resyncs, 0);
    }
    assert.equal(chat.relay.stats.failures, 0);
  });
});

describe("the relay's publisher reads Pushpin's answer", () => {
  /** A real control endpoint that answers every POST with `status` and `body`. */
  async function answering(t: TestContext, status: number, body: string, contentType = 'text/plain'): Promise<string> {
    const server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(status, { 'content-type': contentType }).end(body));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    defer(
      t,
      () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        }),
    );
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  const item = { channel: 'room:x', id: '2', 'prev-id': '1', formats: { 'http-response': { body: '{}' } } };

  test("Pushpin's `Published` is an acceptance with zero counts; our proxy's counts are read as they are", async (t) => {
    for (const [body, contentType, expected] of [
      ['Published\n', 'text/plain', { delivered: 0, queued: 0, dropped: 0, reasked: 0 }],
      ['{"delivered":2,"queued":1,"dropped":0,"reasked":3}', 'application/json', { delivered: 2, queued: 1, dropped: 0, reasked: 3 }],
    ] as const) {
      const publisher = new HttpPublisher({ controlUrl: await answering(t, 200, body, contentType), secret: 'publisher-secret-0123', timeoutMs: 2000 });
      defer(t, () => publisher.close());
      assert.deepEqual(await publisher.publish([item]), expected);
    }
  });

  test('any other 2xx answer is refused, so a control URL pointing at the wrong server keeps the rows', async (t) => {
    for (const body of ['<html>welcome</html>', '{}', '{"delivered":1}', '{"delivered":-1,"queued":0,"dropped":0,"reasked":0}', '']) {
      const publisher = new HttpPublisher({ controlUrl: await answering(t, 200, body), secret: 'publisher-secret-0123', timeoutMs: 2000 });
      defer(t, () => publisher.close());
      await assert.rejects(publisher.publish([item]), (err: unknown) => {
        assert.ok(err instanceof PublishError);
        assert.equal(err.code, 'APP_ERR_PUBLISH_FAILED');
        assert.equal(err.status, 200);
        assert.match(err.message, /neither counts nor "Published"/);
        return true;
      }, JSON.stringify(body));
    }
  });
});
