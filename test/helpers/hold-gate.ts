/**
 * A pass-through HTTP server between the proxy and the app that can hold back
 * the app's next hold instruction until the test releases it: the way to force
 * Suspend & Push's race (something is published after the app decided to hold,
 * before the proxy parked) deterministically.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface HoldGate {
  /** Request headers of every request whose path starts with the recorded prefix, in arrival order. */
  readonly seen: http.IncomingHttpHeaders[];
  /** Holds back the next answer carrying `Grip-Hold`; resolves once it has arrived from the app. */
  armed(): Promise<void>;
  /** Lets the held-back answer through to the proxy. */
  release(): void;
  /** Listens on an ephemeral loopback port; resolves with it. */
  listen(): Promise<number>;
  close(): Promise<void>;
}

export function startHoldGate(appPort: number, recordPrefix: string): HoldGate {
  const seen: http.IncomingHttpHeaders[] = [];
  let holdNext = false;
  let release: (() => void) | null = null;
  let onHeld: (() => void) | null = null;
  const server = http.createServer((req, res) => {
    if (req.url?.startsWith(recordPrefix)) seen.push(req.headers);
    const upstream = http.request({ host: '127.0.0.1', port: appPort, method: req.method, path: req.url, headers: req.headers }, (upRes) => {
      const forward = () => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      };
      if (holdNext && upRes.headers['grip-hold']) {
        holdNext = false;
        release = forward;
        onHeld?.();
      } else {
        forward();
      }
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  return {
    seen,
    armed() {
      holdNext = true;
      return new Promise<void>((resolve) => (onHeld = resolve));
    },
    release: () => release?.(),
    listen: () => new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port))),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
