/**
 * Starts the real embedded stack (app on a temp SQLite file + hold proxy) on
 * ephemeral loopback ports, with teardown registered on the test context.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { startEmbedded, type EmbeddedStack } from '../../launcher/embedded.js';
import type { AppOptions } from '../../server/options.js';
import type { ProxyOptions } from '../../proxy/options.js';
import type { ControlResult, ProxyStats } from '../../protocol/control-api.js';

import { TEST_CONTROL_SECRET } from './proxy-harness.js';

/** The Grip-Sig key (proxy `secret`, app `secret`). */
export const TEST_SECRET = 'test-secret-0123456789abcdef';
/** The control API credential (proxy and app `controlSecret`), its own key. */
export { TEST_CONTROL_SECRET };
/** Re-poll leases (docs/protocol.md §13) are on in every test stack, as under `npm start`. */
export const TEST_LEASE_KEY = 'test-lease-key-fedcba9876543210';

export interface TestStack extends EmbeddedStack {
  /** Base URL clients use (the proxy), without trailing slash. */
  base: string;
  dbPath: string;
  stats(): Promise<ProxyStats>;
  control(path: string, body: unknown): Promise<{ status: number; body: ControlResult }>;
}

export interface StackOverrides {
  app?: Partial<AppOptions>;
  proxy?: Partial<ProxyOptions>;
  /** Reuse a database directory (restart tests); otherwise a fresh temp dir is made and removed. */
  dataDir?: string;
}

export async function startStack(t: TestContext, overrides: StackOverrides = {}): Promise<TestStack> {
  const dataDir = overrides.dataDir ?? mkdtempSync(join(tmpdir(), 'comet-chat-'));
  if (!overrides.dataDir) t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const dbPath = join(dataDir, 'chat.db');
  const stack = await startEmbedded({
    app: { secret: TEST_SECRET, controlSecret: TEST_CONTROL_SECRET, leaseKey: TEST_LEASE_KEY, host: '127.0.0.1', port: 0, dbPath, ...overrides.app },
    proxy: {
      secret: TEST_SECRET,
      controlSecret: TEST_CONTROL_SECRET,
      leaseKey: TEST_LEASE_KEY,
      clientHost: '127.0.0.1',
      clientPort: 0,
      controlHost: '127.0.0.1',
      controlPort: 0,
      ...overrides.proxy,
    },
  });
  t.after(() => stack.close());
  const controlBase = `http://127.0.0.1:${stack.controlPort}`;
  return {
    ...stack,
    base: stack.url.replace(/\/$/, ''),
    dbPath,
    async stats() {
      const res = await fetch(`${controlBase}/stats`, { headers: { authorization: `Bearer ${TEST_CONTROL_SECRET}` } });
      if (res.status !== 200) throw new Error(`stats answered ${res.status}`);
      return (await res.json()) as ProxyStats;
    },
    async control(path, body) {
      const res = await fetch(`${controlBase}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TEST_CONTROL_SECRET}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as ControlResult };
    },
  };
}
