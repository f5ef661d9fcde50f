/**
 * Load generator for bench/scaleout/main.ts, run as its own process (never
 * inside a server process), driven over IPC:
 *
 *   parent → {type:'init', proxies, clients:[{sid, proxy}], room, cursor, localAddress, maxPollsPerClient}
 *   child  → {type:'ready'}
 *   parent → {type:'start'}            every client opens its long-poll with the given cursor
 *   child  → {type:'round', round, times}   once each of its clients got the message `r<round>`
 *                                      (times: receipt instants, ms on the shared wall clock)
 *   parent → {type:'flush', round}     send what arrived for `round` so far (after a deadline)
 *   parent → {type:'stop'}             abort all polls, answer {type:'final', ...}, exit
 *
 * Each client is one session cookie (created by the parent through the app). It
 * re-polls right after every answer, with its advanced cursor and connection ID,
 * on the next proxy (round robin, no stickiness, like a plain load balancer).
 * Every event is recorded raw so that lost and duplicated deliveries can be
 * counted. Loops are bounded by `maxPollsPerClient` and by `stop`.
 */
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';

interface Init {
  type: 'init';
  proxies: string[];
  clients: Array<{ sid: string; proxy: number }>;
  room: string;
  cursor: number;
  localAddress: string;
  maxPollsPerClient: number;
}
type FromParent = Init | { type: 'start' } | { type: 'flush'; round: number } | { type: 'stop' };

const now = () => performance.timeOrigin + performance.now();
const send = (m: unknown) => process.send!(m);

let init: Init;
let agent: Agent;
let stopping = false;
const inflight = new Set<() => void>();
/** round → receipt instants (first receipt per client only). */
const receipts = new Map<number, number[]>();
const reported = new Set<number>();
const stats = { polls: 0, answers200: 0, emptyAnswers: 0, errors: 0, non200: 0, otherEvents: 0, resyncs: 0, unknownMessages: 0 };

interface Client {
  sid: string;
  proxy: number;
  cursor: number;
  cid: string | undefined;
  /** event id → times seen. */
  seen: Map<number, number>;
  /** round → times seen. */
  rounds: Map<number, number>;
}
const clients: Client[] = [];

function get(url: URL, cookie: string): Promise<{ status: number; body: string; cid: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent, headers: { cookie }, localAddress: init.localAddress }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        inflight.delete(abort);
        const cid = res.headers['comet-connection-id'];
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), cid: typeof cid === 'string' ? cid : undefined });
      });
      res.on('error', (e) => (inflight.delete(abort), reject(e)));
    });
    const abort = () => req.destroy(new Error('stopped'));
    inflight.add(abort);
    req.on('error', (e) => (inflight.delete(abort), reject(e)));
    req.end();
  });
}

function receipt(round: number, at: number): void {
  let list = receipts.get(round);
  if (list === undefined) receipts.set(round, (list = []));
  list.push(at);
  if (list.length === clients.length && !reported.has(round)) {
    reported.add(round);
    send({ type: 'round', round, times: list });
  }
}

async function loop(c: Client): Promise<void> {
  for (let n = 0; n < init.maxPollsPerClient && !stopping; n++) {
    const base = init.proxies[c.proxy % init.proxies.length]!;
    const url = new URL(`/api/poll?rooms=${encodeURIComponent(init.room)}:${c.cursor}${c.cid ? `&cid=${encodeURIComponent(c.cid)}` : ''}`, base);
    stats.polls++;
    let r: Awaited<ReturnType<typeof get>>;
    try {
      r = await get(url, `sid=${c.sid}`);
    } catch {
      if (stopping) return;
      stats.errors++;
      await new Promise((res) => setTimeout(res, 50));
      continue;
    }
    const at = now();
    if (r.cid) c.cid = r.cid;
    c.proxy++; // next poll goes to the next proxy
    if (r.status !== 200) {
      stats.non200++;
      await new Promise((res) => setTimeout(res, 50));
      continue;
    }
    stats.answers200++;
    let body: { events?: Array<{ id: number; type: string; text?: string }>; connectionId?: string; resync?: unknown };
    try {
      body = JSON.parse(r.body);
    } catch {
      stats.non200++;
      continue;
    }
    if (body.connectionId) c.cid = body.connectionId;
    if (body.resync) stats.resyncs++;
    const events = body.events ?? [];
    if (events.length === 0) stats.emptyAnswers++;
    for (const ev of events) {
      c.seen.set(ev.id, (c.seen.get(ev.id) ?? 0) + 1);
      if (ev.id > c.cursor) c.cursor = ev.id;
      const m = ev.type === 'message' && typeof ev.text === 'string' ? /^r(\d+)$/.exec(ev.text) : null;
      if (m === null) {
        if (ev.type === 'message') stats.unknownMessages++;
        else stats.otherEvents++;
        continue;
      }
      const round = Number(m[1]);
      const times = (c.rounds.get(round) ?? 0) + 1;
      c.rounds.set(round, times);
      if (times === 1) receipt(round, at);
    }
  }
}

let loops: Promise<void[]> | null = null;

process.on('message', (m: FromParent) => {
  if (m.type === 'init') {
    init = m;
    agent = new Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 100_000 });
    for (const c of m.clients) clients.push({ sid: c.sid, proxy: c.proxy, cursor: m.cursor, cid: undefined, seen: new Map(), rounds: new Map() });
    send({ type: 'ready' });
  } else if (m.type === 'start') {
    loops = Promise.all(clients.map((c) => loop(c)));
  } else if (m.type === 'flush') {
    if (!reported.has(m.round)) {
      reported.add(m.round);
      send({ type: 'round', round: m.round, times: receipts.get(m.round) ?? [], partial: true });
    }
  } else if (m.type === 'stop') {
    stopping = true;
    for (const abort of [...inflight]) abort();
    const finish = () => {
      const perRound: Record<number, { got: number; dup: number }> = {};
      let dupEvents = 0;
      for (const c of clients) {
        for (const [, n] of c.seen) if (n > 1) dupEvents += n - 1;
        for (const [round, n] of c.rounds) {
          const r = (perRound[round] ??= { got: 0, dup: 0 });
          r.got++;
          r.dup += n - 1;
        }
      }
      send({ type: 'final', clients: clients.length, perRound, dupEvents, ...stats });
      setTimeout(() => process.exit(0), 50);
    };
    // Bounded: the aborted polls settle at once; never wait past 2 s.
    void Promise.race([loops ?? Promise.resolve(), new Promise((r) => setTimeout(r, 2_000))]).then(finish, finish);
  }
});
process.on('disconnect', () => process.exit(0));
