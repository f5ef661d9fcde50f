/**
 * The proxy's workers (docs/scaleout.md "Workers", docs/performance.md "Workers: mechanism"): a storm of N
 * first polls at once, each on its own socket, then ONE publish fanned out to all N. Runs the proxy
 * (`proxy/main.ts`) as a child with PROXY_WORKERS=W and NODE_CLUSTER_SCHED_POLICY=rr|none, behind a minimal
 * GRIP app in this process that holds every poll on one channel. Prints, per setting: time until all N are
 * parked, how they spread over the workers, and time from the publish to the last answer. Loopback only;
 * every wait bounded.
 *
 *   npx tsx bench/tools/workers-storm.ts [--polls 10000] [--settings 1:rr,2:rr,2:none] [--rounds 3] [--redis-url redis://127.0.0.1:PORT]
 *
 * `--redis-url` runs the proxy on that Redis bus (its primary the host's member, docs/scaleout.md); point it at
 * a private loopback redis-server, never a shared one (the bench publishes on its stream).
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

const { values } = parseArgs({
  options: {
    polls: { type: 'string', default: '10000' },
    settings: { type: 'string', default: '1:rr,2:rr,2:none' },
    rounds: { type: 'string', default: '3' },
    'redis-url': { type: 'string' },
  },
});
const N = Number(values.polls);
const ROUNDS = Number(values.rounds);
const SECRET = 'storm-secret-0123456789abcdef';
const CONTROL_SECRET = 'storm-control-secret-0123456789';
const MAIN = fileURLToPath(new URL('../../proxy/main.ts', import.meta.url));
let agent = new http.Agent({ keepAlive: true, maxSockets: 4 });

function get(url: string, headers: Record<string, string> = {}, a: http.Agent | false = false, body?: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: body === undefined ? 'GET' : 'POST', headers, agent: a }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => (text += c)).on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 100_000; i++) {
    // A kept-alive control connection the proxy closed meanwhile fails once: ask again.
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function run(workers: number, policy: string): Promise<void> {
  agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const app = http.createServer((_req, res) => {
    res.writeHead(200, { 'Grip-Hold': 'response', 'Grip-Channel': 'fan', 'Grip-Timeout': '120', 'Content-Type': 'application/json' }).end('{"timeout":true}');
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', () => r()));
  const appPort = (app.address() as { port: number }).port;
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN], {
    env: {
      PATH: process.env.PATH, GRIP_SECRET: SECRET, CONTROL_SECRET, APP_URL: `http://127.0.0.1:${appPort}`, PROXY_PORT: '0', CONTROL_PORT: '0',
      PROXY_WORKERS: String(workers), NODE_CLUSTER_SCHED_POLICY: policy, LOG_LEVEL: 'info', MAX_PARKED: String(N * 2), MAX_PARKED_PER_ADDRESS: String(N * 2),
      ...(values['redis-url'] === undefined ? {} : { REDIS_URL: values['redis-url'] }),
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  // Whatever happens below, the proxy does not outlive this bench.
  process.once('exit', () => child.kill('SIGKILL'));
  const ports = await new Promise<{ clientPort: number; controlPort: number }>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const e = JSON.parse(line) as { msg?: string; clientPort: number; controlPort: number };
        if (e.msg === 'listening') resolve(e);
      } catch { /* ignore */ }
    });
    child.once('exit', (code) => reject(new Error(`proxy exited ${code}`)));
  });
  const base = `http://127.0.0.1:${ports.clientPort}`;
  const control = `http://127.0.0.1:${ports.controlPort}`;
  const auth = { authorization: `Bearer ${CONTROL_SECRET}` };
  const stats = async () => JSON.parse((await get(`${control}/stats`, auth, agent)).text) as { parked: number; workers?: Array<{ parked: number }> };

  const parks: number[] = [];
  const fans: number[] = [];
  let spread = '';
  for (let round = 0; round < ROUNDS; round++) {
    const t0 = performance.now();
    let answered = 0;
    let failed = 0;
    const reasons = new Map<string, number>();
    let lastAnswer = 0;
    const polls = Array.from({ length: N }, () =>
      get(`${base}/poll`).then((r) => {
        if (r.status === 200) answered++;
        else reasons.set(String(r.status), (reasons.get(String(r.status)) ?? 0) + 1);
        lastAnswer = performance.now();
      }, (err: NodeJS.ErrnoException) => {
        failed++;
        reasons.set(err.code ?? err.message, (reasons.get(err.code ?? err.message) ?? 0) + 1);
      }),
    );
    await until(async () => (await stats()).parked + failed >= N, 60_000, `${N} parked`);
    if (failed > 0) console.log(`  round ${round}: ${failed} polls failed: ${JSON.stringify([...reasons])}`);
    parks.push(performance.now() - t0);
    const s = await stats();
    spread = (s.workers ?? [{ parked: s.parked }]).map((w) => w.parked).join('/');
    const t1 = performance.now();
    const body = JSON.stringify({ items: [{ channel: 'fan', formats: { 'http-response': { body: `{"round":${round}}` } } }] });
    await get(`${control}/publish/`, { ...auth, 'content-type': 'application/json' }, agent, body);
    await Promise.race([Promise.all(polls), new Promise((r) => setTimeout(r, 60_000))]);
    fans.push(lastAnswer - t1);
    if (answered !== N - failed) console.log(`  round ${round}: only ${answered}/${N - failed} answered ${JSON.stringify([...reasons])}`);
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(
    `workers=${workers} policy=${policy}${values['redis-url'] === undefined ? '' : ' redis'} polls=${N}: park all ${median(parks).toFixed(0)} ms (${parks.map((x) => x.toFixed(0)).join(', ')}), ` +
      `spread ${spread}, fan-out to last ${median(fans).toFixed(0)} ms (${fans.map((x) => x.toFixed(0)).join(', ')})`,
  );
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  await new Promise((r) => app.close(r));
  agent.destroy();
}

for (const setting of String(values.settings).split(',')) {
  const [w, p] = setting.split(':');
  await run(Number(w), p ?? 'rr');
}
