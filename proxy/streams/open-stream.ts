/**
 * One stream hold (docs/protocol.md §14): the app's answer written at once without a length (chunked for
 * HTTP/1.1, close-delimited for HTTP/1.0, which Node picks), then each published chunk as it comes, the
 * keep-alive data when the stream is idle, and an end. A write that leaves more than `maxBufferedBytes`
 * unsent on the socket ends the stream (a slow reader, §14.4): memory per stream stays bounded.
 *
 * It writes; the registry (stream-registry.ts) decides what and indexes it.
 */
import type { ClientResponse } from '../http/client-message.js';
import type { ChannelSubscription } from '../../protocol/grip-channel.js';
import type { Exchange } from '../forward/exchange.js';
import type { HoldInstruction } from '../forward/instruction.js';
import type { HeaderMap } from '../http/header-filter.js';
import { REQUEST_ID_HEADER, responseRequestId } from '../http/request-id.js';
import { isResponseClosed } from '../http/response.js';
import type { ProxyTimers } from '../options.js';
import type { StreamHold } from './stream-instruction.js';

/**
 * Why a stream ended: `closed` (an `action: close` item), `resync` (slow reader or prev-id gap: the resync
 * data is written first), `drained` (shutdown), `pipelined` (a request waits behind it), `aborted` (client gone).
 */
export type StreamEnd = 'closed' | 'resync' | 'drained' | 'pipelined' | 'aborted';

export interface OpenStreamDeps {
  timers: ProxyTimers;
  maxBufferedBytes: number;
  /** Called once, when the stream has ended for any reason (after its last write). */
  ended(stream: OpenStream, why: StreamEnd): void;
  /** Called for each keep-alive written. */
  keptAlive(): void;
}

export class OpenStream {
  /** Channel -> the id of the last item the client has, for channels held with a prev-id (Pushpin's rule). */
  readonly positions = new Map<string, string | undefined>();
  readonly channels: readonly ChannelSubscription[];
  /** The hold's `Grip-Set-Meta`, read by its channels' filters (holds/delivery-filters.ts). */
  readonly meta: Readonly<Record<string, string>> | undefined;
  private readonly hold: StreamHold;
  private timer: unknown = null;
  private done = false;
  private readonly onClose = () => this.end('aborted');

  constructor(
    readonly exchange: Exchange,
    instruction: HoldInstruction,
    /** What it keeps, for the parking budget (stream-registry.ts). */
    readonly bytes: number,
    private readonly deps: OpenStreamDeps,
  ) {
    this.channels = instruction.channels;
    this.meta = instruction.meta;
    this.hold = instruction.stream ?? {};
    for (const sub of instruction.channels) this.positions.set(sub.name, sub.prevId);
  }

  get res(): ClientResponse {
    return this.exchange.res;
  }

  get ended(): boolean {
    return this.done;
  }

  /**
   * Writes the head and first bytes: the held response minus its length. False, writing nothing, when the
   * client is gone (the caller forgets the stream).
   */
  start(initial: HoldInstruction['timeoutResponse'], extraHeaders: HeaderMap = {}): boolean {
    const { res } = this;
    if (isResponseClosed(res)) return false;
    const headers: HeaderMap = { ...initial.headers, ...extraHeaders };
    delete headers['content-length'];
    delete headers['transfer-encoding'];
    const requestId = responseRequestId(res);
    if (requestId !== undefined) headers[REQUEST_ID_HEADER] = requestId;
    try {
      res.writeHead(initial.code, initial.reason, headers);
      if (initial.body.length > 0) res.write(initial.body);
      else res.flushHeaders();
    } catch {
      res.destroy();
      return false;
    }
    res.on('close', this.onClose);
    this.armKeepAlive();
    if (this.overflowing()) this.end('resync');
    return true;
  }

  /** Writes one published chunk; ends the stream (`resync`) if the client has fallen too far behind. False if it ended. */
  write(chunk: Buffer): boolean {
    if (this.done) return false;
    if (chunk.length > 0) this.res.write(chunk);
    if (this.hold.keepAlive?.mode === 'idle') this.armKeepAlive();
    if (this.overflowing()) {
      this.end('resync');
      return false;
    }
    return true;
  }

  /** Ends the stream once: the resync data first for `resync`, then the terminating chunk (or the close). */
  end(why: StreamEnd): void {
    if (this.done) return;
    this.done = true;
    this.disarm();
    const { res } = this;
    res.off('close', this.onClose);
    if (why !== 'aborted' && !res.destroyed && !res.writableEnded) {
      if (why === 'resync' && this.hold.resync !== undefined) res.write(this.hold.resync);
      // A reader that stopped reading keeps what is buffered until the write-stall watch cuts it off.
      res.end();
    }
    this.deps.ended(this, why);
  }

  /** Bytes written to the client and not yet taken by the kernel (Node's buffers, socket included). */
  private overflowing(): boolean {
    return this.res.writableLength > this.deps.maxBufferedBytes;
  }

  private armKeepAlive(): void {
    const keepAlive = this.hold.keepAlive;
    if (keepAlive === undefined || this.done) return;
    this.disarm();
    this.timer = this.deps.timers.setTimeout(() => {
      this.timer = null;
      if (this.done) return;
      this.deps.keptAlive();
      // write() re-arms in idle mode; interval mode re-arms here, whatever else was written meanwhile.
      if (this.write(keepAlive.data) && keepAlive.mode === 'interval') this.armKeepAlive();
    }, keepAlive.intervalMs);
  }

  private disarm(): void {
    if (this.timer !== null) this.deps.timers.clearTimeout(this.timer);
    this.timer = null;
  }
}
