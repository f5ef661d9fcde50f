import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { createHoldProxy } from '../../proxy/proxy.js';
import { ProxyOptionsError } from '../../proxy/options.js';
import { request, startHarness, TEST_CONTROL_SECRET, TEST_SECRET } from '../helpers/proxy-harness.js';
import { writeHold } from '../helpers/scripted-app.js';

describe('createHoldProxy', { timeout: 10_000 }, () => {
  test('builds without listening and refuses bad options before opening anything', () => {
    const proxy = createHoldProxy({ upstreamUrl: 'http://127.0.0.1:1', secret: TEST_SECRET, controlSecret: TEST_CONTROL_SECRET });
    assert.equal(proxy.clientServer.listening, false);
    assert.equal(proxy.controlServer.listening, false);
    assert.equal(proxy.options.clientPort, 8080);
    assert.throws(() => createHoldProxy({ upstreamUrl: 'http://127.0.0.1:1', secret: TEST_SECRET, controlSecret: TEST_CONTROL_SECRET, queueMaxItems: 0 }), ProxyOptionsError);
    return proxy.close();
  });

  test('listen reports the bound ports and rejects when a port is taken, leaving nothing open', async (t) => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise((resolve) => blocker.close(resolve)));
    const taken = (blocker.address() as AddressInfo).port;

    const proxy = createHoldProxy({ upstreamUrl: 'http://127.0.0.1:1', secret: TEST_SECRET, controlSecret: TEST_CONTROL_SECRET, clientPort: 0, controlPort: taken });
    t.after(() => proxy.close());
    await assert.rejects(proxy.listen(), { code: 'EADDRINUSE' });
    assert.equal(proxy.clientServer.listening, false, 'the client port was released again');
  });
});

describe('close', { timeout: 10_000 }, () => {
  test('close answers every parked request with its timeout response and Connection: close, then stops', async (t) => {
    const h = await startHarness(t);
    h.app.handle = (req, res) => writeHold(res, { channel: 'room:a', status: '204', headers: { 'X-Poll': req.url } });
    const polls = [h.get('/p1'), h.get('/p2'), h.get('/p3')];
    await h.waitParked(3);

    await h.proxy.close();
    const answers = await Promise.all(polls);
    for (const [i, res] of answers.entries()) {
      assert.equal(res.status, 204);
      assert.equal(res.headers.connection, 'close');
      assert.equal(res.headers['x-poll'], `/p${i + 1}`);
    }
    const stats = h.proxy.stats();
    assert.equal(stats.parked, 0);
    assert.equal(stats.reasking, 0);
    assert.equal(h.proxy.clientServer.listening, false);
    assert.equal(h.proxy.controlServer.listening, false);
    await assert.rejects(request(`${h.clientUrl}/`), { code: 'ECONNREFUSED' });
    await h.proxy.close(); // idempotent
  });

  test('a hold that arrives while closing is answered at once with its timeout response', async (t) => {
    const h = await startHarness(t);
    let answer!: () => void;
    const appMayAnswer = new Promise<void>((resolve) => (answer = resolve));
    h.app.handle = async (_req, res) => {
      await appMayAnswer;
      writeHold(res, { channel: 'room:a', body: 'bye' });
    };
    const poll = h.get('/late');
    await h.app.waitForRequest(1);
    const closed = h.proxy.close();
    answer();
    const res = await poll;
    assert.equal(res.text, 'bye');
    assert.equal(res.headers.connection, 'close');
    await closed;
    assert.equal(h.proxy.stats().parked, 0);
  });
});
