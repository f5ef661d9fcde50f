/**
 * The answer to a request the client front serves without Node (http/front/client-front.ts): the part of
 * `ServerResponse` the hold pipeline uses (`ClientResponse`), writing what Node would write for the same calls
 * (status line, the given headers in order, `Date`, `Connection`/`Keep-Alive` as Node decides them, chunked
 * framing for a body of unknown length on HTTP/1.1, close-delimited on HTTP/1.0, no body for HEAD/204/304).
 * The head waits for the first body write, so `writeHead` + `write(body)` + `end()` (http/response.ts) is one
 * `socket.write`: no parser callbacks, no `OutgoingMessage` buffers, no corking (issue 15).
 *
 * Events: 'drain' (after a write that filled the socket), 'finish' then 'close' when the answer is handed to
 * the socket, 'close' alone when the client went away first (`writableFinished` tells which, as with Node).
 */
import { EventEmitter } from 'node:events';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { ClientResponse } from '../client-message.js';
import type { HeaderMap } from '../header-filter.js';
import type { HeldResponse, PreparedItem } from '../response.js';
import { httpDate } from './http-date.js';
import { itemAnswerBytes, type EncodedItem } from './item-answer.js';

/** What a response tells the connection it belongs to. */
export interface FrontResponseOwner {
  /** `Keep-Alive: timeout=N\r\n` as Node announces its keep-alive idle timeout (whole seconds, rounded down), or '' when it has none. */
  readonly keepAliveHeader: string;
  /** True once the connection must close after the answer being written (shutdown). */
  readonly closing: boolean;
  /** The answer is complete and handed to the socket; `close`: the connection must end after it. */
  responseEnded(res: FrontResponse, close: boolean): void;
  /** A write left the socket's buffer full: the write-stall watch times it. */
  writeFilled(socket: Socket): void;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const INVALID_VALUE = /[^\t\x20-\x7e\x80-\xff]/;

function invalidHeader(name: string): Error {
  return Object.assign(new TypeError(`Invalid header: ${JSON.stringify(name)}`), { code: 'ERR_INVALID_HTTP_TOKEN' });
}

export class FrontResponse extends EventEmitter implements ClientResponse {
  statusCode = 200;
  writableEnded = false;
  writableFinished = false;
  /** The head as built by `writeHead`, until it is on the wire. */
  private head: string | null = null;
  private headWritten = false;
  private chunked = false;
  private hasBody: boolean;
  /** The answer ends the connection (`Connection: close`, HTTP/1.0 without keep-alive, close-delimited body). */
  private closeAfter = false;
  private destroyedHere = false;
  private waitingForDrain = false;

  constructor(
    readonly socket: Socket,
    private readonly owner: FrontResponseOwner,
    private readonly http11: boolean,
    /** The request may keep the connection (see request-head.ts `keepAlive`). */
    private readonly keepAlive: boolean,
    isHead: boolean,
  ) {
    super();
    this.hasBody = !isHead;
  }

  get headersSent(): boolean {
    return this.head !== null;
  }

  get destroyed(): boolean {
    return this.destroyedHere || this.socket.destroyed || (!this.writableEnded && !this.socket.writable);
  }

  get writableLength(): number {
    return this.socket.writableLength;
  }

  writeHead(statusCode: number, statusMessage: string | undefined, headers: HeaderMap | string[] = []): this {
    if (this.head !== null) throw Object.assign(new Error('Cannot write headers after they are sent to the client'), { code: 'ERR_HTTP_HEADERS_SENT' });
    const reason = statusMessage ?? STATUS_CODES[statusCode] ?? 'unknown';
    if (INVALID_VALUE.test(reason)) throw invalidHeader('statusMessage');
    this.statusCode = statusCode;
    let head = `HTTP/1.1 ${statusCode} ${reason}\r\n`;
    let date = false;
    let connection = false;
    let length = false;
    let te = false;
    const add = (name: string, value: string) => {
      if (!TOKEN.test(name)) throw invalidHeader(name);
      if (INVALID_VALUE.test(value)) throw invalidHeader(name);
      head += `${name}: ${value}\r\n`;
      const lower = name.length > 17 ? '' : name.toLowerCase();
      if (lower === 'date') date = true;
      else if (lower === 'connection') {
        connection = true;
        if (/(?:^|,)\s*close\s*(?:,|$)/i.test(value)) this.closeAfter = true;
      } else if (lower === 'content-length') length = true;
      else if (lower === 'transfer-encoding') te = true;
    };
    if (Array.isArray(headers)) {
      for (let i = 0; i + 1 < headers.length; i += 2) add(headers[i]!, String(headers[i + 1]));
    } else {
      for (const name in headers) {
        const value = headers[name]!;
        if (typeof value === 'string') add(name, value);
        else for (const one of value) add(name, one);
      }
    }
    if (statusCode === 204 || statusCode === 304 || (statusCode >= 100 && statusCode < 200)) this.hasBody = false;
    if (!date) head += `Date: ${httpDate()}\r\n`;
    // Node: a body of unknown length keeps an HTTP/1.1 connection (chunked) but ends an HTTP/1.0 one.
    const delimited = length || te || !this.hasBody || this.http11;
    if (!connection) {
      if (this.keepAlive && delimited && !this.owner.closing) {
        head += 'Connection: keep-alive\r\n' + this.owner.keepAliveHeader;
      } else {
        head += 'Connection: close\r\n';
        this.closeAfter = true;
      }
    } else if (!this.keepAlive || !delimited || this.owner.closing) {
      this.closeAfter = true;
    }
    if (!length && !te && this.hasBody) {
      if (this.http11) {
        head += 'Transfer-Encoding: chunked\r\n';
        this.chunked = true;
      } else {
        this.closeAfter = true;
      }
    }
    this.head = head + '\r\n';
    return this;
  }

  write(chunk: string | Buffer, encoding?: BufferEncoding): boolean {
    if (this.writableEnded || this.destroyed) return false;
    if (this.head === null) this.writeHead(this.statusCode, undefined);
    const prefix = this.takeHead();
    if (!this.hasBody || chunk.length === 0) return prefix === '' ? !this.socket.writableNeedDrain : this.send(prefix);
    if (typeof chunk === 'string' && encoding !== 'latin1' && encoding !== 'binary') chunk = Buffer.from(chunk, encoding ?? 'utf8');
    if (!this.chunked) return typeof chunk === 'string' ? this.send(prefix + chunk) : this.sendBuffer(prefix, chunk, '');
    const size = `${prefix}${Buffer.byteLength(chunk, 'latin1').toString(16)}\r\n`;
    return typeof chunk === 'string' ? this.send(size + chunk + '\r\n') : this.sendBuffer(size, chunk, '\r\n');
  }

  /**
   * Answers with `item` merged onto `held` (what `writeItem` sends through `writeHead`, byte for byte) in one
   * socket write of bytes assembled from the item's shared parts (item-answer.ts). False, writing nothing, when
   * those bytes need `writeHead`'s checks (the caller takes that path) or the answer has begun.
   */
  endItem(encoded: EncodedItem, item: PreparedItem, held: HeldResponse, requestId: string): boolean {
    if (this.head !== null || this.writableEnded || this.destroyed) return false;
    // writeHead's choice for an answer with a Content-Length and no Connection header of its own.
    const keep = this.keepAlive && !this.owner.closing;
    const bytes = itemAnswerBytes(encoded, item, held, requestId, keep ? this.owner.keepAliveHeader : null, this.hasBody);
    if (bytes === null) return false;
    this.statusCode = item.code;
    this.head = '';
    this.headWritten = true;
    if (!keep) this.closeAfter = true;
    this.wrote(this.socket.write(bytes));
    this.finishEnd();
    return true;
  }

  end(): this {
    if (this.writableEnded) return this;
    if (this.destroyed) {
      this.writableEnded = true;
      return this;
    }
    if (this.head === null) this.writeHead(this.statusCode, undefined);
    let rest = this.takeHead();
    if (this.chunked) rest += '0\r\n\r\n';
    if (rest !== '') this.send(rest);
    this.finishEnd();
    return this;
  }

  /** The answer is handed to the socket: 'finish', 'close', and the connection goes on (or ends). */
  private finishEnd(): void {
    this.writableEnded = true;
    this.writableFinished = true;
    this.emit('finish');
    this.emit('close');
    this.owner.responseEnded(this, this.closeAfter || this.owner.closing);
  }

  flushHeaders(): void {
    if (this.head === null) this.writeHead(this.statusCode, undefined);
    const head = this.takeHead();
    if (head !== '') this.send(head);
  }

  destroy(): this {
    if (this.destroyedHere) return this;
    this.destroyedHere = true;
    // 'close' follows from the socket's (client-front.ts `socketClosed`).
    this.socket.destroy();
    return this;
  }

  /** The client's connection closed: an unfinished answer is aborted. */
  socketClosed(): void {
    if (this.writableEnded) return;
    this.destroyedHere = true;
    this.emit('close');
  }

  private takeHead(): string {
    if (this.headWritten) return '';
    this.headWritten = true;
    return this.head!;
  }

  private send(text: string): boolean {
    return this.wrote(this.socket.write(text, 'latin1'));
  }

  private sendBuffer(before: string, body: Buffer, after: string): boolean {
    const socket = this.socket;
    if (before === '' && after === '') return this.wrote(socket.write(body));
    // One writev for head and body.
    socket.cork();
    if (before !== '') socket.write(before, 'latin1');
    socket.write(body);
    if (after !== '') socket.write(after, 'latin1');
    socket.uncork();
    return this.wrote(!socket.writableNeedDrain);
  }

  private wrote(ok: boolean): boolean {
    if (ok) return true;
    this.owner.writeFilled(this.socket);
    if (!this.waitingForDrain) {
      this.waitingForDrain = true;
      this.socket.once('drain', () => {
        this.waitingForDrain = false;
        this.emit('drain');
      });
    }
    return false;
  }
}
