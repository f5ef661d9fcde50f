import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startControlRecorder } from '../helpers/app-control-recorder.js';
import { defer, tempDir } from '../helpers/app-harness.js';

const MAIN = fileURLToPath(new URL('../../server/main.ts', import.meta.url));

function run(env: NodeJS.ProcessEnv, args: string[] = []): ChildProcess {
  // A clean environment: only what the test sets, plus PATH for node itself.
  return spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

async function collect(stream: NodeJS.ReadableStream | null): Promise<string> {
  let text = '';
  stream?.setEncoding('utf8');
  for await (const chunk of stream ?? []) text += chunk as string;
  return text;
}

test('bad configuration prints the reason on stderr and exits 2', async () => {
  const child = run({});
  const [stderr, [code]] = await Promise.all([collect(child.stderr), once(child, 'exit')]);
  assert.equal(code, 2);
  assert.match(stderr, /GRIP_SECRET is required/);
});

test('main logs one JSON line with the bound port, serves, and exits 0 on SIGTERM', async (t) => {
  const control = await startControlRecorder(t);
  const dir = tempDir(t);
  const child = run(
    { GRIP_SECRET: 'main-test-secret-0123456', CONTROL_SECRET: 'main-test-control-0123456', LOG_LEVEL: 'info' },
    ['--port', '0', '--db', join(dir, 'chat.db'), '--control-url', control.url],
  );
  const exited = once(child, 'exit');
  defer(t, async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });

  let stdout = '';
  child.stdout!.setEncoding('utf8');
  const listening = new Promise<{ port: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line in: ${stdout}`)), 10_000);
    child.stdout!.on('data', (chunk: string) => {
      stdout += chunk;
      for (const line of stdout.split('\n')) {
        if (!line.startsWith('{')) continue;
        const record = JSON.parse(line) as { msg?: string; port?: number };
        if (record.msg === 'chat app listening' && typeof record.port === 'number') {
          clearTimeout(timer);
          resolve({ port: record.port });
        }
      }
    });
  });
  const { port } = await listening;
  assert.ok(port > 0);

  const res = await fetch(`http://127.0.0.1:${port}/api/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ nick: 'ada' }),
  });
  assert.equal(res.status, 201);
  // Signing in publishes nothing (a quiet lobby); a post reaches the control API through the relay.
  const cookie = res.headers.getSetCookie()[0]!.split(';')[0]!;
  const posted = await fetch(`http://127.0.0.1:${port}/api/rooms/lobby/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', cookie },
    body: JSON.stringify({ text: 'hello' }),
  });
  assert.equal(posted.status, 201);
  await control.waitForItems(1);

  child.kill('SIGTERM');
  const [code, signal] = await exited;
  assert.equal(signal, null);
  assert.equal(code, 0);
});
