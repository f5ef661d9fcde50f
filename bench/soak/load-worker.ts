/**
 * A soak load-generator process (forked by bench/soak/main.ts): runs its share
 * of the simulated clients (soak-client.ts) against the proxy and follows the
 * orchestrator's phases over IPC: setup (sign in, join rooms), start-polling,
 * churn (post, abort polls, join and leave at the configured rates), quiesce
 * (finish the actions in flight, keep polling), catch-up (wait until every
 * client has its rooms' last events), stop (abort everything, send the records).
 * Each process holds one socket per client plus a few: keep it well under the
 * 20,000 open files a process may have.
 */
import http from 'node:http';
import type { FromWorker, ToWorker, WorkerConfig, WorkerProgress } from './messages.js';
import { sleep, SoakClient, type ClientCounters } from './soak-client.js';
import { prng } from '../lib/prng.js';

const SETUP_CONCURRENCY = 32;
const TICK_MS = 50;
const QUIESCE_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 10_000;

function send(message: FromWorker, then?: () => void): void {
  process.send!(message, undefined, {}, () => then?.());
}

/** Runs `fn` over `items` with at most `limit` in flight. */
async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

let config: WorkerConfig;
let random: () => number = Math.random;
let agent: http.Agent;
const clients: SoakClient[] = [];
const counters: ClientCounters = {
  pollsAnswered: 0,
  pollErrors: 0,
  eventsReceived: 0,
  resyncs: 0,
  postsOk: 0,
  postsFailed: 0,
  joins: 0,
  leaves: 0,
  leavesAbandoned: 0,
  aborts: 0,
};
let clientsReady = 0;
const inFlight = new Set<Promise<void>>();
let scheduler: NodeJS.Timeout | null = null;
let progressTimer: NodeJS.Timeout | null = null;
let posted = 0;

function progress(): WorkerProgress {
  return { ...counters, clientsReady, clientsGivenUp: clients.filter((c) => c.gaveUp).length, inFlightActions: inFlight.size };
}

function pick<T>(items: readonly T[]): T | undefined {
  return items.length === 0 ? undefined : items[Math.floor(random() * items.length)];
}

async function setup(c: WorkerConfig): Promise<void> {
  config = c;
  // Whatever goes wrong upstream, this process does not run on forever.
  setTimeout(() => process.exit(3), c.maxRunMs).unref();
  random = prng(c.seed);
  // One socket per client for its poll, plus those of actions; keep the idle ones (no reconnect per poll).
  agent = new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: c.clients * 2 });
  const base = new URL(c.proxyUrl);
  for (let i = 0; i < c.clients; i++) {
    const address = c.sourceAddresses[i % c.sourceAddresses.length]!;
    clients.push(new SoakClient(`w${c.worker}c${i}`, agent, base, counters, random, c.pollTimeoutMs, address));
  }
  progressTimer = setInterval(() => send({ type: 'progress', progress: progress() }), 1000);

  await eachLimited(clients, SETUP_CONCURRENCY, (client) => client.login());
  for (const room of c.rooms) {
    const answer = await clients[0]!.call('POST', '/api/rooms', { name: room });
    if (answer.status !== 201 && answer.status !== 409) throw new Error(`create ${room}: ${answer.status}`);
  }
  await eachLimited(clients, SETUP_CONCURRENCY, async (client) => {
    const count = c.initialRoomsMin + Math.floor(random() * (c.initialRoomsMax - c.initialRoomsMin + 1));
    const rooms = [...c.rooms].sort(() => random() - 0.5).slice(0, count);
    for (const room of rooms) await client.join(room);
    if (client.cursors.size === 0) throw new Error(`${client.nick} could not join any room`);
  });
}

/**
 * Polling starts once every client of every worker has joined, from the rooms'
 * last ids then: a client polling during the joins would be woken by each later
 * join event in its rooms, and one starting at its own join would download them
 * all (both quadratic in the room size). No message exists yet, so nothing
 * expected is skipped.
 */
function startPolling(lastIds: Record<string, number>): void {
  for (const client of clients) {
    client.skipTo(lastIds);
    client.start();
    clientsReady++;
  }
}

/** Starts `action` on a random idle client (a few tries), tracked until it ends. */
function launch(action: (client: SoakClient) => Promise<void>): void {
  for (let tries = 0; tries < 10; tries++) {
    const client = pick(clients);
    if (client === undefined || client.busy || client.stopped) continue;
    client.busy = true;
    const running: Promise<void> = action(client)
      .catch((err: unknown) => {
        send({ type: 'error', message: `${client.nick}: ${(err as Error).stack ?? String(err)}` });
      })
      .finally(() => {
        client.busy = false;
        inFlight.delete(running);
      });
    inFlight.add(running);
    return;
  }
}

async function post(client: SoakClient): Promise<void> {
  const room = pick([...client.cursors.keys()]);
  if (room !== undefined) await client.post(room, `${client.nick} says #${++posted}`);
}

async function abort(client: SoakClient): Promise<void> {
  // Mostly a quick re-poll (a page navigation); sometimes a client offline for a few seconds.
  await client.abortPoll(random() < 0.8 ? random() * 300 : 1000 + random() * 3000);
}

async function joinOrLeave(client: SoakClient): Promise<void> {
  const member = [...client.cursors.keys()];
  const others = config.rooms.filter((r) => !client.cursors.has(r));
  const join = member.length < 2 || (others.length > 0 && random() < 0.5);
  await client.pause();
  try {
    if (join) {
      const room = pick(others);
      if (room !== undefined) await client.join(room);
    } else {
      await client.leave(pick(member)!);
    }
  } finally {
    client.resume();
  }
}

function startChurn(): void {
  const due = { post: 0, abort: 0, joinLeave: 0 };
  let last = performance.now();
  scheduler = setInterval(() => {
    const now = performance.now();
    const dt = (now - last) / 1000;
    last = now;
    due.post += config.postsPerS * dt;
    due.abort += config.abortsPerS * dt;
    due.joinLeave += config.joinsLeavesPerS * dt;
    // Bounded per tick: a stalled event loop must not turn into a burst of thousands.
    for (let n = 0; due.post >= 1 && n < 100; n++, due.post--) launch(post);
    for (let n = 0; due.abort >= 1 && n < 100; n++, due.abort--) launch(abort);
    for (let n = 0; due.joinLeave >= 1 && n < 100; n++, due.joinLeave--) launch(joinOrLeave);
  }, TICK_MS);
}

async function quiesce(): Promise<void> {
  if (scheduler !== null) clearInterval(scheduler);
  scheduler = null;
  const deadline = Date.now() + QUIESCE_TIMEOUT_MS;
  while (inFlight.size > 0 && Date.now() < deadline) await Promise.race([Promise.allSettled([...inFlight]), sleep(500)]);
}

async function catchUp(lastIds: Record<string, number>, timeoutMs: number): Promise<{ behind: number; ms: number }> {
  const started = Date.now();
  const behind = () => clients.filter((c) => !c.stopped && !c.caughtUp(lastIds)).length;
  while (behind() > 0 && Date.now() - started < timeoutMs) await sleep(50);
  return { behind: behind(), ms: Date.now() - started };
}

async function stop(): Promise<void> {
  if (scheduler !== null) clearInterval(scheduler);
  if (progressTimer !== null) clearInterval(progressTimer);
  for (const client of clients) client.stop();
  await Promise.race([Promise.allSettled(clients.map((c) => c.finished())), sleep(STOP_TIMEOUT_MS)]);
  agent.destroy();
}

async function handle(message: ToWorker): Promise<void> {
  switch (message.type) {
    case 'setup':
      await setup(message.config);
      send({ type: 'joined', progress: progress() });
      return;
    case 'start-polling':
      startPolling(message.lastIds);
      send({ type: 'ready', progress: progress() });
      return;
    case 'churn':
      startChurn();
      return;
    case 'quiesce':
      await quiesce();
      send({ type: 'quiet', progress: progress() });
      return;
    case 'catch-up':
      send({ type: 'caught-up', ...(await catchUp(message.lastIds, message.timeoutMs)) });
      return;
    case 'stop':
      await stop();
      send({ type: 'report', progress: progress(), clients: clients.map((c) => c.record()) }, () => process.exit(0));
      return;
  }
}

process.on('message', (message: ToWorker) => {
  handle(message).catch((err: unknown) => {
    send({ type: 'error', message: (err as Error).stack ?? String(err) }, () => process.exit(1));
  });
});
// The orchestrator went away: nobody to report to.
process.on('disconnect', () => process.exit(1));
