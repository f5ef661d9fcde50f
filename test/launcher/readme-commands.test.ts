/**
 * The README's quick start, run as written in bash and in zsh (whose globbing
 * refuses an unquoted `?`): after `npm start` (the launcher, on ephemeral ports
 * substituted for 8080 and 5561), the curl session block signs two people in,
 * parks a poll that bob's post answers, and the push block reads the secrets
 * the launcher saved and uses the control API with them.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from '../helpers/chat-client.js';

const README = readFileSync(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8');
const DEADLINE_MS = 20_000;

/** The ```sh block after `marker`, its commands (continuation lines joined, comment lines dropped). */
function shellBlock(marker: string): string[] {
  const from = README.indexOf(marker);
  assert.ok(from >= 0, `README has "${marker}"`);
  const block = /```sh\n([\s\S]*?)```/.exec(README.slice(from))![1]!;
  const commands: string[] = [];
  let pending = '';
  for (const line of block.split('\n')) {
    if (pending === '' && (line.trim() === '' || line.trim().startsWith('#'))) continue;
    pending += line.endsWith('\\') ? line.slice(0, -1) : line;
    if (!line.endsWith('\\')) {
      commands.push(pending);
      pending = '';
    }
  }
  return commands;
}

interface Started {
  cwd: string;
  clientPort: number;
  controlPort: number;
}

/** The launcher with its database in `<cwd>/data`, as `npm start` from the checkout keeps it in ./data. */
async function startLauncher(t: TestContext): Promise<Started> {
  const cwd = mkdtempSync(join(tmpdir(), 'comet-readme-'));
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'launcher/main.ts')], {
    cwd: root,
    env: { ...process.env, PROXY_PORT: '0', APP_PORT: '0', CONTROL_PORT: '0', DB_PATH: join(cwd, 'data/chat.db'), LOG_LEVEL: 'warn', GRIP_SECRET: '', CONTROL_SECRET: '', LEASE_KEY: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    }
    rmSync(cwd, { recursive: true, force: true });
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /running at http:\/\/\S+?:(\d+)\/ \(app on port \d+, control API on port (\d+)\)/.exec(out);
      if (m) resolve({ cwd, clientPort: Number(m[1]), controlPort: Number(m[2]) });
    });
    child.once('exit', (code) => reject(new Error(`launcher exited with ${code}: ${stderr}`)));
  });
}

/** `command` with the README's ports replaced by the test's. */
function localize(command: string, s: Started): string {
  return command.replaceAll('localhost:8080', `localhost:${s.clientPort}`).replaceAll('localhost:5561', `localhost:${s.controlPort}`);
}

function run(shell: string, command: string, cwd: string): string {
  const result = spawnSync(shell, ['-c', command], { cwd, encoding: 'utf8', timeout: DEADLINE_MS });
  assert.equal(result.status, 0, `${shell}: ${command}\n${result.stderr}`);
  return result.stdout;
}

for (const shell of ['bash', 'zsh']) {
  test(`the README's quick start works as written in ${shell}`, async (t) => {
    const started = await startLauncher(t);
    const [adaIn, bobIn, history, poll, post, ...rest] = shellBlock('Try it with curl:').map((c) => localize(c, started));
    assert.equal(rest.length, 0, 'five commands in the curl block');
    assert.match(run(shell, adaIn!, started.cwd), /^HTTP\/1\.1 201/);
    assert.match(run(shell, bobIn!, started.cwd), /^HTTP\/1\.1 201/);
    const { cursor } = JSON.parse(run(shell, history!, started.cwd)) as { cursor: number };
    assert.equal(typeof cursor, 'number');

    // The poll parks; bob's post answers it.
    const parked = spawn(shell, ['-c', poll!.replace(':N', `:${cursor}`)], { cwd: started.cwd });
    let answer = '';
    parked.stdout.on('data', (d: Buffer) => (answer += d.toString()));
    const exited = new Promise<number | null>((resolve) => parked.once('exit', resolve));
    t.after(() => parked.kill());
    const secrets = readFileSync(join(started.cwd, 'data/secrets.env'), 'utf8');
    const controlSecret = /^CONTROL_SECRET=(.+)$/m.exec(secrets)![1]!;
    const stats = async () =>
      (await (await fetch(`http://127.0.0.1:${started.controlPort}/stats`, { headers: { authorization: `Bearer ${controlSecret}` } })).json()) as { parked: number };
    await waitFor(async () => (await stats()).parked === 1, 'the README poll to park', DEADLINE_MS);
    run(shell, post!, started.cwd);
    assert.equal(await exited, 0);
    assert.deepEqual((JSON.parse(answer) as { events: Array<{ text: string; user: { nick: string } }> }).events.map((e) => [e.user.nick, e.text]), [['bob', 'hi']]);

    // The push examples, from the directory `npm start` ran in (its ./data): the saved secret opens the control API.
    const push = shellBlock('## Pushing from your own code').map((c) => localize(c, started));
    assert.equal(push[0], 'set -a; . ./data/secrets.env; set +a');
    const output = run(shell, push.join('\n'), started.cwd);
    assert.match(output, /"parked":0/, 'the last command, /stats, answered');
    assert.doesNotMatch(output, /"code":"PROXY_ERR_UNAUTHORIZED"|unauthorized/i);
  });
}
