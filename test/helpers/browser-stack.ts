/**
 * The real stack (app + proxy, startStack) set up for the browser: the proxy
 * serves only the base domain (chat.test) and its subdomains, the app announces
 * 8 shard hosts and scopes the session cookie to the base domain so every shard
 * host sees it. Pages open at http://<base domain>:<proxy port>/ (Chromium maps
 * chat.test names to loopback; *.localhost is loopback anyway).
 *
 * `baseDomain: 'chat.localhost'` gives a secure context over plain http:
 * Chromium honours `Origin-Agent-Cluster` only in secure contexts, so that is
 * where `?1` really switches document.domain off (on http://chat.test every
 * document stays site-keyed whatever the header says).
 */
import type { TestContext } from 'node:test';
import type { Browser, BrowserContext } from 'playwright-core';
import { createHoldProxy, type HoldProxy } from '../../proxy/proxy.js';
import { startStack, type StackOverrides, type TestStack } from './stack.js';
import { BASE_DOMAIN, ChatPage, type Viewport } from './browser.js';

export const SHARD_COUNT = 8;

export interface BrowserStack extends TestStack {
  /** `http://<base domain>:<port>/?<query>`, with `transport=poll` added unless the query names a transport. */
  pageUrl(query?: string): string;
  /** A chat page in a fresh browser context (its own session, 1280x800 unless `viewport`), closed before the stack. */
  openPage(query?: string, viewport?: Viewport): Promise<ChatPage>;
  /** The proxy serving now (a new one after `restartProxy`). */
  currentProxy(): HoldProxy;
  /**
   * Closes the proxy (parked polls get their timeout response) and starts an
   * identical one on the same client and control ports. `whileDown` runs in
   * between, when requests to the proxy fail at the network level.
   */
  restartProxy(whileDown?: () => Promise<void>): Promise<void>;
}

export interface BrowserStackOverrides extends StackOverrides {
  /** Default chat.test. */
  baseDomain?: string;
}

export async function startBrowserStack(t: TestContext, browser: Browser, overrides: BrowserStackOverrides = {}): Promise<BrowserStack> {
  const { baseDomain = BASE_DOMAIN, ...stackOverrides } = overrides;
  const contexts: BrowserContext[] = [];
  // Registered before startStack's own teardown, so pages close first (node:test
  // runs after-hooks in registration order) and no page re-polls a closing proxy.
  t.after(() => Promise.all(contexts.map((c) => c.close())).then(() => undefined));
  const stack = await startStack(t, {
    ...stackOverrides,
    app: { baseDomain, cookieDomain: baseDomain, shardCount: SHARD_COUNT, ...stackOverrides.app },
    proxy: { baseDomain, ...stackOverrides.proxy },
  });
  let proxy: HoldProxy = stack.proxy;
  // Pages long-poll unless the test names a transport: Chromium has EventSource, so the page's automatic choice
  // is a stream (docs/protocol.md §10.2), and the tests written about polls (parked counts, poll requests) keep
  // testing polls. `transport=auto` tests the automatic choice.
  const pageUrl = (query = '') => {
    const full = /(^|&)transport=/.test(query) ? query : query ? `${query}&transport=poll` : 'transport=poll';
    return `http://${baseDomain}:${stack.clientPort}/?${full}`;
  };

  return {
    ...stack,
    pageUrl,
    openPage: (query = '', viewport) => ChatPage.open(browser, pageUrl(query), contexts, viewport),
    currentProxy: () => proxy,
    async restartProxy(whileDown) {
      const options = proxy.options;
      await proxy.close();
      if (whileDown) await whileDown();
      proxy = createHoldProxy({
        ...options,
        clientPort: stack.clientPort,
        controlPort: stack.controlPort,
        upstreamUrl: `http://127.0.0.1:${stack.appPort}`,
      });
      const restarted = proxy;
      t.after(() => restarted.close());
      await restarted.listen();
    },
  };
}
