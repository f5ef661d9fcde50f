/**
 * The counting scenario both chat-app models must pass: 20 clients in 2 rooms
 * polling in loops while 200 posts (10 in flight, alternating rooms) are made;
 * every client must hold exactly its room's posts, once, in commit order.
 * Shared by suspend-resume.test.ts and mailbox.test.ts.
 */
import assert from 'node:assert/strict';
import { ChatClient, type ChatEvent } from '../../helpers/chat-client.js';

async function userId(client: ChatClient): Promise<number> {
  return (await client.call('GET', '/api/session')).body.user.id as number;
}

/** Runs the scenario against the lab server at `base`; throws (assert) on any gap, duplicate or reordering. */
export async function countingScenario(base: string): Promise<void> {
  const rooms = ['alpha', 'beta'];
  const posters = await Promise.all(
    rooms.map(async (room, i) => {
      const poster = new ChatClient(base);
      await poster.login(`poster${i}`);
      await poster.call('POST', '/api/rooms', { name: room });
      await poster.join(room);
      return poster;
    }),
  );
  const clients = await Promise.all(
    Array.from({ length: 20 }, async (_, i) => {
      const client = new ChatClient(base);
      await client.login(`reader${i}`);
      await client.join(rooms[i % 2]!);
      return client;
    }),
  );
  const perRoom = 100;
  const posterIds = new Set(await Promise.all(posters.map(userId)));
  const messagesOf = (c: ChatClient): ChatEvent[] => c.received.filter((e) => e.type === 'message' && posterIds.has(e.user.id));

  const deadline = Date.now() + 45_000;
  const loops = clients.map(async (client) => {
    while (messagesOf(client).length < perRoom) {
      if (Date.now() > deadline) throw new Error(`client got ${messagesOf(client).length} of ${perRoom} messages`);
      const res = await client.poll();
      if (res.status !== 200) throw new Error(`poll answered ${res.status} ${JSON.stringify(res.body)}`);
    }
  });

  // 200 posts, 10 in flight at a time, alternating rooms.
  const posted = new Map<string, number[]>(rooms.map((r) => [r, []]));
  let next = 0;
  await Promise.all(
    Array.from({ length: 10 }, async () => {
      while (next < 2 * perRoom) {
        const n = next++;
        const room = rooms[n % 2]!;
        const event = await posters[n % 2]!.post(room, `m${n}`);
        posted.get(room)!.push(event.id);
      }
    }),
  );
  await Promise.all(loops);

  for (const [i, client] of clients.entries()) {
    const room = rooms[i % 2]!;
    const expected = [...posted.get(room)!].sort((a, b) => a - b);
    assert.deepEqual(messagesOf(client).map((e) => e.id), expected, `client ${i} (${room})`);
  }
}
