/**
 * Test client for the event-driven lab server: starts it on 127.0.0.1 port 0
 * with teardown registered at once, and speaks its API over real HTTP with
 * the `sid` cookie carried by hand. Every wait has a deadline.
 */
import type { TestContext } from 'node:test';
import type { AddressInfo } from 'node:net';
import { buildEventDrivenServer, type EventDrivenServerOptions } from '../../../bench/models/event-driven.js';
import type { LabServer } from '../../../bench/models/lab-server.js';

export interface StartedLab {
  lab: LabServer;
  base: string;
}

export async function startLab(t: TestContext, options: Partial<EventDrivenServerOptions> = {}): Promise<StartedLab> {
  const lab = buildEventDrivenServer({ dbPath: ':memory:', holdTimeoutS: 30, ...options });
  t.after(async () => {
    await lab.close();
    lab.server.closeAllConnections();
    await new Promise<void>((resolve) => lab.server.close(() => resolve()));
  });
  await new Promise<void>((resolve) => lab.server.listen(0, '127.0.0.1', resolve));
  const { port } = lab.server.address() as AddressInfo;
  return { lab, base: `http://127.0.0.1:${port}` };
}

export interface ApiAnswer {
  status: number;
  headers: Headers;
  body: any;
}

/** One API call; `body` is sent as JSON unless it is already a string or Buffer. */
export async function api(
  base: string,
  method: string,
  path: string,
  options: { cookie?: string; body?: unknown; headers?: Record<string, string>; timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<ApiAnswer> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.cookie !== undefined) headers.cookie = options.cookie;
  let body: string | Buffer | undefined;
  if (options.body !== undefined) {
    body = typeof options.body === 'string' || Buffer.isBuffer(options.body) ? options.body : JSON.stringify(options.body);
    headers['content-type'] ??= 'application/json';
  }
  const timeout = AbortSignal.timeout(options.timeoutMs ?? 10_000);
  const signal = options.signal ? AbortSignal.any([timeout, options.signal]) : timeout;
  const res = await fetch(base + path, { method, headers, body, signal });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text === '' ? undefined : JSON.parse(text) };
}

/** A new session; returns the `Cookie` header value to send and the user. */
export async function newSession(base: string, nick: string): Promise<{ cookie: string; user: { id: number; nick: string } }> {
  const res = await api(base, 'POST', '/api/session', { body: { nick } });
  if (res.status !== 201) throw new Error(`session: ${res.status} ${JSON.stringify(res.body)}`);
  const setCookie = res.headers.get('set-cookie') ?? '';
  return { cookie: setCookie.split(';')[0]!, user: res.body.user };
}

/** Creates the room if needed and joins it; returns the join cursor. */
export async function enterRoom(base: string, cookie: string, room: string): Promise<number> {
  const created = await api(base, 'POST', '/api/rooms', { cookie, body: { name: room } });
  if (created.status !== 201 && created.status !== 409) throw new Error(`create ${room}: ${created.status}`);
  const joined = await api(base, 'POST', `/api/rooms/${room}/join`, { cookie });
  if (joined.status !== 200) throw new Error(`join ${room}: ${joined.status}`);
  return joined.body.cursor as number;
}

export async function parkedNow(base: string): Promise<number> {
  return (await api(base, 'GET', '/_lab/stats')).body.parked as number;
}

/** Resolves once `parked` is `n`; rejects at the deadline. */
export async function waitParked(base: string, n: number, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = -1;
  while (Date.now() < deadline) {
    last = await parkedNow(base);
    if (last === n) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`parked stayed ${last}, wanted ${n}, for ${timeoutMs} ms`);
}

/** An open streaming response read incrementally as text. */
export class TextStream {
  private text = '';
  private readonly decoder = new TextDecoder();
  private constructor(
    readonly response: Response,
    private readonly reader: ReadableStreamDefaultReader<Uint8Array>,
    private readonly controller: AbortController,
  ) {}

  static async open(url: string, headers: Record<string, string>, timeoutMs = 5_000): Promise<TextStream> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    try {
      const response = await fetch(url, { headers, signal: controller.signal });
      return new TextStream(response, response.body!.getReader(), controller);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Everything received so far. */
  get received(): string {
    return this.text;
  }

  /** Reads until `done(text)` holds; rejects at the deadline or when the stream ends first. */
  async readUntil(done: (text: string) => boolean, timeoutMs = 5_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (!done(this.text)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`stream: condition not met in ${timeoutMs} ms; got ${JSON.stringify(this.text.slice(-300))}`);
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`stream: nothing more in ${timeoutMs} ms; got ${JSON.stringify(this.text.slice(-300))}`)), left);
      });
      try {
        const { value, done: ended } = await Promise.race([this.reader.read(), timeout]);
        if (ended) throw new Error(`stream ended; got ${JSON.stringify(this.text.slice(-300))}`);
        this.text += this.decoder.decode(value, { stream: true });
      } finally {
        clearTimeout(timer);
      }
    }
    return this.text;
  }

  /** Resolves when the server ends the response; rejects at the deadline. */
  async readToEnd(timeoutMs = 5_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('stream: not ended in time');
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('stream: not ended in time')), left);
      });
      try {
        const { value, done } = await Promise.race([this.reader.read(), timeout]);
        if (done) return this.text;
        this.text += this.decoder.decode(value, { stream: true });
      } finally {
        clearTimeout(timer);
      }
    }
  }

  close(): void {
    this.controller.abort();
  }
}

/** SSE events in `text`: `{id, data}` per complete block with a `data:` field (comments and `retry:` skipped). */
export function parseSse(text: string): { id: string | undefined; data: any }[] {
  const out: { id: string | undefined; data: any }[] = [];
  const blocks = text.split('\n\n');
  blocks.pop(); // incomplete (or empty) tail
  for (const block of blocks) {
    let id: string | undefined;
    let data: string | undefined;
    for (const line of block.split('\n')) {
      if (line.startsWith('id: ')) id = line.slice(4);
      else if (line.startsWith('data: ')) data = line.slice(6);
    }
    if (data !== undefined) out.push({ id, data: JSON.parse(data) });
  }
  return out;
}

/** Arguments of the `<script>parent.comet(...)</script>` chunks in `text`, parsed as JSON (keepalives are `null`). */
export function parseIframe(text: string): any[] {
  const out: any[] = [];
  const re = /<script>parent\.comet\((.*?)\)<\/script>\n/g;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) out.push(JSON.parse(m[1]!));
  return out;
}
