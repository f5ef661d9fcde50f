/**
 * Clients behind a plain round-robin load balancer, for the scale-out tests:
 * each poll goes to the next proxy, and posters spread messages over rooms.
 */
import type { ChatClient } from './chat-client.js';
import { backoff } from './fault-stack.js';

export interface Loop {
  networkErrors: number;
  done: Promise<void>;
}

/** Long-polls like a tab behind a plain load balancer: each poll goes to the next proxy in `bases`. */
export function pollRotating(client: ChatClient, bases: string[], offset: number, stop: AbortSignal): Loop {
  const loop: Loop = { networkErrors: 0, done: Promise.resolve() };
  loop.done = (async () => {
    for (let n = 0; n < 20_000 && !stop.aborted; n++) {
      (client as { base: string }).base = bases[(n + offset) % bases.length]!;
      try {
        const r = await client.poll(stop);
        if (r.status === 502 || r.status === 503) await backoff(10);
        else if (r.status !== 200) throw new Error(`poll answered ${r.status}: ${JSON.stringify(r.body)}`);
      } catch (err) {
        if (stop.aborted) return;
        if (!(err instanceof TypeError)) throw err; // fetch's network failures are TypeErrors
        loop.networkErrors++;
        await backoff(10);
      }
    }
  })();
  return loop;
}

/** Posts `count` messages, spread over the posters and over `rooms` in turn, each poster's in order. */
export async function postSpread(posters: ChatClient[], rooms: readonly string[], count: number, phase: string): Promise<void> {
  await Promise.all(
    posters.map(async (p, i) => {
      for (let k = i; k < count; k += posters.length) await p.post(rooms[k % rooms.length]!, `${phase} ${k}`);
    }),
  );
}
