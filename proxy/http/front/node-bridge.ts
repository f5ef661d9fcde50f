/**
 * What Node's http server reads and writes instead of a client socket the front owns (http/front/): a Duplex
 * the front feeds the bytes of the requests it hands to Node, and whose output goes to the real socket. Node
 * parses and answers through it exactly as through a socket (IncomingMessage, ServerResponse, 400/431,
 * chunked bodies, pipelining), and the proxy's code reads the same addresses from it.
 *
 * Backpressure both ways: a write the real socket could not take completes only on its 'drain' (so Node's
 * response and the write-stall watch see a full buffer: `writableLength`/`writableNeedDrain` include the real
 * socket's); when Node stops reading, the real socket is paused until Node reads again.
 * Node's own keep-alive timer is a no-op here (`setTimeout`): the front owns the connection's idle timeout.
 */
import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';

/** The connection a bridge belongs to (client-front.ts). */
export interface BridgeOwner {
  /** Node wants more bytes: resume reading the real socket. */
  bridgeWantsMore(): void;
  /** A write that waited for the real socket's 'drain' is done. */
  bridgeFlushed(): void;
  /** Node ended its side (a `Connection: close` answer, a refused request): the connection ends after it. */
  bridgeEnded(): void;
}

export class NodeBridge extends Duplex {
  /** Set by node:http on 'connection' (and read by the write-stall watch). */
  server: unknown = undefined;
  /** The front took the connection back (`detach`): closing the bridge leaves the client's socket open. */
  private detached = false;

  constructor(
    readonly real: Socket,
    readonly owner: BridgeOwner,
  ) {
    super({ allowHalfOpen: true });
  }

  /** Hands `bytes` to Node; false when Node has enough buffered (the caller pauses the real socket). */
  feed(bytes: Buffer): boolean {
    if (this.destroyed) return true;
    return this.push(bytes);
  }

  override _read(): void {
    this.owner.bridgeWantsMore();
  }

  /**
   * Closes Node's side of the connection and leaves the client's socket to the front (FrontConnection.adopt):
   * Node drops its request, response, parser and per-connection state; nothing more reaches the client from here.
   */
  detach(): void {
    this.detached = true;
    this.destroy();
  }

  override _write(chunk: Buffer, encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const real = this.real;
    if (real.destroyed || this.detached) {
      callback();
      return;
    }
    if (real.write(chunk, encoding)) callback();
    else this.afterDrain(callback);
  }

  override _writev(chunks: Array<{ chunk: Buffer; encoding: BufferEncoding }>, callback: (error?: Error | null) => void): void {
    const real = this.real;
    if (real.destroyed || this.detached) {
      callback();
      return;
    }
    real.cork();
    for (const { chunk, encoding } of chunks) real.write(chunk, encoding);
    real.uncork();
    if (!real.writableNeedDrain) callback();
    else this.afterDrain(callback);
  }

  /** Bytes Node wrote that the real socket has not taken yet. */
  pendingBytes(): number {
    return duplexWritableLength.call(this) as number;
  }

  private afterDrain(callback: (error?: Error | null) => void): void {
    this.real.once('drain', () => {
      callback();
      this.owner.bridgeFlushed();
    });
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.owner.bridgeEnded();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // Node (or the write-stall watch, or shutdown) gave up on the connection: so does the client's socket.
    if (!this.detached && !this.real.destroyed) this.real.destroy();
    callback(error);
  }

  // What Node and the proxy read from a socket.
  get remoteAddress(): string | undefined {
    return this.real.remoteAddress;
  }
  get remotePort(): number | undefined {
    return this.real.remotePort;
  }
  get remoteFamily(): string | undefined {
    return this.real.remoteFamily;
  }
  get localAddress(): string | undefined {
    return this.real.localAddress;
  }
  get localPort(): number | undefined {
    return this.real.localPort;
  }
  address(): ReturnType<Socket['address']> {
    return this.real.address();
  }
  /** Node's keep-alive and server timeouts: the front times the real socket itself. */
  setTimeout(_ms: number, _callback?: () => void): this {
    return this;
  }
  setNoDelay(noDelay?: boolean): this {
    this.real.setNoDelay(noDelay);
    return this;
  }
  setKeepAlive(enable?: boolean, initialDelayMs?: number): this {
    this.real.setKeepAlive(enable, initialDelayMs);
    return this;
  }
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }
}

// The bridge's buffer plus the real socket's: a client that stops reading shows as a full buffer to Node's
// response (backpressure) and to the write-stall watch. Accessors on Duplex's prototype (typed as fields).
const duplexWritableLength = Object.getOwnPropertyDescriptor(Duplex.prototype, 'writableLength')!.get!;
const duplexNeedDrain = Object.getOwnPropertyDescriptor(Duplex.prototype, 'writableNeedDrain')!.get!;
Object.defineProperties(NodeBridge.prototype, {
  writableLength: {
    get(this: NodeBridge): number {
      return (duplexWritableLength.call(this) as number) + this.real.writableLength;
    },
  },
  writableNeedDrain: {
    get(this: NodeBridge): boolean {
      return (duplexNeedDrain.call(this) as boolean) || this.real.writableNeedDrain;
    },
  },
});
