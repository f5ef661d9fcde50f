/**
 * The messages `npm start` (launcher/main.ts) and its two children exchange
 * over fork()'s IPC channel. A readiness message, not a parsed log line: log
 * format and level are the operator's to change, the channel is not.
 *
 * Order: the app listens and says `app-ready` (its port may be ephemeral), the
 * launcher starts the proxy pointed at it, the proxy says `proxy-ready`, and
 * the launcher tells the app where the control API is (`connect-proxy`).
 */

/** Set in the children's env by the launcher: talk over IPC and wait for `connect-proxy`. */
export const LAUNCHED_ENV = 'COMET_CHAT_LAUNCHED';

export interface AppReady {
  type: 'app-ready';
  host: string;
  port: number;
}

export interface ProxyReady {
  type: 'proxy-ready';
  clientHost: string;
  clientPort: number;
  controlHost: string;
  controlPort: number;
}

export interface ConnectProxy {
  type: 'connect-proxy';
  controlUrl: string;
}

export type ChildMessage = AppReady | ProxyReady;

/** True when this process was forked by the launcher (an IPC channel and the marker). */
export function launchedByLauncher(env: NodeJS.ProcessEnv): boolean {
  return env[LAUNCHED_ENV] === '1' && typeof process.send === 'function';
}

/** Tells the launcher this child is ready; a no-op when the channel is gone. */
export function announce(message: ChildMessage): void {
  if (process.connected) process.send?.(message);
}

/**
 * A forked child ends with its launcher: when the IPC channel closes (the launcher
 * exited, even by SIGKILL) `onGone` shuts the child down, so no orphan keeps the ports.
 */
export function endWithLauncher(onGone: () => void): void {
  process.once('disconnect', onGone);
}

export function isConnectProxy(message: unknown): message is ConnectProxy {
  const m = message as Partial<ConnectProxy> | null;
  return typeof m === 'object' && m !== null && m.type === 'connect-proxy' && typeof m.controlUrl === 'string';
}

/** `host` as it goes in a URL: a wildcard address becomes loopback, IPv6 gets brackets. */
export function hostForUrl(host: string): string {
  if (host === '0.0.0.0' || host === '::') return 'localhost';
  return host.includes(':') ? `[${host}]` : host;
}
