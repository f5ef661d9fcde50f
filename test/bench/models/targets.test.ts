/**
 * The lab's process-backed targets, each started for real in a temp directory
 * (10 clients, 2 s hold) and driven over HTTP: Suspend & Push (our proxy and
 * app), Pushpin in front of our app, and Nchan. Each must park a long-poll,
 * answer it with a publish, and leave no process behind after stop(). Needs
 * `npm run build` (the targets run dist/) and, for the external ones, the
 * pushpin and nginx + libnginx-mod-nchan packages (CI installs them).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { nchanTarget } from '../../../bench/models/nchan.js';
import { cpuSeconds, descendants, isAlive, processTree, rssBytes } from '../../../bench/models/process-tree.js';
import { pushpinTarget } from '../../../bench/models/pushpin.js';
import { suspendPushTarget, workersSuspendPushTarget } from '../../../bench/models/suspend-push.js';
import type { RunningTarget, Target } from '../../../bench/models/target.js';
import Database from 'better-sqlite3';
import { ChatClient, waitFor } from '../../helpers/chat-client.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const HOLD_TIMEOUT_S = 2;
/** Longest wait for a parked count or a poll answer that should come at once, ms. */
const PROMPT_MS = 1500;
/** Bound of one whole test (start, the flow, stop), ms; calls without their own deadline fall under it. */
const TEST_TIMEOUT_MS = 60_000;

/** Each running target's work directory (the app's database is there). */
const workDirs = new WeakMap<RunningTarget, string>();

/** Starts `target` in a fresh temp directory; stop and removal are registered on `t` at once. */
async function startTarget(t: TestContext, target: Target): Promise<RunningTarget> {
  assert.equal(await target.unavailable(), null, `${target.name} must be runnable here`);
  const workDir = mkdtempSync(join(tmpdir(), `lab-${target.name}-`));
  let running: RunningTarget | undefined;
  t.after(async () => {
    await running?.stop();
    rmSync(workDir, { recursive: true, force: true });
  });
  running = await target.start({ workDir, holdTimeoutS: HOLD_TIMEOUT_S, maxClients: 10, root: ROOT });
  workDirs.set(running, workDir);
  return running;
}

/** Resolves once `parked()` reports `expected`; throws with the last value after `timeoutMs`. */
async function waitParked(running: RunningTarget, expected: number, timeoutMs = PROMPT_MS): Promise<void> {
  let last: number | undefined;
  await waitFor(async () => (last = await running.parked()) === expected, `parked() to reach ${expected} (last ${last})`, timeoutMs);
}

/** Resolves once the chat app's database holds a connection ID (a poll was handled); fails after `timeoutMs`. */
async function waitPollHandled(dbPath: string, timeoutMs = PROMPT_MS * 4): Promise<void> {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    const count = db.prepare('SELECT count(*) AS n FROM connections');
    await waitFor(() => (count.get() as { n: number }).n > 0, 'a poll to reach the app', timeoutMs);
  } finally {
    db.close();
  }
}

/** A promise with a flag saying whether it settled yet. */
function tracked<T>(promise: Promise<T>): { promise: Promise<T>; settled: () => boolean } {
  let done = false;
  const wrapped = promise.finally(() => {
    done = true;
  });
  wrapped.catch(() => {}); // awaited by the test; never an unhandled rejection meanwhile
  return { promise: wrapped, settled: () => done };
}

/** Stops `running` (twice: stop is idempotent) and asserts every process of its tree, taken before, is gone. */
async function stopAndCheckGone(running: RunningTarget, minProcesses: number): Promise<void> {
  const tree = processTree(running.pids());
  assert.ok(tree.length >= minProcesses, `expected at least ${minProcesses} processes, found ${tree.length}`);
  assert.ok(tree.every(isAlive), 'every process runs before stop()');
  await Promise.all([running.stop(), running.stop()]);
  assert.deepEqual(tree.filter(isAlive), [], 'no process of the target survives stop()');
  await running.stop();
}

/**
 * The chat flow on a `chat-long-poll` target: ada's poll parks, bob's post
 * (another session, through publishUrl) answers it; the next poll, with no
 * news, gets the empty answer after `holdS` seconds.
 */
async function chatPollIsAnsweredByAPost(running: RunningTarget, canCount: boolean, holdS = HOLD_TIMEOUT_S): Promise<void> {
  const ada = new ChatClient(running.clientUrl);
  const bob = new ChatClient(running.publishUrl);
  await ada.login('ada');
  await bob.login('bob');
  const created = await bob.call('POST', '/api/rooms', { name: 'lab' });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  await bob.join('lab');
  await ada.join('lab');

  const first = tracked(ada.poll(AbortSignal.timeout(10_000)));
  if (canCount) {
    await waitParked(running, 1);
  } else {
    // Pushpin cannot count parked polls. Wait instead until the app has handled the poll (its connection ID is
    // in the database): from then on, only a publish through Pushpin can put the post below in its answer.
    await waitPollHandled(join(workDirs.get(running)!, 'chat.db'));
  }
  // Held at all means the app believed the proxy's Grip-Sig: without one it answers at once, with a bad one 401.
  assert.equal(first.settled(), false, 'the poll is held while there is no news');
  const posted = await bob.post('lab', 'hello ada');
  const answer = await first.promise;
  assert.equal(answer.status, 200);
  assert.deepEqual(
    answer.body.events.map((e: { id: number; text?: string }) => [e.id, e.text]),
    [[posted.id, 'hello ada']],
  );

  const started = Date.now();
  const empty = await ada.poll(AbortSignal.timeout(10_000));
  const heldMs = Date.now() - started;
  assert.equal(empty.status, 200);
  assert.deepEqual(empty.body.events, []);
  assert.ok(heldMs >= holdS * 1000 - 300 && heldMs < holdS * 1000 + 3000, `held ${heldMs} ms for a ${holdS} s hold`);
}

describe('suspend-push target', () => {
  test('parks a poll (the proxy counts it), answers it with a post from another session, and stops both processes', { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const running = await startTarget(t, suspendPushTarget);
    assert.deepEqual(Object.keys(running.roles()).sort(), ['app', 'proxy']);
    assert.equal(running.publishUrl, running.clientUrl);
    assert.equal(await running.parked(), 0);
    await chatPollIsAnsweredByAPost(running, true);
    await stopAndCheckGone(running, 2);
  });
});

describe('suspend-push-w2 target', () => {
  test('runs the proxy on 2 workers (3 proxy processes), counts a poll parked on either, and stops every process', { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const running = await startTarget(t, workersSuspendPushTarget(2));
    assert.deepEqual(Object.keys(running.roles()).sort(), ['app', 'proxy']);
    // The proxy's primary forks the workers: the lab measures CPU and memory over the whole tree.
    assert.equal(descendants(running.roles().proxy!).length, 2, 'two proxy workers');
    assert.equal(await running.parked(), 0);
    await chatPollIsAnsweredByAPost(running, true);
    await stopAndCheckGone(running, 4);
  });
});

describe('pushpin target', () => {
  test('holds a poll through Pushpin, answers it with a post published to Pushpin, and stops Pushpin with all its services', { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const running = await startTarget(t, pushpinTarget);
    assert.deepEqual(Object.keys(running.roles()).sort(), ['app', 'pushpin']);
    assert.equal(await running.parked(), undefined);
    // The runner's four services are its children.
    assert.ok(descendants(running.roles().pushpin!).length >= 4, 'condure, zurl, pushpin-proxy and pushpin-handler run');
    // Pushpin raises any Grip-Timeout below 5 s to 5 s (handler/instruct.cpp, MINIMUM_RESPONSE_TIMEOUT).
    await chatPollIsAnsweredByAPost(running, false, Math.max(5, HOLD_TIMEOUT_S));
    await stopAndCheckGone(running, 6);
  });
});

describe('nchan target', () => {
  test('parks a subscriber, answers it with a publish, resumes losslessly from its Last-Modified/Etag, and stops nginx with its workers', { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const running = await startTarget(t, nchanTarget);
    const master = running.roles().nginx!;
    assert.deepEqual(running.pids(), [master]);
    assert.equal(descendants(master).length, 2, 'two workers');
    assert.ok(rssBytes([master]) > 0, 'memory of the master and workers');
    assert.ok(cpuSeconds([master]) >= 0);
    assert.equal(await running.parked(), 0);

    const sub = tracked(fetch(`${running.clientUrl}/sub/x`, { signal: AbortSignal.timeout(10_000) }));
    await waitParked(running, 1);
    assert.equal(sub.settled(), false);
    const published = await fetch(`${running.publishUrl}/pub/x`, { method: 'POST', body: 'first', signal: AbortSignal.timeout(5000) });
    assert.ok([201, 202].includes(published.status), `publish answered ${published.status}`);
    await published.text();
    const first = await sub.promise;
    assert.equal(first.status, 200);
    assert.equal(await first.text(), 'first');
    const lastModified = first.headers.get('last-modified');
    const etag = first.headers.get('etag');
    assert.ok(lastModified !== null && etag !== null, 'the answer carries its resume point');

    // Published while no subscriber waits: the resume must still get it, at once.
    await (await fetch(`${running.publishUrl}/pub/x`, { method: 'POST', body: 'second', signal: AbortSignal.timeout(5000) })).text();
    const resumeHeaders = { 'if-modified-since': lastModified, 'if-none-match': etag };
    const second = await fetch(`${running.clientUrl}/sub/x`, { headers: resumeHeaders, signal: AbortSignal.timeout(PROMPT_MS) });
    assert.equal(second.status, 200);
    assert.equal(await second.text(), 'second');

    // Nothing newer: the subscriber waits out nchan_subscriber_timeout and gets 408.
    const started = Date.now();
    const timedOut = await fetch(`${running.clientUrl}/sub/x`, {
      headers: { 'if-modified-since': second.headers.get('last-modified')!, 'if-none-match': second.headers.get('etag')! },
      signal: AbortSignal.timeout(10_000),
    });
    const heldMs = Date.now() - started;
    await timedOut.text();
    assert.equal(timedOut.status, 408);
    assert.ok(heldMs >= HOLD_TIMEOUT_S * 1000 - 300 && heldMs < HOLD_TIMEOUT_S * 1000 + 3000, `held ${heldMs} ms for a ${HOLD_TIMEOUT_S} s hold`);
    await waitParked(running, 0);

    await stopAndCheckGone(running, 3);
  });
});
