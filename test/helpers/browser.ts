/**
 * Drives Debian's Chromium through playwright-core for the browser tests, and
 * wraps a chat page with the few actions and observations the tests need.
 *
 * Page-side code passed to `evaluate`/`waitForFunction` runs in the browser;
 * this project's TypeScript has no DOM types, so it reaches the page's globals
 * through `globalThis` cast to the small `PageGlobals` interface below.
 */
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const BASE_DOMAIN = 'chat.test';
/** Deadline of every wait on the page, ms: far below the 55 s hold, so a stalled poll shows as a failure. */
export const WAIT_MS = 10_000;

/**
 * Flags measured to work on these machines (../shared/NOTES.md); the host rules
 * send chat.test and every *.chat.test to loopback. `launch()` gives each run a
 * fresh temporary profile of its own and deletes it on close.
 */
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  `--host-resolver-rules=MAP *.${BASE_DOMAIN} 127.0.0.1, MAP ${BASE_DOMAIN} 127.0.0.1`,
];

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 });
}

export interface Viewport {
  width: number;
  height: number;
}

export const DESKTOP: Viewport = { width: 1280, height: 800 };
/** A phone held upright (issue 18 measured the layout at 375 px wide). */
export const PHONE: Viewport = { width: 375, height: 740 };

/** One XHR as recorded by XHR_PROBE; times are the page's performance.now(), ms. */
export interface XhrRecord {
  method: string;
  url: string;
  sentAt: number;
  doneAt: number | null;
  status: number | null;
}

/** What the tests read from the page (chat-ui.js `ChatApp.state()` and friends). */
export interface ClientStatus {
  requestedStrategy: string;
  strategy: string;
  strategyNote: string | null;
  /** How events arrive (comet.js `chooseDelivery`): 'sse', 'xhr-stream' or 'poll'; why not what was asked. */
  delivery: string;
  deliveryNote: string | null;
  config: { baseDomain: string | null; shards: number };
  user: { id: number; nick: string } | null;
  rooms: Array<{ name: string; cursor: number }>;
  loops: Array<{ key: string; rooms: string[]; state: string; connectionId: string | null; attempt: number; error: string | null; transport?: string }>;
  bridges: Record<string, string>;
  /** Tab sharing (public/js/comet-tabs.js); role 'off' without it. */
  tabs: { role: string; id: string | null; leader: string | null; relay: string | null };
}

export interface AppState {
  screen: string;
  user: { id: number; nick: string } | null;
  active: string | null;
  sending: boolean;
  unread: Record<string, number>;
  client: ClientStatus;
}

export interface PageGlobals {
  CometChat: {
    app: {
      state(): AppState;
      activate(room: string): void;
      joinRooms(rooms: string[], cb: (err: unknown, result: { joined: string[]; failed: Array<{ room: string }> }) => void): void;
    };
  };
  __xhrLog: XhrRecord[];
}

/**
 * Records every XHR of the page in `window.__xhrLog`, so a test can see which
 * requests are still pending. Installed before any page script runs. The end
 * is taken at readyState 4 by a listener added in open(), i.e. before the page
 * sets onreadystatechange, so it runs first: a client that sends its next poll
 * from that handler would otherwise seem to have two polls open (load/loadend
 * of the old request fire after the handler). Aborts reach readyState 4 too.
 */
const XHR_PROBE = `(() => {
  const log = [];
  window.__xhrLog = log;
  const open = XMLHttpRequest.prototype.open;
  const send = XMLHttpRequest.prototype.send;
  XMLHttpRequest.prototype.open = function (method, url) {
    const record = { method: String(method), url: String(url), sentAt: 0, doneAt: null, status: null };
    this.__probe = record;
    this.addEventListener('readystatechange', () => {
      if (this.readyState === 4 && record.sentAt > 0 && record.doneAt === null) {
        record.doneAt = performance.now();
        record.status = this.status;
      }
    });
    return open.apply(this, arguments);
  };
  XMLHttpRequest.prototype.send = function () {
    if (this.__probe) {
      this.__probe.sentAt = performance.now();
      log.push(this.__probe);
    }
    return send.apply(this, arguments);
  };
})();`;

/** A chat page in its own browser context (its own cookie jar, so its own session). */
export class ChatPage {
  /** Uncaught errors in the page: a test asserts there were none. */
  readonly errors: string[] = [];
  /** URL of every request the page and its frames (shard bridges included) made, in order. */
  readonly requests: string[] = [];

  private constructor(
    readonly context: BrowserContext,
    readonly page: Page,
  ) {
    page.on('pageerror', (err) => this.errors.push(err.message));
    page.on('request', (req) => this.requests.push(req.url()));
  }

  /** Opens `url` in a new context (1280x800 unless `viewport` says otherwise); `contexts` gets it for teardown. */
  static async open(browser: Browser, url: string, contexts: BrowserContext[], viewport: Viewport = DESKTOP): Promise<ChatPage> {
    const context = await browser.newContext({ viewport });
    contexts.push(context);
    await context.addInitScript({ content: XHR_PROBE });
    const page = await context.newPage();
    page.setDefaultTimeout(WAIT_MS);
    const chat = new ChatPage(context, page);
    await page.goto(url);
    return chat;
  }

  /** Another tab in `chat`'s context (same profile: its cookies and localStorage), at `url`. */
  static async openTab(chat: ChatPage, url: string): Promise<ChatPage> {
    const page = await chat.context.newPage();
    page.setDefaultTimeout(WAIT_MS);
    const tab = new ChatPage(chat.context, page);
    await page.goto(url);
    return tab;
  }

  /** Signs in through the login form and waits until the lobby is joined and polled. */
  async login(nick: string): Promise<void> {
    await this.page.waitForSelector('body[data-screen="login"]');
    await this.page.fill('#nick', nick);
    await this.page.press('#nick', 'Enter');
    await this.page.waitForSelector('body[data-ready="true"]');
  }

  /** Joins rooms through the app (one history load each, then polls start together). */
  async joinRooms(rooms: string[]): Promise<void> {
    const result = await this.page.evaluate(
      (names) =>
        new Promise<{ joined: string[]; failed: Array<{ room: string }> }>((resolve, reject) => {
          (globalThis as unknown as PageGlobals).CometChat.app.joinRooms(names, (err, res) => (err ? reject(new Error(String(err))) : resolve(res)));
        }),
      rooms,
    );
    if (result.failed.length > 0) throw new Error(`could not join ${result.failed.map((f) => f.room).join(', ')}`);
  }

  activate(room: string): Promise<void> {
    return this.page.evaluate((name) => (globalThis as unknown as PageGlobals).CometChat.app.activate(name), room);
  }

  state(): Promise<AppState> {
    return this.page.evaluate(() => (globalThis as unknown as PageGlobals).CometChat.app.state());
  }

  xhrLog(): Promise<XhrRecord[]> {
    return this.page.evaluate(() => (globalThis as unknown as PageGlobals).__xhrLog.slice());
  }

  /** Waits until the event is in the room's pane (shown or not: inactive rooms keep their panes hidden). */
  async waitForEvent(room: string, eventId: number, timeout = WAIT_MS): Promise<void> {
    await this.page.waitForSelector(`section[data-room="${room}"] [data-event-id="${eventId}"]`, { state: 'attached', timeout });
  }

  /** How many elements show event `eventId` anywhere on the page. */
  countEvent(eventId: number): Promise<number> {
    return this.page.locator(`[data-event-id="${eventId}"]`).count();
  }

  /** Types into the post box and presses Enter (the post box sends on Enter). */
  async typeAndSend(text: string): Promise<void> {
    await this.page.fill('#post-text', text);
    await this.page.press('#post-text', 'Enter');
  }

  /** Waits until the page's poll loops are all in `state` (default: a poll in flight), `count` of them. */
  async waitForLoops(count: number, state = 'polling'): Promise<void> {
    await this.page.waitForFunction(
      ([n, s]) => {
        const loops = (globalThis as unknown as PageGlobals).CometChat.app.state().client.loops;
        return loops.length === n && loops.every((l) => l.state === s);
      },
      [count, state] as const,
    );
  }
}
