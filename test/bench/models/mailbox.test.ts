/**
 * Model 2 of the models lab (bench/models/mailbox.ts): the real chat API over
 * real sockets, with polls answered from per-connection mailboxes the app
 * writes into, and read from SQLite whenever a mailbox cannot cover them.
 *
 * Whether a poll was answered by the mailbox tier or by the app shows in the
 * database: only the app records presence (`sessions.last_poll_at`).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import Database from 'better-sqlite3';
import { LAB_STATS_PATH, type LabServer } from '../../../bench/models/lab-server.js';
import { createMailboxServer, type MailboxServerOptions } from '../../../bench/models/mailbox.js';
import { adaAndBob, ChatClient, waitFor, type ChatEvent } from '../../helpers/chat-client.js';
import { countingScenario } from './chat-lab-counting.js';

interface Lab {
  lab: LabServer;
  base: string;
  /** `sessions.last_poll_at` of a user, read from the lab's database. */
  lastPollAt(userId: number): number | null;
}

async function startLab(t: TestContext, options: Omit<MailboxServerOptions, 'dbPath'>): Promise<Lab> {
  const dir = mkdtempSync(join(tmpdir(), 'lab-mailbox-'));
  const dbPath = join(dir, 'chat.db');
  const lab = createMailboxServer({ dbPath, ...options });
  let db: Database.Database | undefined;
  // Registered before listening, so a failed listen still closes the database and removes the directory.
  t.after(async () => {
    db?.close();
    await lab.close();
    rmSync(dir, { recursive: true, force: true });
  });
  await new Promise<void>((resolve) => lab.server.listen(0, '127.0.0.1', resolve));
  return {
    lab,
    base: `http://127.0.0.1:${(lab.server.address() as AddressInfo).port}`,
    lastPollAt(userId) {
      db ??= new Database(dbPath, { readonly: true, fileMustExist: true });
      return (db.prepare('SELECT last_poll_at AS t FROM sessions WHERE id = ?').get(userId) as { t: number | null }).t;
    },
  };
}

async function parked(base: string): Promise<number> {
  const res = await fetch(`${base}${LAB_STATS_PATH}`);
  return ((await res.json()) as { parked: number }).parked;
}

async function userId(client: ChatClient): Promise<number> {
  return (await client.call('GET', '/api/session')).body.user.id as number;
}

/** Ada's first poll goes through the app and opens her mailbox; bob's post answers it. Returns that post. */
async function openMailbox(base: string, ada: ChatClient, bob: ChatClient): Promise<ChatEvent> {
  const polling = ada.poll();
  await waitFor(async () => (await parked(base)) === 1, 'the first poll to park on its new mailbox');
  const first = await bob.post('general', 'first');
  const res = await polling;
  assert.deepEqual(res.body.events, [first]);
  return first;
}

test('a poll with news past its cursor is answered at once with the events and its connection ID', async (t) => {
  const { base } = await startLab(t, { holdTimeoutS: 30 });
  const { ada, bob } = await adaAndBob(base);
  const posted = await bob.post('general', 'hello');

  const started = Date.now();
  const res = await ada.poll();
  assert.ok(Date.now() - started < 2000, 'not held');
  assert.equal(res.status, 200);
  assert.deepEqual(res.body.events, [posted]);
  assert.equal(typeof res.body.connectionId, 'string');
  assert.equal(res.headers.get('comet-connection-id'), res.body.connectionId);
  assert.equal(res.headers.get('cache-control'), 'no-store');
  assert.match(res.headers.get('content-type') ?? '', /^application\/json; charset=utf-8/);
  assert.equal(await parked(base), 0);
});

test('an idle poll parks on its mailbox and a post in its room answers it with that event only, without the app', async (t) => {
  const lab = await startLab(t, { holdTimeoutS: 30 });
  const { base } = lab;
  const { ada, bob } = await adaAndBob(base);
  await bob.call('POST', '/api/rooms', { name: 'random' });
  await bob.join('random');
  await openMailbox(base, ada, bob);
  const adaId = await userId(ada);
  const presence = lab.lastPollAt(adaId);

  // The second poll names a known mailbox: the tier parks it there.
  const polling = ada.poll();
  await waitFor(async () => (await parked(base)) === 1, 'the poll to park on the mailbox');
  // A post in a room ada does not poll writes into no mailbox of hers; the next one in general does.
  await bob.post('random', 'elsewhere');
  const posted = await bob.post('general', 'wake up');
  const res = await polling;
  assert.equal(res.status, 200);
  assert.deepEqual(res.body, { events: [posted], connectionId: ada.connectionId });
  assert.equal(res.headers.get('comet-connection-id'), ada.connectionId);
  assert.equal(lab.lastPollAt(adaId), presence, 'the app did not see the poll');
  assert.equal(await parked(base), 0);
});

test('a parked poll times out with an empty answer after the hold timeout', async (t) => {
  const { base } = await startLab(t, { holdTimeoutS: 1 });
  const { ada } = await adaAndBob(base);

  for (const path of ['the app', 'the mailbox']) {
    const started = Date.now();
    const res = await ada.poll();
    const elapsed = Date.now() - started;
    assert.equal(res.status, 200, path);
    assert.deepEqual(res.body, { events: [], connectionId: res.headers.get('comet-connection-id') }, path);
    assert.ok(elapsed >= 900 && elapsed < 5000, `${path}: answered after ${elapsed} ms`);
  }
});

test('a poll repeated with the same cursors (its answer was lost) gets the same events again', async (t) => {
  const { base } = await startLab(t, { holdTimeoutS: 30 });
  const { ada, bob } = await adaAndBob(base);
  const first = await openMailbox(base, ada, bob);
  const posted = [await bob.post('general', 'one'), await bob.post('general', 'two')];

  const path = `/api/poll?rooms=general:${first.id}&cid=${ada.connectionId}`;
  for (let i = 0; i < 2; i++) {
    const res = await ada.call('GET', path);
    assert.deepEqual(res.body.events, posted, `poll ${i + 1}`);
  }
});

test('a client that stops polling while its mailbox lives gets everything past its cursor from the mailbox', async (t) => {
  const lab = await startLab(t, { holdTimeoutS: 30 });
  const { base } = lab;
  const { ada, bob } = await adaAndBob(base);
  await openMailbox(base, ada, bob);
  const adaId = await userId(ada);
  const presence = lab.lastPollAt(adaId);

  const posted: ChatEvent[] = [];
  for (let i = 0; i < 5; i++) posted.push(await bob.post('general', `while away ${i}`));
  const res = await ada.poll();
  assert.deepEqual(res.body.events, posted);
  assert.equal(lab.lastPollAt(adaId), presence, 'answered by the mailbox tier');
});

test('a client whose mailbox expired still gets everything past its cursor, read from SQLite', async (t) => {
  const ttlMs = 100;
  let skewMs = 0;
  const lab = await startLab(t, { holdTimeoutS: 30, mailboxTtlMs: ttlMs, now: () => Date.now() + skewMs });
  const { base } = lab;
  const { ada, bob } = await adaAndBob(base);
  await openMailbox(base, ada, bob);
  const adaId = await userId(ada);
  const presence = lab.lastPollAt(adaId);

  const posted: ChatEvent[] = [];
  for (let i = 0; i < 5; i++) posted.push(await bob.post('general', `while away ${i}`));
  // The mailbox has now gone unread for far longer than its TTL, and the session's presence is older than
  // the app's refresh (10 s), so the app's answer also records the poll.
  skewMs = 11_000;
  const res = await ada.poll();
  assert.deepEqual(res.body.events, posted);
  assert.ok((lab.lastPollAt(adaId) ?? 0) > (presence ?? 0), 'answered by the app');
});

test('a client whose mailbox overflowed still gets everything past its cursor, read from SQLite', async (t) => {
  const lab = await startLab(t, { holdTimeoutS: 30, mailboxMaxEvents: 3 });
  const { base } = lab;
  const { ada, bob } = await adaAndBob(base);
  await openMailbox(base, ada, bob);

  const posted: ChatEvent[] = [];
  for (let i = 0; i < 7; i++) posted.push(await bob.post('general', `burst ${i}`));
  const res = await ada.poll();
  assert.deepEqual(res.body.events, posted);
});

test('a poll naming another session\'s connection ID goes to the app and is refused there', async (t) => {
  const { base } = await startLab(t, { holdTimeoutS: 30 });
  const { ada, bob } = await adaAndBob(base);
  await openMailbox(base, ada, bob);
  const res = await bob.call('GET', `/api/poll?rooms=general:0&cid=${ada.connectionId}`);
  assert.equal(res.status, 403);
  assert.equal(res.body.code, 'APP_ERR_FOREIGN_CONNECTION_ID');
});

test('a parked poll gets its own leave event, and the next poll naming the room left goes to the app and is refused', async (t) => {
  const { base } = await startLab(t, { holdTimeoutS: 30 });
  const { ada, bob } = await adaAndBob(base);
  await openMailbox(base, ada, bob);

  const polling = ada.poll();
  await waitFor(async () => (await parked(base)) === 1, 'the poll to park on the mailbox');
  assert.equal((await ada.call('POST', '/api/rooms/general/leave')).status, 200);
  const res = await polling;
  assert.deepEqual(res.body.events.map((e: ChatEvent) => e.type), ['leave']);
  const after = await ada.poll();
  assert.equal(after.status, 403);
  assert.equal(after.body.code, 'APP_ERR_NOT_MEMBER');
});

test('20 clients in 2 rooms polling in loops receive every one of 200 concurrent posts of their room once, in order', async (t) => {
  const { base } = await startLab(t, { holdTimeoutS: 5 });
  await countingScenario(base);
  assert.equal(await parked(base), 0);
});

test('closing the server releases a parked poll at once', async (t) => {
  const { lab, base } = await startLab(t, { holdTimeoutS: 30 });
  const { ada } = await adaAndBob(base);
  const polling = ada.poll().then(
    (res) => res.status,
    () => 'dropped',
  );
  await waitFor(async () => (await parked(base)) === 1, 'the poll to park');
  const started = Date.now();
  await lab.close();
  const outcome = await polling;
  assert.ok(outcome === 200 || outcome === 'dropped', `outcome ${outcome}`);
  assert.ok(Date.now() - started < 2000, 'close did not wait for the hold timeout');
  assert.equal(lab.parked(), 0);
});

/** Ends ada's session behind the app's back (another process's admin action, the pruner): no leave event is written. */
function endSessionInDatabase(dbPath: string, id: number): void {
  const db = new Database(dbPath);
  try {
    db.prepare("UPDATE sessions SET ended_at = ?, end_reason = 'signed-out' WHERE id = ?").run(Date.now(), id);
  } finally {
    db.close();
  }
}

test('access control per poll: the tier trusts the mailbox owner\'s cookie; mode session-check reads the session on every poll', async (t) => {
  for (const mode of [undefined, 'session-check'] as const) {
    const dir = mkdtempSync(join(tmpdir(), 'lab-mailbox-auth-'));
    const dbPath = join(dir, 'chat.db');
    const lab = createMailboxServer({ dbPath, holdTimeoutS: 30, ...(mode === undefined ? {} : { mode }) });
    t.after(async () => {
      await lab.close();
      rmSync(dir, { recursive: true, force: true });
    });
    await new Promise<void>((resolve) => lab.server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(lab.server.address() as AddressInfo).port}`;
    const { ada, bob } = await adaAndBob(base);
    const first = await openMailbox(base, ada, bob);
    const news = await bob.post('general', 'after the end');
    endSessionInDatabase(dbPath, await userId(ada));
    const res = await ada.call('GET', `/api/poll?rooms=general:${first.id}&cid=${ada.connectionId}`);
    if (mode === undefined) {
      // The cookie still matches the mailbox: answered from memory, the ended session unnoticed until the mailbox goes.
      assert.equal(res.status, 200);
      assert.deepEqual(res.body.events, [news]);
    } else {
      assert.equal(res.status, 401, JSON.stringify(res.body));
      assert.match(res.body.code, /^APP_ERR_SESSION_/);
    }
  }
});

test('an unknown mailbox mode is refused', () => {
  assert.throws(() => createMailboxServer({ dbPath: join(tmpdir(), 'never.db'), holdTimeoutS: 30, mode: 'nope' }), /mode must be/);
});
