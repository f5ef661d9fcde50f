/**
 * Builds the real chat app on a fresh SQLite file in a temp dir, listening on
 * an ephemeral loopback port, with teardown registered on the test context.
 * Can also sign Grip-Sig headers so a test can act as the proxy.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import request from 'supertest';
import { signGripSig } from '../../protocol/grip-sig.js';
import { createChatServer, type ChatServer } from '../../server/chat-server.js';
import type { AppOptions } from '../../server/options.js';

/** The Grip-Sig key the app verifies with. */
export const APP_TEST_SECRET = 'app-test-secret-0123456789';
/** The control API credential the app's relay publishes with. */
export const APP_TEST_CONTROL_SECRET = 'app-test-control-secret-0123456789';

/** A settable clock (ms since the epoch) for presence and timestamps. */
export interface TestClock {
  now(): number;
  advance(ms: number): void;
}

export function testClock(startMs = Date.UTC(2026, 10, 21, 10, 0, 0)): TestClock {
  let t = startMs;
  return {
    now: () => t,
    advance: (ms) => {
      t += ms;
    },
  };
}

/** A signed-in user: a supertest agent that keeps the `sid` cookie. */
export interface TestUser {
  id: number;
  nick: string;
  agent: request.Agent;
  cookie: string;
}

export interface AppHarness {
  chat: ChatServer;
  /** `http://127.0.0.1:<port>` */
  base: string;
  dir: string;
  dbPath: string;
  /** A Grip-Sig the app accepts, as the proxy would send it. */
  gripSig(): Promise<string>;
  /** A cookie-less agent. */
  anonymous(): request.Agent;
  /** Creates a session for `nick` and returns an agent holding its cookie. */
  signIn(nick: string): Promise<TestUser>;
}

const cleanups = new WeakMap<TestContext, Array<() => unknown>>();

/**
 * Registers teardown that runs after the test in reverse order of registration
 * (like Go's defer): servers close before the directory holding their database
 * is removed. Plain `t.after` hooks run first-registered-first.
 */
export function defer(t: TestContext, fn: () => unknown): void {
  let stack = cleanups.get(t);
  if (!stack) {
    const fns: Array<() => unknown> = [];
    stack = fns;
    cleanups.set(t, fns);
    t.after(async () => {
      for (let fn = fns.pop(); fn; fn = fns.pop()) await fn();
    });
  }
  stack.push(fn);
}

/** A temp dir removed after the test (after everything registered later with `defer`). */
export function tempDir(t: TestContext, prefix = 'comet-chat-app-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  defer(t, () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface StartAppInput {
  options?: Partial<AppOptions>;
  clock?: TestClock;
  /** Reuse this directory's chat.db (restart tests); by default a fresh temp dir. */
  dir?: string;
}

export async function startApp(t: TestContext, input: StartAppInput = {}): Promise<AppHarness> {
  const dir = input.dir ?? tempDir(t);
  const dbPath = join(dir, 'chat.db');
  const chat = createChatServer(
    { secret: APP_TEST_SECRET, controlSecret: APP_TEST_CONTROL_SECRET, host: '127.0.0.1', port: 0, dbPath, ...input.options },
    input.clock ? { now: input.clock.now } : {},
  );
  // Registered before listen() so a failing listen still closes the database.
  defer(t, () => chat.close());
  const port = await chat.listen();
  const base = `http://127.0.0.1:${port}`;

  return {
    chat,
    base,
    dir,
    dbPath,
    gripSig: () => signGripSig(APP_TEST_SECRET),
    anonymous: () => request.agent(base),
    async signIn(nick) {
      const agent = request.agent(base);
      const res = await agent.post('/api/session').send({ nick }).expect(201);
      const setCookie = res.headers['set-cookie'] as unknown as string[] | undefined;
      const cookie = setCookie?.[0]?.split(';')[0] ?? '';
      const user = res.body.user as { id: number; nick: string };
      return { id: user.id, nick: user.nick, agent, cookie };
    },
  };
}

/** Polls `check` until it returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 5000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
