/**
 * Runs the browser client's ES5 files (public/js/) in a Node `vm` context with
 * a fake window, so the poller's and client's logic (cursors, backoff, resync,
 * connection IDs, bridge protocol) can be tested without a browser, with a
 * scripted transport and fake timers.
 *
 * Values coming out of the context belong to another realm (their Array
 * prototype is not ours), so compare them through `plain()`.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';

const JS_DIR = fileURLToPath(new URL('../../public/js/', import.meta.url));
/** In index.html's order. */
export const CLIENT_FILES = ['comet-core.js', 'comet-transport.js', 'comet-bridge-client.js', 'comet-api.js', 'comet-poller.js', 'comet.js'];

/** Structured copy into this realm (and drops functions), for deepEqual. */
export function plain<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

export type Callback = (err: { code: string; message: string } | null, status: number, body: string, headers: Record<string, string>) => void;

/** One request the client made through the ScriptedTransport. */
export class ScriptedRequest {
  aborted = false;
  answered = false;

  constructor(
    readonly method: string,
    readonly path: string,
    readonly body: string | null,
    private readonly callback: Callback,
    /** Extra request headers the client asked for (e.g. `Idempotency-Key`). */
    readonly headers: Record<string, string> = {},
  ) {}

  /** The query parameter `name` of the path, or null. */
  param(name: string): string | null {
    return new URL(this.path, 'http://x').searchParams.get(name);
  }

  answer(status: number, body: unknown = {}, headers: Record<string, string> = {}): void {
    assert.ok(!this.aborted && !this.answered, `${this.method} ${this.path} answered twice or after abort`);
    this.answered = true;
    this.callback(null, status, typeof body === 'string' ? body : JSON.stringify(body), headers);
  }

  /** No HTTP answer (connection refused, reset). */
  fail(): void {
    assert.ok(!this.aborted && !this.answered);
    this.answered = true;
    this.callback({ code: 'COMET_ERR_NETWORK', message: 'refused' }, 0, '', {});
  }
}

/** The transport interface of public/js/comet-transport.js, answered by the test. */
export class ScriptedTransport {
  readonly requests: ScriptedRequest[] = [];

  request(method: string, path: string, body: string | null, callback: Callback, headers?: Record<string, string> | null): { abort(): void } {
    const req = new ScriptedRequest(method, path, body, callback, { ...(headers ?? {}) });
    this.requests.push(req);
    return {
      abort: () => {
        req.aborted = true;
      },
    };
  }

  /** Requests neither answered nor aborted, whose path starts with `prefix`. */
  pending(prefix = '/'): ScriptedRequest[] {
    return this.requests.filter((r) => !r.answered && !r.aborted && r.path.startsWith(prefix));
  }

  /** The one pending request under `prefix` (fails if there are none or several). */
  next(prefix: string): ScriptedRequest {
    const found = this.pending(prefix);
    assert.equal(found.length, 1, `expected one pending ${prefix}, got ${found.map((r) => r.path).join(' | ') || 'none'}`);
    return found[0]!;
  }
}

/** setTimeout/clearTimeout that run only when the test says so. */
export class FakeTimers {
  private seq = 0;
  private readonly queue = new Map<number, { fn: () => void; ms: number }>();

  setTimeout = (fn: () => void, ms: number): number => {
    this.queue.set(++this.seq, { fn, ms });
    return this.seq;
  };

  clearTimeout = (id: unknown): void => {
    this.queue.delete(id as number);
  };

  /** Delays of the timers waiting now, in creation order. */
  delays(): number[] {
    return [...this.queue.values()].map((t) => t.ms);
  }

  /** Runs the oldest waiting timer. */
  fireNext(): void {
    this.fireAt(0);
  }

  /** Runs the waiting timer at `index` of `delays()`. */
  fireAt(index: number): void {
    const entry = [...this.queue.entries()][index];
    assert.ok(entry, `no timer waiting at ${index}`);
    this.queue.delete(entry[0]);
    entry[1].fn();
  }
}

/** A minimal iframe for BridgeTransport: records its src and the messages posted into it. */
export interface FakeIframe {
  src: string;
  style: { cssText: string };
  listeners: Record<string, Array<(e: unknown) => void>>;
  contentWindow: { posted: Array<{ data: string; targetOrigin: string }>; postMessage(data: string, targetOrigin: string): void; CometBridge?: unknown };
}

export interface FakeBrowser {
  /** The context's global object (its `window`). */
  window: Record<string, unknown> & { CometChat: any; document: { domain: string; iframes: FakeIframe[] } };
  /** Dispatches a window event (`pagehide`, `message`, ...) to the client's listeners. */
  fire(type: string, event: unknown): void;
}

/** Loads the client files into a fresh context whose page is at `http://<host>:8080/`. */
export function loadClient(host = 'chat.test'): FakeBrowser {
  const listeners: Record<string, Array<(e: unknown) => void>> = {};
  const iframes: FakeIframe[] = [];
  const document = {
    domain: host,
    iframes,
    body: {
      appendChild(node: FakeIframe & { parentNode: unknown }) {
        node.parentNode = this;
        iframes.push(node);
      },
      removeChild(node: FakeIframe & { parentNode: unknown }) {
        node.parentNode = null;
        iframes.splice(iframes.indexOf(node), 1);
      },
    },
    createElement: (): FakeIframe => {
      const frame: FakeIframe = {
        src: '',
        style: { cssText: '' },
        listeners: {},
        contentWindow: {
          posted: [],
          postMessage(data, targetOrigin) {
            this.posted.push({ data, targetOrigin });
          },
        },
      };
      return Object.assign(frame, {
        parentNode: null as unknown,
        setAttribute() {},
        addEventListener: (type: string, fn: (e: unknown) => void) => (frame.listeners[type] ??= []).push(fn),
        removeEventListener: (type: string, fn: (e: unknown) => void) => {
          frame.listeners[type] = (frame.listeners[type] ?? []).filter((f) => f !== fn);
        },
      });
    },
  };
  const window: Record<string, unknown> = {
    location: { protocol: 'http:', host: `${host}:8080`, hostname: host, port: '8080', search: '' },
    document,
    onpagehide: null,
    postMessage() {},
    addEventListener: (type: string, fn: (e: unknown) => void) => (listeners[type] ??= []).push(fn),
    removeEventListener: (type: string, fn: (e: unknown) => void) => {
      listeners[type] = (listeners[type] ?? []).filter((f) => f !== fn);
    },
    // Only the emitter's "rethrow a listener's error later" uses the real timers.
    setTimeout,
    clearTimeout,
  };
  window.window = window;
  vm.createContext(window);
  for (const file of CLIENT_FILES) vm.runInContext(readFileSync(join(JS_DIR, file), 'utf8'), window, { filename: file });
  return {
    window: window as FakeBrowser['window'],
    fire: (type, event) => (listeners[type] ?? []).slice().forEach((fn) => fn(event)),
  };
}

/** Runs more of public/js/ (e.g. the UI's chat-*.js that need no DOM) in a loaded client's context, in order. */
export function loadScripts(browser: FakeBrowser, files: string[]): void {
  for (const file of files) vm.runInContext(readFileSync(join(JS_DIR, file), 'utf8'), browser.window, { filename: file });
}
