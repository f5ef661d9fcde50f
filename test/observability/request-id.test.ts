import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { jsonFormat, startHarness, waitFor as waitForProxy } from '../helpers/proxy-harness.js';
import { writeHold } from '../helpers/scripted-app.js';
import { startStack } from '../helpers/stack.js';
import { captureLog } from './log-capture.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('request ids through the proxy', { timeout: 15_000 }, () => {
  test('a safe X-Request-Id from the client is kept, sent to the app and returned in the response', async (t) => {
    const h = await startHarness(t);
    const res = await h.get('/hello', { headers: { 'x-request-id': 'client.chosen_ID-1' } });
    assert.equal(res.status, 200);
    assert.equal(res.headers['x-request-id'], 'client.chosen_ID-1');
    assert.equal((await h.app.waitForRequest(1)).headers['x-request-id'], 'client.chosen_ID-1');
  });

  test('a missing, too long or unsafe X-Request-Id is replaced by a fresh UUID, the same one the app sees', async (t) => {
    const h = await startHarness(t);
    const sent: Array<string | null> = [null, 'x'.repeat(65), 'has space', 'quote"d', 'semi;colon', 'ünïcode'];
    const seen = new Set<string>();
    for (const [i, value] of sent.entries()) {
      const res = await h.get('/x', value === null ? {} : { headers: { 'x-request-id': value } });
      const id = res.headers['x-request-id'] as string;
      assert.match(id, UUID, `request ${i} (${JSON.stringify(value)}) gets a UUID`);
      assert.equal((await h.app.waitForRequest(i + 1)).headers['x-request-id'], id);
      seen.add(id);
    }
    assert.equal(seen.size, sent.length, 'every request gets its own id');
  });

  test('a re-ask carries the same request id, and the delivered answer returns it', async (t) => {
    const h = await startHarness(t);
    h.app.handle = (req, res) => {
      if (req.headers['grip-last'] === undefined) writeHold(res, { channel: 'room:a; prev-id=1' });
      else writeHold(res, { channel: 'room:a; prev-id=3' });
    };
    const poll = h.get('/poll', { headers: { 'x-request-id': 'poll-42' } });
    await h.waitParked(1);
    // prev-id 2 is not the client's 1: the proxy re-asks, the app answers with a new hold.
    await h.control('/publish/', { items: [{ channel: 'room:a', id: '3', 'prev-id': '2', formats: jsonFormat({ n: 3 }) }] });
    const reask = await h.app.waitForRequest(2);
    assert.equal(reask.headers['x-request-id'], 'poll-42');
    await h.waitParked(1);
    await h.control('/publish/', { items: [{ channel: 'room:a', id: '4', 'prev-id': '3', formats: jsonFormat({ n: 4 }) }] });
    const res = await poll;
    assert.deepEqual(res.json(), { n: 4 });
    assert.equal(res.headers['x-request-id'], 'poll-42');
  });

  test('error answers written by the proxy itself carry the request id too', async (t) => {
    const h = await startHarness(t);
    h.app.handle = (_req, res) => {
      res.writeHead(200, { 'grip-hold': 'websocket' });
      res.end();
    };
    const res = await h.get('/bad', { headers: { 'x-request-id': 'bad-1' } });
    assert.equal(res.status, 502);
    assert.equal((res.json() as { code: string }).code, 'PROXY_ERR_BAD_INSTRUCTION');
    assert.equal(res.headers['x-request-id'], 'bad-1');
  });
});

describe('request ids in the logs', { timeout: 20_000 }, () => {
  test("one poll's id appears in the proxy's log (parked, delivered), in the app's log and in the response header", async (t) => {
    const proxyLog = captureLog('comet-proxy');
    const appLog = captureLog('chat-app');
    const stack = await startStack(t, { app: { logger: appLog.logger }, proxy: { logger: proxyLog.logger } });
    const json = { 'content-type': 'application/json' };

    const login = await fetch(`${stack.base}/api/session`, { method: 'POST', headers: json, body: '{"nick":"ada"}' });
    assert.equal(login.status, 201);
    const cookie = login.headers.getSetCookie()[0]!.split(';')[0]!;
    const history = await (await fetch(`${stack.base}/api/rooms/lobby/messages?limit=1`, { headers: { cookie } })).json() as { cursor: number };

    const poll = fetch(`${stack.base}/api/poll?rooms=lobby:${history.cursor}`, { headers: { cookie, 'x-request-id': 'trace-poll-1' } });
    await waitForProxy(() => stack.proxy.stats().parked === 1, { timeoutMs: 5_000, message: 'the poll to park' });
    const post = await fetch(`${stack.base}/api/rooms/lobby/messages`, {
      method: 'POST',
      headers: { ...json, cookie, 'x-request-id': 'trace-post-1' },
      body: '{"text":"hello"}',
    });
    assert.equal(post.status, 201);
    assert.equal(post.headers.get('x-request-id'), 'trace-post-1');
    const answer = await poll;
    assert.equal(answer.status, 200);
    assert.equal(answer.headers.get('x-request-id'), 'trace-poll-1');
    assert.equal(((await answer.json()) as { events: Array<{ text: string }> }).events[0]!.text, 'hello');

    await waitForProxy(() => proxyLog.forRequest('trace-poll-1').some((l) => l.msg === 'request done'), { message: "the poll's last proxy line" });
    const proxyLines = proxyLog.forRequest('trace-poll-1');
    assert.ok(proxyLines.some((l) => l.msg === 'parked'), 'the proxy logs the park with the id');
    assert.ok(proxyLines.some((l) => l.msg === 'hold answered' && l.outcome === 'delivered'), 'the proxy logs the delivery with the id');
    const appLines = appLog.forRequest('trace-poll-1');
    assert.ok(appLines.some((l) => l.msg === 'request' && l.hold === true && l.status === 200), 'the app logs the poll (a hold) with the id');
    assert.ok(appLog.forRequest('trace-post-1').some((l) => l.msg === 'request' && l.status === 201));
  });

  test("an app error is logged with the proxy's request id and its code", async (t) => {
    const proxyLog = captureLog('comet-proxy');
    const appLog = captureLog('chat-app');
    const stack = await startStack(t, { app: { logger: appLog.logger }, proxy: { logger: proxyLog.logger } });
    const res = await fetch(`${stack.base}/api/rooms`, { headers: { 'x-request-id': 'no-session-1' } });
    assert.equal(res.status, 401);
    assert.equal(res.headers.get('x-request-id'), 'no-session-1');
    await waitForProxy(() => proxyLog.forRequest('no-session-1').length > 0, { message: "the proxy's line" });
    assert.ok(appLog.forRequest('no-session-1').some((l) => l.code === 'APP_ERR_NO_SESSION' && l.status === 401));
    assert.ok(proxyLog.forRequest('no-session-1').some((l) => l.msg === 'request done' && l.status === 401));
  });

  test('without the proxy, the app gives a request its own id and echoes it', async (t) => {
    const appLog = captureLog('chat-app');
    const stack = await startStack(t, { app: { logger: appLog.logger } });
    const res = await fetch(`http://127.0.0.1:${stack.appPort}/api/config`);
    const id = res.headers.get('x-request-id');
    assert.match(id ?? '', UUID);
    await waitForProxy(() => appLog.forRequest(id!).length === 1, { message: 'one app line for the request' });
  });
});
