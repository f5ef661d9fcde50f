import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { request, TEST_CONTROL_SECRET, TEST_SECRET, waitFor } from '../helpers/proxy-harness.js';
import { startScriptedApp, writeHold } from '../helpers/scripted-app.js';

const MAIN = fileURLToPath(new URL('../../proxy/main.ts', import.meta.url));

function startMain(env: NodeJS.ProcessEnv, args: string[] = []): { child: ChildProcess; lines: AsyncIterableIterator<string>; stderr: () => string } {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  return { child, lines, stderr: () => stderr };
}

async function exitCode(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  const [code] = (await once(child, 'exit')) as [number | null];
  return code;
}

describe('proxy/main.ts', { timeout: 30_000 }, () => {
  test('on SIGTERM it answers parked requests with their timeout response and exits 0', async (t) => {
    const app = await startScriptedApp();
    t.after(() => app.close());
    app.handle = (_req, res) => writeHold(res, { channel: 'room:a', body: '{"events":[],"timeout":true}' });

    const { child, lines } = startMain({ GRIP_SECRET: TEST_SECRET, CONTROL_SECRET: TEST_CONTROL_SECRET, APP_URL: app.url, PROXY_PORT: '0', CONTROL_PORT: '0', LOG_LEVEL: 'info' });
    t.after(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });

    let listening: { clientPort?: number; controlPort?: number; msg?: string } = {};
    for (let i = 0; i < 20 && listening.msg !== 'listening'; i++) {
      const next = await lines.next();
      if (next.done) break;
      listening = JSON.parse(next.value) as typeof listening;
    }
    assert.equal(listening.msg, 'listening', 'main logs a "listening" JSON line');
    assert.ok(listening.clientPort! > 0 && listening.controlPort! > 0);

    const poll = request(`http://127.0.0.1:${listening.clientPort}/poll`);
    const parkedInChild = async () => {
      const stats = await request(`http://127.0.0.1:${listening.controlPort}/stats`, { headers: { authorization: `Bearer ${TEST_CONTROL_SECRET}` } });
      return (stats.json() as { parked: number }).parked === 1;
    };
    await waitFor(parkedInChild, { timeoutMs: 5_000, message: 'the poll to be parked in the child' });

    child.kill('SIGTERM');
    const res = await poll;
    assert.equal(res.status, 200);
    assert.equal(res.text, '{"events":[],"timeout":true}');
    assert.equal(res.headers.connection, 'close');
    assert.equal(await exitCode(child), 0);
  });

  test('a missing GRIP_SECRET exits 2 with a message on stderr', async () => {
    const { child, stderr } = startMain({ PROXY_PORT: '0', CONTROL_PORT: '0' });
    assert.equal(await exitCode(child), 2);
    assert.match(stderr(), /GRIP_SECRET is not set/);
  });

  test('a missing CONTROL_SECRET, or one equal to GRIP_SECRET, exits 2 with a message on stderr that never echoes it', async () => {
    const missing = startMain({ GRIP_SECRET: TEST_SECRET, PROXY_PORT: '0', CONTROL_PORT: '0' });
    assert.equal(await exitCode(missing.child), 2);
    assert.match(missing.stderr(), /CONTROL_SECRET is not set/);
    const same = startMain({ GRIP_SECRET: TEST_SECRET, CONTROL_SECRET: TEST_SECRET, PROXY_PORT: '0', CONTROL_PORT: '0' });
    assert.equal(await exitCode(same.child), 2);
    assert.match(same.stderr(), /controlSecret must differ from secret/);
    assert.ok(!same.stderr().includes(TEST_SECRET));
  });

  test('a bad value exits 2 with a message naming it', async () => {
    const { child, stderr } = startMain({ GRIP_SECRET: TEST_SECRET, CONTROL_SECRET: TEST_CONTROL_SECRET, QUEUE_MAX_ITEMS: 'many' });
    assert.equal(await exitCode(child), 2);
    assert.match(stderr(), /QUEUE_MAX_ITEMS must be a non-negative integer, got "many"/);
  });
});
