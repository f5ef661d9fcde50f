/**
 * CPU of writing prepared answers to parked clients, two builds of `proxy/http/response.js` interleaved in one
 * process (issue 15): N keep-alive clients on loopback each park a request; a round writes one item to every
 * parked response with one build's `writeItem` and reads this process's CPU (`process.cpuUsage`) around that
 * synchronous loop alone (the syscalls happen in it: a loopback write completes at once); the clients then poll
 * again. Rounds alternate between the builds, so a loaded machine weighs on both alike.
 *
 *   npm run build && npx tsx bench/tools/answer-write-cost.ts --a OLD_DIST --b dist [--clients 2000] [--rounds 20]
 *
 * Loopback only; every wait has a deadline.
 */
import http, { type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    a: { type: 'string' },
    b: { type: 'string', default: 'dist' },
    clients: { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '20' },
  },
});
if (values.a === undefined) throw new Error('--a DIST (the build to compare with) is required');
const N = Number(values.clients);
const ROUNDS = Number(values.rounds);
if (!Number.isInteger(N) || N < 1 || !Number.isInteger(ROUNDS) || ROUNDS < 1) throw new Error('--clients and --rounds must be integers >= 1');

type Response = typeof import('../../proxy/http/response.js');
const load = async (dist: string): Promise<Response> => (await import(pathToFileURL(resolve(dist, 'proxy/http/response.js')).href)) as Response;
const builds: Array<{ name: string; mod: Response; cpuUs: number[] }> = [
  { name: values.a, mod: await load(values.a), cpuUs: [] },
  { name: values.b, mod: await load(values.b), cpuUs: [] },
];

const held = { code: 200, headers: { 'content-type': 'application/json', 'cache-control': 'no-store' }, body: Buffer.from('{"events":[]}') };
const parked: ServerResponse[] = [];
const server = http.createServer((req, res) => {
  req.resume();
  parked.push(res);
});
server.keepAliveTimeout = 120_000;
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const port = (server.address() as { port: number }).port;

const REQUEST = 'GET /poll HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n';
let answered = 0;
const sockets: Socket[] = [];
for (let i = 0; i < N; i++) {
  const s = connect(port, '127.0.0.1');
  s.setEncoding('latin1');
  // Each answer ends with the item's body; the client polls again as soon as it has it.
  s.on('data', (chunk: string) => {
    if (chunk.endsWith(']}')) {
      answered++;
      s.write(REQUEST);
    }
  });
  s.on('connect', () => s.write(REQUEST));
  sockets.push(s);
}

async function until(what: string, check: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

try {
  for (let round = 0; round < 2 + 2 * ROUNDS; round++) {
    await until(`${N} parked`, () => parked.length >= N);
    const build = builds[round % 2]!;
    const item = build.mod.prepareItem({ headers: [['content-type', 'application/json']], body: Buffer.from(`{"events":[{"id":${round},"text":"round ${round}"}]}`) });
    const batch = parked.splice(0, parked.length);
    answered = 0;
    const before = process.cpuUsage();
    for (const res of batch) build.mod.writeItem(res, held, item);
    const used = process.cpuUsage(before);
    if (round >= 2) build.cpuUs.push(used.user + used.system);
    await until(`round ${round} answered`, () => answered >= N);
  }
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
  for (const b of builds) {
    process.stdout.write(`${b.name}: µs CPU per answer written, median of ${b.cpuUs.length} rounds ${(median(b.cpuUs) / N).toFixed(2)} (rounds: ${b.cpuUs.map((u) => (u / N).toFixed(1)).join(' ')})\n`);
  }
} finally {
  for (const s of sockets) s.destroy();
  server.closeAllConnections();
  server.close();
}
