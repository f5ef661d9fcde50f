/**
 * The control API's exposure and secret: where it may listen, how strong the
 * secret must be then, how tokens are compared, how large a body may be, and
 * that the secret never shows up in a log line or a start-up message.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SignJWT, type JWTPayload } from 'jose';
import { pino } from 'pino';
import { LOG_REDACT } from '../../common/log-redact.js';
import { signGripSig } from '../../protocol/grip-sig.js';
import { createControlAuth } from '../../proxy/control/auth.js';
import { proxyOptionsFromEnv } from '../../proxy/config.js';
import { ProxyOptionsError, resolveProxyOptions, type ProxyOptionsInput } from '../../proxy/options.js';
import { createHoldProxy } from '../../proxy/proxy.js';
import { appOptionsFromEnv } from '../../server/config.js';
import { AppOptionsError, resolveAppOptions } from '../../server/options.js';
import { createChatServer } from '../../server/chat-server.js';
import { tempDir } from '../helpers/app-harness.js';
import { request, startHarness, TEST_CONTROL_SECRET, TEST_SECRET, waitFor } from '../helpers/proxy-harness.js';
import { startScriptedApp, writeHold } from '../helpers/scripted-app.js';
import { startRedis, startRedisProxy } from '../helpers/redis-server.js';
import { startStack } from '../helpers/stack.js';
import { httpRequest, memoryLogger, sendRaw } from './raw-http.js';

const UPSTREAM = 'http://127.0.0.1:8081';
const STRONG = 'Zk3v9QpL2xWm7Rt4Yb8Nc1Hd6Fg0Js5A'; // 32 characters, 32 different

function refused(input: Partial<ProxyOptionsInput>, pattern: RegExp): ProxyOptionsError {
  let caught: unknown;
  try {
    createHoldProxy({ upstreamUrl: UPSTREAM, secret: TEST_SECRET, controlSecret: TEST_CONTROL_SECRET, clientPort: 0, controlPort: 0, ...input });
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ProxyOptionsError, `expected a ProxyOptionsError, got ${String(caught)}`);
  assert.equal(caught.code, 'PROXY_ERR_BAD_OPTION');
  assert.match(caught.message, pattern);
  return caught;
}

describe('where the control API may listen', () => {
  test('a non-loopback controlHost refuses to start unless allowRemoteControl is set', () => {
    for (const host of ['0.0.0.0', '::', '192.168.1.20', 'chat.example.com']) {
      refused({ controlHost: host }, /is not a loopback address.*allowRemoteControl \(CONTROL_ALLOW_REMOTE=1\)/);
    }
  });

  test('loopback hosts need no permission: 127.0.0.0/8, ::1 and localhost', () => {
    for (const host of ['127.0.0.1', '127.0.0.2', '::1', 'localhost', '::ffff:127.0.0.1']) {
      assert.equal(resolveProxyOptions({ upstreamUrl: UPSTREAM, secret: TEST_SECRET, controlSecret: TEST_CONTROL_SECRET, controlHost: host }).controlHost, host);
    }
  });

  test('a remote control API needs a strong control secret: 32 characters, 10 different ones; the message never echoes it', () => {
    for (const weak of ['a'.repeat(40), 'abababababababababababababababab', TEST_CONTROL_SECRET]) {
      const err = refused({ controlHost: '0.0.0.0', allowRemoteControl: true, controlSecret: weak }, /needs a strong controlSecret: at least 32 characters/);
      assert.ok(!err.message.includes(weak), 'the secret is not in the message');
    }
    const options = resolveProxyOptions({ upstreamUrl: UPSTREAM, secret: TEST_SECRET, controlSecret: STRONG, controlHost: '0.0.0.0', allowRemoteControl: true });
    assert.equal(options.allowRemoteControl, true);
  });

  test('allowRemoteControl must be a boolean, and CONTROL_ALLOW_REMOTE=1 sets it', () => {
    assert.throws(
      () => resolveProxyOptions({ upstreamUrl: UPSTREAM, secret: TEST_SECRET, controlSecret: TEST_CONTROL_SECRET, allowRemoteControl: 'yes' as unknown as boolean }),
      /allowRemoteControl must be true or false/,
    );
    const env = { GRIP_SECRET: TEST_SECRET, CONTROL_SECRET: STRONG, CONTROL_HOST: '0.0.0.0', CONTROL_ALLOW_REMOTE: '1', LOG_LEVEL: 'silent' };
    const options = resolveProxyOptions(proxyOptionsFromEnv(env, []));
    assert.equal(options.allowRemoteControl, true);
    assert.throws(() => proxyOptionsFromEnv({ ...env, CONTROL_ALLOW_REMOTE: 'sure' }, []), /CONTROL_ALLOW_REMOTE must be 1 or 0, got "sure"/);
  });
});

describe('control API authentication and bodies', { timeout: 10_000 }, () => {
  test('tokens are compared as SHA-256 digests: any length, prefixes and near misses are refused without throwing', async () => {
    const S = TEST_CONTROL_SECRET;
    const check = createControlAuth({ secret: S, issuer: CONTROL_ISS, audience: CONTROL_AUD, maxLifetimeMs: 3_600_000, now: Date.now });
    assert.equal(await check(`Bearer ${S}`), true);
    assert.equal(await check(`bearer   ${S} `), true);
    const near = [
      '',
      'x',
      S.slice(0, -1),
      `${S}x`,
      S.toUpperCase(),
      `${S.slice(0, -1)}${String.fromCharCode(S.charCodeAt(S.length - 1) + 1)}`,
      'x'.repeat(100_000),
    ];
    for (const token of near) assert.equal(await check(`Bearer ${token}`), false, `token of ${token.length} characters`);
    for (const header of [undefined, S, `Basic ${S}`, `Bearer ${S} extra`, `Bearer\t${S}`]) {
      assert.equal(await check(header), false, JSON.stringify(header));
    }
  });

  test('a body over controlBodyMaxBytes is refused 413 whether announced or streamed, and the connection is closed', async (t) => {
    const h = await startHarness(t, { controlBodyMaxBytes: 1024 });
    const port = Number(new URL(h.controlUrl).port);
    const host = `127.0.0.1:${port}`;
    const headers: Array<[string, string]> = [['Authorization', `Bearer ${TEST_CONTROL_SECRET}`], ['Content-Type', 'application/json']];
    const announced = await sendRaw(port, httpRequest('POST', '/publish/', host, { headers, body: '{"items":[', contentLength: 1025 }));
    assert.equal(announced.status, 413);
    assert.deepEqual(announced.json, { code: 'PROXY_ERR_BODY_TOO_LARGE', message: 'body exceeds 1024 bytes' });
    assert.equal(announced.headers.connection, 'close');

    const big = JSON.stringify({ items: [{ channel: 'a', formats: { 'http-response': { body: 'x'.repeat(2000) } } }] });
    const head = `POST /publish/ HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${TEST_CONTROL_SECRET}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`;
    const streamed = await sendRaw(port, Buffer.from(`${head}${big.length.toString(16)}\r\n${big}\r\n0\r\n\r\n`));
    assert.equal(streamed.status, 413);
    assert.equal((streamed.json as { code: string }).code, 'PROXY_ERR_BODY_TOO_LARGE');
    assert.equal(h.proxy.stats().publishes, 0, 'nothing was published');
  });

  test('an item header with CR/LF is refused at validation, and the parked client it was meant for stays parked', async (t) => {
    const h = await startHarness(t);
    const cid = 'V1StGXR8_Z5jdHi6B-myT';
    h.app.handle = (_req, res) => writeHold(res, { connectionId: cid, channel: 'room:a' });
    const poll = h.get('/poll');
    await h.waitParked(1);
    for (const headers of [{ 'X-A': 'ok\r\nSet-Cookie: sid=x' }, [['Bad Name', 'v']], [['X-B', 'v\n']], { '': 'v' }]) {
      const res = await h.control('/push/', { items: [{ 'connection-id': cid, formats: { 'http-response': { headers, body: 'x' } } }] });
      assert.equal(res.status, 400, JSON.stringify(headers));
      assert.equal((res.json() as { code: string }).code, 'PROXY_ERR_INVALID_ITEM');
    }
    assert.equal(h.proxy.stats().parked, 1);
    assert.equal(h.proxy.stats().deliveries, 0);
    const ok = await h.control('/push/', { items: [{ 'connection-id': cid, formats: { 'http-response': { headers: { 'X-A': 'ok' }, body: 'pushed' } } }] });
    assert.deepEqual(ok.json(), { delivered: 1, queued: 0, dropped: 0, reasked: 0 });
    const answer = await poll;
    assert.equal(answer.text, 'pushed');
    assert.equal(answer.headers['x-a'], 'ok');
  });
});

describe('the secret never appears in logs', { timeout: 30_000 }, () => {
  test('a run with auth failures and successes, a secret mismatch, bad options and config errors logs no trace of the secret', async (t) => {
    const log = memoryLogger('trace');
    const stack = await startStack(t, { app: { logger: log.logger }, proxy: { logger: log.logger } });
    const control = `http://127.0.0.1:${stack.controlPort}`;
    const items = JSON.stringify({ items: [{ channel: 'room:x', formats: { 'http-response': { body: 'b' } } }] });
    const post = (authorization: string | undefined) =>
      request(`${control}/publish/`, { method: 'POST', headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) }, body: items });
    // Failures: no header, wrong secret, the secret in the wrong scheme, the secret plus a suffix, the Grip-Sig key
    // and a Grip-Sig; then successes.
    const C = TEST_CONTROL_SECRET;
    for (const authorization of [undefined, 'Bearer wrong-secret-0123456789', `Basic ${C}`, `Bearer ${C}!`, `Token ${C}`, `Bearer ${TEST_SECRET}`, `Bearer ${await signGripSig(TEST_SECRET)}`]) {
      assert.equal((await post(authorization)).status, 401);
    }
    assert.equal((await post(`Bearer ${C}`)).status, 200);
    assert.equal((await post(`Bearer ${await jwt({ iss: CONTROL_ISS, exp: Math.floor(Date.now() / 1000) + 600 })}`)).status, 200);
    // A client that sends the secrets to the client port: forwarded, never logged.
    await request(`${stack.base}/api/session`, { headers: { authorization: `Bearer ${C}`, 'grip-sig': TEST_SECRET } });

    // A secret mismatch: an app with another control secret publishes to this proxy and retries, logging each failure.
    const otherSecret = 'another-secret-0123456789abcdef';
    const other = createChatServer({ secret: TEST_SECRET, controlSecret: otherSecret, host: '127.0.0.1', port: 0, dbPath: join(tempDir(t), 'chat.db'), logger: log.logger, relayRetryMinMs: 5, relayRetryMaxMs: 20 });
    t.after(() => other.close());
    await other.listen();
    other.connectProxy(control);
    const session = await fetch(`http://127.0.0.1:${other.server.address() && (other.server.address() as { port: number }).port}/api/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"nick":"mallory"}',
    });
    assert.equal(session.status, 201);
    // Signing in publishes nothing (a quiet lobby): a post is what the relay must publish.
    const otherBase = `http://127.0.0.1:${(other.server.address() as { port: number }).port}`;
    const cookie = session.headers.getSetCookie()[0]!.split(';')[0]!;
    const posted = await fetch(`${otherBase}/api/rooms/lobby/messages`, { method: 'POST', headers: { 'content-type': 'application/json', cookie }, body: '{"text":"hello"}' });
    assert.equal(posted.status, 201);
    await waitFor(() => log.lines.some((l) => l.msg === 'outbox publish failed, will retry'), { timeoutMs: 5000, message: 'a failed publish to be logged' });

    // Bad options and configuration errors: their messages are what main.ts prints.
    const messages: string[] = [];
    const capture = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        messages.push((err as Error).message);
      }
    };
    const both = { secret: TEST_SECRET, controlSecret: C };
    capture(() => createHoldProxy({ upstreamUrl: UPSTREAM, ...both, controlHost: '0.0.0.0' }));
    capture(() => createHoldProxy({ upstreamUrl: UPSTREAM, ...both, controlHost: '0.0.0.0', allowRemoteControl: true }));
    capture(() => createHoldProxy({ upstreamUrl: 'ftp://127.0.0.1/', ...both }));
    capture(() => resolveProxyOptions({ upstreamUrl: UPSTREAM, ...both, secret: TEST_SECRET.slice(0, 10) }));
    capture(() => resolveProxyOptions({ upstreamUrl: UPSTREAM, ...both, controlSecret: C.slice(0, 10) }));
    capture(() => resolveProxyOptions({ upstreamUrl: UPSTREAM, ...both, controlSecret: TEST_SECRET }));
    capture(() => proxyOptionsFromEnv({ GRIP_SECRET: TEST_SECRET, CONTROL_SECRET: C, QUEUE_MAX_ITEMS: 'many' }, []));
    capture(() => proxyOptionsFromEnv({ GRIP_SECRET: TEST_SECRET, CONTROL_SECRET: C }, ['--secret', TEST_SECRET]));
    capture(() => proxyOptionsFromEnv({ GRIP_SECRET: TEST_SECRET }, []));
    capture(() => resolveAppOptions({ secret: TEST_SECRET.slice(0, 8) }));
    capture(() => resolveAppOptions({ ...both, controlSecret: TEST_SECRET }));
    capture(() => appOptionsFromEnv({ GRIP_SECRET: TEST_SECRET, CONTROL_SECRET: C, REQUIRE_GRIP_SIG: 'maybe' }, []));
    assert.equal(messages.length, 12, 'every bad configuration was refused');
    assert.ok(messages.some((m) => m.includes('controlHost')), 'the messages say what is wrong');

    const everything = [...log.raw, ...messages].join('\n');
    assert.ok(log.lines.some((l) => l.msg === 'control request refused'), 'auth failures were logged');
    for (const secret of [TEST_SECRET, C, otherSecret]) {
      assert.ok(!everything.includes(secret), `no secret appears: ${[...log.raw, ...messages].filter((l) => l.includes(secret)).join('\n')}`);
    }
  });

  test('proxy/main.ts at trace level, with failing and passing auth and a refused start, never prints a secret', async (t) => {
    const MAIN = fileURLToPath(new URL('../../proxy/main.ts', import.meta.url));
    const secret = 'main-secret-xyz-0123456789abcdef';
    const controlSecret = 'main-control-secret-0123456789ab';
    const app = await startScriptedApp();
    t.after(() => app.close());
    app.handle = (_req, res) => writeHold(res, { channel: 'room:a', timeoutS: 1 });
    const run = (env: NodeJS.ProcessEnv) => {
      const child = spawn(process.execPath, ['--import', 'tsx', MAIN], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
      child.stderr!.setEncoding('utf8').on('data', (c: string) => (out += c));
      t.after(() => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      });
      return { child, output: () => out };
    };

    const refusedRun = run({ GRIP_SECRET: secret, CONTROL_SECRET: controlSecret, CONTROL_HOST: '0.0.0.0', PROXY_PORT: '0', CONTROL_PORT: '0' });
    const [code] = (await once(refusedRun.child, 'exit')) as [number];
    assert.equal(code, 2);
    assert.match(refusedRun.output(), /controlHost "0\.0\.0\.0" is not a loopback address/);

    const served = run({ GRIP_SECRET: secret, CONTROL_SECRET: controlSecret, APP_URL: app.url, PROXY_PORT: '0', CONTROL_PORT: '0', LOG_LEVEL: 'trace' });
    await waitFor(() => served.output().includes('"msg":"listening"'), { timeoutMs: 10_000, message: 'the proxy to listen' });
    const listening = JSON.parse(served.output().split('\n').find((l) => l.includes('"msg":"listening"'))!) as { clientPort: number; controlPort: number };
    const control = `http://127.0.0.1:${listening.controlPort}`;
    for (const authorization of ['Bearer nope-nope-nope-nope', `Basic ${controlSecret}`, `Bearer ${secret}`]) {
      assert.equal((await request(`${control}/stats`, { headers: { authorization } })).status, 401);
    }
    assert.equal((await request(`${control}/stats`, { headers: { authorization: `Bearer ${controlSecret}` } })).status, 200);
    const poll = request(`http://127.0.0.1:${listening.clientPort}/poll`, { headers: { authorization: `Bearer ${secret}` } });
    assert.equal((await poll).status, 200);
    served.child.kill('SIGTERM');
    await once(served.child, 'exit');
    assert.match(served.output(), /control request refused/);
    assert.ok(!served.output().includes(secret) && !served.output().includes(controlSecret), 'no secret is in the output');
    assert.ok(!refusedRun.output().includes(secret) && !refusedRun.output().includes(controlSecret));
  });

  test('the loggers main.ts builds redact credentials if a request or its headers are ever logged', () => {
    const lines: string[] = [];
    const logger = pino({ level: 'info', redact: LOG_REDACT }, { write: (line: string) => lines.push(line) });
    logger.info(
      {
        req: { headers: { authorization: `Bearer ${TEST_SECRET}`, cookie: 'sid=abc', 'grip-sig': 'jwt', host: 'chat.test' } },
        headers: { authorization: `Bearer ${TEST_SECRET}` },
        options: { secret: TEST_SECRET },
      },
      'debugging',
    );
    const line = lines.join('');
    assert.ok(!line.includes(TEST_SECRET) && !line.includes('sid=abc') && !line.includes('"jwt"'), line);
    assert.match(line, /"host":"chat.test"/);
  });

  test('an app option error never echoes the secret', () => {
    assert.throws(() => resolveAppOptions({ secret: 'short' }), (err: unknown) => err instanceof AppOptionsError && !err.message.includes('short'));
  });
});

/** The control issuer a proxy expects by default (CONTROL_ISSUER); its audience, if a token names one. */
const CONTROL_ISS = 'comet-chat-publisher';
const CONTROL_AUD = 'comet-chat-control';

/** An HS256 JWT (or `alg`) with exactly `claims`, signed with `key`. */
function jwt(claims: JWTPayload, key = TEST_CONTROL_SECRET, alg = 'HS256'): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg, typ: 'JWT' }).sign(new TextEncoder().encode(key));
}

describe('every credential does one job: control calls need the control credential (issue 14 item 2)', { timeout: 15_000 }, () => {
  test('a Grip-Sig token captured from an upstream request is refused on every control route, and so is the Grip-Sig key', async (t) => {
    const h = await startHarness(t);
    assert.equal((await h.get('/anything')).status, 200);
    const captured = (await h.app.waitForRequest(1)).headers['grip-sig'];
    assert.equal(typeof captured, 'string', 'the app received a Grip-Sig');
    const cid = 'V1StGXR8_Z5jdHi6B-myT';
    const calls: Array<[string, string, unknown?]> = [
      ['POST', '/publish/', { items: [{ channel: 'room:a', formats: { 'http-response': { body: 'x' } } }] }],
      ['POST', '/push/', { items: [{ 'connection-id': cid, formats: { 'http-response': { body: 'x' } } }] }],
      ['POST', '/close/', { items: [{ 'connection-id': cid }] }],
      ['POST', '/revoke/', { items: [{ 'connection-id': cid }] }],
      ['GET', '/stats'],
      ['GET', '/metrics'],
    ];
    for (const token of [captured as string, TEST_SECRET]) {
      for (const [method, path, body] of calls) {
        const headers: Record<string, string> = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
        const res = await request(`${h.controlUrl}${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
        assert.equal(res.status, 401, `${method} ${path} with ${token === TEST_SECRET ? 'the Grip-Sig key' : 'a captured Grip-Sig'}`);
        assert.equal((res.json() as { code: string }).code, 'PROXY_ERR_UNAUTHORIZED');
      }
    }
    const stats = h.proxy.stats();
    assert.deepEqual([stats.publishes, stats.pushes, stats.connections], [0, 0, 0], 'nothing was published, pushed or closed');
    // The control credential still works on the same routes.
    assert.equal((await h.control('/publish/', calls[0]![2])).status, 200);
    assert.equal((await request(`${h.controlUrl}/stats`, { headers: { authorization: `Bearer ${TEST_CONTROL_SECRET}` } })).status, 200);
  });

  test('control JWTs need the control issuer, a matching audience if any, and an exp at most an hour ahead; nbf and iat are honoured', async (t) => {
    const h = await startHarness(t);
    const now = Math.floor(Date.now() / 1000);
    const accepted: Array<[string, Promise<string>]> = [
      ['iss and exp an hour ahead, as @fanoutio/grip sends', jwt({ iss: CONTROL_ISS, exp: now + 3600 })],
      ['with the control audience', jwt({ iss: CONTROL_ISS, aud: CONTROL_AUD, exp: now + 60 })],
      ['with the control audience among others', jwt({ iss: CONTROL_ISS, aud: ['elsewhere', CONTROL_AUD], exp: now + 60 })],
      ['with iat and nbf in the past', jwt({ iss: CONTROL_ISS, iat: now - 10, nbf: now - 10, exp: now + 600 })],
    ];
    const refused: Array<[string, Promise<string>]> = [
      ['no iss', jwt({ exp: now + 600 })],
      ['another issuer', jwt({ iss: 'someone-else', exp: now + 600 })],
      ['the Grip-Sig issuer', jwt({ iss: 'comet-chat', exp: now + 600 })],
      ['a foreign audience', jwt({ iss: CONTROL_ISS, aud: 'pushpin', exp: now + 600 })],
      ['no exp', jwt({ iss: CONTROL_ISS })],
      ['an exp a day ahead', jwt({ iss: CONTROL_ISS, exp: now + 86_400 })],
      ['an exp two hours ahead', jwt({ iss: CONTROL_ISS, exp: now + 7200 })],
      ['an exp in the past', jwt({ iss: CONTROL_ISS, exp: now - 300 })],
      ['an nbf ten minutes ahead', jwt({ iss: CONTROL_ISS, nbf: now + 600, exp: now + 1200 })],
      ['an iat ten minutes ahead', jwt({ iss: CONTROL_ISS, iat: now + 600, exp: now + 1200 })],
      ['a lifetime (exp - iat) over an hour', jwt({ iss: CONTROL_ISS, iat: now - 7200, exp: now + 60 })],
      ['alg HS512', jwt({ iss: CONTROL_ISS, exp: now + 600 }, TEST_CONTROL_SECRET, 'HS512')],
      ['the right claims signed with the Grip-Sig key', jwt({ iss: CONTROL_ISS, exp: now + 600 }, TEST_SECRET)],
      ['a Grip-Sig as the proxy signs it', signGripSig(TEST_SECRET)],
    ];
    const items = { items: [{ channel: 'room:a', formats: { 'http-response': { body: 'x' } } }] };
    for (const [what, token] of refused) {
      const res = await h.control('/publish/', items, { token: await token });
      assert.equal(res.status, 401, `refused: ${what}`);
      assert.equal((res.json() as { code: string }).code, 'PROXY_ERR_UNAUTHORIZED');
    }
    assert.equal(h.proxy.stats().publishes, 0);
    for (const [what, token] of accepted) assert.equal((await h.control('/publish/', items, { token: await token })).status, 200, `accepted: ${what}`);
    assert.equal(h.proxy.stats().publishes, accepted.length);
  });
});

describe('pushes to connection IDs that never parked are capped (issue 14 item 2)', { timeout: 60_000 }, () => {
  /** A `/push/` body of `n` items, each to its own connection ID that no client ever used. */
  const strangers = (call: number, n: number) =>
    JSON.stringify({ items: Array.from({ length: n }, (_, i) => ({ 'connection-id': `s${call}x${i}`.padEnd(21, '_'), formats: { 'http-response': { body: 'x' } } })) });

  test('the 9-call attack (112,500 unknown IDs) keeps no state; the global cap refuses beyond 10,000 queues with 503 and Retry-After, and a real client between polls still gets its push', async (t) => {
    const h = await startHarness(t);
    const heapBefore = process.memoryUsage().heapUsed;
    for (let call = 0; call < 9; call++) {
      const body = strangers(call, 12_500);
      assert.ok(body.length < 1024 * 1024, 'each call fits the 1 MiB control body');
      const res = await h.control('/push/', body);
      assert.equal(res.status, 400, `call ${call}`);
      assert.equal((res.json() as { code: string }).code, 'PROXY_ERR_TOO_MANY_IDS');
    }
    assert.deepEqual([h.proxy.stats().connections, h.proxy.stats().queuedItems], [0, 0], 'the refused calls left no state');

    // Within the per-call cap (1,000 IDs), until the global cap (10,000 queues for IDs that never parked here).
    for (let call = 0; call < 10; call++) {
      const res = await h.control('/push/', strangers(100 + call, 1000));
      assert.deepEqual(res.json(), { delivered: 0, queued: 1000, dropped: 0, reasked: 0 }, `call ${call}`);
    }
    const full = await h.control('/push/', strangers(200, 1000));
    assert.equal(full.status, 503);
    assert.equal((full.json() as { code: string }).code, 'PROXY_ERR_TOO_MANY_QUEUES');
    assert.equal(full.headers['retry-after'], '5');
    const one = await h.control('/push/', strangers(201, 1));
    assert.equal(one.status, 503, 'not even one more stranger');
    assert.deepEqual([h.proxy.stats().connections, h.proxy.stats().queuedItems], [10_000, 10_000], 'the refused calls queued nothing');
    t.diagnostic(`heap after the attack and 10,000 capped queues: +${((process.memoryUsage().heapUsed - heapBefore) / 1048576).toFixed(1)} MB`);

    // A real client: parked under its ID once, answered, now between polls while the cap is full.
    const cid = 'RealClient_0123456789';
    h.app.handle = (_req, res) => writeHold(res, { connectionId: cid, timeoutS: 30 });
    const first = h.get('/poll');
    await h.waitParked(1);
    assert.equal((await h.control('/push/', { items: [{ 'connection-id': cid, formats: { 'http-response': { body: 'one' } } }] })).status, 200);
    assert.equal((await first).text, 'one');
    const queued = await h.control('/push/', { items: [{ 'connection-id': cid, formats: { 'http-response': { body: 'two' } } }] });
    assert.deepEqual(queued.json(), { delivered: 0, queued: 1, dropped: 0, reasked: 0 }, 'queued for its next poll despite the cap');
    assert.equal((await h.get('/poll')).text, 'two');
  });
  test('the per-call cap holds on the Redis bus too: a push or close naming too many IDs is refused before Redis is written', async (t) => {
    const redis = await startRedis(t);
    const { proxy, control } = await startRedisProxy(t, 'http://127.0.0.1:9', redis.url);
    const ids = (n: number) => Array.from({ length: n }, (_, i) => `r${i}`.padEnd(21, '_'));
    const push = await control.call('/push/', { items: ids(1001).map((id) => ({ 'connection-id': id, formats: { 'http-response': { body: 'x' } } })) });
    assert.equal(push.status, 400);
    assert.equal((push.body as unknown as { code: string }).code, 'PROXY_ERR_TOO_MANY_IDS');
    const close = await control.call('/close/', { items: ids(1001).map((id) => ({ 'connection-id': id })) });
    assert.equal((close.body as unknown as { code: string }).code, 'PROXY_ERR_TOO_MANY_IDS');
    assert.equal(proxy.stats().pushes, 0);
    const ok = await control.call('/push/', { items: ids(1000).map((id) => ({ 'connection-id': id, formats: { 'http-response': { body: 'x' } } })) });
    assert.deepEqual(ok.body, { delivered: 0, queued: 1000, dropped: 0, reasked: 0 });
  });
});
