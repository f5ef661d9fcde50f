/**
 * The client front's keep-alive idle timeout on a clock the test drives (proxy/http/front/front-connection.ts): one
 * timer per connection, kept across idle periods. Real sockets on loopback; only time is the test's.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { connect, type Socket } from 'node:net';
import { test, type TestContext } from 'node:test';
import { KEEP_ALIVE_TIMEOUT_BUFFER_MS } from '../../proxy/http/front/front-connection.js';
import { ClientFront } from '../../proxy/http/front/client-front.js';
import type { ProxyTimers } from '../../proxy/options.js';
import { waitFor } from '../helpers/chat-client.js';

/** Timers that run only when the test advances the clock; no `refresh`, as a Node Timeout would have. */
function manualClock() {
  let ms = 0;
  let next = 0;
  const pending = new Map<number, { at: number; callback: () => void }>();
  const timers: ProxyTimers = {
    now: () => ms,
    setTimeout: (callback, delay) => {
      const id = ++next;
      pending.set(id, { at: ms + delay, callback });
      return id;
    },
    clearTimeout: (id) => void pending.delete(id as number),
  };
  return {
    timers,
    get ms() {
      return ms;
    },
    /** Due times of the timers set and not yet run or cleared. */
    dueTimes: () => [...pending.values()].map((p) => p.at).sort((a, b) => a - b),
    /** Moves the clock to `ms + by`, running every timer due by then in order. */
    advance(by: number): void {
      const until = ms + by;
      for (;;) {
        const due = [...pending.entries()].filter(([, p]) => p.at <= until).sort((a, b) => a[1].at - b[1].at)[0];
        if (due === undefined) break;
        pending.delete(due[0]);
        ms = due[1].at;
        due[1].callback();
      }
      ms = until;
    },
  };
}

const KEEP_ALIVE_MS = 300;
const LIMIT_MS = KEEP_ALIVE_MS + KEEP_ALIVE_TIMEOUT_BUFFER_MS;

/** A front that answers `GET /fast` itself at once; its server side of the one connection the test opens. */
async function startFront(t: TestContext) {
  const clock = manualClock();
  const front = new ClientFront({
    server: createServer(),
    maxHeaderBytes: 16 * 1024,
    headersTimeoutMs: 60_000,
    keepAliveTimeoutMs: KEEP_ALIVE_MS,
    timers: clock.timers,
    mayServe: (method, url) => method === 'GET' && url === '/fast',
    serve: (_req, res) => {
      res.writeHead(200, undefined, { 'content-length': '2' });
      res.write('ok');
      res.end();
      return true;
    },
    releasePipelined: () => undefined,
    answered: () => undefined,
    writeFilled: () => undefined,
  });
  let serverSide: Socket | undefined;
  front.listener.on('connection', (socket: Socket) => (serverSide = socket));
  await front.listen(0, '127.0.0.1');
  t.after(() => front.close());
  const port = (front.listener.address() as { port: number }).port;
  const client = connect(port, '127.0.0.1');
  t.after(() => client.destroy());
  client.on('error', () => undefined);
  let received = '';
  client.setEncoding('latin1').on('data', (chunk: string) => (received += chunk));
  const closed = once(client, 'close');
  await once(client, 'connect');
  await waitFor(() => serverSide !== undefined, 'the front to accept the connection');
  let answers = 0;
  /** One request, and its whole answer back. */
  const ask = async (): Promise<void> => {
    client.write('GET /fast HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    answers++;
    await waitFor(() => received.split('\r\n\r\nok').length - 1 === answers, `answer ${answers}`);
  };
  /** One turn of the proxy's loop after the clock moved: a close the front decided has been done by then. */
  const turn = () => new Promise((resolve) => setImmediate(resolve));
  return { clock, client, closed, ask, turn, serverSide: () => serverSide! };
}

test('an idle period that starts while the last one\'s timer is armed lasts the whole keep-alive timeout too', { timeout: 10_000 }, async (t) => {
  const { clock, closed, ask, turn, serverSide } = await startFront(t);
  await ask(); // idle from 0: the timer is armed for the timeout plus node:http's 1 s
  assert.deepEqual(clock.dueTimes(), [LIMIT_MS]);
  clock.advance(800);
  await ask(); // idle again from 800, the first timer still armed
  assert.deepEqual(clock.dueTimes(), [LIMIT_MS], 'one timer, not one per idle period');
  clock.advance(LIMIT_MS - 800); // the timer fires 500 ms into the second idle period...
  await turn();
  assert.equal(serverSide().destroyed, false, 'not closed before the timeout after the last answer');
  assert.deepEqual(clock.dueTimes(), [800 + LIMIT_MS], '...and waits out the rest of it');
  clock.advance(800 + LIMIT_MS - clock.ms - 1);
  await turn();
  assert.equal(serverSide().destroyed, false, 'open until the last millisecond');
  clock.advance(1);
  await closed;
  assert.equal(clock.ms, 800 + LIMIT_MS, 'closed exactly the timeout plus 1 s after the last answer');
});

test('a request arriving while idle ends the idle period: the armed timer finds the connection busy and closes nothing', { timeout: 10_000 }, async (t) => {
  const { clock, ask, turn, serverSide } = await startFront(t);
  await ask();
  clock.advance(LIMIT_MS - 1);
  await ask(); // just in time
  clock.advance(1); // the first timer fires: idle since LIMIT_MS - 1, so the rest is re-armed
  await turn();
  assert.equal(serverSide().destroyed, false);
  assert.deepEqual(clock.dueTimes(), [2 * LIMIT_MS - 1]);
});
