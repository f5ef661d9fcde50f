/**
 * One simulated chat client of the soak: a session cookie, a connection ID,
 * a cursor per room, one long-poll always in flight (the poll loop), and
 * actions the worker starts at random (post, abort the poll, join, leave).
 * It records every event id it receives (duplicates kept) and its membership
 * intervals as it knows them, for the verdict (deliveries.ts). It runs in the
 * lab's load-worker processes, in the soak role (soak-role.ts).
 *
 * Correctness rules it follows, so that every loss the report finds is the
 * system's and not the client's:
 * - cursors advance only on events read from a complete answer (an aborted
 *   poll loses nothing: the next poll asks again from the same cursor);
 * - a join's interval starts at the cursor of the join answer it received;
 * - before leaving a room it catches up to the room's last event id `C`
 *   (read just before) and its interval ends at `C`; a join or leave whose
 *   answer was lost is retried until the answer is definitive.
 *
 * Every wait is bounded and ends early on `stop()`.
 */
import http from 'node:http';
import type { ClientCounters, ClientRecord, Interval } from './soak-messages.js';

export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: any;
}


/** Rejected when a request was aborted on purpose (`AbortSignal`), as opposed to a network error. */
export class AbortedError extends Error {
  override name = 'AbortedError';
}

const REQUEST_TIMEOUT_MS = 15_000;

/** One HTTP request with a JSON body (if any); resolves with the status and parsed JSON. */
export function callJson(
  agent: http.Agent,
  base: URL,
  method: string,
  path: string,
  {
    cookie,
    body,
    signal,
    timeoutMs = REQUEST_TIMEOUT_MS,
    localAddress,
  }: { cookie?: string; body?: unknown; signal?: AbortSignal; timeoutMs?: number; localAddress?: string } = {},
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new AbortedError('aborted'));
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string> = {};
    if (cookie) headers.cookie = cookie;
    if (payload) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(payload.length);
    }
    const req = http.request({ host: base.hostname, port: base.port, method, path, agent, headers, ...(localAddress ? { localAddress } : {}) });
    const onAbort = () => req.destroy(new AbortedError('aborted'));
    signal?.addEventListener('abort', onAbort, { once: true });
    const done = () => signal?.removeEventListener('abort', onAbort);
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err) => {
      done();
      reject(signal?.aborted ? new AbortedError('aborted') : err);
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', () => undefined); // the request's 'error' (or 'close' below) settles it
      res.on('close', () => {
        done();
        if (!res.complete) {
          reject(signal?.aborted ? new AbortedError('aborted') : new Error('answer cut short'));
          return;
        }
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: unknown = text;
        try {
          parsed = text === '' ? null : JSON.parse(text);
        } catch {
          /* not JSON: keep the text */
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed });
      });
    });
    req.end(payload);
  });
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(finish, ms);
    function finish() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', finish);
      resolve();
    }
    signal?.addEventListener('abort', finish, { once: true });
  });
}

/** Answers that say the request never took effect or may have: worth asking again. */
function retryable(status: number): boolean {
  return status === 0 || status === 502 || status === 503 || status === 504;
}

export class SoakClient {
  cookie = '';
  connectionId: string | undefined;
  readonly cursors = new Map<string, number>();
  readonly intervals: Interval[] = [];
  readonly received: number[] = [];
  /** True while an action runs (the worker starts at most one per client). */
  busy = false;
  /** Set when the client could not tell whether a join or leave happened: it stops for good. */
  gaveUp = false;

  private readonly stopController = new AbortController();
  private poll: AbortController | null = null;
  private paused = 0;
  private unpause: (() => void) | null = null;
  private loopIdle: (() => void) | null = null;
  private running: Promise<void> | null = null;

  constructor(
    readonly nick: string,
    private readonly agent: http.Agent,
    private readonly base: URL,
    private readonly counters: ClientCounters,
    private readonly random: () => number,
    private readonly pollTimeoutMs: number,
    /** Loopback source address of every connection (the agent keeps a pool per address); none off loopback. */
    private readonly localAddress: string | undefined,
  ) {}

  get stopped(): boolean {
    return this.stopController.signal.aborted;
  }

  call(method: string, path: string, body?: unknown, signal?: AbortSignal, timeoutMs?: number): Promise<HttpAnswer> {
    const options: Parameters<typeof callJson>[4] = { cookie: this.cookie, signal: signal ?? this.stopController.signal };
    if (this.localAddress !== undefined) options.localAddress = this.localAddress;
    if (body !== undefined) options.body = body;
    if (timeoutMs !== undefined) options.timeoutMs = timeoutMs;
    return callJson(this.agent, this.base, method, path, options);
  }

  /** Calls until the answer is definitive (not a network error, 502, 503 or 504); at most `attempts` times. */
  private async callDefinitive(method: string, path: string, body?: unknown, attempts = 30): Promise<HttpAnswer | null> {
    for (let i = 0; i < attempts && !this.stopped; i++) {
      try {
        const answer = await this.call(method, path, body);
        if (!retryable(answer.status)) return answer;
      } catch (err) {
        if (err instanceof AbortedError) return null;
      }
      await sleep(Math.min(2_000, 100 * 2 ** i) * (0.5 + this.random() / 2), this.stopController.signal);
    }
    return null;
  }

  async login(): Promise<void> {
    // Nicks are unique among live sessions: a retried sign-in whose first answer was lost after the app
    // committed it finds its nick taken (409) and signs in as `<nick>-2`, ... (`nick` stays the client's name here).
    let answer: Awaited<ReturnType<SoakClient['callDefinitive']>> = null;
    for (let n = 1; n <= 5; n++) {
      answer = await this.callDefinitive('POST', '/api/session', { nick: n === 1 ? this.nick : `${this.nick}-${n}` });
      if (answer?.status !== 409) break;
    }
    if (answer?.status !== 201) throw new Error(`login ${this.nick}: ${answer?.status} ${JSON.stringify(answer?.body)}`);
    const sid = ([] as string[]).concat(answer.headers['set-cookie'] ?? []).map((c) => c.split(';')[0]!).find((c) => c.startsWith('sid='));
    if (sid === undefined) throw new Error(`login ${this.nick}: no sid cookie`);
    this.cookie = sid;
  }

  /** Joins `room`; the interval starts at the answer's cursor. False if the answer never came. */
  async join(room: string): Promise<boolean> {
    // An answer that never came may hide a join that happened: harmless, the client does not poll the room.
    const answer = await this.callDefinitive('POST', `/api/rooms/${room}/join`);
    if (answer?.status !== 200) return false;
    const cursor = answer.body.cursor as number;
    this.cursors.set(room, cursor);
    this.intervals.push([room, cursor, null]);
    this.counters.joins++;
    return true;
  }

  /**
   * Leaves `room` after catching up to its last event id C (read now), so the
   * interval (from, C] is complete before the client stops listening.
   */
  async leave(room: string): Promise<boolean> {
    const head = await this.callDefinitive('GET', `/api/rooms/${room}/messages?limit=1`);
    if (head?.status !== 200) return this.abandonLeave();
    const last = head.body.cursor as number;
    for (let i = 0; i < 20 && (this.cursors.get(room) ?? 0) < last; i++) {
      // There is news past the cursor, so the app answers at once instead of holding.
      if (!(await this.pollOnce(this.stopController.signal))) {
        await sleep(100 * (1 + i), this.stopController.signal);
      }
    }
    if ((this.cursors.get(room) ?? 0) < last) return this.abandonLeave();
    const answer = await this.callDefinitive('POST', `/api/rooms/${room}/leave`);
    if (answer === null) {
      if (!this.stopped) this.giveUp(); // it may or may not have left: its polls would fail if it did
      this.closeInterval(room, last);
      return false;
    }
    // 403: an earlier attempt's answer was lost but it did leave (after C, since it was still polling the room).
    if (answer.status !== 200 && answer.body?.code !== 'APP_ERR_NOT_MEMBER') return this.abandonLeave();
    this.closeInterval(room, last);
    this.counters.leaves++;
    return true;
  }

  private abandonLeave(): false {
    this.counters.leavesAbandoned++;
    return false;
  }

  private closeInterval(room: string, to: number): void {
    this.cursors.delete(room);
    const open = this.intervals.find(([r, , end]) => r === room && end === null);
    if (open) open[2] = to;
  }

  /** Stops for good; each open interval ends at the cursor it reached (nothing after it was due yet). */
  private giveUp(): void {
    this.gaveUp = true;
    for (const [room, cursor] of [...this.cursors]) this.closeInterval(room, cursor);
    this.stop();
  }

  /** Posts a message in a room it is a member of; the database, not this answer, is the ground truth. */
  async post(room: string, text: string): Promise<void> {
    try {
      const answer = await this.call('POST', `/api/rooms/${room}/messages`, { text });
      if (answer.status === 201) this.counters.postsOk++;
      else this.counters.postsFailed++;
    } catch {
      this.counters.postsFailed++;
    }
  }

  private pollPath(): string {
    const rooms = [...this.cursors].map(([room, cursor]) => `${room}:${cursor}`).join(',');
    return `/api/poll?rooms=${rooms}${this.connectionId ? `&cid=${this.connectionId}` : ''}`;
  }

  /** One poll; records the events of a complete answer. Resolves true for a 200 answer. */
  async pollOnce(signal: AbortSignal): Promise<boolean> {
    if (this.cursors.size === 0) return false;
    let answer: HttpAnswer;
    try {
      answer = await this.call('GET', this.pollPath(), undefined, signal, this.pollTimeoutMs);
    } catch (err) {
      if (!(err instanceof AbortedError)) this.counters.pollErrors++;
      return false;
    }
    const cid = answer.headers['comet-connection-id'];
    if (typeof cid === 'string') this.connectionId = cid;
    if (answer.status === 410) this.connectionId = undefined;
    if (answer.status !== 200 || answer.body === null || typeof answer.body !== 'object') {
      this.counters.pollErrors++;
      return false;
    }
    this.counters.pollsAnswered++;
    if (answer.body.resync) {
      // Our cursors are the state the app answers from: polling again from them is the reload.
      this.counters.resyncs++;
      return true;
    }
    for (const event of (answer.body.events ?? []) as Array<{ id: number; room: string }>) {
      this.received.push(event.id);
      this.counters.eventsReceived++;
      const cursor = this.cursors.get(event.room);
      if (cursor !== undefined && event.id > cursor) this.cursors.set(event.room, event.id);
    }
    return true;
  }

  /**
   * Moves the cursor of every room to `lastIds[room]` when that is ahead, and the start of its
   * interval with it: used once, before polling starts, so that clients do not each download
   * every other client's join event (no message is posted before polling starts).
   */
  skipTo(lastIds: Readonly<Record<string, number>>): void {
    for (const [room, cursor] of this.cursors) {
      const last = lastIds[room];
      if (last === undefined || last <= cursor) continue;
      this.cursors.set(room, last);
      const open = this.intervals.find(([r, , end]) => r === room && end === null);
      if (open) open[1] = last;
    }
  }

  /** Starts the poll loop (once). */
  start(): void {
    this.running ??= this.loop();
  }

  private async loop(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      if (this.paused > 0 || this.cursors.size === 0) {
        await new Promise<void>((resolve) => {
          this.unpause = resolve;
          this.loopIdle?.();
          this.loopIdle = null;
        });
        this.unpause = null;
        continue;
      }
      const poll = new AbortController();
      this.poll = poll;
      const ok = await this.pollOnce(AbortSignal.any([poll.signal, this.stopController.signal]));
      this.poll = null;
      if (ok || poll.signal.aborted) {
        failures = 0;
        continue;
      }
      // Proxy or app restarting, or an error: back off (bounded, jittered) and ask again.
      failures++;
      await sleep(Math.min(2_000, 50 * 2 ** Math.min(failures, 6)) * (0.5 + this.random() / 2), this.stopController.signal);
    }
    this.loopIdle?.();
  }

  /** Aborts the poll in flight and keeps the loop from starting another until `resume()`. */
  async pause(): Promise<void> {
    this.paused++;
    if (this.running === null || this.stopped) return;
    const idle = new Promise<void>((resolve) => (this.loopIdle = resolve));
    this.poll?.abort();
    if (this.unpause === null) await idle; // otherwise the loop is already waiting
    this.loopIdle = null;
  }

  resume(): void {
    this.paused = Math.max(0, this.paused - 1);
    if (this.paused === 0) this.unpause?.();
  }

  /** Aborts the poll in flight; the loop starts a new one after `pauseMs`. */
  async abortPoll(pauseMs: number): Promise<void> {
    this.counters.aborts++;
    await this.pause();
    await sleep(pauseMs, this.stopController.signal);
    this.resume();
  }

  /** Stops for good: aborts everything in flight and ends the loop. */
  stop(): void {
    this.stopController.abort();
    this.unpause?.();
  }

  /** Resolves when the poll loop has ended (after `stop()`). */
  async finished(): Promise<void> {
    await this.running;
  }

  /** True when every room it listens to is at or past `lastIds` (rooms it does not listen to are ignored). */
  caughtUp(lastIds: Readonly<Record<string, number>>): boolean {
    for (const [room, cursor] of this.cursors) if (cursor < (lastIds[room] ?? 0)) return false;
    return true;
  }

  record(): ClientRecord {
    return { nick: this.nick, intervals: this.intervals, received: this.received };
  }
}
