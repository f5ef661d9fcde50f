/**
 * One plain GRIP streaming backend (test/interop/grip-stream-app.ts) behind the real Pushpin 1.36 and behind our
 * proxy, one test per docs/protocol.md §12 row that stream holds changed: hold modes (`Grip-Hold: stream`),
 * publish item formats (`http-stream` send and close, `http-response` close), `Grip-Keep-Alive`. The same
 * assertions run against both. Pushpin is required (`.ci/run` installs it); without it these fail, never skip.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http, { request as httpRequest, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test, type TestContext } from 'node:test';
import { createHoldProxy } from '../../proxy/proxy.js';
import { backoff } from '../helpers/fault-stack.js';
import { startPushpin } from '../helpers/pushpin.js';
import { request, waitFor } from '../helpers/proxy-harness.js';
import { createGripStreamApp } from './grip-stream-app.js';

const CONTROL_SECRET = 'grip-stream-control-0123456789';

interface Target {
  base: string;
  publish(items: unknown[]): Promise<void>;
}

interface StreamClient {
  res: IncomingMessage;
  text(): string;
  ended(): boolean;
}

/** The app on an ephemeral port, its Grip-Sig key shared with the target. */
async function startApp(t: TestContext, secret: string): Promise<number> {
  const server = http.createServer(createGripStreamApp(`http://127.0.0.1:1/?verify-key=${secret}`).handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  }));
  return (server.address() as AddressInfo).port;
}

function publisherAt(controlUrl: string): Target['publish'] {
  return async (items) => {
    // Bearer for ours; Pushpin's publish API ignores it.
    const res = await request(`${controlUrl}/publish/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${CONTROL_SECRET}` },
      body: JSON.stringify({ items }),
    });
    assert.equal(res.status, 200, res.text);
  };
}

const TARGETS: Record<string, (t: TestContext) => Promise<Target>> = {
  'our proxy': async (t) => {
    const secret = randomBytes(32).toString('hex');
    const appPort = await startApp(t, secret);
    const proxy = createHoldProxy({ upstreamUrl: `http://127.0.0.1:${appPort}`, secret, controlSecret: CONTROL_SECRET, clientPort: 0, controlPort: 0 });
    t.after(() => proxy.close());
    const { clientPort, controlPort } = await proxy.listen();
    return { base: `http://127.0.0.1:${clientPort}`, publish: publisherAt(`http://127.0.0.1:${controlPort}`) };
  },
  'Pushpin 1.36': async (t) => {
    // Pushpin signs Grip-Sig with sig_key as plain bytes: a hex secret is the same bytes for both.
    const secret = randomBytes(32).toString('hex');
    const appPort = await startApp(t, secret);
    const pushpin = await startPushpin(t, { appPort, sigKey: secret, readyPath: '/ready' });
    return { base: pushpin.base, publish: publisherAt(pushpin.publishUrl) };
  },
};

/** How long a start-up refusal (Pushpin's early 500, until its handler has connected) is tried again, ms. */
const OPEN_DEADLINE_MS = 15_000;

/** Opens `path` as a stream; a start-up refusal (Pushpin's early 500 or reset) is tried again until OPEN_DEADLINE_MS. */
async function openStream(t: TestContext, target: Target, path: string): Promise<StreamClient> {
  const deadline = Date.now() + OPEN_DEADLINE_MS;
  for (let attempt = 1; ; attempt++) {
    // A start-up refusal is an early 500 or, as seen in CI, the connection closed with no answer (ECONNRESET).
    const client = await new Promise<StreamClient | null>((resolve, reject) => {
      const req = httpRequest(target.base + path, { agent: false }, (res) => {
        let text = '';
        let done = false;
        res.setEncoding('utf8').on('data', (c: string) => (text += c));
        res.on('end', () => (done = true));
        res.on('error', () => {});
        resolve({ res, text: () => text, ended: () => done });
      });
      req.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' ? resolve(null) : reject(err)));
      t.after(() => req.destroy());
      req.end();
    });
    if (client?.res.statusCode === 200) return client;
    client?.res.destroy();
    if (Date.now() > deadline || attempt >= 1000) assert.fail(`${path}: ${client?.res.statusCode ?? 'ECONNRESET'} after ${attempt} attempts`);
    await backoff(20);
  }
}

/**
 * Publishes `sync-N` chunks until one arrives: Pushpin subscribes a new stream's channels asynchronously, so an
 * item published at once may reach no subscriber yet. Afterwards every item reaches the stream. Returns the text so far.
 */
async function synced(target: Target, stream: StreamClient, channel: string): Promise<string> {
  for (let n = 1; n <= 40; n++) {
    await target.publish([{ channel, formats: { 'http-stream': { content: `sync-${n}\n` } } }]);
    try {
      await waitFor(() => stream.text().includes(`sync-${n}\n`), { timeoutMs: 250, message: `sync-${n}` });
      return stream.text();
    } catch {
      // not subscribed yet: publish the next one
    }
  }
  assert.fail(`${channel}: no publish reached the stream`);
}

for (const [name, start] of Object.entries(TARGETS)) {
  describe(`a GRIP streaming backend behind ${name}`, { timeout: 60_000 }, () => {
    test('Hold modes: Grip-Hold stream answers at once with the app head and first bytes, chunked, Grip-* removed, and stays open', async (t) => {
      const target = await start(t);
      const s = await openStream(t, target, '/stream/modes');
      assert.equal(s.res.headers['x-app'], 'grip-stream-app');
      assert.equal(s.res.headers['content-type'], 'text/plain');
      assert.equal(s.res.headers['transfer-encoding'], 'chunked');
      assert.equal(s.res.headers['content-length'], undefined);
      assert.deepEqual(Object.keys(s.res.headers).filter((h) => h.startsWith('grip-')), []);
      await waitFor(() => s.text().startsWith('open\n'), { message: 'the first bytes' });
      const before = await synced(target, s, 'modes');
      await target.publish([{ channel: 'modes', formats: { 'http-stream': { content: 'one\n' } } }]);
      await waitFor(() => s.text() === `${before}one\n`, { message: 'the chunk' });
      assert.equal(s.ended(), false);
    });

    test('Publish item formats: http-stream content and content-bin are written as they are, close ends the stream, an http-response close leaves a parked response parked', async (t) => {
      const target = await start(t);
      const s = await openStream(t, target, '/stream/formats');
      const before = await synced(target, s, 'formats');
      await target.publish([
        { channel: 'formats', formats: { 'http-stream': { content: 'text\n' } } },
        { channel: 'formats', formats: { 'http-stream': { 'content-bin': Buffer.from('bin\n').toString('base64') } } },
        { channel: 'formats', formats: { 'http-stream': { content: 'both\n' }, 'http-response': { body: 'not for streams' } } },
      ]);
      await waitFor(() => s.text() === `${before}text\nbin\nboth\n`, { message: 'the three chunks' });
      await target.publish([{ channel: 'formats', formats: { 'http-stream': { action: 'close', content: '' } } }]);
      await waitFor(() => s.ended(), { message: 'the stream ended by the close item' });
      assert.equal(s.text(), `${before}text\nbin\nboth\n`);

      // A response hold on a channel: a close in http-response is not an answer; a send is.
      let answered: { status: number; text: string } | null = null;
      const poll = request(`${target.base}/poll/formats-poll`).then((r) => (answered = r));
      for (let n = 1; answered === null; n++) {
        assert.ok(n <= 40, 'the parked poll was never answered');
        await target.publish([{ channel: 'formats-poll', formats: { 'http-response': { action: 'close' } } }]);
        await target.publish([{ channel: 'formats-poll', formats: { 'http-response': { body: `send ${n}` } } }]);
        await waitFor(() => answered !== null, { timeoutMs: 250 }).catch(() => {});
      }
      const res = await poll;
      assert.equal(res.status, 200);
      assert.match(res.text, /^send \d+$/, 'answered by a send, never by the close');
    });

    test('Grip-Keep-Alive: its data is written to an idle stream every timeout, and the stream stays open', async (t) => {
      const target = await start(t);
      const started = Date.now();
      const s = await openStream(t, target, '/stream/ka?ka=1');
      await waitFor(() => s.text().split(': ka\n').length - 1 >= 2, { timeoutMs: 5000, message: 'two keep-alives' });
      assert.ok(Date.now() - started < 4000);
      assert.equal(s.ended(), false);
      assert.ok(s.text().startsWith('open\n: ka\n'), JSON.stringify(s.text()));
    });
  });
}
