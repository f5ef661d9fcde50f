/**
 * "Keepalive but not pipelining": a legacy client that pipelines a request
 * behind a parked poll on the same connection must not wait for the hold.
 * The proxy answers the poll with its timeout response at once (the client
 * re-polls) and the pipelined request is answered right after, in order.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';
import { startHarness, waitFor } from '../helpers/proxy-harness.js';
import { writeHold } from '../helpers/scripted-app.js';

/** Sends raw bytes on one connection and collects everything the server writes until it has `responses` responses. */
function rawExchange(port: number, payload: string, responses: number, onConnected?: (write: (s: string) => void) => void) {
  return new Promise<string>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let data = '';
    socket.setEncoding('utf8');
    socket.on('connect', () => {
      socket.write(payload);
      onConnected?.((s) => socket.write(s));
    });
    socket.on('data', (chunk: string) => {
      data += chunk;
      if ((data.match(/HTTP\/1\.1 \d{3}/g) ?? []).length >= responses && /\r\n\r\n[\s\S]*ok-next$/.test(data)) {
        socket.end();
        resolve(data);
      }
    });
    socket.on('error', reject);
    socket.setTimeout(5000, () => {
      socket.destroy();
      reject(new Error(`no complete answer within 5 s; got ${JSON.stringify(data)}`));
    });
  });
}

test('a request pipelined behind a parked poll releases the poll with its timeout response, then is answered', async (t) => {
  const h = await startHarness(t);
  h.app.handle = (req, res) => {
    if (req.url === '/poll') writeHold(res, { channel: 'c', timeoutS: 55, body: 'timeout-body' });
    else res.end('ok-next');
  };
  const port = Number(new URL(h.clientUrl).port);
  let sendNext: (s: string) => void = () => undefined;
  const answer = rawExchange(port, 'GET /poll HTTP/1.1\r\nHost: localhost\r\n\r\n', 2, (write) => (sendNext = write));
  await h.waitParked(1);
  sendNext('GET /next HTTP/1.1\r\nHost: localhost\r\n\r\n');
  const raw = await answer;

  const first = raw.indexOf('timeout-body');
  const second = raw.indexOf('ok-next');
  assert.ok(first > 0 && second > first, `both answers, in order: ${JSON.stringify(raw)}`);
  assert.equal(h.proxy.stats().pipelineReleases, 1);
  assert.equal(h.proxy.stats().parked, 0);
});

test('a poll whose connection already has a pipelined request behind it is never parked', async (t) => {
  const h = await startHarness(t);
  let releaseHold: () => void = () => undefined;
  h.app.handle = (req, res) => {
    if (req.url === '/poll') {
      // Answer the hold only once the pipelined request has reached the proxy.
      releaseHold = () => writeHold(res, { channel: 'c', timeoutS: 55, body: 'timeout-body' });
    } else {
      res.end('ok-next');
    }
  };
  const port = Number(new URL(h.clientUrl).port);
  const answer = rawExchange(port, 'GET /poll HTTP/1.1\r\nHost: localhost\r\n\r\nGET /next HTTP/1.1\r\nHost: localhost\r\n\r\n', 2);
  await waitFor(() => h.app.requests.length === 2, { message: 'both requests at the app' });
  releaseHold();
  const raw = await answer;
  assert.ok(raw.indexOf('timeout-body') < raw.indexOf('ok-next'), raw);
  assert.equal(h.proxy.stats().pipelineReleases, 1);
  assert.equal(h.proxy.stats().holds, 1);
  assert.equal(h.proxy.stats().parked, 0);
});
