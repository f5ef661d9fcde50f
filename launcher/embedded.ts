/**
 * Starts app + proxy wired together in this process: the app first (so the
 * proxy knows its port, which may be ephemeral), then the proxy, then the app's
 * outbox relay pointed at the proxy's control port. Kept for tests that need
 * both halves in reach (test/helpers/stack.ts); `npm start` runs the same
 * wiring as two processes (launcher/main.ts).
 */
import { createChatServer } from '../server/chat-server.js';
import type { AppOptions } from '../server/options.js';
import { createHoldProxy } from '../proxy/proxy.js';
import type { ProxyOptionsInput } from '../proxy/options.js';
import { hostForUrl } from '../common/launcher-ipc.js';

export interface EmbeddedOptions {
  app: Partial<AppOptions> & { secret: string };
  /** `workers` is ignored: the embedded stack is one process (proxy/main.ts runs workers). */
  proxy: Omit<ProxyOptionsInput, 'upstreamUrl'>;
}

export interface EmbeddedStack {
  /** What a browser opens: the proxy's client address. */
  url: string;
  appPort: number;
  clientPort: number;
  controlPort: number;
  chat: ReturnType<typeof createChatServer>;
  proxy: ReturnType<typeof createHoldProxy>;
  /** Drains parked requests (timeout responses), then stops the app. */
  close(): Promise<void>;
}

export async function startEmbedded(options: EmbeddedOptions): Promise<EmbeddedStack> {
  const chat = createChatServer({ ...options.app, controlUrl: undefined });
  const appPort = await chat.listen();
  const appHost = hostForUrl(chat.options.host);
  let proxy: ReturnType<typeof createHoldProxy>;
  try {
    proxy = createHoldProxy({ ...options.proxy, upstreamUrl: `http://${appHost}:${appPort}` });
  } catch (err) {
    await chat.close();
    throw err;
  }
  let ports: { clientPort: number; controlPort: number };
  try {
    ports = await proxy.listen();
  } catch (err) {
    await chat.close();
    await proxy.close();
    throw err;
  }
  chat.connectProxy(`http://${hostForUrl(proxy.options.controlHost)}:${ports.controlPort}`);
  return {
    url: `http://${hostForUrl(proxy.options.clientHost)}:${ports.clientPort}/`,
    appPort,
    clientPort: ports.clientPort,
    controlPort: ports.controlPort,
    chat,
    proxy,
    async close() {
      await proxy.close();
      await chat.close();
    },
  };
}
