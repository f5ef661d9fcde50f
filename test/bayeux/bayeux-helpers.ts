/**
 * Helpers for the Bayeux tests: the real CometD client (`cometd` with
 * `cometd-nodejs-client`'s XMLHttpRequest adapter) wrapped in promises, and
 * raw Bayeux requests over fetch for what a client library hides (lost
 * responses, bad input, exact replies).
 */
import { adapt } from 'cometd-nodejs-client';
import { AckExtension, CometD, type Message } from 'cometd';
import { waitFor, type ChatEvent } from '../helpers/chat-client.js';

// The adapter installs a global `window` with XMLHttpRequest; once per test process.
adapt();

export interface CometClientOptions {
  nick: string;
  /** Register CometD's AckExtension (lossless delivery). */
  ack?: boolean;
}

/** One CometD client speaking long-polling to `${base}/cometd`, recording what it receives. */
export class CometClient {
  readonly cometd: CometD;
  /** Events delivered on `/chat/*` subscriptions, in arrival order (no de-duplication). */
  readonly received: ChatEvent[] = [];
  /** Every /meta/handshake reply, in order. */
  readonly handshakes: Message[] = [];
  /** Every unsuccessful /meta/connect reply, in order. */
  readonly failedConnects: Message[] = [];
  user: { id: number; nick: string } | undefined;

  constructor(readonly base: string, readonly options: CometClientOptions) {
    this.cometd = new CometD();
    // No WebSocket here, and callback-polling needs a DOM (script tags): in Node the client starts on long-polling.
    // callback-polling-browser.test.ts drives callback-polling in Chromium.
    this.cometd.unregisterTransport('websocket');
    this.cometd.unregisterTransport('callback-polling');
    this.cometd.configure({ url: `${base}/cometd`, logLevel: 'warn' });
    if (options.ack) this.cometd.registerExtension('ack', new AckExtension());
    this.cometd.addListener('/meta/handshake', (m) => {
      this.handshakes.push(m);
      const ext = (m.ext ?? {}) as Record<string, { user?: { id: number; nick: string } }>;
      if (m.successful && ext['comet-chat']?.user) this.user = ext['comet-chat'].user;
    });
    this.cometd.addListener('/meta/connect', (m) => {
      if (!m.successful) this.failedConnects.push(m);
    });
  }

  /** Handshakes with `ext["comet-chat"].nick`; resolves with the reply. */
  handshake(): Promise<Message> {
    return new Promise((resolve) => {
      this.cometd.handshake({ ext: { 'comet-chat': { nick: this.options.nick } } }, resolve);
    });
  }

  /** Subscribes to a room; resolves with the subscribe reply. */
  subscribe(room: string): Promise<Message> {
    return new Promise((resolve) => {
      this.cometd.subscribe(`/chat/${room}`, (m) => this.received.push(m.data as ChatEvent), resolve);
    });
  }

  /** Publishes `{text}` to a room; resolves with the publish reply. */
  publish(room: string, text: string): Promise<Message> {
    return new Promise((resolve) => this.cometd.publish(`/chat/${room}`, { text }, resolve));
  }

  disconnect(): Promise<Message> {
    return new Promise((resolve) => this.cometd.disconnect(resolve));
  }

  /** Messages (text) received in `room`, in order. */
  texts(room: string): string[] {
    return this.received.filter((e) => e.room === room && e.type === 'message').map((e) => e.text ?? '');
  }
}

/** Waits until the client is in the `connected` state (its first connect was answered). */
export function waitConnected(client: CometClient, timeoutMs = 5000): Promise<void> {
  return waitFor(() => client.cometd.getStatus() === 'connected' && client.cometd.isDisconnected() === false, 'the CometD client to connect', timeoutMs);
}

export interface RawAnswer {
  status: number;
  headers: Headers;
  body: any;
}

/** POSTs a raw Bayeux body (JSON of a value, or a string or bytes as they are) to `${base}/cometd`. */
export async function bayeuxPost(base: string, body: unknown, init: { headers?: Record<string, string>; signal?: AbortSignal } = {}): Promise<RawAnswer> {
  const res = await fetch(`${base}/cometd`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...init.headers },
    body: typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body),
    ...(init.signal ? { signal: init.signal } : {}),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* keep the text */
  }
  return { status: res.status, headers: res.headers, body: parsed };
}

/** Signs in through `POST /api/session`; returns the `sid` cookie pair and the user. */
export async function login(base: string, nick: string): Promise<{ cookie: string; user: { id: number; nick: string } }> {
  const res = await fetch(`${base}/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ nick }) });
  if (res.status !== 201) throw new Error(`login ${nick}: ${res.status}`);
  const cookie = res.headers.getSetCookie().map((c) => c.split(';')[0]!).find((c) => c.startsWith('sid='));
  if (cookie === undefined) throw new Error('no sid cookie');
  return { cookie, user: ((await res.json()) as { user: { id: number; nick: string } }).user };
}

/** A raw client: handshake with a nick (or, with `cookie`, as that session), then subscribe/connect by hand. */
export class RawBayeux {
  clientId = '';
  private nextId = 1;

  constructor(readonly base: string, readonly cookie?: string) {}

  private post(body: unknown, init: { signal?: AbortSignal } = {}): Promise<RawAnswer> {
    return bayeuxPost(this.base, body, { ...init, ...(this.cookie === undefined ? {} : { headers: { cookie: this.cookie } }) });
  }

  /** Handshakes as the session of `cookie` (no nick). */
  async handshakeAsSession(): Promise<any> {
    const r = await this.post([{ channel: '/meta/handshake', id: this.id(), version: '1.0', supportedConnectionTypes: ['long-polling'] }]);
    if (r.status !== 200 || r.body[0]?.successful !== true) throw new Error(`handshake: ${r.status} ${JSON.stringify(r.body)}`);
    this.clientId = r.body[0].clientId;
    return r.body[0];
  }

  /** Subscribes to (or unsubscribes from) any channel, `/chat/*` included; resolves with the reply. */
  async subscribeTo(channel: string, meta: '/meta/subscribe' | '/meta/unsubscribe' = '/meta/subscribe'): Promise<any> {
    const r = await this.post([{ channel: meta, id: this.id(), clientId: this.clientId, subscription: channel }]);
    return r.body[0];
  }

  id(): string {
    return String(this.nextId++);
  }

  async handshake(nick: string, ext: Record<string, unknown> = {}): Promise<any> {
    const r = await bayeuxPost(this.base, [
      { channel: '/meta/handshake', id: this.id(), version: '1.0', supportedConnectionTypes: ['long-polling'], ext: { 'comet-chat': { nick }, ...ext } },
    ]);
    if (r.status !== 200 || r.body[0]?.successful !== true) throw new Error(`handshake: ${r.status} ${JSON.stringify(r.body)}`);
    this.clientId = r.body[0].clientId;
    return r.body[0];
  }

  async subscribe(room: string): Promise<any> {
    const r = await bayeuxPost(this.base, [{ channel: '/meta/subscribe', id: this.id(), clientId: this.clientId, subscription: `/chat/${room}` }]);
    return r.body[0];
  }

  /** One /meta/connect; `ack` goes in `ext.ack`. */
  connect(opts: { ack?: number; advice?: Record<string, unknown>; signal?: AbortSignal } = {}): Promise<RawAnswer> {
    const message: Record<string, unknown> = { channel: '/meta/connect', id: this.id(), clientId: this.clientId, connectionType: 'long-polling' };
    if (opts.ack !== undefined) message.ext = { ack: opts.ack };
    if (opts.advice !== undefined) message.advice = opts.advice;
    return this.post([message], opts.signal ? { signal: opts.signal } : {});
  }
}

/** The `/meta/connect` reply in a connect answer. */
export function connectReply(body: any[]): any {
  const reply = body.find((m) => m.channel === '/meta/connect');
  if (reply === undefined) throw new Error(`no /meta/connect reply in ${JSON.stringify(body)}`);
  return reply;
}

/** The chat events delivered in a connect answer. */
export function deliveredEvents(body: any[]): ChatEvent[] {
  return body.filter((m) => typeof m.channel === 'string' && m.channel.startsWith('/chat/')).map((m) => m.data as ChatEvent);
}

export interface JsonpAnswer {
  status: number;
  contentType: string | null;
  nosniff: string | null;
  gripHold: string | null;
  /** The body as sent. */
  text: string;
  /** The replies inside `/**\/callback(...);`, or the parsed JSON error body when the answer is not JSON-P. */
  replies: any;
}

/**
 * One callback-polling request, as CometD's CallbackPollingTransport builds it:
 * `GET ${base}/cometd${suffix}?jsonp=CALLBACK&message=URL-ENCODED-JSON`.
 */
export async function jsonpGet(base: string, callback: string, messages: unknown, suffix = '', headers: Record<string, string> = {}): Promise<JsonpAnswer> {
  const url = `${base}/cometd${suffix}?jsonp=${encodeURIComponent(callback)}&message=${encodeURIComponent(JSON.stringify(messages))}`;
  const res = await fetch(url, { headers });
  const text = await res.text();
  const prefix = `/**/${callback}(`;
  let replies: unknown;
  if (text.startsWith(prefix) && text.endsWith(');')) replies = JSON.parse(text.slice(prefix.length, -2));
  else {
    try {
      replies = JSON.parse(text);
    } catch {
      replies = undefined;
    }
  }
  return {
    status: res.status,
    contentType: res.headers.get('content-type'),
    nosniff: res.headers.get('x-content-type-options'),
    gripHold: res.headers.get('grip-hold'),
    text,
    replies,
  };
}
