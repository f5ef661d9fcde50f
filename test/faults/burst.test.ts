/**
 * Fault: a thundering herd. 500 new long-polls arrive at once (a reconnect
 * storm after a network blip or a proxy restart) while the proxy may open only
 * 16 sockets to the app. Requests beyond the pool wait in the agent's queue
 * for a socket; none may be refused with a 502 (Pushpin 1.36 answers about a
 * quarter of such a burst with 502 here). All 500 must park, and one publish
 * must then reach all 500.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { test } from 'node:test';
import { ChatClient, waitFor } from '../helpers/chat-client.js';
import { within } from '../helpers/fault-stack.js';
import { startStack } from '../helpers/stack.js';

const POLLS = 500;
const UPSTREAM_SOCKETS = 16;

interface Answer {
  status: number;
  body: string;
}

/** One GET on its own connection, like 500 separate browsers. */
function get(url: string, cookie: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, headers: { cookie } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Creates a session; returns its `sid=...` cookie. */
async function signIn(base: string, nick: string): Promise<string> {
  const res = await fetch(`${base}/api/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ nick }),
  });
  assert.equal(res.status, 201);
  const cookie = res.headers.getSetCookie().map((c) => c.split(';')[0]!).find((c) => c.startsWith('sid='));
  assert.ok(cookie);
  return cookie;
}

test(`${POLLS} new long-polls at once through ${UPSTREAM_SOCKETS} upstream sockets: no 502, all park, one publish reaches all`, async (t) => {
  const stack = await startStack(t, { proxy: { upstreamMaxSockets: UPSTREAM_SOCKETS } });
  // 500 sessions, created against the app directly (setup, not the fault under test), 25 at a time.
  const appBase = `http://127.0.0.1:${stack.appPort}`;
  const cookies: string[] = [];
  for (let i = 0; i < POLLS; i += 25) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(25, POLLS - i) }, (_, k) => signIn(appBase, `herd${i + k}`)),
    );
    cookies.push(...batch);
  }
  const poster = new ChatClient(stack.base);
  await poster.login('poster');
  const cursor = (await poster.call('GET', '/api/rooms/lobby/messages?limit=1')).body.cursor as number;
  await stack.chat.relay.waitIdle(10_000);

  const started = Date.now();
  const answers: Array<Answer | Error | undefined> = new Array(POLLS);
  const polls = cookies.map((cookie, i) =>
    get(`${stack.base}/api/poll?rooms=lobby:${cursor}`, cookie).then(
      (a) => (answers[i] = a),
      (err: Error) => (answers[i] = err),
    ),
  );
  try {
    await waitFor(
      async () => (await stack.stats()).parked === POLLS || answers.some((a) => a !== undefined),
      `${POLLS} polls to be parked`,
      30_000,
    );
    const early = answers.filter((a) => a !== undefined);
    assert.deepEqual(early, [], 'no poll was answered before the publish (no 502, no error)');
    t.diagnostic(`${POLLS} parked ${Date.now() - started} ms after the burst`);

    const posted = await poster.post('lobby', 'to the whole herd');
    await within(Promise.all(polls), 20_000, `the answers to all ${POLLS} polls`);
    const statuses = new Map<string, number>();
    let delivered = 0;
    for (const a of answers) {
      const key = a instanceof Error ? a.message : String(a!.status);
      statuses.set(key, (statuses.get(key) ?? 0) + 1);
      if (!(a instanceof Error) && a!.status === 200) {
        const ids = (JSON.parse(a!.body) as { events: Array<{ id: number }> }).events.map((e) => e.id);
        if (ids.length === 1 && ids[0] === posted.id) delivered++;
      }
    }
    assert.deepEqual([...statuses], [['200', POLLS]], 'every answer is a 200');
    assert.equal(delivered, POLLS, 'every client got exactly the published message');
    const stats = await stack.stats();
    assert.equal(stats.deliveries, POLLS);
    assert.equal(stats.parked, 0);
  } finally {
    // On failure, release whatever is still parked so teardown does not wait on it.
    await stack.proxy.close();
    await Promise.allSettled(polls);
  }
});
