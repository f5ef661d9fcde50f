/**
 * `suspend-push-x2` tells the lab when it is drained (bench/models/target.ts `drained`), the condition the
 * scale-out scenario waits for before its timed phases: every event committed so far has left the app's outbox
 * and every proxy has applied it. Real processes (dist/, so `npm run build` first, and redis-server): with Redis
 * stopped (SIGSTOP) the relay cannot hand a join on, so the target is not drained; once Redis runs again it is, and
 * both proxies have applied the same publishes (their own `/stats`, read through `frontDoorStats`).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { scaledSuspendPushTarget } from '../../../bench/models/suspend-push.js';
import type { RunningTarget } from '../../../bench/models/target.js';
import { waitFor } from '../../helpers/chat-client.js';

const ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)));

/** A POST through the first proxy, as a browser would make it; the answer's status and its `sid` cookie. */
async function post(running: RunningTarget, path: string, body: unknown, sid?: string): Promise<{ status: number; sid?: string }> {
  const res = await fetch(`${running.clientUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(sid === undefined ? {} : { cookie: `sid=${sid}` }) },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  await res.arrayBuffer();
  const cookie = res.headers.getSetCookie().map((c) => c.split(';')[0]!).find((c) => c.startsWith('sid='));
  return { status: res.status, ...(cookie === undefined ? {} : { sid: cookie.slice(4) }) };
}

test('suspend-push-x2 is drained only once the relay handed every join on and both proxies applied it', { timeout: 90_000 }, async (t) => {
  const target = scaledSuspendPushTarget(2);
  assert.equal(await target.unavailable(), null, 'npm run build first, and redis-server installed');
  const workDir = mkdtempSync(join(tmpdir(), 'lab-drained-'));
  t.after(() => rmSync(workDir, { recursive: true, force: true }));
  const running = await target.start({ workDir, holdTimeoutS: 5, maxClients: 10, root: ROOT });
  const redisPid = running.roles().redis!;
  t.after(async () => {
    try {
      process.kill(redisPid, 'SIGCONT');
    } catch {
      // already gone
    }
    await running.stop();
  });
  await waitFor(async () => (await running.drained!()) === true, 'drained at start', 20_000);
  const before = (await running.frontDoorStats!())!;
  assert.equal(before.length, 2, 'one /stats per proxy');

  process.kill(redisPid, 'SIGSTOP');
  const session = await post(running, '/api/session', { nick: 'drainer' });
  assert.equal(session.status, 201);
  assert.equal((await post(running, '/api/rooms', { name: 'drain-room' }, session.sid)).status, 201);
  assert.equal((await post(running, '/api/rooms/drain-room/join', {}, session.sid)).status, 200);
  // Committed, but the relay cannot put it on the stopped Redis: the outbox holds it.
  assert.equal(await running.drained!(), false);

  process.kill(redisPid, 'SIGCONT');
  await waitFor(async () => (await running.drained!()) === true, 'drained once Redis runs again', 30_000);
  const after = (await running.frontDoorStats!())!;
  const applied = after.map((stats, i) => stats.publishes! - before[i]!.publishes!);
  assert.ok(applied[0]! > 0, `the join reached the proxies: ${JSON.stringify(applied)}`);
  assert.equal(applied[0], applied[1], 'both proxies applied the same publishes');
});
