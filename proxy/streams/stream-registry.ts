/**
 * The open stream holds (docs/protocol.md §14), by channel and client address: opens a stream the app asked for
 * (first-hold prev-id check, parking caps), applies each publish item's `http-stream` format to the streams on its
 * channel (prev-id order, `close`), ends them all at shutdown. Publishes reach it through the hold registry
 * (hold-delivery.ts), so a bus (Redis, or the cluster primary) that feeds every registry feeds every stream too.
 */
import type { Logger } from 'pino';
import { resyncResponse } from '../../protocol/resync.js';
import type { PublishCommand } from '../control/commands.js';
import { sendError } from '../errors.js';
import type { Exchange } from '../forward/exchange.js';
import type { HoldInstruction } from '../forward/instruction.js';
import { ChannelCursors } from '../holds/channel-cursors.js';
import { filtersDrop } from '../holds/delivery-filters.js';
import type { ReaskFn } from '../holds/held.js';
import { requestHeadBytes } from '../holds/parked-bytes.js';
import { requestIdOf } from '../http/request-id.js';
import { isResponseClosed, writeResponse } from '../http/response.js';
import type { ProxyOptions } from '../options.js';
import { OpenStream, type StreamEnd } from './open-stream.js';
import type { StreamSide, StreamStats } from './stream-side.js';
import type { ClientResponse } from '../http/client-message.js';

export type StreamRegistryOptions = Pick<
  ProxyOptions,
  | 'streamMaxBufferedBytes'
  | 'maxParked'
  | 'maxParkedPerAddress'
  | 'maxParkedBytes'
  | 'parkedRetryAfterS'
  | 'maxReasks'
  | 'channelTtlMs'
  | 'maxChannels'
  | 'logger'
  | 'timers'
>;

/** What the response holds take of the parking caps (hold-registry.ts `parkedLoad`). */
export type ParkedLoad = (address?: string) => { count: number; bytes: number; fromAddress: number };

export interface StreamRegistryDeps {
  options: StreamRegistryOptions;
  parkedLoad: ParkedLoad;
  /** Sends the request to the app again (forward/reask.ts); its answer comes back through `open` or the hold registry. */
  reask: ReaskFn;
}

export class StreamRegistry implements StreamSide {
  private readonly open_ = new Set<OpenStream>();
  private readonly byChannel = new Map<string, Set<OpenStream>>();
  private readonly perAddress = new Map<string, number>();
  private readonly byResponse = new WeakMap<ClientResponse, OpenStream>();
  /** Responses with a request pipelined behind them before the app answered (docs §4 step 0). */
  private readonly pipelinedBehind = new WeakSet<ClientResponse>();
  /** The last id published on each channel in an `http-stream` item, for the first-hold check (§14.2). */
  private readonly lastIds: ChannelCursors;
  private readonly log: Logger;
  private totalBytes = 0;
  private draining = false;
  private readonly counters: Omit<StreamStats, 'streams'> = { streamChunks: 0, streamKeepAlives: 0, streamResyncs: 0 };

  constructor(private readonly deps: StreamRegistryDeps) {
    const { options } = deps;
    this.log = options.logger;
    this.lastIds = new ChannelCursors({ ttlMs: options.channelTtlMs, maxChannels: options.maxChannels }, options.timers.now);
  }

  get count(): number {
    return this.open_.size;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  from(address: string): number {
    return this.perAddress.get(address) ?? 0;
  }

  stats(): StreamStats {
    return { streams: this.open_.size, ...this.counters };
  }

  /** A request the app answered with `Grip-Hold: stream` (first answer or re-ask). */
  open(exchange: Exchange, instruction: HoldInstruction): void {
    const { res, req } = exchange;
    if (isResponseClosed(res)) return;
    const { options } = this.deps;
    if (this.draining) {
      // Shutting down: the first bytes alone, as a complete response, and the connection closes (§9).
      writeResponse(res, instruction.timeoutResponse, { connection: 'close' });
      return;
    }
    if (this.pipelinedBehind.has(res)) {
      // A request waits behind this one on its connection: never open it, answer with the first bytes (§14.7).
      writeResponse(res, instruction.timeoutResponse);
      return;
    }
    // Pushpin's first-hold check (fastly/pushpin src/handler/httpsession.cpp): a prev-id behind the channel's
    // last published id means an item went out while the app answered. Ask the app again.
    for (const sub of instruction.channels) {
      const last = sub.prevId === undefined ? undefined : this.lastIds.lastId(sub.name);
      if (last === undefined || last === sub.prevId) continue;
      this.log.debug({ requestId: requestIdOf(req), channel: sub.name, prevId: sub.prevId, lastId: last }, 'stream hold behind its channel; re-asking');
      this.reask(exchange, instruction);
      return;
    }
    const address = exchange.clientAddress;
    const load = this.deps.parkedLoad(address);
    const bytes = requestHeadBytes(req) + (exchange.retainedBody()?.length ?? 0) + (instruction.stream?.keepAlive?.data.length ?? 0) + (instruction.stream?.resync?.length ?? 0);
    let refusal: string | null = null;
    if (load.count + this.count >= options.maxParked) refusal = `the proxy already holds ${options.maxParked} requests`;
    else if (load.bytes + this.totalBytes + bytes > options.maxParkedBytes) refusal = `the proxy's parked requests would keep more than ${options.maxParkedBytes} bytes`;
    else if (address !== undefined && load.fromAddress + this.from(address) >= options.maxParkedPerAddress) {
      refusal = `the proxy already holds ${options.maxParkedPerAddress} requests from this client address`;
    }
    if (refusal !== null) {
      this.log.info({ requestId: requestIdOf(req), clientAddress: address, reason: refusal }, 'stream hold refused: too many parked');
      sendError(res, 'PROXY_ERR_TOO_MANY_PARKED', `${refusal}; retry later`, { 'retry-after': String(options.parkedRetryAfterS) });
      return;
    }
    const stream = new OpenStream(exchange, instruction, bytes, {
      timers: options.timers,
      maxBufferedBytes: options.streamMaxBufferedBytes,
      ended: (s, why) => this.forget(s, why),
      keptAlive: () => this.counters.streamKeepAlives++,
    });
    this.index(stream);
    if (!stream.start(instruction.timeoutResponse)) {
      this.unindex(stream);
      return;
    }
    if (this.log.isLevelEnabled('debug')) this.log.debug({ requestId: requestIdOf(req), channels: instruction.channels.map((c) => c.name) }, 'stream opened');
  }

  /** Applies `command.stream` to the streams on its channel, in Pushpin's order (§14.3). Returns chunks written. */
  publish(command: PublishCommand): number {
    const item = command.stream;
    if (item === undefined) return 0;
    this.lastIds.record(command.channel, command.id);
    const subscribers = this.byChannel.get(command.channel);
    if (subscribers === undefined) return 0;
    let written = 0;
    for (const stream of [...subscribers]) {
      if (stream.ended) continue;
      const position = stream.positions.get(command.channel);
      if (command.id !== undefined && command.id === position) continue; // the client has it (re-published)
      if (position !== undefined && command.prevId !== undefined && command.prevId !== position) {
        // The client would miss the items between: end with the resync data; it reconnects from its cursor.
        this.log.info({ requestId: requestIdOf(stream.exchange.req), channel: command.channel, position, prevId: command.prevId }, 'stream behind its channel; ended with resync');
        stream.end('resync');
        continue;
      }
      if (position !== undefined && command.id !== undefined) stream.positions.set(command.channel, command.id);
      // Channel filters (skip-self...) drop the item for this stream, close included; its position moves past it (Pushpin).
      const sub = stream.channels.find((c) => c.name === command.channel);
      if (sub?.filters !== undefined && filtersDrop(sub, stream.meta, command.meta, stream.channels)) continue;
      if (item.action === 'close') {
        stream.end('closed');
        continue;
      }
      if (stream.write(item.content)) {
        written++;
        this.counters.streamChunks++;
      } else if (stream.ended) {
        this.log.warn({ requestId: requestIdOf(stream.exchange.req), maxBufferedBytes: this.deps.options.streamMaxBufferedBytes }, 'stream reader fell behind; ended with resync');
      }
    }
    return written;
  }

  /** A request was pipelined behind `res` (docs §4 step 0): a stream never ends by itself, so end it now. */
  releasePipelined(res: ClientResponse): void {
    this.pipelinedBehind.add(res);
    this.byResponse.get(res)?.end('pipelined');
  }

  /** Shutdown (§9): ends every stream cleanly (its terminating chunk) and answers later stream holds at once. */
  drain(): number {
    this.draining = true;
    const all = [...this.open_];
    for (const stream of all) stream.end('drained');
    return all.length;
  }

  private reask(exchange: Exchange, instruction: HoldInstruction): void {
    if (exchange.reasks >= this.deps.options.maxReasks) {
      writeResponse(exchange.res, resyncResponse('reask-limit', instruction.channels.map((c) => c.name)));
      return;
    }
    exchange.reasks++;
    const lastIds = new Map<string, string>();
    for (const sub of instruction.channels) if (sub.prevId !== undefined) lastIds.set(sub.name, sub.prevId);
    this.deps.reask(exchange, lastIds).then(
      (outcome) => {
        if (outcome === 'failed') writeResponse(exchange.res, resyncResponse('reask-failed', instruction.channels.map((c) => c.name)));
      },
      () => writeResponse(exchange.res, resyncResponse('reask-failed', instruction.channels.map((c) => c.name))),
    );
  }

  private index(stream: OpenStream): void {
    this.open_.add(stream);
    this.totalBytes += stream.bytes;
    this.byResponse.set(stream.res, stream);
    const address = stream.exchange.clientAddress;
    if (address !== undefined) this.perAddress.set(address, (this.perAddress.get(address) ?? 0) + 1);
    for (const sub of stream.channels) {
      let set = this.byChannel.get(sub.name);
      if (set === undefined) this.byChannel.set(sub.name, (set = new Set()));
      set.add(stream);
    }
  }

  private unindex(stream: OpenStream): void {
    if (!this.open_.delete(stream)) return;
    this.totalBytes -= stream.bytes;
    this.byResponse.delete(stream.res);
    const address = stream.exchange.clientAddress;
    if (address !== undefined) {
      const left = (this.perAddress.get(address) ?? 1) - 1;
      if (left > 0) this.perAddress.set(address, left);
      else this.perAddress.delete(address);
    }
    for (const sub of stream.channels) {
      const set = this.byChannel.get(sub.name);
      set?.delete(stream);
      if (set?.size === 0) this.byChannel.delete(sub.name);
    }
  }

  private forget(stream: OpenStream, why: StreamEnd): void {
    this.unindex(stream);
    if (why === 'resync') this.counters.streamResyncs++;
    if (this.log.isLevelEnabled('debug')) this.log.debug({ requestId: requestIdOf(stream.exchange.req), why }, 'stream ended');
  }
}
