/**
 * Stream holds with the Redis bus (docs/protocol.md §14, docs/scaleout.md): a publish made on one proxy's
 * control port reaches the streams held by every proxy on the same Redis, `close` ends them all. Real
 * redis-server on an ephemeral port, two in-process proxies, a scripted app.
 */
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { test } from 'node:test';
import { waitFor } from '../helpers/proxy-harness.js';
import { startRedis, startRedisProxy } from '../helpers/redis-server.js';
import { startScriptedApp } from '../helpers/scripted-app.js';

test('with two proxies on one Redis, an http-stream publish on one reaches streams on both, and close ends them', { timeout: 30_000 }, async (t) => {
  const redis = await startRedis(t);
  const app = await startScriptedApp();
  t.after(() => app.close());
  app.handle = (_req, res) => {
    res.writeHead(200, { 'Grip-Hold': 'stream', 'Grip-Channel': 'news' });
    res.end('open\n');
  };
  const proxies = [await startRedisProxy(t, app.url, redis.url), await startRedisProxy(t, app.url, redis.url)];
  const streams = await Promise.all(
    proxies.map(
      ({ base }) =>
        new Promise<{ text: string; ended: boolean }>((resolve, reject) => {
          const req = httpRequest(`${base}/s`, { agent: false }, (res) => {
            const s = { text: '', ended: false };
            res.setEncoding('utf8').on('data', (c: string) => (s.text += c));
            res.on('end', () => (s.ended = true));
            resolve(s);
          });
          req.on('error', reject);
          t.after(() => req.destroy());
          req.end();
        }),
    ),
  );
  await waitFor(() => proxies.every(({ proxy }) => proxy.stats().streams === 1), { message: 'a stream on each proxy' });
  const sent = await proxies[0]!.control.call('/publish/', { items: [{ channel: 'news', formats: { 'http-stream': { content: 'chunk\n' } } }] });
  assert.equal(sent.status, 200);
  await waitFor(() => streams.every((s) => s.text === 'open\nchunk\n'), { timeoutMs: 5000, message: 'the chunk on both proxies' });
  await proxies[1]!.control.call('/publish/', { items: [{ channel: 'news', formats: { 'http-stream': { action: 'close', content: '' } } }] });
  await waitFor(() => streams.every((s) => s.ended), { timeoutMs: 5000, message: 'both streams ended' });
  assert.ok(proxies.every(({ proxy }) => proxy.stats().streams === 0 && proxy.stats().streamChunks === 1));
});
