/**
 * Re-poll leases across proxies on Redis (docs/protocol.md §13.4, docs/scaleout.md): each proxy holds
 * the leases the app granted through it; a revocation sent to any one proxy (or carried by a leave
 * event on the bus) ends the lease on every proxy within a second, and the client's next poll on any
 * of them goes to the app.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { ChatClient, waitFor } from '../helpers/chat-client.js';
import { controlClient, faultDataDir, within } from '../helpers/fault-stack.js';
import { startBusApp, startRedis, startRedisProxy } from '../helpers/redis-server.js';

const PROXIES = 3;

async function cluster(t: Parameters<typeof startRedis>[0]) {
  const redis = await startRedis(t);
  const { app, url: appUrl } = await startBusApp(t, redis.url, join(faultDataDir(t), 'chat.db'));
  let appPolls = 0;
  app.server.on('request', (req) => {
    if (req.url?.startsWith('/api/poll')) appPolls++;
  });
  const bases: string[] = [];
  const controls: ReturnType<typeof controlClient>[] = [];
  for (let i = 0; i < PROXIES; i++) {
    const { base, control } = await startRedisProxy(t, appUrl, redis.url);
    bases.push(base);
    controls.push(control);
  }
  return { redis, bases, controls, appPolls: () => appPolls };
}

/** `client` polls through proxy `i` while `poster` posts: one message, parked then delivered. */
async function roundTrip(client: ChatClient, poster: ChatClient, base: string, control: ReturnType<typeof controlClient>, text: string) {
  (client as { base: string }).base = base;
  const parked = (await control.stats()).parked;
  const answer = client.poll();
  await waitFor(async () => (await control.stats()).parked > parked, `a poll parked on ${base}`, 5000);
  await poster.post('lobby', text);
  const r = await within(answer, 5000, 'the poll');
  assert.equal(r.status, 200);
  assert.equal(r.body.events.at(-1).text, text);
}

test('a revocation sent to one proxy ends the lease on all three within 1 s; the next polls go to the app', async (t) => {
  const { bases, controls, appPolls } = await cluster(t);
  const ada = new ChatClient(bases[0]!);
  const bob = new ChatClient(bases[0]!);
  const adaUser = await ada.login('ada');
  await bob.login('bob');
  await ada.join('lobby');
  // Through each proxy once (a lease per proxy), then again: the second round never reaches the app.
  for (let i = 0; i < PROXIES; i++) await roundTrip(ada, bob, bases[i]!, controls[i]!, `lease ${i}`);
  const granted = appPolls();
  for (let i = 0; i < PROXIES; i++) await roundTrip(ada, bob, bases[i]!, controls[i]!, `leased ${i}`);
  assert.equal(appPolls(), granted, 'every proxy answered with its lease');
  for (const control of controls) assert.equal((await control.stats()).leases, 1);

  const sent = Date.now();
  const revoked = await controls[0]!.call('/revoke/', { items: [{ subject: `s${adaUser.id}` }] });
  assert.equal(revoked.status, 200);
  await waitFor(async () => (await Promise.all(controls.map((c) => c.stats()))).every((s) => s.leases === 0), 'every proxy to drop the lease', 1000);
  t.diagnostic(`revocation reached ${PROXIES} proxies in ${Date.now() - sent} ms`);

  for (let i = 0; i < PROXIES; i++) await roundTrip(ada, bob, bases[i]!, controls[i]!, `after ${i}`);
  assert.equal(appPolls(), granted + PROXIES, 'each proxy asked the app once, then had a fresh lease');
});

test('a proxy that resyncs after Redis lost its data drops every lease: a revocation it may have missed cannot be outlived', async (t) => {
  const { redis, bases, controls, appPolls } = await cluster(t);
  const ada = new ChatClient(bases[0]!);
  const bob = new ChatClient(bases[0]!);
  await ada.login('ada');
  await bob.login('bob');
  await ada.join('lobby');
  for (let i = 0; i < PROXIES; i++) await roundTrip(ada, bob, bases[i]!, controls[i]!, `lease ${i}`);
  for (const control of controls) assert.equal((await control.stats()).leases, 1);

  // The revocations XADDed before the crash are gone with the stream; no proxy can know what it missed.
  await redis.restart();
  await waitFor(async () => (await Promise.all(controls.map((c) => c.stats()))).every((s) => s.busResyncs >= 1), 'every proxy to resync', 10_000);
  for (const control of controls) assert.equal((await control.stats()).leases, 0, 'no lease survives a resync');

  // The first poll on each proxy reaches the app (it may answer at once: the queue-lost resync of §8).
  for (let i = 0; i < PROXIES; i++) {
    (ada as { base: string }).base = bases[i]!;
    const before = appPolls();
    const parked = (await controls[i]!.stats()).parked;
    let answered = false;
    const answer = ada.poll().finally(() => (answered = true));
    await waitFor(async () => answered || (await controls[i]!.stats()).parked > parked, `a poll answered or parked on proxy ${i}`, 5000);
    if (!answered) await bob.post('lobby', `after resync ${i}`);
    assert.equal((await within(answer, 5000, 'the poll')).status, 200);
    assert.ok(appPolls() > before, `proxy ${i} asked the app: its lease was dropped`);
  }
  for (const control of controls) assert.equal((await control.stats()).leases, 1, 'and holds a fresh lease from that answer');
});

test('a revocation that names nobody is refused with 400 and changes nothing', async (t) => {
  const { controls } = await cluster(t);
  const bad = await controls[1]!.call('/revoke/', { items: [{ 'issued-before': 5 }] });
  assert.equal(bad.status, 400);
  assert.equal((bad.body as unknown as { code: string }).code, 'PROXY_ERR_INVALID_ITEM');
});
