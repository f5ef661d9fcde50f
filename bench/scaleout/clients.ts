/**
 * Load generator for bench/scaleout/main.ts (its own process): logs in
 * `count` clients spread over the proxies, joins room `bench` and long-polls
 * until each has `messages` new events, then prints one JSON line and exits.
 * argv: proxies(comma-separated) count messages startCursor
 */
import { ChatClient } from '../../test/helpers/chat-client.js';

const [proxyList, countText, messagesText, cursorText] = process.argv.slice(2);
const proxies = proxyList!.split(',');
const count = Number(countText);
const messages = Number(messagesText);
const clients: ChatClient[] = [];
for (let i = 0; i < count; i++) {
  const c = new ChatClient(proxies[i % proxies.length]!);
  await c.login(`b${process.pid}-${i}`);
  await c.join('bench');
  c.cursors.set('bench', Number(cursorText));
  clients.push(c);
}
process.stdout.write(`${JSON.stringify({ ready: count })}\n`);
const deadline = Date.now() + 120_000;
let done = 0;
await Promise.all(
  clients.map(async (c, i) => {
    for (let n = 0; c.received.filter((e) => e.type === 'message').length < messages && Date.now() < deadline && n < 100_000; n++) {
      // No sticky sessions: each poll goes to the next proxy.
      (c as { base: string }).base = proxies[(i + n) % proxies.length]!;
      const r = await c.poll().catch(() => null);
      if (r === null || r.status !== 200) await new Promise((res) => setTimeout(res, 20));
    }
    if (c.received.filter((e) => e.type === 'message').length >= messages) done++;
  }),
);
process.stdout.write(`${JSON.stringify({ done, at: Date.now() })}\n`);
