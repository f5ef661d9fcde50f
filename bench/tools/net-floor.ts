/**
 * The floor of Node's public socket API for the lab's fan-out cycle (issue 15): what any Node server, however
 * little it does per request, spends per long-poll delivery. bench/tools/net-floor-server.mjs parks N keep-alive
 * connections in a Set without parsing HTTP and answers all of them with one shared, prepared Buffer per publish;
 * the N clients here re-poll as soon as their answer is in, as the lab's leased clients do. Per round: the
 * server's CPU (every thread's /proc schedstat) from the publish until every client is parked again, per 1,000
 * deliveries, after `--warmup` rounds not counted. Compare with the proxy's (bench/tools/delivery-floor.ts
 * --lease) and with Nchan's in the lab (docs/performance.md).
 *
 *   npx tsx bench/tools/net-floor.ts [--clients 10000] [--rounds 5] [--warmup 3] [--body-bytes 300] [--node PATH]
 *
 * Loopback only; every wait has a deadline.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cpuMs } from './first-poll-ab-lib.js';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '10000' },
    rounds: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '3' },
    'body-bytes': { type: 'string', default: '300' },
    node: { type: 'string' },
  },
});
function count(name: string, text: string, min: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}`);
  return n;
}
const N = count('clients', values.clients, 1);
const ROUNDS = count('rounds', values.rounds, 1);
const WARMUP = count('warmup', values.warmup, 0);
const BODY_BYTES = count('body-bytes', values['body-bytes'], 16);
const ROUND_TIMEOUT_MS = 60_000;

/** A re-poll as the lab's clients send one (its size matters to the read path, not its content). */
const REQUEST = Buffer.from(
  'GET /api/poll?rooms=lobby%3A1234&cid=AbCdEfGhIjKlMnOpQrStU HTTP/1.1\r\nHost: 127.0.0.1\r\n' +
    'Cookie: chat_session=0123456789abcdef0123456789abcdef0123456789abcdef\r\nAccept: application/json\r\n' +
    'User-Agent: comet-lab\r\nConnection: keep-alive\r\n\r\n',
  'latin1',
);

async function until(what: () => string, done: () => boolean | Promise<boolean>, timeoutMs: number, stepMs = 5): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what()}`);
    await new Promise((resolve) => setTimeout(resolve, stepMs));
  }
}

const serverPath = fileURLToPath(new URL('./net-floor-server.mjs', import.meta.url));
const server: ChildProcess = fork(serverPath, ['0', String(BODY_BYTES)], {
  stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  ...(values.node === undefined ? {} : { execPath: values.node }),
});
const sockets: Socket[] = [];
let exitCode = 0;
try {
  const { port, responseBytes } = await new Promise<{ port: number; responseBytes: number }>((resolve, reject) => {
    server.once('message', (m: { type: string; port: number; responseBytes: number }) => resolve(m));
    server.once('exit', (code) => reject(new Error(`the server exited (${code}) before listening`)));
  });
  let queryId = 0;
  const parkedCount = (): Promise<number> =>
    new Promise((resolve) => {
      const id = ++queryId;
      const onMessage = (m: { type: string; id: number; parked: number }): void => {
        if (m.type !== 'parked' || m.id !== id) return;
        server.off('message', onMessage);
        resolve(m.parked);
      };
      server.on('message', onMessage);
      server.send({ type: 'parked', id });
    });

  let received = 0;
  let failures = 0;
  let lastReceiptAt = 0;
  for (let i = 0; i < N; i += 500) {
    const batch: Array<Promise<void>> = [];
    for (let j = i; j < Math.min(N, i + 500); j++) {
      batch.push(
        new Promise<void>((resolve, reject) => {
          const socket = connect({ port, host: '127.0.0.1', noDelay: true });
          let pending = 0;
          socket.once('connect', () => {
            socket.write(REQUEST);
            resolve();
          });
          socket.once('error', reject);
          socket.on('data', (chunk: Buffer) => {
            pending += chunk.length;
            while (pending >= responseBytes) {
              pending -= responseBytes;
              received++;
              lastReceiptAt = performance.now();
              socket.write(REQUEST);
            }
          });
          socket.on('close', () => failures++);
          sockets.push(socket);
        }),
      );
    }
    await Promise.all(batch);
  }
  await until(() => `${N} parked`, async () => (await parkedCount()) >= N, ROUND_TIMEOUT_MS, 20);

  const perRound: Array<{ cpu: number; lastMs: number }> = [];
  for (let round = 1; round <= WARMUP + ROUNDS; round++) {
    received = 0;
    const cpu0 = cpuMs(server.pid!);
    const start = performance.now();
    server.send({ type: 'publish' });
    await until(() => `round ${round} delivered (${received}/${N})`, () => received >= N, ROUND_TIMEOUT_MS);
    await until(() => `re-parked in round ${round}`, async () => (await parkedCount()) >= N, ROUND_TIMEOUT_MS);
    if (round > WARMUP) perRound.push({ cpu: ((cpuMs(server.pid!) - cpu0) / N) * 1000, lastMs: lastReceiptAt - start });
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  process.stdout.write(
    `bare net server, ${N} parked, ${responseBytes} B answers: CPU ms/1,000 deliveries per round ${perRound.map((r) => r.cpu.toFixed(1)).join(', ')} ` +
      `(median ${median(perRound.map((r) => r.cpu)).toFixed(1)}); last delivery ms ${perRound.map((r) => r.lastMs.toFixed(0)).join(', ')}; failures ${failures}\n`,
  );
} catch (err) {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  exitCode = 1;
} finally {
  for (const socket of sockets) socket.destroy();
  server.kill();
  process.exit(exitCode);
}
