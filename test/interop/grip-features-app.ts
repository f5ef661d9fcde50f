/**
 * A plain GRIP backend (node:http, nothing from this repository) that answers
 * with each GRIP feature of docs/protocol.md §12 this proxy reads as Pushpin
 * does, one route each, so test/interop/grip-features.test.ts can run the same
 * requests behind the real Pushpin and behind our proxy. Every hold names the
 * channel given in `?ch=` (each test uses its own). A fixture, not a test.
 *
 * - `/instruct/hold`: `application/grip-instruct` JSON holding on the channel, with a response template;
 * - `/instruct/plain`: `application/grip-instruct` without `hold`: the JSON's response is the answer;
 * - `/expose`: a header hold with `X-A`, `X-B` and `Grip-Expose-Headers: X-A`;
 * - `/meta?user=U`: a header hold with `Grip-Set-Meta: user=U` and `filter=skip-self` on the channel;
 * - `/link`: a header hold with `Grip-Link: </next>; rel=next` (the app counts requests to `/next`);
 * - `/hold`: a plain header hold; `/json`: a plain JSON answer (no instruction).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** The held body every hold answers on timeout. */
export const HELD_BODY = '{"held":true}';

export interface GripFeaturesApp {
  readonly port: number;
  /** Requests to `/next` (a followed `Grip-Link`). */
  readonly nextFetches: number;
  /** Hold answers sent, per channel. */
  holdsOn(channel: string): number;
  close(): Promise<void>;
}

export async function startGripFeaturesApp(): Promise<GripFeaturesApp> {
  let nextFetches = 0;
  const holds = new Map<string, number>();
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://app.invalid');
    const ch = url.searchParams.get('ch') ?? 'none';
    const held = (headers: Record<string, string | string[]>): void => {
      holds.set(ch, (holds.get(ch) ?? 0) + 1);
      res.writeHead(200, { 'Grip-Hold': 'response', 'Grip-Channel': ch, 'Grip-Timeout': '20', 'Content-Type': 'application/json', ...headers });
      res.end(HELD_BODY);
    };
    switch (url.pathname) {
      case '/instruct/hold':
        holds.set(ch, (holds.get(ch) ?? 0) + 1);
        res.writeHead(200, { 'Content-Type': 'application/grip-instruct' });
        res.end(
          JSON.stringify({
            hold: { mode: 'response', channels: [{ name: ch }], timeout: 20 },
            response: { code: 200, headers: { 'Content-Type': 'application/json', 'X-Held': 'yes' }, body: HELD_BODY },
          }),
        );
        return;
      case '/instruct/plain':
        res.writeHead(200, { 'Content-Type': 'application/grip-instruct' });
        res.end(JSON.stringify({ response: { code: 202, headers: { 'Content-Type': 'text/plain', 'X-From-Json': '1' }, body: 'plain answer' } }));
        return;
      case '/expose':
        held({ 'X-A': 'a', 'X-B': 'b', 'Grip-Expose-Headers': 'X-A' });
        return;
      case '/meta':
        held({ 'Grip-Channel': `${ch}; filter=skip-self`, 'Grip-Set-Meta': `user=${url.searchParams.get('user') ?? ''}` });
        return;
      case '/link':
        held({ 'Grip-Link': '</next>; rel=next' });
        return;
      case '/next':
        nextFetches++;
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        res.end('next page\n');
        return;
      case '/hold':
        held({});
        return;
      case '/json':
        res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
        res.end('{"a":1,"s":"line\\u2028sep"}\n');
        return;
      default:
        res.writeHead(404, { 'Content-Type': 'text/plain' });
        res.end('not found');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    get nextFetches() {
      return nextFetches;
    },
    holdsOn: (channel) => holds.get(channel) ?? 0,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
