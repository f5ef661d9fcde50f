/**
 * Stream holds with PROXY_WORKERS=2 (docs/protocol.md §14, docs/scaleout.md "Workers"): a publish reaches the
 * registry of every worker through the primary, so the `http-stream` format reaches streams on both, `close`
 * ends them on both, and `/stats` sums the open streams. Real processes, real sockets, a scripted app.
 */
import assert from 'node:assert/strict';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { test } from 'node:test';
import { startScriptedApp } from '../helpers/scripted-app.js';
import { clusterTestTimeout, startWorkers, until } from '../helpers/worker-cluster.js';

interface Received {
  res: IncomingMessage;
  text: string;
  ended: boolean;
}

test('with 2 workers, http-stream publishes and close reach the streams held on both, and /stats counts them', { timeout: clusterTestTimeout(30_000) }, async (t) => {
  const app = await startScriptedApp();
  t.after(() => app.close());
  app.handle = (_req, res) => {
    res.writeHead(200, { 'Grip-Hold': 'stream', 'Grip-Channel': 'news', 'Content-Type': 'text/plain' });
    res.end('open\n');
  };
  const proxy = await startWorkers(t, app.url);
  const streamsOf = async () => (await proxy.stats()) as unknown as { streams: number; streamChunks: number; workers: Array<{ streams: number }> };

  // Round-robin is not strictly in turn: open streams one at a time (at most 20) until both workers hold some.
  const streams: Received[] = [];
  for (let i = 0; i < 20; i++) {
    const received = await new Promise<Received>((resolve, reject) => {
      const req = httpRequest(`${proxy.client}/s${i}`, { agent: false }, (res) => {
        const r: Received = { res, text: '', ended: false };
        res.setEncoding('utf8').on('data', (c: string) => (r.text += c));
        res.on('end', () => (r.ended = true));
        resolve(r);
      });
      req.on('error', reject);
      t.after(() => req.destroy());
      req.end();
    });
    streams.push(received);
    let stats!: Awaited<ReturnType<typeof streamsOf>>;
    await until(async () => (stats = await streamsOf()).streams === streams.length, `stream ${i} open`);
    if (stats.workers.length === 2 && stats.workers.every((w) => w.streams > 0)) break;
  }
  const spread = await streamsOf();
  assert.ok(spread.workers.every((w) => w.streams > 0), `streams on both workers: ${JSON.stringify(spread.workers.map((w) => w.streams))}`);

  const published = await proxy.call('/publish/', { items: [{ channel: 'news', formats: { 'http-stream': { content: 'chunk\n' } } }] });
  assert.equal(published.status, 200, published.text);
  await until(() => streams.every((s) => s.text === 'open\nchunk\n'), 'the chunk on every stream');
  await until(async () => (await streamsOf()).streamChunks === streams.length, 'chunks summed over both workers');

  await proxy.call('/publish/', { items: [{ channel: 'news', formats: { 'http-stream': { action: 'close', content: '' } } }] });
  await until(() => streams.every((s) => s.ended), 'every stream ended by the close item');
  await until(async () => (await streamsOf()).streams === 0, 'no stream open on either worker');
  assert.ok(streams.every((s) => s.text === 'open\nchunk\n'));
});
