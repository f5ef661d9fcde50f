/**
 * `RunningTarget.restart` of the Suspend & Push target (the soak scenario's restarts, bench/lab/soak/): the
 * proxy or the app gets SIGTERM, exits 0, and a new process serves on the same port and database, while a
 * client keeps its session and cursor. Needs `npm run build` (the target runs dist/).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isAlive } from '../../../bench/models/process-tree.js';
import { suspendPushTarget } from '../../../bench/models/suspend-push.js';
import type { RunningTarget } from '../../../bench/models/target.js';
import { adaAndBob, waitFor } from '../../helpers/chat-client.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');

test('the suspend-push target restarts its proxy and its app on the same ports and database, each exiting 0 on SIGTERM', { timeout: 90_000 }, async (t) => {
  assert.equal(await suspendPushTarget.unavailable(), null, 'npm run build first');
  const workDir = mkdtempSync(join(tmpdir(), 'lab-restart-'));
  let running: RunningTarget | undefined;
  t.after(async () => {
    await running?.stop();
    rmSync(workDir, { recursive: true, force: true });
  });
  // A hold far longer than the test: the parked poll can only end through the proxy's shutdown.
  running = await suspendPushTarget.start({ workDir, holdTimeoutS: 60, maxClients: 10, root: ROOT });
  const target = running;
  assert.ok(target.restart && target.control && target.exitCodes, 'the target can restart and has a control API');
  const { ada, bob } = await adaAndBob(target.clientUrl);

  // A poll parked across the proxy's restart is answered by its shutdown (the timeout response), not dropped.
  const parked = ada.poll();
  await waitFor(async () => (await target.parked()) === 1, 'the poll to park', 10_000);
  const oldProxy = target.roles().proxy!;
  const proxyRestart = await target.restart('proxy');
  assert.equal(proxyRestart.exitCode, 0);
  assert.ok(proxyRestart.stopMs >= 0 && proxyRestart.startMs > 0);
  const answer = await parked;
  assert.equal(answer.status, 200);
  assert.deepEqual(answer.body.events, []);
  assert.notEqual(target.roles().proxy, oldProxy);
  assert.equal(isAlive(oldProxy), false, 'the old proxy is gone');
  assert.ok(target.pids().includes(target.roles().proxy!), 'pids() names the new proxy');

  // The new proxy serves the same session and cursor.
  const first = await bob.post('general', 'after the proxy restart');
  const got = await ada.poll();
  assert.deepEqual(got.body.events.map((e: { id: number }) => e.id), [first.id]);

  const oldApp = target.roles().app!;
  const appRestart = await target.restart('app');
  assert.equal(appRestart.exitCode, 0);
  assert.notEqual(target.roles().app, oldApp);
  assert.equal(isAlive(oldApp), false, 'the old app is gone');
  // Same database: the session still signs bob in, and event ids continue after the first message.
  const second = await bob.post('general', 'after the app restart');
  assert.ok(second.id > first.id);
  const next = await ada.poll();
  assert.deepEqual(next.body.events.map((e: { id: number }) => e.id), [second.id]);

  await assert.rejects(target.restart('nope'), /no process "nope" to restart/);
  await target.stop();
  assert.deepEqual(await target.exitCodes(), { app: 0, proxy: 0 });
});
