/**
 * One client connection of the client front (client-front.ts): reads its bytes, frames each request from its
 * head (request-head.ts), and either serves it without Node (a `FrontRequest`/`FrontResponse` handed to
 * `serve`) or hands its bytes to Node through the connection's bridge (node-bridge.ts, made on first use).
 *
 * One request at a time, in order (docs/protocol.md §1.8): while a fast answer is pending, the next request
 * waits, and a complete request behind a parked one releases it (`releasePipelined`, hold outcome
 * `pipelined`, §4 step 0); while Node owes answers, every later request goes to Node too (Node queues them);
 * a fast answer is written only once Node's last answer has left the bridge. A head the front cannot frame
 * with certainty sends the connection to Node for the rest of its life.
 *
 * The connection's timeouts are the front's: idle keep-alive (`keepAliveTimeoutMs` advertised, closed 1 s later
 * as Node does, and never with a request already received) and the time a
 * request head may take to arrive (`headersTimeoutMs`: then Node's 408 through the bridge). Node's own timers
 * never run on a bridge (its `setTimeout` is a no-op), so they cannot close a connection the front uses.
 */
import type { Socket } from 'node:net';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { BridgeOwner } from './node-bridge.js';
import { NodeBridge } from './node-bridge.js';
import { FrontRequest } from './front-request.js';
import { FrontResponse, type FrontResponseOwner } from './front-response.js';
import { parseRequestHead } from './request-head.js';
import type { ProxyTimers } from '../../options.js';

/** What a connection needs from the front (client-front.ts). */
export interface FrontContext {
  /** The http.Server fed the requests the front does not serve. */
  readonly server: Server;
  readonly maxHeaderBytes: number;
  readonly headersTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  /** The proxy's timers (options.ts): the idle and head timeouts run on them, so tests can drive them. */
  readonly timers: ProxyTimers;
  /** True once the proxy is closing: answers say `Connection: close`, idle connections end. */
  readonly closing: boolean;
  /** A cheap first look at a bodiless request: might `serve` take it? (No objects are made for those it would not.) */
  mayServe(method: string, url: string): boolean;
  /** Serves `req` without Node if it can: true when taken (answered or parked), false (nothing done) otherwise. */
  serve(req: FrontRequest, res: FrontResponse): boolean;
  /** A request arrived behind `res` on its connection: answer it now if it is parked. */
  releasePipelined(res: FrontResponse): void;
  /** A fast answer is complete (metrics, debug line). */
  answered(req: FrontRequest, res: FrontResponse): void;
  writeFilled(socket: Socket): void;
  /** The connection closed. */
  closed(conn: FrontConnection): void;
}

/** Bytes the front keeps unparsed behind a pending answer before it stops reading the client. */
const MAX_BUFFERED_BEHIND = 64 * 1024;

const EMPTY = Buffer.alloc(0);

function ignore(): void {}

/** An LF not preceded by CR: not a head the front frames. */
function hasBareLf(buf: Buffer): boolean {
  for (let i = buf.indexOf(0x0a); i !== -1; i = buf.indexOf(0x0a, i + 1)) {
    if (i === 0 || buf[i - 1] !== 0x0d) return true;
  }
  return false;
}

function pumpLater(conn: FrontConnection): void {
  conn.pump();
}

/**
 * How much longer than the advertised `Keep-Alive: timeout=N` an idle connection is kept: node:http's
 * (20.20+) `HTTP_SERVER_KEEP_ALIVE_TIMEOUT_BUFFER`, so a client reusing the connection just before the timeout
 * it was told is not reset. Without it the front closed 1 s earlier than node:http did.
 */
export const KEEP_ALIVE_TIMEOUT_BUFFER_MS = 1000;

function idleExpired(conn: FrontConnection, epoch: number): void {
  conn.idleExpired(epoch);
}

/** A Node Timeout can be re-armed in place; injected test timers may not have it. */
type Refreshable = { refresh?: () => unknown; unref?: () => unknown };

export class FrontConnection implements FrontResponseOwner, BridgeOwner {
  readonly keepAliveHeader: string;
  /** Bytes read and not yet framed. */
  private buffered: Buffer = EMPTY;
  /**
   * The last request served here: the next head reuses its value strings where the bytes match (request-head.ts).
   * While that request is parked (a leased client's usual state) it holds the same array: this costs a reference.
   */
  private lastRawHeaders: string[] | null = null;
  /** Node parses everything from here on. */
  private nodeForever = false;
  private current: FrontResponse | null = null;
  private currentReq: FrontRequest | null = null;
  /** The current answer was told a request waits behind it. */
  private released = false;
  /** Requests handed to Node whose responses have not closed. */
  private nodeOwed = 0;
  /** Body bytes of the last request handed to Node still to come from the client. */
  private bodyLeft = 0;
  private bridge: NodeBridge | null = null;
  private headTimer: unknown = null;
  private idleTimed = false;
  /** Counts idle periods, so a deferred expiry (`idleExpired`) can tell it is stale. */
  private idleEpoch = 0;
  /** When the current idle period began (the timers' monotonic clock). */
  private idleSince = 0;
  /**
   * The connection's one idle timer, kept across idle periods (see `markIdle`); `idleTimerPending` while armed.
   * Not a socket timeout: `socket.setTimeout` made a Timeout and a bound function per idle period, that is per
   * re-poll (issue 15: ~180 B and a timer-list insert and removal per delivery).
   */
  private idleTimer: unknown = null;
  /** The idle timer's callback, made once per connection (not per idle period). */
  private idleFire: (() => void) | null = null;
  private idleTimerPending = false;
  private idleTimerMs = 0;
  private pumping = false;
  private pumpScheduled = false;
  /** No more requests: the connection ends after what it owes. */
  private ended = false;
  // Reading stops while any of these holds (see `updateReading`).
  private pausedForNode = false;
  private pausedBehind = false;
  private pausedForDrain = false;

  constructor(
    readonly socket: Socket,
    private readonly front: FrontContext,
  ) {
    this.keepAliveHeader = front.keepAliveTimeoutMs > 0 ? `Keep-Alive: timeout=${Math.floor(front.keepAliveTimeoutMs / 1000)}\r\n` : '';
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.onEnd());
    socket.on('close', () => this.onClose());
    socket.on('error', ignore); // 'close' follows
    // Until its first request the connection has headersTimeoutMs, as under node:http, not the keep-alive timeout:
    // a client may connect and write seconds later (a storm's load generator did, and was reset).
    this.armHeadTimer();
  }

  get closing(): boolean {
    return this.front.closing;
  }

  /** Shutdown: an idle connection (or one still sending its head) ends now, a busy one after its answer. */
  shutDown(): void {
    if (this.nodeForever) return; // Node's: its closeIdleConnections and the requestless tracker decide
    if (this.current === null && this.nodeOwed === 0) this.socket.destroy();
  }

  // --- reading -------------------------------------------------------------

  private onData(chunk: Buffer): void {
    if (this.nodeForever) {
      this.feedNode(chunk);
      return;
    }
    if (this.bodyLeft > 0) {
      const n = Math.min(this.bodyLeft, chunk.length);
      this.feedNode(n === chunk.length ? chunk : chunk.subarray(0, n));
      this.bodyLeft -= n;
      if (n === chunk.length) return;
      chunk = chunk.subarray(n);
    }
    this.idleTimed = false;
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    this.pump();
  }

  /** Frames and dispatches every complete request it may handle now. */
  pump(): void {
    this.pumpScheduled = false;
    if (this.pumping) return;
    this.pumping = true;
    try {
      this.pumpLoop();
    } finally {
      this.pumping = false;
    }
  }

  private pumpLoop(): void {
    const max = this.front.maxHeaderBytes;
    for (;;) {
      if (this.ended || this.nodeForever || this.socket.destroyed) return;
      const buf = this.buffered;
      if (buf.length === 0) {
        this.clearHeadTimer();
        this.resumeBehind();
        if (this.current === null && this.nodeOwed === 0) this.markIdle();
        return;
      }
      if (this.bodyLeft > 0) return;
      const end = buf.indexOf('\r\n\r\n', 0, 'latin1');
      const complete = end !== -1;
      if (this.current !== null) {
        // A request behind a parked answer releases it (docs §4 step 0); anything behind a pending one waits.
        if ((complete || buf.length > max) && !this.released) {
          this.released = true;
          this.front.releasePipelined(this.current);
        }
        if (this.current !== null) {
          this.pauseBehind(buf.length);
          return;
        }
      }
      this.resumeBehind();
      // A client that does not read its answers gets no more of them until it does (Node pauses the same way).
      if (complete && this.socket.writableNeedDrain) {
        this.waitForDrain();
        return;
      }
      if (!complete) {
        // Too large (Node answers 431), or a bare LF that will never make a CRLF CRLF (Node answers 400 at once).
        if (buf.length > max || hasBareLf(buf)) {
          this.toNodeForever();
          return;
        }
        if (this.nodeOwed === 0) this.armHeadTimer();
        return;
      }
      this.clearHeadTimer();
      const consumed = end + 4;
      const head = consumed > max ? null : parseRequestHead(buf, end, this.lastRawHeaders);
      if (head === null) {
        this.toNodeForever();
        return;
      }
      this.buffered = consumed === buf.length ? EMPTY : buf.subarray(consumed);
      if (this.nodeOwed === 0 && head.contentLength === 0 && this.front.mayServe(head.method, head.url)) {
        // Node's last answer must be on the wire before a fast one is.
        if (this.bridge !== null && this.bridge.pendingBytes() > 0) {
          this.buffered = buf;
          return;
        }
        const req = new FrontRequest(head, this.socket);
        const res = new FrontResponse(this.socket, this, head.httpVersion === '1.1', head.keepAlive, head.method === 'HEAD');
        this.current = res;
        this.currentReq = req;
        this.released = false;
        if (this.front.serve(req, res)) {
          this.lastRawHeaders = head.rawHeaders;
          continue;
        }
        this.current = null;
        this.currentReq = null;
      }
      this.toNode(buf.subarray(0, consumed), head.contentLength);
    }
  }

  /** Hands one request (its head, then its body as it arrives) to Node. */
  private toNode(headBytes: Buffer, contentLength: number): void {
    this.nodeOwed++;
    this.feedNode(headBytes);
    if (contentLength === 0) return;
    const buf = this.buffered;
    const have = Math.min(contentLength, buf.length);
    if (have > 0) {
      this.feedNode(buf.subarray(0, have));
      this.buffered = have === buf.length ? EMPTY : buf.subarray(have);
    }
    this.bodyLeft = contentLength - have;
  }

  private toNodeForever(): void {
    this.nodeForever = true;
    this.clearHeadTimer();
    this.clearIdle();
    const rest = this.buffered;
    this.buffered = EMPTY;
    this.resumeBehind();
    this.ensureBridge();
    if (rest.length > 0) this.feedNode(rest);
  }

  private ensureBridge(): NodeBridge {
    if (this.bridge === null) {
      this.bridge = new NodeBridge(this.socket, this);
      this.front.server.emit('connection', this.bridge);
    }
    return this.bridge;
  }

  private feedNode(bytes: Buffer): void {
    if (!this.ensureBridge().feed(bytes) && !this.pausedForNode) {
      this.pausedForNode = true;
      this.updateReading();
    }
  }

  bridgeWantsMore(): void {
    if (!this.pausedForNode) return;
    this.pausedForNode = false;
    this.updateReading();
  }

  private waitForDrain(): void {
    if (this.pausedForDrain) return;
    this.pausedForDrain = true;
    this.updateReading();
    this.socket.once('drain', () => {
      this.pausedForDrain = false;
      this.updateReading();
      this.pump();
    });
  }

  private updateReading(): void {
    if (this.pausedForNode || this.pausedBehind || this.pausedForDrain) this.socket.pause();
    else if (this.socket.isPaused()) this.socket.resume();
  }

  /** Node's writes caught up with the real socket: a fast answer waiting behind them may go. */
  bridgeFlushed(): void {
    this.schedulePump();
  }

  bridgeEnded(): void {
    this.ended = true;
    this.socket.destroySoon();
  }

  /** A response Node wrote for this connection closed (answered or aborted); one of a detached bridge counts no more. */
  nodeRequestClosed(bridge: NodeBridge): void {
    if (bridge !== this.bridge) return;
    if (this.nodeOwed > 0) this.nodeOwed--;
    if (this.nodeOwed > 0 || this.nodeForever) return;
    if (this.front.closing && this.current === null) {
      this.ended = true;
      this.socket.destroySoon();
      return;
    }
    this.schedulePump();
  }

  /**
   * Takes a request Node parsed and the app held (a client's first poll, which has no lease yet) away from Node:
   * the front answers it from now on, as if it had served it itself, and Node's side of the connection closes
   * (NodeBridge.detach), so the parked request keeps no IncomingMessage, ServerResponse, parser or per-connection
   * state of node:http: what it keeps, and what its answer costs to write, are then a leased re-poll's.
   * Null, changing nothing, unless the connection is in the one state where that is exact: this is Node's only
   * request on it, complete and without a body, nothing of its answer written yet, and nothing read behind it.
   */
  adopt(req: IncomingMessage, res: ServerResponse): { req: FrontRequest; res: FrontResponse } | null {
    const bridge = this.bridge;
    if (bridge === null || (req.socket as unknown) !== bridge || this.nodeForever || this.ended || this.front.closing) return null;
    if (this.nodeOwed !== 1 || this.bodyLeft > 0 || this.buffered.length > 0 || this.current !== null) return null;
    if (!req.complete || res.headersSent || res.writableEnded || bridge.pendingBytes() > 0) return null;
    const frontReq = new FrontRequest(
      { method: req.method ?? 'GET', url: req.url ?? '/', httpVersion: req.httpVersion, headers: req.headers, rawHeaders: req.rawHeaders },
      this.socket,
    );
    const frontRes = new FrontResponse(this.socket, this, req.httpVersion === '1.1', res.shouldKeepAlive, req.method === 'HEAD');
    this.current = frontRes;
    this.currentReq = frontReq;
    this.released = false;
    // Node's response closes unanswered; its 'close' (client-front.ts) is of a bridge no longer this connection's.
    this.nodeOwed = 0;
    this.bridge = null;
    bridge.detach();
    // Reading waits for nothing of Node's any more.
    if (this.pausedForNode) {
      this.pausedForNode = false;
      this.updateReading();
    }
    return { req: frontReq, res: frontRes };
  }

  /** Stops reading while `bytes` wait behind a pending answer (a client pipelining without reading). */
  private pauseBehind(bytes: number): void {
    if (bytes <= MAX_BUFFERED_BEHIND || this.pausedBehind) return;
    this.pausedBehind = true;
    this.updateReading();
  }

  private resumeBehind(): void {
    if (!this.pausedBehind) return;
    this.pausedBehind = false;
    this.updateReading();
  }

  // --- answers -------------------------------------------------------------

  responseEnded(res: FrontResponse, close: boolean): void {
    if (res !== this.current) return;
    const req = this.currentReq!;
    this.current = null;
    this.currentReq = null;
    this.released = false;
    this.front.answered(req, res);
    if (close) {
      this.ended = true;
      this.socket.destroySoon();
      return;
    }
    this.schedulePump();
  }

  writeFilled(socket: Socket): void {
    this.front.writeFilled(socket);
  }

  /** Goes on with the next request after the current stack unwinds (an answer may be written inside a publish). */
  private schedulePump(): void {
    if (this.pumping || this.pumpScheduled) return;
    if (this.buffered.length === 0) {
      if (this.current === null && this.nodeOwed === 0 && this.bodyLeft === 0) this.markIdle();
      return;
    }
    this.pumpScheduled = true;
    process.nextTick(pumpLater, this);
  }

  // --- timeouts and the end ------------------------------------------------

  /** How long an idle connection is kept (Node's keep-alive timeout plus its buffer), ms. */
  private get idleLimitMs(): number {
    return this.front.keepAliveTimeoutMs + KEEP_ALIVE_TIMEOUT_BUFFER_MS;
  }

  /**
   * Between requests: Node's keep-alive timeout runs. A leased client is idle for a moment after every answer,
   * so the timer is not cancelled when its next request comes: still armed, it is left to fire, sees the
   * connection busy (or idle since later, and waits out the rest) and stops.
   */
  private markIdle(): void {
    if (this.idleTimed || this.ended || this.front.keepAliveTimeoutMs <= 0) return;
    this.idleTimed = true;
    this.idleEpoch++;
    this.idleSince = this.now();
    if (!this.idleTimerPending) this.armIdleTimer(this.idleLimitMs);
  }

  private now(): number {
    const timers = this.front.timers;
    return timers.monotonicNow === undefined ? timers.now() : timers.monotonicNow();
  }

  /** Arms the idle timer for `ms`: the same Timeout again when it last ran for as long (`refresh`), else a new one. */
  private armIdleTimer(ms: number): void {
    this.idleTimerPending = true;
    const timer = this.idleTimer as Refreshable | null;
    if (timer !== null && ms === this.idleTimerMs && timer.refresh !== undefined) {
      timer.refresh();
      return;
    }
    const { timers } = this.front;
    if (timer !== null) timers.clearTimeout(timer);
    this.idleTimer = timers.setTimeout((this.idleFire ??= () => this.idleTimerFired()), ms);
    (this.idleTimer as Refreshable).unref?.();
    this.idleTimerMs = ms;
  }

  private clearIdle(): void {
    this.idleTimed = false;
  }

  idleTimerFired(): void {
    this.idleTimerPending = false;
    if (!this.idleTimed || this.socket.destroyed) return;
    const left = this.idleSince + this.idleLimitMs - this.now();
    if (left >= 1) this.armIdleTimer(Math.ceil(left));
    else this.onIdleTimeout();
  }

  /**
   * The idle timer runs in the loop's timers phase, before the poll phase reads sockets: after the loop was busy
   * past the timeout (a long fan-out), a re-poll may already sit unread in the receive buffer, and destroying
   * now would reset it (RST, the client's ECONNRESET). So the close waits one poll phase (`setImmediate` runs
   * after it): bytes that arrived by then end the idle period (`onData`) and are served instead.
   */
  private onIdleTimeout(): void {
    if (!this.idleTimed) return;
    setImmediate(idleExpired, this, this.idleEpoch);
  }

  idleExpired(epoch: number): void {
    if (!this.idleTimed || epoch !== this.idleEpoch || this.socket.destroyed) return;
    if (this.nodeForever || this.current !== null || this.nodeOwed > 0 || this.buffered.length > 0) return;
    this.socket.destroy();
  }

  private armHeadTimer(): void {
    if (this.headTimer !== null || this.front.headersTimeoutMs <= 0) return;
    this.clearIdle();
    this.headTimer = this.front.timers.setTimeout(() => this.onHeadTimeout(), this.front.headersTimeoutMs);
    (this.headTimer as Refreshable).unref?.();
  }

  private clearHeadTimer(): void {
    if (this.headTimer === null) return;
    this.front.timers.clearTimeout(this.headTimer);
    this.headTimer = null;
  }

  /** The head did not arrive in time: Node's 408 (the proxy's `clientError` answer) through the bridge. */
  private onHeadTimeout(): void {
    this.headTimer = null;
    if (this.nodeForever || this.socket.destroyed) return;
    this.toNodeForever();
    const err = Object.assign(new Error('Request timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' });
    this.front.server.emit('clientError', err, this.bridge);
  }

  /** The client ended its side: Node's requests learn it from the bridge; a fast one ends with the socket. */
  private onEnd(): void {
    if (this.bridge !== null && (this.nodeForever || this.nodeOwed > 0 || this.bodyLeft > 0)) {
      this.bridge.push(null);
      return;
    }
    this.ended = true;
    if (this.socket.writable) this.socket.end();
  }

  private onClose(): void {
    this.ended = true;
    this.clearHeadTimer();
    this.idleTimed = false;
    if (this.idleTimer !== null) this.front.timers.clearTimeout(this.idleTimer);
    this.idleTimerPending = false;
    const res = this.current;
    this.current = null;
    this.currentReq = null;
    res?.socketClosed();
    this.bridge?.destroy();
    this.front.closed(this);
  }
}
