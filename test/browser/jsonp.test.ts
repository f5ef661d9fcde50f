/**
 * JSON-P in a real browser (docs/protocol.md §1.9): a page long-polls the
 * proxy with a `<script>` tag from another origin, as pre-CORS browsers had to,
 * and its callback gets the published item; a callback name that is not an
 * identifier path never runs as script. Real Chromium, real proxy, scripted app.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { launchBrowser, WAIT_MS } from '../helpers/browser.js';
import { startHarness } from '../helpers/proxy-harness.js';
import { writeHold } from '../helpers/scripted-app.js';

interface Wrapped {
  code: number;
  headers: Record<string, string>;
  body: string;
}

declare const window: { got: Wrapped[]; errors: string[]; cb: (v: Wrapped) => void; [name: string]: unknown };
declare const document: { createElement(tag: string): { src: string; onerror: () => void }; body: { appendChild(node: unknown): void } };

test('a script-tag long-poll from another origin gets the published item through its callback; a bad callback name never runs', { timeout: 60_000 }, async (t) => {
  const h = await startHarness(t, { jsonpCallbackParam: 'callback' });
  h.app.handle = (_req, res) => writeHold(res, { channel: 'room', timeoutS: 30 });
  const browser = await launchBrowser();
  t.after(() => browser.close());
  const page = await browser.newPage();
  await page.setContent('<!doctype html><html><body></body></html>');

  const load = (src: string) =>
    page.evaluate((url) => {
      window.got ??= [];
      window.errors ??= [];
      window.cb = (v) => window.got.push(v);
      const script = document.createElement('script');
      script.onerror = () => window.errors.push(url);
      script.src = url;
      document.body.appendChild(script);
    }, src);

  await load(`${h.clientUrl}/poll?callback=cb`);
  await h.waitParked(1);
  const text = '<img src=x onerror=alert(1)> "quoted" \u2028';
  const publish = await h.control('/publish/', { items: [{ channel: 'room', formats: { 'http-response': { headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ text }) } } }] });
  assert.equal(publish.status, 200);
  await page.waitForFunction(() => window.got.length === 1, null, { timeout: WAIT_MS });
  const [wrapped] = await page.evaluate(() => window.got);
  assert.equal(wrapped!.code, 200);
  assert.equal(wrapped!.headers['content-type'], 'application/json');
  assert.deepEqual(JSON.parse(wrapped!.body), { text });

  // A name that would be code if it were pasted into the script: refused as JSON, so the tag fails to load.
  const bad = `${h.clientUrl}/poll?callback=${encodeURIComponent('cb({code:666});//')}`;
  await load(bad);
  await page.waitForFunction((url) => window.errors.includes(url), bad, { timeout: WAIT_MS });
  assert.equal(await page.evaluate(() => window.got.length), 1, 'nothing ran');
  assert.equal(h.app.requests.length, 1, 'the refused request never reached the app');
});
