/**
 * Disconnects clients that stop reading their answers (docs/protocol.md §1.8).
 * A client socket whose write buffer is full (`writableNeedDrain`) must drain
 * within `timeoutMs`; otherwise it is destroyed, which ends what it holds: the
 * answer being written and its upstream request, a parked poll, the requests
 * pipelined behind. Node's server has no such timeout: its keep-alive and
 * request timeouts never run while an answer is being written.
 *
 * One sweep over the open connections every quarter of the timeout (at most
 * every second) rather than a timer per write: a connection costs a getter call
 * per sweep, and only the ones with a full buffer are timed.
 */
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { ProxyTimers } from '../options.js';

export interface WriteStallWatchDeps {
  timeoutMs: number;
  timers: ProxyTimers;
  /** Called once for a stalled socket, before it is destroyed. */
  onStall: (socket: Socket, stalledMs: number) => void;
}

export interface WriteStallWatch {
  /** Checks every connection now (the sweep timer calls it; public for tests). */
  sweep(): void;
  stop(): void;
}

export function watchWriteStalls(server: Server, { timeoutMs, timers, onStall }: WriteStallWatchDeps): WriteStallWatch {
  /** Open connections -> when their buffer was first seen full since the last drain (null: not full). */
  const fullSince = new Map<Socket, number | null>();
  server.on('connection', (socket: Socket) => {
    fullSince.set(socket, null);
    socket.on('drain', () => {
      if (fullSince.has(socket)) fullSince.set(socket, null);
    });
    socket.once('close', () => fullSince.delete(socket));
  });

  function sweep(): void {
    const now = timers.now();
    for (const [socket, since] of fullSince) {
      if (!socket.writableNeedDrain) {
        if (since !== null) fullSince.set(socket, null);
      } else if (since === null) {
        fullSince.set(socket, now);
      } else if (now - since >= timeoutMs) {
        fullSince.delete(socket);
        onStall(socket, now - since);
        socket.destroy();
      }
    }
  }

  const intervalMs = Math.max(10, Math.min(1000, Math.floor(timeoutMs / 4)));
  let timer: unknown = null;
  const schedule = () => {
    timer = timers.setTimeout(() => {
      sweep();
      if (timer !== null) schedule();
    }, intervalMs);
    (timer as { unref?: () => void } | null)?.unref?.();
  };
  schedule();

  return {
    sweep,
    stop() {
      if (timer !== null) timers.clearTimeout(timer);
      timer = null;
    },
  };
}
