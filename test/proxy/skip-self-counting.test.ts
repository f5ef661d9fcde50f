/**
 * The counting guarantee with `skip-self` (docs/protocol.md §3.1, §7.1): three
 * users long-poll one channel while they post to it, each hold filtered with
 * `skip-self` under the user's meta, every item published with `prev-id` and
 * its sender. Every user must get every other user's item exactly once, in
 * order, and none of their own, with the dropped items moving each hold's
 * cursor (a prev-id chain through a dropped item delivers, not re-asks).
 *
 * The app is a plain GRIP backend with a log: a poll `GET /poll?user=U&last=K`
 * is answered at once with the items after K not from U (and the log's last id
 * as the new position), or, when there are none, held on the channel with
 * prev-id = the log's last id.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request, startHarness } from '../helpers/proxy-harness.js';

interface Item {
  id: number;
  sender: string;
}

const USERS = ['ada', 'bob', 'cy'];
const POSTS_PER_USER = 20;

test('three users posting and long-polling with skip-self: each gets every other item once, in order, and none of their own', { timeout: 60_000 }, async (t) => {
  const h = await startHarness(t);
  const log: Item[] = [];
  h.app.handle = (req, res) => {
    const url = new URL(req.url, 'http://app.invalid');
    const user = url.searchParams.get('user')!;
    const last = Number(url.searchParams.get('last'));
    const news = log.filter((i) => i.id > last && i.sender !== user);
    if (news.length > 0) {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ items: news, last: log.length }));
      return;
    }
    res.writeHead(200, {
      'Grip-Hold': 'response',
      'Grip-Channel': `room; prev-id=${log.length}; filter=skip-self`,
      'Grip-Set-Meta': `user=${user}`,
      'Grip-Timeout': '20',
      'Content-Type': 'application/json',
    });
    // Held at the log's end: the user's own items past its position are skipped, as the filter skips them.
    res.end(JSON.stringify({ items: [], last: log.length }));
  };

  const post = async (sender: string): Promise<void> => {
    const item: Item = { id: log.length + 1, sender };
    log.push(item);
    const body = JSON.stringify({ items: [item], last: item.id });
    const res = await h.control('/publish/', { items: [{ channel: 'room', id: String(item.id), 'prev-id': String(item.id - 1), meta: { sender }, formats: { 'http-response': { headers: { 'content-type': 'application/json' }, body } } }] });
    assert.equal(res.status, 200, res.text);
  };

  const stop = new AbortController();
  t.after(() => stop.abort());
  const expected = POSTS_PER_USER * (USERS.length - 1);
  const follow = async (user: string): Promise<Item[]> => {
    const received: Item[] = [];
    let last = 0;
    for (let polls = 0; received.length < expected; polls++) {
      if (polls > expected * 4 + 20) throw new Error(`${user}: ${received.length} of ${expected} after ${polls} polls`);
      const res = await request(`${h.clientUrl}/poll?user=${user}&last=${last}`, { signal: AbortSignal.any([stop.signal, AbortSignal.timeout(20_000)]) });
      assert.equal(res.status, 200, res.text);
      const answer = res.json() as { items: Item[]; last: number };
      received.push(...answer.items);
      last = Math.max(last, answer.last);
    }
    return received;
  };
  const followers = USERS.map((u) => follow(u));

  // Posts in rounds, each user in turn. Most wait until every user is parked, so each item meets its sender's
  // hold (the filter drops it) and the others' (delivered); every fourth goes at once, racing the re-polls.
  let n = 0;
  for (let round = 0; round < POSTS_PER_USER; round++) {
    for (const user of USERS) {
      if (n++ % 4 !== 3) await h.waitParked(USERS.length);
      await post(user);
    }
  }
  const results = await Promise.all(followers);
  USERS.forEach((user, i) => {
    const ids = results[i]!.map((item) => item.id);
    const want = log.filter((item) => item.sender !== user).map((item) => item.id);
    assert.deepEqual(ids, want, `${user}: every other item once, in order, none of its own`);
  });
});
