/**
 * Model 1 of the models lab (bench/models/suspend-resume.ts): the real chat
 * API over real sockets, with idle polls suspended and re-run on notify or
 * timeout.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import Database from 'better-sqlite3';
import { LAB_STATS_PATH, type LabServer } from '../../../bench/models/lab-server.js';
import { createSuspendResumeServer } from '../../../bench/models/suspend-resume.js';
import { adaAndBob, ChatClient, waitFor, type ChatEvent } from '../../helpers/chat-client.js';
import { countingScenario } from './chat-lab-counting.js';

interface Lab {
  lab: LabServer;
  base: string;
  dbPath: string;
}

async function startLab(t: TestContext, holdTimeoutS: number): Promise<Lab> {
  const dir = mkdtempSync(join(tmpdir(), 'lab-suspend-resume-'));
  const dbPath = join(dir, 'chat.db');
  const lab = createSuspendResumeServer({ dbPath, holdTimeoutS });
  // Registered before listening, so a failed listen still closes the database and removes the directory.
  t.after(async () => {
    await lab.close();
    rmSync(dir, { recursive: true, force: true });
  });
  await new Promise<void>((resolve) => lab.server.listen(0, '127.0.0.1', resolve));
  return { lab, base: `http://127.0.0.1:${(lab.server.address() as AddressInfo).port}`, dbPath };
}

async function parked(base: string): Promise<number> {
  const res = await fetch(`${base}${LAB_STATS_PATH}`);
  return ((await res.json()) as { parked: number }).parked;
}

test('a poll with news past its cursor is answered at once with the events and its connection ID', async (t) => {
  const { base } = await startLab(t, 30);
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

test('an idle poll is suspended and a post in its room resumes it with that event only', async (t) => {
  const { base } = await startLab(t, 30);
  const { ada, bob } = await adaAndBob(base);
  await bob.call('POST', '/api/rooms', { name: 'random' });
  await bob.join('random');

  const polling = ada.poll();
  await waitFor(async () => (await parked(base)) === 1, 'the poll to be suspended');
  // A post in a room ada does not poll wakes nobody; the next one in general does.
  await bob.post('random', 'elsewhere');
  const posted = await bob.post('general', 'wake up');
  const res = await polling;
  assert.equal(res.status, 200);
  assert.deepEqual(res.body.events, [posted]);
  assert.equal(await parked(base), 0);
});

test('a suspended poll expires after the hold timeout with an empty answer, under the connection ID it was given', async (t) => {
  const { base, dbPath } = await startLab(t, 1);
  const { ada } = await adaAndBob(base);

  const started = Date.now();
  const res = await ada.poll();
  const elapsed = Date.now() - started;
  assert.equal(res.status, 200);
  assert.deepEqual(res.body, { events: [], connectionId: res.headers.get('comet-connection-id') });
  assert.ok(elapsed >= 900 && elapsed < 5000, `answered after ${elapsed} ms`);

  // The expiry re-ran the handler: it reused the connection ID of the first run instead of issuing another.
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  t.after(() => db.close());
  assert.equal((db.prepare('SELECT COUNT(*) AS n FROM connections').get() as { n: number }).n, 1);
});

test('a re-run that fails takes the app error path: the poller left the room while suspended', async (t) => {
  const { base } = await startLab(t, 30);
  const { ada } = await adaAndBob(base);

  const polling = ada.poll();
  await waitFor(async () => (await parked(base)) === 1, 'the poll to be suspended');
  assert.equal((await ada.call('POST', '/api/rooms/general/leave')).status, 200);
  const res = await polling;
  assert.equal(res.status, 403);
  assert.equal(res.body.code, 'APP_ERR_NOT_MEMBER');
});

test('20 clients in 2 rooms polling in loops receive every one of 200 concurrent posts of their room once, in order', async (t) => {
  const { base } = await startLab(t, 5);
  await countingScenario(base);
  assert.equal(await parked(base), 0);
});

test('closing the server releases a suspended poll at once', async (t) => {
  const { lab, base } = await startLab(t, 30);
  const { ada } = await adaAndBob(base);
  const polling = ada.poll().then(
    (res) => res.status,
    () => 'dropped',
  );
  await waitFor(async () => (await parked(base)) === 1, 'the poll to be suspended');
  const started = Date.now();
  await lab.close();
  const outcome = await polling;
  assert.ok(outcome === 200 || outcome === 'dropped', `outcome ${outcome}`);
  assert.ok(Date.now() - started < 2000, 'close did not wait for the hold timeout');
  assert.equal(lab.parked(), 0);
});
