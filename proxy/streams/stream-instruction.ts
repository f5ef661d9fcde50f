/**
 * The parts of a hold instruction only a stream hold has (docs/protocol.md §14.1): `Grip-Keep-Alive` as Pushpin
 * parses it (fastly/pushpin src/handler/instruct.cpp: `DATA; format=raw|cstring|base64; timeout=N;
 * mode=idle|interval`) and our extension `Grip-Stream-Resync` (the bytes a stream closed for falling behind
 * writes last). Pure functions; forward/instruction.ts calls them for `Grip-Hold: stream`.
 */
import type { IncomingHttpHeaders } from 'node:http';

export const GRIP_KEEP_ALIVE = 'grip-keep-alive';
/** Extension: `DATA; format=raw|cstring|base64`, written before a stream is closed for a slow reader or a gap. */
export const GRIP_STREAM_RESYNC = 'grip-stream-resync';

/** Pushpin's default keep-alive timeout (DEFAULT_RESPONSE_TIMEOUT in its instruct.cpp), s. */
const DEFAULT_KEEP_ALIVE_S = 55;
/** Longest keep-alive interval accepted, s: past an hour, intermediaries will have dropped the connection. */
const MAX_KEEP_ALIVE_S = 3600;
/** Largest keep-alive or resync data, bytes: both are written to every such stream. */
export const MAX_STREAM_DATA_BYTES = 4096;

export interface KeepAlive {
  data: Buffer;
  intervalMs: number;
  /** `idle`: written after `intervalMs` without any write; `interval`: every `intervalMs` whatever was written. */
  mode: 'idle' | 'interval';
}

export interface StreamHold {
  keepAlive?: KeepAlive;
  /** Written last when the proxy ends the stream because the client would miss items. */
  resync?: Buffer;
}

export class StreamInstructionError extends Error {
  override name = 'StreamInstructionError';
}

/** Pushpin's `cstring` unescaping: `\\`, `\r`, `\n`, `\xHH`; any other escape, or a dangling one, is an error. */
export function unescapeCString(text: string): Buffer | null {
  const out: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch > 0xff) return null;
    if (text[i] !== '\\') {
      out.push(ch);
      continue;
    }
    const next = text[++i];
    if (next === '\\') out.push(0x5c);
    else if (next === 'r') out.push(0x0d);
    else if (next === 'n') out.push(0x0a);
    else if (next === 'x' && /^[0-9a-fA-F]{2}$/.test(text.slice(i + 1, i + 3))) {
      out.push(parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else return null;
  }
  return Buffer.from(out);
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** `DATA; key=value; ...`: the data is the first `;`-separated part, as in Pushpin's header parameters. */
function parseParams(value: string, name: string): { data: string; params: Map<string, string> } {
  const [first, ...rest] = value.split(';');
  const params = new Map<string, string>();
  for (const part of rest) {
    const eq = part.indexOf('=');
    const key = (eq === -1 ? part : part.slice(0, eq)).trim().toLowerCase();
    if (key === '') continue;
    if (params.has(key)) throw new StreamInstructionError(`${name} names ${key} twice`);
    params.set(key, eq === -1 ? '' : part.slice(eq + 1).trim());
  }
  return { data: (first ?? '').trim(), params };
}

function decodeData(data: string, format: string | undefined, name: string): Buffer {
  let bytes: Buffer | null;
  if (format === undefined || format === 'raw') bytes = Buffer.from(data, 'latin1');
  else if (format === 'cstring') bytes = unescapeCString(data);
  else if (format === 'base64') bytes = BASE64.test(data) ? Buffer.from(data, 'base64') : null;
  else throw new StreamInstructionError(`${name} format must be raw, cstring or base64, got ${JSON.stringify(format)}`);
  if (bytes === null) throw new StreamInstructionError(`${name} data is not valid ${format}`);
  if (bytes.length === 0) throw new StreamInstructionError(`${name} cannot be empty`);
  if (bytes.length > MAX_STREAM_DATA_BYTES) throw new StreamInstructionError(`${name} data is over ${MAX_STREAM_DATA_BYTES} bytes`);
  return bytes;
}

function single(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  if (Array.isArray(value)) {
    if (value.length !== 1) throw new StreamInstructionError(`${name} must appear once`);
    return value[0];
  }
  return value;
}

function parseKeepAlive(value: string): KeepAlive {
  const name = 'Grip-Keep-Alive';
  const { data, params } = parseParams(value, name);
  const mode = params.get('mode') ?? 'idle';
  if (mode !== 'idle' && mode !== 'interval') throw new StreamInstructionError(`${name} mode must be idle or interval, got ${JSON.stringify(mode)}`);
  const timeout = params.get('timeout') ?? String(DEFAULT_KEEP_ALIVE_S);
  if (!/^\d{1,4}$/.test(timeout) || Number(timeout) < 1 || Number(timeout) > MAX_KEEP_ALIVE_S) {
    throw new StreamInstructionError(`${name} timeout must be whole seconds 1-${MAX_KEEP_ALIVE_S}, got ${JSON.stringify(timeout)}`);
  }
  return { data: decodeData(data, params.get('format'), name), intervalMs: Number(timeout) * 1000, mode };
}

/** Reads the stream-only headers of a `Grip-Hold: stream` answer. Throws `StreamInstructionError`. */
export function parseStreamHold(headers: IncomingHttpHeaders): StreamHold {
  const hold: StreamHold = {};
  const keepAlive = single(headers, GRIP_KEEP_ALIVE);
  if (keepAlive !== undefined) hold.keepAlive = parseKeepAlive(keepAlive);
  const resync = single(headers, GRIP_STREAM_RESYNC);
  if (resync !== undefined) {
    const { data, params } = parseParams(resync, 'Grip-Stream-Resync');
    hold.resync = decodeData(data, params.get('format'), 'Grip-Stream-Resync');
  }
  return hold;
}
