/**
 * `npm start` on every core: the launcher (built, as `npm start` runs it) forks
 * the app and the proxy as two processes, wires them, stops them in order on
 * SIGTERM, and never leaves one running without the other. Checked against the
 * kernel's view (/proc, TCP connects), not the launcher's word.
 * Needs `npm run build` first (npm test does it).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import net from 'node:net';
import { join } from 'node:path';
import { ChatClient, waitFor } from '../helpers/chat-client.js';
import { childPids, commandLine, descendantPids, isAlive, listeningPorts, refused } from '../helpers/processes.js';

const STOP_DEADLINE_MS = 15_000;

interface Running {
  launcher: ChildProcess;
  base: string;
  clientPort: number;
  appPort: number;
  controlPort: number;
  appPid: number;
  proxyPid: number;
  stderr(): string;
  exitCode(): Promise<number | null>;
}

function launch(t: TestContext, env: Record<string, string> = {}, command: readonly string[] = [process.execPath, 'dist/launcher/main.js']) {
  const dataDir = mkdtempSync(join(tmpdir(), 'comet-launcher-'));
  const launcher = spawn(command[0]!, command.slice(1), {
    env: { ...process.env, PROXY_PORT: '0', APP_PORT: '0', CONTROL_PORT: '0', DB_PATH: join(dataDir, 'chat.db'), LOG_LEVEL: 'warn', GRIP_SECRET: '', CONTROL_SECRET: '', LEASE_KEY: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  launcher.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => launcher.once('exit', (code) => resolve(code)));
  t.after(async () => {
    // Never leave a process behind, whatever the test did.
    for (const pid of [launcher.pid!, ...descendantPids(launcher.pid!)]) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });
  const printed = new Promise<{ base: string; clientPort: number; appPort: number; controlPort: number }>((resolve, reject) => {
    let out = '';
    launcher.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /running at (http:\/\/\S+?:(\d+))\/ \(app on port (\d+), control API on port (\d+)\)/.exec(out);
      if (m) resolve({ base: m[1]!, clientPort: Number(m[2]), appPort: Number(m[3]), controlPort: Number(m[4]) });
    });
    void exited.then((code) => reject(new Error(`launcher exited with ${code} before running: ${stderr}`)));
  });
  printed.catch(() => {}); // A test that expects the launcher to fail never awaits it.
  const running = async (): Promise<Running> => {
    const urls = await printed;
    const kids = childPids(launcher.pid!);
    const appPid = kids.find((pid) => commandLine(pid).includes('server/main.js'));
    const proxyPid = kids.find((pid) => commandLine(pid).includes('proxy/main.js'));
    assert.ok(appPid !== undefined && proxyPid !== undefined, `an app and a proxy child, got ${kids.map(commandLine).join(' | ')}`);
    return { launcher, ...urls, appPid, proxyPid, stderr: () => stderr, exitCode: () => exited };
  };
  return { launcher, dataDir, printed, running, exitCode: () => exited, stderr: () => stderr };
}

async function exitWithin(run: { exitCode(): Promise<number | null> }, what: string): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${STOP_DEADLINE_MS} ms waiting for ${what}`)), STOP_DEADLINE_MS);
  });
  try {
    return await Promise.race([run.exitCode(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

test('npm start runs the app and the proxy as two child processes, each listening on its own ports, and a posted message reaches a parked poll', async (t) => {
  const run = await launch(t).running();
  assert.notEqual(run.appPid, run.launcher.pid);
  assert.notEqual(run.proxyPid, run.launcher.pid);
  assert.notEqual(run.appPid, run.proxyPid);
  assert.deepEqual(listeningPorts(run.appPid), [run.appPort], 'the app process owns the app port, and only it');
  assert.deepEqual(listeningPorts(run.proxyPid), [run.clientPort, run.controlPort].sort((a, b) => a - b), 'the proxy process owns the client and control ports');
  assert.deepEqual(listeningPorts(run.launcher.pid!), [], 'the launcher itself listens on nothing');

  const ada = new ChatClient(run.base);
  const bob = new ChatClient(run.base);
  await ada.login('ada');
  await bob.login('bob');
  ada.cursors.set('lobby', (await ada.call('GET', '/api/rooms/lobby/messages?limit=1')).body.cursor);
  const pending = ada.poll();
  const posted = await bob.post('lobby', 'across two processes');
  const answer = await pending;
  assert.deepEqual(answer.body.events.map((e: { id: number; text: string }) => [e.id, e.text]), [[posted.id, 'across two processes']]);
});

const CONTROL_SECRET = 'launcher-test-control-0123456789';

test('SIGTERM to the launcher has the proxy answer its parked poll, exits 0 and leaves no process or port behind', async (t) => {
  const run = await launch(t, { CONTROL_SECRET }).running();
  const ada = new ChatClient(run.base);
  await ada.login('ada');
  ada.cursors.set('lobby', (await ada.call('GET', '/api/rooms/lobby/messages?limit=1')).body.cursor);
  const parked = ada.poll();
  const stats = async () => {
    const res = await fetch(`http://127.0.0.1:${run.controlPort}/stats`, { headers: { authorization: `Bearer ${CONTROL_SECRET}` } });
    return ((await res.json()) as { parked: number }).parked;
  };
  await waitFor(async () => (await stats()) === 1, 'the poll to be parked');
  run.launcher.kill('SIGTERM');
  const drained = await parked;
  assert.equal(drained.status, 200);
  assert.deepEqual(drained.body.events, []);
  assert.equal(await exitWithin(run, 'the launcher to exit'), 0, run.stderr());
  await waitFor(() => !isAlive(run.appPid) && !isAlive(run.proxyPid), 'both children to be gone', STOP_DEADLINE_MS);
  for (const port of [run.clientPort, run.appPort, run.controlPort]) assert.ok(await refused(port), `port ${port} is closed`);
});

test('SIGINT to the launcher (Ctrl-C) also stops both children and exits 0', async (t) => {
  const run = await launch(t).running();
  run.launcher.kill('SIGINT');
  assert.equal(await exitWithin(run, 'the launcher to exit'), 0, run.stderr());
  await waitFor(() => !isAlive(run.appPid) && !isAlive(run.proxyPid), 'both children to be gone', STOP_DEADLINE_MS);
});

for (const victim of ['proxy', 'app'] as const) {
  test(`${victim === 'app' ? 'an' : 'a'} ${victim} killed with SIGKILL takes the launcher down with exit 1 and a message naming it, and the other child stops too`, async (t) => {
    const run = await launch(t).running();
    const [killed, other] = victim === 'proxy' ? [run.proxyPid, run.appPid] : [run.appPid, run.proxyPid];
    process.kill(killed, 'SIGKILL');
    assert.equal(await exitWithin(run, 'the launcher to exit'), 1, run.stderr());
    assert.match(run.stderr(), new RegExp(`the ${victim} \\(pid ${killed}\\) exited unexpectedly on SIGKILL`));
    await waitFor(() => !isAlive(other), `the ${victim === 'proxy' ? 'app' : 'proxy'} to be gone`, STOP_DEADLINE_MS);
    for (const port of [run.clientPort, run.appPort, run.controlPort]) assert.ok(await refused(port), `port ${port} is closed`);
  });
}

test('a launcher killed with SIGKILL leaves no orphan: both children exit when its IPC channel closes', async (t) => {
  const run = await launch(t).running();
  run.launcher.kill('SIGKILL');
  await exitWithin(run, 'the launcher to die');
  await waitFor(() => !isAlive(run.appPid) && !isAlive(run.proxyPid), 'both orphans to exit', STOP_DEADLINE_MS);
  for (const port of [run.clientPort, run.appPort, run.controlPort]) assert.ok(await refused(port), `port ${port} is closed`);
});

test('a bad value exits 2 with a message naming it before any child starts', async (t) => {
  const started = launch(t, { PROXY_PORT: 'eighty' });
  assert.equal(await exitWithin(started, 'the launcher to exit'), 2);
  assert.match(started.stderr(), /^comet-chat: .*eighty/m);
  assert.ok(!existsSync(join(started.dataDir, 'chat.db')), 'the app never started: no database was created');
});

test('a proxy that cannot listen (its port taken) makes the launcher exit 1 naming it, and the app it started stops too', async (t) => {
  const taken = net.createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  t.after(() => taken.close());
  const started = launch(t, { PROXY_PORT: String((taken.address() as net.AddressInfo).port) });
  // The app is forked first and is running by the time the proxy fails.
  let appPid: number | undefined;
  await waitFor(() => {
    appPid ??= childPids(started.launcher.pid!).find((pid) => /server\/main\.js/.test(commandLineOrEmpty(pid)));
    return appPid !== undefined || started.launcher.exitCode !== null;
  }, 'the app to be forked', STOP_DEADLINE_MS);
  assert.equal(await exitWithin(started, 'the launcher to exit'), 1, started.stderr());
  assert.match(started.stderr(), /comet-chat: cannot start: the proxy exited with code 1/);
  assert.ok(appPid !== undefined, 'the app was forked before the proxy');
  await waitFor(() => !isAlive(appPid!), 'the app to be gone', STOP_DEADLINE_MS);
});

function commandLineOrEmpty(pid: number): string {
  try {
    return commandLine(pid);
  } catch {
    return '';
  }
}

test('SIGTERM to `npm start` (as a process manager sends it, to npm\'s pid) stops everything: npm exits 0, no process below it and no port is left', async (t) => {
  // --ignore-scripts skips only prestart (the build, done already); npm still runs the start script.
  const npm = launch(t, {}, ['npm', 'start', '--ignore-scripts', '--silent']);
  const { clientPort, appPort, controlPort } = await npm.printed;
  const below = descendantPids(npm.launcher.pid!);
  assert.ok(below.some((pid) => commandLine(pid).includes('launcher/main.js')), 'npm runs the launcher');
  assert.ok(below.some((pid) => commandLine(pid).includes('server/main.js')) && below.some((pid) => commandLine(pid).includes('proxy/main.js')), 'and its two children');
  for (const port of [clientPort, appPort, controlPort]) assert.equal(await refused(port), false, `port ${port} is open while running`);
  npm.launcher.kill('SIGTERM');
  assert.equal(await exitWithin(npm, 'npm to exit'), 0, npm.stderr());
  await waitFor(() => below.every((pid) => !isAlive(pid)), 'every process below npm to be gone', STOP_DEADLINE_MS);
  for (const port of [clientPort, appPort, controlPort]) assert.ok(await refused(port), `port ${port} is closed`);
});
