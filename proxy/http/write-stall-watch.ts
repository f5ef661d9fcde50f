/**
 * Disconnects clients that stop reading their answers (docs/protocol.md §1.8).
 * A client socket whose write buffer is full (`writableNeedDrain`) must drain
 * within `timeoutMs`; otherwise it is destroyed, which ends what it holds: the
 * answer being written and its upstream request, a parked poll, the requests
 * pipelined behind. Node's server has no such timeout: its keep-alive and
 * request timeouts never run while an answer is being written.
 *
 * Proportional to writes, not to connections (issue 15: idle CPU): a buffer
 * only fills when something is written, so every write of a response
 * (`WatchedResponse`, given to the server as its `ServerResponse`; the proxy
 * writes nothing to a client socket around it) checks the one getter;
 * only sockets seen full are kept, each with a `drain` listener, and the sweep
 * timer (every quarter of the timeout, at most every second) runs only while
 * there are some. 10,000 parked polls cost it nothing.
 */
import { ServerResponse, type IncomingMessage, type Server } from 'node:http';
import type { Socket } from 'node:net';
import type { ProxyTimers } from '../options.js';

export interface WriteStallWatchDeps {
  timeoutMs: number;
  timers: ProxyTimers;
  /** Called once for a stalled socket, before it is destroyed. */
  onStall: (socket: Socket, stalledMs: number) => void;
}

export interface WriteStallWatch {
  /** Checks every socket seen full now (the sweep timer calls it; public for tests). */
  sweep(): void;
  /** A write to `socket` (not through a `WatchedResponse`: the client front's answers) left its buffer full. */
  note(socket: Socket): void;
  /** How many sockets are being timed (their buffer was full at a write and has not drained). */
  readonly watched: number;
  stop(): void;
}

/** The watch of each server, found from a socket through `socket.server` (set by node:net on accept). */
const watches = new WeakMap<object, (socket: Socket) => void>();

/** Tells the watch of the socket's server, if any, that something was written to `socket`. */
function noteSocketWrite(socket: Socket | null): void {
  if (socket === null || !socket.writableNeedDrain) return;
  const server = (socket as Socket & { server?: object }).server;
  if (server !== undefined) watches.get(server)?.(socket);
}

/**
 * The client server's responses (`createServer({ ServerResponse: WatchedResponse })`): `write` and `end`
 * tell the watch when they leave the socket's buffer full. A response written before it has its socket
 * (Node queues a pipelined answer until the one before it finishes) is checked once the socket is assigned.
 */
export class WatchedResponse<Request extends IncomingMessage = IncomingMessage> extends ServerResponse<Request> {
  override write(...args: unknown[]): boolean {
    const ok = (ServerResponse.prototype.write as (...a: unknown[]) => boolean).apply(this, args);
    if (!ok) this.noteWrite();
    return ok;
  }

  override end(...args: unknown[]): this {
    (ServerResponse.prototype.end as (...a: unknown[]) => unknown).apply(this, args);
    this.noteWrite();
    return this;
  }

  private noteWrite(): void {
    if (this.socket !== null) noteSocketWrite(this.socket);
    // Node emits 'socket' just before it flushes the queued output into it.
    else this.once('socket', (socket: Socket) => process.nextTick(noteSocketWrite, socket));
  }
}

export function watchWriteStalls(server: Server, { timeoutMs, timers, onStall }: WriteStallWatchDeps): WriteStallWatch {
  /** Sockets seen with a full buffer -> when; forgotten when they drain or close. */
  const fullSince = new Map<Socket, number>();
  const intervalMs = Math.max(10, Math.min(1000, Math.floor(timeoutMs / 4)));
  let timer: unknown = null;
  let stopped = false;

  const forget = (socket: Socket) => {
    fullSince.delete(socket);
    socket.off('drain', onDrain);
    socket.off('close', onClose);
    if (fullSince.size === 0 && timer !== null) {
      // Nothing left to time: no timer either.
      timers.clearTimeout(timer);
      timer = null;
    }
  };
  function onDrain(this: Socket) {
    forget(this);
  }
  function onClose(this: Socket) {
    forget(this);
  }

  const note = (socket: Socket) => {
    if (stopped || fullSince.has(socket) || socket.destroyed) return;
    fullSince.set(socket, timers.now());
    socket.on('drain', onDrain);
    socket.on('close', onClose);
    schedule();
  };
  watches.set(server, note);

  function sweep(): void {
    const now = timers.now();
    for (const [socket, since] of fullSince) {
      if (!socket.writableNeedDrain) {
        forget(socket); // drained without a 'drain' we heard (e.g. its buffer was dropped)
      } else if (now - since >= timeoutMs) {
        forget(socket);
        onStall(socket, now - since);
        socket.destroy();
      }
    }
  }

  function schedule(): void {
    if (timer !== null || stopped || fullSince.size === 0) return;
    timer = timers.setTimeout(() => {
      timer = null;
      sweep();
      schedule();
    }, intervalMs);
    (timer as { unref?: () => void } | null)?.unref?.();
  }

  return {
    sweep,
    note,
    get watched() {
      return fullSince.size;
    },
    stop() {
      stopped = true;
      if (timer !== null) timers.clearTimeout(timer);
      timer = null;
      for (const socket of [...fullSince.keys()]) forget(socket);
      watches.delete(server);
    },
  };
}
