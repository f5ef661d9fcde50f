/**
 * The hold-instruction parser (docs/protocol.md §3): a pure function from the
 * app's response head and body to what the proxy must do with the client
 * request. Modelled on Pushpin's handler/instruct.cpp: the held response is also
 * the timeout response, with `Grip-Status` replacing its status.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { GripChannelSyntaxError, parseGripChannels, type ChannelSubscription } from '../../protocol/grip-channel.js';
import { GRIP_CHANNEL, GRIP_CONNECTION_ID, GRIP_HOLD, GRIP_STATUS, GRIP_TIMEOUT } from '../../protocol/headers.js';
import { isConnectionId } from '../../protocol/ids.js';
import { endToEndHeaders } from '../http/header-filter.js';
import type { HeldResponse } from '../http/response.js';
import { parseStreamHold, StreamInstructionError, type StreamHold } from '../streams/stream-instruction.js';
import type { ProxyErrorCode } from '../errors.js';
import { checkChannelFilters, parseExposeHeaders, parseGripLinks, parseSetMeta } from './grip-extras.js';
import { sharedBody } from '../http/shared-bodies.js';

export interface HoldInstruction {
  /** Channels the parked request listens on, with the client's prev-id per channel if the app named one. */
  channels: ChannelSubscription[];
  /** The connection ID the request is parked under (extension), if any. */
  connectionId?: string;
  /** How long to park, already clamped to the proxy's limits, ms. */
  timeoutMs: number;
  /** What the client gets on timeout, and the base of every delivered response. For a stream: its head and first bytes. */
  timeoutResponse: HeldResponse;
  /** Present for `Grip-Hold: stream` (docs/protocol.md §14): the request is streamed to, not answered once. */
  stream?: StreamHold;
  /** Subscription meta (`Grip-Set-Meta`), read by channel filters such as `skip-self`; absent when none. */
  meta?: Record<string, string>;
}

export interface HoldLimits {
  defaultHoldTimeoutMs: number;
  minHoldTimeoutMs: number;
  maxHoldTimeoutMs: number;
}

export interface UpstreamHead {
  statusCode: number;
  statusMessage?: string;
  headers: IncomingHttpHeaders;
}

/** A hold instruction the proxy cannot obey; the client gets a 502 with its `code` (`PROXY_ERR_BAD_INSTRUCTION` by default). */
export class InstructionError extends Error {
  override name = 'InstructionError';
  constructor(
    message: string,
    /** The code the client's 502 carries: a malformed instruction, or a GRIP feature this proxy refuses. */
    readonly code: ProxyErrorCode = 'PROXY_ERR_BAD_INSTRUCTION',
  ) {
    super(message);
  }
}

/** `Grip-Timeout`: non-negative decimal seconds (GRIP says integer; decimals are our extension). */
const TIMEOUT_PATTERN = /^\d+(\.\d+)?$/;
/** `Grip-Status`: three digits, then optionally a space and a reason phrase. */
const STATUS_PATTERN = /^(\d{3})(?: (.*))?$/;
/** Reason phrase characters allowed by RFC 9112 §4: HTAB, SP, VCHAR, obs-text. */
const REASON_PATTERN = /^[\t\x20-\x7e\x80-\xff]*$/;

function single(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  if (Array.isArray(value)) {
    if (value.length !== 1) throw new InstructionError(`${name} must appear once`);
    return value[0]!.trim();
  }
  return value?.trim();
}

function parseTimeoutMs(value: string | undefined, limits: HoldLimits): number {
  let ms = limits.defaultHoldTimeoutMs;
  if (value !== undefined) {
    if (!TIMEOUT_PATTERN.test(value)) {
      throw new InstructionError(`Grip-Timeout must be a non-negative number of seconds, got ${JSON.stringify(value)}`);
    }
    ms = Math.round(Number(value) * 1000);
  }
  return Math.min(limits.maxHoldTimeoutMs, Math.max(limits.minHoldTimeoutMs, ms));
}

function parseStatus(value: string): { code: number; reason?: string } {
  const match = STATUS_PATTERN.exec(value);
  const code = match ? Number(match[1]) : NaN;
  if (!match || code < 100 || code > 999) {
    throw new InstructionError(`Grip-Status must be "CODE" or "CODE REASON" with CODE 100-999, got ${JSON.stringify(value)}`);
  }
  const reason = match[2]?.trim();
  if (reason === undefined || reason === '') return { code };
  if (!REASON_PATTERN.test(reason)) throw new InstructionError('Grip-Status reason has invalid characters');
  return { code, reason };
}

/**
 * Reads a hold instruction from the app's response. Returns null when the
 * response has no `Grip-Hold` (it is passed through as is); throws
 * `InstructionError` when the instruction is malformed. Timeouts are clamped to
 * `[minHoldTimeoutMs, maxHoldTimeoutMs]`; without `Grip-Timeout` the default applies.
 */
export function parseHoldInstruction(upstream: UpstreamHead, body: Buffer, limits: HoldLimits): HoldInstruction | null {
  const { headers } = upstream;
  if (headers[GRIP_HOLD] === undefined) return null;
  const mode = single(headers, GRIP_HOLD);
  if (mode !== 'response' && mode !== 'stream') {
    throw new InstructionError(`Grip-Hold must be "response" or "stream", got ${JSON.stringify(mode)}`);
  }

  let channels: ChannelSubscription[];
  try {
    channels = parseGripChannels(headers[GRIP_CHANNEL]);
  } catch (err) {
    if (err instanceof GripChannelSyntaxError) throw new InstructionError(`Grip-Channel: ${err.message}`);
    throw err;
  }

  checkChannelFilters(channels);
  const timeoutMs = parseTimeoutMs(single(headers, GRIP_TIMEOUT), limits);
  // Validated as Pushpin does; a response hold never follows a link (Pushpin fetches `rel=next` for streams only).
  parseGripLinks(headers);

  // Grip-Expose-Headers (Pushpin): when present, the held response keeps only the headers it names.
  const exposed = parseExposeHeaders(headers);
  const kept = endToEndHeaders(headers, { dropLength: true });
  if (exposed !== null) for (const name in kept) if (!exposed.has(name)) delete kept[name];
  const timeoutResponse: HeldResponse = { code: upstream.statusCode, headers: kept, body: sharedBody(body) };
  if (upstream.statusMessage) timeoutResponse.reason = upstream.statusMessage;
  const status = single(headers, GRIP_STATUS);
  if (status !== undefined) {
    const parsed = parseStatus(status);
    timeoutResponse.code = parsed.code;
    // A Grip-Status without a reason gets the standard phrase of its code, not the held one's.
    if (parsed.reason === undefined) delete timeoutResponse.reason;
    else timeoutResponse.reason = parsed.reason;
  }

  const instruction: HoldInstruction = { channels, timeoutMs, timeoutResponse };
  if (mode === 'stream') {
    try {
      instruction.stream = parseStreamHold(headers);
    } catch (err) {
      if (err instanceof StreamInstructionError) throw new InstructionError(err.message);
      throw err;
    }
  }
  const meta = parseSetMeta(headers);
  if (meta !== null) instruction.meta = meta;
  const connectionId = single(headers, GRIP_CONNECTION_ID);
  if (connectionId !== undefined) {
    if (!isConnectionId(connectionId)) {
      throw new InstructionError(`Grip-Connection-Id must be 21 characters from A-Z a-z 0-9 _ -, got ${JSON.stringify(connectionId)}`);
    }
    instruction.connectionId = connectionId;
  }
  return instruction;
}
