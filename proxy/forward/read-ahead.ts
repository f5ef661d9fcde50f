/**
 * Copies a pass-through answer from the app to the client as it arrives, and
 * reads up to `maxAheadBytes` of it ahead of a client that is slower than the
 * app (docs/protocol.md §1.3): the app's socket goes back to the pool as soon
 * as the app has sent the answer, instead of waiting for the slowest reader.
 * Only past that many unsent bytes does the app's answer wait for the client,
 * and then for at most the client write timeout (http/write-stall-watch.ts).
 *
 * Plain listeners rather than pipe()'s 16 KiB window or pipeline(): the
 * latter makes an AbortController per answer (about 5% of the proxy's CPU under
 * load on Node 20).
 */
import type { IncomingMessage } from 'node:http';
import type { ClientResponse } from '../http/client-message.js';

/** Starts copying `from` into `to`; `to` is ended when `from` ends. Errors are the caller's (listen on both). */
export function relayWithReadAhead(from: IncomingMessage, to: ClientResponse, maxAheadBytes: number): void {
  const ahead: Buffer[] = [];
  let aheadBytes = 0;
  let waitingForDrain = false;
  let ended = false;

  const endIfDone = () => {
    if (ended && ahead.length === 0 && !to.writableEnded && !to.destroyed) to.end();
  };

  from.on('data', (chunk: Buffer) => {
    if (!waitingForDrain) {
      waitingForDrain = !to.write(chunk);
      return;
    }
    ahead.push(chunk);
    aheadBytes += chunk.length;
    if (aheadBytes >= maxAheadBytes) from.pause();
  });
  from.once('end', () => {
    ended = true;
    endIfDone();
  });
  to.on('drain', () => {
    waitingForDrain = false;
    while (ahead.length > 0 && !waitingForDrain) {
      const chunk = ahead.shift()!;
      aheadBytes -= chunk.length;
      waitingForDrain = !to.write(chunk);
    }
    if (aheadBytes < maxAheadBytes && from.isPaused()) from.resume();
    endIfDone();
  });
}
