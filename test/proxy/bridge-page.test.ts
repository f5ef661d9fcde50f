import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { startHarness } from '../helpers/proxy-harness.js';

function bridgeFile(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'comet-bridge-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'bridge.html');
  writeFileSync(path, '<!doctype html><title>bridge</title>');
  return path;
}

test('the proxy serves the bridge page itself with Origin-Agent-Cluster: ?0, never asking the app', async (t) => {
  const h = await startHarness(t, { bridgePagePath: bridgeFile(t) });
  const res = await h.get('/bridge.html?parent=http%3A%2F%2Fchat.test');
  assert.equal(res.status, 200);
  assert.equal(res.text, '<!doctype html><title>bridge</title>');
  assert.equal(res.headers['content-type'], 'text/html; charset=utf-8');
  assert.equal(res.headers['origin-agent-cluster'], '?0');
  assert.equal(h.app.requests.length, 0);
});

test('the bridge page can be served with Origin-Agent-Cluster: ?1 to force the postMessage fallback', async (t) => {
  const h = await startHarness(t, { bridgePagePath: bridgeFile(t), bridgeOriginAgentCluster: '?1' });
  assert.equal((await h.get('/bridge.html')).headers['origin-agent-cluster'], '?1');
});

test('a missing bridge file is a JSON 404, and the proxy keeps serving', async (t) => {
  const h = await startHarness(t, { bridgePagePath: '/nonexistent/bridge.html' });
  const res = await h.get('/bridge.html');
  assert.equal(res.status, 404);
  assert.equal((res.json() as { code: string }).code, 'PROXY_ERR_NOT_FOUND');
  assert.equal((await h.get('/other')).status, 200);
});

test('with a base domain, shard hosts are forwarded and any other Host gets 421 without reaching the app', async (t) => {
  const h = await startHarness(t, { baseDomain: 'chat.test', bridgePagePath: bridgeFile(t) });
  const shard = await h.get('/api/x', { headers: { host: 'c3.chat.test:8080' } });
  assert.equal(shard.status, 200);
  assert.equal(h.app.requests.length, 1);
  assert.equal((await h.get('/bridge.html', { headers: { host: 'c1.chat.test' } })).status, 200);

  const other = await h.get('/api/x', { headers: { host: 'evil.example' } });
  assert.equal(other.status, 421);
  assert.equal((other.json() as { code: string }).code, 'PROXY_ERR_MISDIRECTED');
  assert.equal(h.app.requests.length, 1);
});
