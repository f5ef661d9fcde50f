import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { request, startHarness, TEST_CONTROL_SECRET, TEST_SECRET } from '../helpers/proxy-harness.js';
import { writeHold } from '../helpers/scripted-app.js';
import { launchBrowser } from '../helpers/browser.js';


function sha256(text: string): string {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
}

describe('GET /status', { timeout: 30_000 }, () => {
  test('serves a self-contained HTML page without authentication, with the token field and both charts', async (t) => {
    const h = await startHarness(t);
    const res = await request(`${h.controlUrl}/status`);
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /^text\/html; charset=utf-8/);
    assert.equal(res.headers['cache-control'], 'no-store');
    assert.equal(res.headers['x-frame-options'], 'DENY');
    assert.equal(res.headers['referrer-policy'], 'no-referrer');
    for (const id of ['token', 'state', 'gauges', 'counters', 'chart-parked', 'chart-rates', 'latency', 'errors']) {
      assert.match(res.text, new RegExp(`id="${id}"`), `element #${id}`);
    }
    assert.match(res.text, /<input id="token" type="password"/, 'the token is typed into a password field');
    assert.match(res.text, /sessionStorage/, 'the token is kept in sessionStorage');
    assert.doesNotMatch(res.text, /\s(src|href)="(?!data:)/, 'no external script, style or image');
    assert.doesNotMatch(res.text, /localStorage|[?&]token=/, 'the token is never persisted or put in a URL');
    assert.ok(!res.text.includes(TEST_SECRET) && !res.text.includes(TEST_CONTROL_SECRET), 'the page never contains a secret');
  });

  test('its Content-Security-Policy allows only its own inline script and style and fetches to its own origin', async (t) => {
    const h = await startHarness(t);
    const res = await request(`${h.controlUrl}/status`);
    const csp = String(res.headers['content-security-policy']);
    const script = /<script>([\s\S]*?)<\/script>/.exec(res.text)![1]!;
    const style = /<style>([\s\S]*?)<\/style>/.exec(res.text)![1]!;
    assert.match(csp, /default-src 'none'/);
    assert.ok(csp.includes(`script-src ${sha256(script)}`), 'script-src is the hash of the inline script');
    assert.ok(csp.includes(`style-src ${sha256(style)}`), 'style-src is the hash of the inline style');
    assert.match(csp, /connect-src 'self'/);
    assert.match(csp, /frame-ancestors 'none'/);
    const head = await request(`${h.controlUrl}/status`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
  });

  test('in Chromium, after the operator pastes the token, it shows the live numbers and a chart', async (t) => {
    const h = await startHarness(t);
    h.app.handle = (_req, res) => writeHold(res, { channel: 'room:a' });
    const polls = [h.get('/p'), h.get('/p'), h.get('/p')].map((p) => p.catch(() => null));
    t.after(() => Promise.all(polls));
    await h.waitParked(3);

    const browser = await launchBrowser();
    const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    // In-page checks are functions on `globalThis` (no DOM types here), never strings: a string is
    // evaluated with eval, which the page's CSP rightly forbids.
    // Closed at the end of the body too: the page polls on keep-alive connections, which would keep
    // the proxy's close() (an earlier after-hook) waiting.
    t.after(() => browser.close());
    try {
      const page = await context.newPage();
      const problems: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') problems.push(m.text());
      });
      page.on('pageerror', (err) => problems.push(err.message));

      await page.goto(`${h.controlUrl}/status`);
      assert.match((await page.textContent('#state')) ?? '', /not connected/);
      await page.fill('#token', 'not-the-secret-0123456789');
      await page.click('button[type=submit]');
      await page.waitForSelector('#state.bad', { timeout: 5_000 });
      assert.match((await page.textContent('#state')) ?? '', /401/);
      problems.length = 0; // the browser logs the refused fetch; that one is expected

      await page.fill('#token', TEST_CONTROL_SECRET);
      await page.click('button[type=submit]');
      await page.waitForSelector('#state.ok', { timeout: 5_000 });
      assert.equal(await page.inputValue('#token'), '', 'the field is cleared once the token is stored');
      assert.equal(await page.textContent('#gauges [data-key="parked"] .value'), '3');

      // A publish shows up as deliveries, in the numbers and (after two samples) in the rate chart.
      await h.control('/publish/', { items: [{ channel: 'room:a', formats: { 'http-response': { body: '{}' } } }] });
      await page.waitForFunction(() => (globalThis as any).document.querySelector('#counters [data-key="deliveries"] .value').textContent === '3', undefined, { timeout: 5_000 });
      await page.waitForFunction(() => (globalThis as any).document.querySelectorAll('#chart-rates polyline').length === 3, undefined, { timeout: 5_000 });
      await page.waitForFunction(() => (globalThis as any).document.querySelector('#latency').textContent.includes('publish → write p50'), undefined, { timeout: 5_000 });
      assert.equal(await page.evaluate(() => (globalThis as any).sessionStorage.getItem('comet-proxy-token')), TEST_CONTROL_SECRET);
      assert.ok(!page.url().includes(TEST_CONTROL_SECRET), 'the token never appears in the URL');
      assert.deepEqual(problems, [], 'no script error and no CSP violation');

      // A few more samples, so the screenshot shows lines rather than a first point.
      await page.waitForFunction(() => ((globalThis as any).document.querySelector('#chart-parked polyline')?.getAttribute('points') ?? '').split(' ').length >= 5, undefined, { timeout: 10_000 });
      mkdirSync('test-artifacts', { recursive: true });
      await page.screenshot({ path: join('test-artifacts', 'status.png'), fullPage: true });

      await page.click('#forget');
      assert.equal(await page.evaluate(() => (globalThis as any).sessionStorage.getItem('comet-proxy-token')), null);
    } finally {
      await context.close();
    }
  });
});
