/**
 * The pipelining outage of issue 14 item 1, measured: starts the app and the proxy as two
 * child processes on a temp database (default settings), gives a room about 120 KB of
 * history, and runs `--clients` normal clients, each looping sign-in, post, poll (answered
 * at once: its cursor is one behind) with a short pause between calls. It times every call
 * for `--baseline-s` without attack, then for `--attack-s` while an attacker opens one
 * connection every `--every-s`: `--pipelined` history requests (`limit=200`) in one write,
 * nothing read, closed after `--close-after-ms` (500). Prints p50/p99/max latency per phase,
 * how many calls took a second or more, and how many failed (an error status, or no answer
 * within `--timeout-s`), and the proxy's warn lines.
 *
 *   npx tsx bench/tools/pipeline-attack.ts [--clients 50] [--baseline-s 20] [--attack-s 20] [--every-s 3]
 *                                          [--pause-ms 1000] [--close-after-ms 500]
 *
 * Loopback only; every loop ends with its phase, every call with its timeout.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '50' },
    'baseline-s': { type: 'string', default: '20' },
    'attack-s': { type: 'string', default: '20' },
    'every-s': { type: 'string', default: '3' },
    pipelined: { type: 'string', default: '300' },
    'timeout-s': { type: 'string', default: '30' },
    'pause-ms': { type: 'string', default: '1000' },
    'close-after-ms': { type: 'string', default: '500' },
  },
});
function positive(name: string, max: number): number {
  const n = Number(values[name as keyof typeof values]);
  if (!Number.isFinite(n) || n <= 0 || n > max) throw new Error(`--${name} must be a number in (0, ${max}]`);
  return n;
}
const CLIENTS = Math.round(positive('clients', 500));
const BASELINE_MS = positive('baseline-s', 600) * 1000;
const ATTACK_MS = positive('attack-s', 600) * 1000;
const EVERY_MS = positive('every-s', 60) * 1000;
const PIPELINED = Math.round(positive('pipelined', 5000));
const TIMEOUT_MS = positive('timeout-s', 120) * 1000;
const PAUSE_MS = positive('pause-ms', 10_000);
const CLOSE_AFTER_MS = positive('close-after-ms', 60_000);

const SECRET = 'attack-secret-0123456789abcdef';
const CONTROL_SECRET = 'attack-control-secret-012345678';
const LEASE_KEY = 'attack-lease-key-fedcba98765432';
const HOST = '127.0.0.1';
/** The room with the big history the attacker asks for. */
const ROOM = 'archive';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, HOST, () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function request(port: number, path: string, init: { method?: string; cookie?: string; body?: unknown; agent?: http.Agent } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const body = init.body === undefined ? undefined : JSON.stringify(init.body);
    const req = http.request(
      {
        host: HOST,
        port,
        path,
        method: init.method ?? 'GET',
        agent: init.agent ?? false,
        timeout: TIMEOUT_MS,
        headers: {
          ...(body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }),
          ...(init.cookie === undefined ? {} : { cookie: init.cookie }),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

function cookieOf(answer: Answer): string {
  const set = answer.headers['set-cookie']?.[0];
  if (set === undefined) throw new Error(`no session cookie (status ${answer.status})`);
  return set.split(';')[0]!;
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function start(script: string, env: NodeJS.ProcessEnv, onLine?: (line: string) => void): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let rest = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    const lines = (rest + chunk).split('\n');
    rest = lines.pop()!;
    for (const line of lines) onLine?.(line);
  });
  return child;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

/** One attack connection: `count` pipelined history requests in one write, nothing read, closed after `CLOSE_AFTER_MS`. */
function attackOnce(port: number, cookie: string, count: number): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect(port, HOST);
    socket.pause();
    socket.on('error', () => undefined);
    const one = `GET /api/rooms/${ROOM}/messages?limit=200 HTTP/1.1\r\nHost: ${HOST}:${port}\r\nCookie: ${cookie}\r\n\r\n`;
    socket.once('connect', () => socket.write(one.repeat(count)));
    const timer = setTimeout(() => socket.destroy(), CLOSE_AFTER_MS);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

interface Sample {
  phase: 'baseline' | 'attack';
  ms: number;
  ok: boolean;
}

/** A normal client: sign-in, post, poll, each timed, until `until()` says stop. */
async function normalClient(port: number, n: number, phase: () => Sample['phase'] | null, samples: Sample[]): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
  const timed = async (call: () => Promise<Answer>, expect: number): Promise<Answer | null> => {
    const at = phase();
    if (at === null) return null;
    const started = performance.now();
    try {
      const answer = await call();
      samples.push({ phase: at, ms: performance.now() - started, ok: answer.status === expect });
      return answer;
    } catch {
      samples.push({ phase: at, ms: performance.now() - started, ok: false });
      return null;
    }
  };
  for (let round = 0; phase() !== null; round++) {
    const signIn = await timed(() => request(port, '/api/session', { method: 'POST', body: { nick: `c${n}r${round}` }, agent }), 201);
    if (signIn === null || signIn.status !== 201) continue;
    const cookie = cookieOf(signIn);
    const post = await timed(() => request(port, '/api/rooms/lobby/messages', { method: 'POST', cookie, body: { text: `hi ${n}/${round}` }, agent }), 201);
    const cursor = post === null || post.status !== 201 ? 1 : Math.max(1, (JSON.parse(post.body) as { event: { id: number } }).event.id - 1);
    await timed(() => request(port, `/api/poll?rooms=lobby:${cursor}`, { cookie, agent }), 200);
    await new Promise((r) => setTimeout(r, PAUSE_MS));
  }
  agent.destroy();
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const dir = mkdtempSync(join(tmpdir(), 'pipeline-attack-'));
const [appPort, proxyPort, controlPort] = [await freePort(), await freePort(), await freePort()];
const children: ChildProcess[] = [];
const warnLines: string[] = [];
try {
  children.push(
    start('server/main.ts', { GRIP_SECRET: SECRET, CONTROL_SECRET, LEASE_KEY, APP_PORT: String(appPort), DB_PATH: join(dir, 'chat.db'), PROXY_CONTROL_URL: `http://${HOST}:${controlPort}` }),
  );
  children.push(
    start(
      'proxy/main.ts',
      { GRIP_SECRET: SECRET, CONTROL_SECRET, LEASE_KEY, PROXY_PORT: String(proxyPort), CONTROL_PORT: String(controlPort), APP_URL: `http://${HOST}:${appPort}` },
      (line) => {
        if (line.includes('"level":40')) warnLines.push(line);
      },
    ),
  );
  await waitFor('the app', async () => (await request(appPort, '/api/rooms')).status > 0, 20_000);
  await waitFor('the proxy', async () => (await request(proxyPort, '/api/rooms')).status !== 502, 20_000);

  // About 120 KB of history in a room of its own (60 messages of 1,900 characters): the normal clients' sign-ins
  // and posts go to the lobby, and would soon push the big messages out of a lobby page of 200 events.
  const writer = cookieOf(await request(proxyPort, '/api/session', { method: 'POST', body: { nick: 'writer' } }));
  const created = await request(proxyPort, '/api/rooms', { method: 'POST', cookie: writer, body: { name: ROOM } });
  if (created.status !== 201) throw new Error(`POST /api/rooms answered ${created.status}: ${created.body}`);
  await request(proxyPort, `/api/rooms/${ROOM}/join`, { method: 'POST', cookie: writer });
  for (let i = 0; i < 60; i++) {
    await request(proxyPort, `/api/rooms/${ROOM}/messages`, { method: 'POST', cookie: writer, body: { text: `${i} `.padEnd(1900, 'x') } });
  }
  const mallory = cookieOf(await request(proxyPort, '/api/session', { method: 'POST', body: { nick: 'mallory' } }));
  await request(proxyPort, `/api/rooms/${ROOM}/join`, { method: 'POST', cookie: mallory });
  const page = await request(proxyPort, `/api/rooms/${ROOM}/messages?limit=200`, { cookie: mallory });
  if (page.status !== 200 || page.body.length < 100_000) throw new Error(`the history page is ${page.body.length} bytes (status ${page.status})`);

  const samples: Sample[] = [];
  const t0 = Date.now();
  const phase = (): Sample['phase'] | null => {
    const at = Date.now() - t0;
    return at < BASELINE_MS ? 'baseline' : at < BASELINE_MS + ATTACK_MS ? 'attack' : null;
  };
  process.stderr.write(`history page ${page.body.length} bytes; ${CLIENTS} clients; baseline ${BASELINE_MS / 1000} s, attack ${ATTACK_MS / 1000} s\n`);
  const clients = Array.from({ length: CLIENTS }, (_, n) => normalClient(proxyPort, n, phase, samples));
  await new Promise((r) => setTimeout(r, BASELINE_MS));
  let attacks = 0;
  const attacker = (async () => {
    while (phase() === 'attack') {
      attacks++;
      void attackOnce(proxyPort, mallory, PIPELINED);
      await new Promise((r) => setTimeout(r, EVERY_MS));
    }
  })();
  await Promise.all([attacker, ...clients]);

  const rows = (['baseline', 'attack'] as const).map((name) => {
    const of = samples.filter((s) => s.phase === name);
    const sorted = of.map((s) => s.ms).sort((a, b) => a - b);
    const failed = of.filter((s) => !s.ok).length;
    const slow = of.filter((s) => s.ms >= 1000).length;
    return `| ${name} | ${of.length} | ${percentile(sorted, 50).toFixed(1)} | ${percentile(sorted, 99).toFixed(1)} | ${(sorted.at(-1) ?? NaN).toFixed(0)} | ${slow} | ${failed} |`;
  });
  const pipelineWarnings = warnLines.filter((l) => /pipelin|stopped reading/.test(l)).length;
  console.log(`\n${attacks} attack connections of ${PIPELINED} pipelined requests, closed after ${CLOSE_AFTER_MS} ms; proxy warn lines: ${warnLines.length} (${pipelineWarnings} about pipelining or stalled readers)\n`);
  console.log('| phase | calls | p50 ms | p99 ms | max ms | ≥ 1 s | failed |');
  console.log('|---|---|---|---|---|---|---|');
  for (const row of rows) console.log(row);
} finally {
  for (const child of children.reverse()) await stop(child);
  rmSync(dir, { recursive: true, force: true });
}
