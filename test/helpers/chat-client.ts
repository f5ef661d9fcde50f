/**
 * A minimal chat client for tests: cookie session, JSON calls and long-polls
 * against the proxy over real sockets, with every received event recorded raw
 * (no de-duplication), so counting tests can see duplicates and gaps.
 */
export interface ChatEvent {
  id: number;
  room: string;
  type: string;
  user: { id: number; nick: string };
  text?: string;
  at: string;
}

export interface ApiResult<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

export class ChatClient {
  private cookie = '';
  connectionId: string | undefined;
  readonly cursors = new Map<string, number>();
  /** Every event received by polls, in arrival order. */
  readonly received: ChatEvent[] = [];
  resyncs = 0;

  constructor(readonly base: string) {}

  /** The `sid=...` cookie pair, for readers that make their own requests (test/helpers/sse-client.ts). */
  get sessionCookie(): string {
    return this.cookie;
  }

  async call<T = any>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<ApiResult<T>> {
    const headers: Record<string, string> = {};
    if (this.cookie) headers.cookie = this.cookie;
    if (body !== undefined) headers['content-type'] = 'application/json';
    // undici keeps its abort listener on the signal it is given until the request is collected, so loops that
    // pass one long-lived signal to thousands of polls pile listeners onto it (MaxListenersExceededWarning).
    // Each call gets its own signal, linked to the caller's by one listener that is removed when the call ends.
    const own = new AbortController();
    const forward = (): void => own.abort(signal?.reason);
    if (signal?.aborted) forward();
    else signal?.addEventListener('abort', forward, { once: true });
    try {
      return await this.send(method, path, headers, body, own.signal);
    } finally {
      signal?.removeEventListener('abort', forward);
    }
  }

  private async send(
    method: string,
    path: string,
    headers: Record<string, string>,
    body: unknown,
    signal: AbortSignal,
  ): Promise<ApiResult> {
    const res = await fetch(`${this.base}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
    for (const c of res.headers.getSetCookie()) {
      const pair = c.split(';')[0];
      if (pair?.startsWith('sid=')) this.cookie = pair;
    }
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      /* leave as text */
    }
    return { status: res.status, headers: res.headers, body: parsed };
  }

  async login(nick: string): Promise<{ id: number; nick: string }> {
    const r = await this.call('POST', '/api/session', { nick });
    if (r.status !== 201) throw new Error(`login ${nick}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body.user;
  }

  async join(room: string): Promise<number> {
    const r = await this.call('POST', `/api/rooms/${room}/join`);
    if (r.status !== 200) throw new Error(`join ${room}: ${r.status} ${JSON.stringify(r.body)}`);
    this.cursors.set(room, r.body.cursor);
    return r.body.cursor;
  }

  async post(room: string, text: string): Promise<ChatEvent> {
    const r = await this.call('POST', `/api/rooms/${room}/messages`, { text });
    if (r.status !== 201) throw new Error(`post ${room}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body.event;
  }

  pollPath(): string {
    const rooms = [...this.cursors].map(([name, cursor]) => `${name}:${cursor}`).join(',');
    const cid = this.connectionId ? `&cid=${this.connectionId}` : '';
    return `/api/poll?rooms=${rooms}${cid}`;
  }

  /** One long-poll; records events and advances cursors. */
  async poll(signal?: AbortSignal): Promise<ApiResult> {
    const r = await this.call('GET', this.pollPath(), undefined, signal);
    const cid = r.headers.get('comet-connection-id');
    if (cid) this.connectionId = cid;
    if (r.status === 200 && r.body && Array.isArray(r.body.events)) {
      for (const ev of r.body.events as ChatEvent[]) {
        this.received.push(ev);
        if (ev.id > (this.cursors.get(ev.room) ?? 0)) this.cursors.set(ev.room, ev.id);
      }
    } else if (r.status === 200 && r.body && r.body.resync) {
      this.resyncs++;
    }
    return r;
  }
}

/** Polls `predicate` until it is true or `timeoutMs` passes (then throws with `what`). */
export async function waitFor(predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Two signed-in clients in one room (created by bob). Ada joins last, so her
 * cursor is past every join event and her next poll waits for news.
 */
export async function adaAndBob(base: string, room = 'general'): Promise<{ ada: ChatClient; bob: ChatClient }> {
  const ada = new ChatClient(base);
  const bob = new ChatClient(base);
  await ada.login('ada');
  await bob.login('bob');
  await bob.call('POST', '/api/rooms', { name: room });
  await bob.join(room);
  await ada.join(room);
  return { ada, bob };
}
