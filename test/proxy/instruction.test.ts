import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { describe, test } from 'node:test';
import { InstructionError, parseHoldInstruction, type HoldLimits } from '../../proxy/forward/instruction.js';

const LIMITS: HoldLimits = { defaultHoldTimeoutMs: 55_000, minHoldTimeoutMs: 1_000, maxHoldTimeoutMs: 300_000 };
const CID = 'V1StGXR8_Z5jdHi6B-myT';

function parse(headers: IncomingHttpHeaders, body = '{"events":[]}', statusCode = 200, statusMessage = 'OK') {
  return parseHoldInstruction({ statusCode, statusMessage, headers }, Buffer.from(body), LIMITS);
}

describe('parseHoldInstruction', () => {
  test('a response without Grip-Hold is not an instruction', () => {
    assert.equal(parse({ 'content-type': 'text/plain' }), null);
  });

  test('reads every hold header into the instruction', () => {
    const instruction = parse({
      'grip-hold': 'response',
      'grip-channel': 'room:general; prev-id=42',
      'grip-timeout': '20',
      'grip-status': '202 Held Back',
      'grip-connection-id': CID,
      'content-type': 'application/json',
      'comet-connection-id': CID,
    });
    assert.deepEqual(instruction, {
      channels: [{ name: 'room:general', prevId: '42' }],
      connectionId: CID,
      timeoutMs: 20_000,
      timeoutResponse: {
        code: 202,
        reason: 'Held Back',
        headers: { 'content-type': 'application/json', 'comet-connection-id': CID },
        body: Buffer.from('{"events":[]}'),
      },
    });
  });

  test('the held response keeps its own status and reason without Grip-Status', () => {
    const instruction = parse({ 'grip-hold': 'response' }, 'nothing yet', 299, 'Custom');
    assert.equal(instruction?.timeoutResponse.code, 299);
    assert.equal(instruction?.timeoutResponse.reason, 'Custom');
    assert.equal(instruction?.timeoutResponse.body.toString(), 'nothing yet');
  });

  test('Grip-Status without a reason drops the held reason so the standard phrase applies', () => {
    const instruction = parse({ 'grip-hold': 'response', 'grip-status': '304' }, '', 200, 'Fine');
    assert.equal(instruction?.timeoutResponse.code, 304);
    assert.equal(instruction?.timeoutResponse.reason, undefined);
  });

  test('channels come from repeated headers and comma-separated lists', () => {
    const instruction = parse({
      'grip-hold': 'response',
      'grip-channel': ['room:a; prev-id=1, room:b', 'room:c; prev-id=3'],
    });
    assert.deepEqual(instruction?.channels, [
      { name: 'room:a', prevId: '1' },
      { name: 'room:b' },
      { name: 'room:c', prevId: '3' },
    ]);
  });

  test('a quoted prev-id is unquoted, filters are kept, and unknown channel parameters are ignored', () => {
    const instruction = parse({ 'grip-hold': 'response', 'grip-channel': 'news; filter=skip-self; mystery=1; prev-id="a:b/7"' });
    assert.deepEqual(instruction?.channels, [{ name: 'news', prevId: 'a:b/7', filters: ['skip-self'] }]);
  });

  test('an instruction may name neither channels nor a connection ID', () => {
    const instruction = parse({ 'grip-hold': 'response' });
    assert.deepEqual(instruction?.channels, []);
    assert.equal(instruction?.connectionId, undefined);
  });

  test('without Grip-Timeout the default applies', () => {
    assert.equal(parse({ 'grip-hold': 'response' })?.timeoutMs, 55_000);
  });

  test('Grip-Timeout accepts decimal seconds and is clamped to the limits', () => {
    assert.equal(parse({ 'grip-hold': 'response', 'grip-timeout': '2.5' })?.timeoutMs, 2_500);
    assert.equal(parse({ 'grip-hold': 'response', 'grip-timeout': '0' })?.timeoutMs, 1_000);
    assert.equal(parse({ 'grip-hold': 'response', 'grip-timeout': '99999' })?.timeoutMs, 300_000);
  });

  test('the held headers lose Grip-*, framing and hop-by-hop headers', () => {
    const instruction = parse({
      'grip-hold': 'response',
      'grip-channel': 'x',
      'grip-future-thing': 'y',
      'content-length': '13',
      'transfer-encoding': 'chunked',
      connection: 'keep-alive, x-conn-only',
      'keep-alive': 'timeout=5',
      'x-conn-only': '1',
      'set-cookie': ['a=1', 'b=2'],
      'cache-control': 'no-store',
    });
    assert.deepEqual(instruction?.timeoutResponse.headers, { 'set-cookie': ['a=1', 'b=2'], 'cache-control': 'no-store' });
  });

  test('Grip-Hold: stream reads Grip-Keep-Alive as Pushpin does (cstring, base64, raw; idle by default, 55 s by default) and Grip-Stream-Resync', () => {
    const cstring = parse({ 'grip-hold': 'stream', 'grip-channel': 'a', 'grip-keep-alive': ':\\x20ka\\n\\n; format=cstring; timeout=20', 'grip-stream-resync': 'event: resync\\n\\n; format=cstring' });
    assert.deepEqual(cstring?.stream, {
      keepAlive: { data: Buffer.from(': ka\n\n'), intervalMs: 20_000, mode: 'idle' },
      resync: Buffer.from('event: resync\n\n'),
    });
    const base64 = parse({ 'grip-hold': 'stream', 'grip-keep-alive': `${Buffer.from('\n').toString('base64')}; format=base64; mode=interval` });
    assert.deepEqual(base64?.stream, { keepAlive: { data: Buffer.from('\n'), intervalMs: 55_000, mode: 'interval' } });
    assert.deepEqual(parse({ 'grip-hold': 'stream', 'grip-keep-alive': 'ping; timeout=1' })?.stream?.keepAlive?.data, Buffer.from('ping'));
    assert.deepEqual(parse({ 'grip-hold': 'stream' })?.stream, {});
    assert.equal(parse({ 'grip-hold': 'response', 'grip-keep-alive': 'x' })?.stream, undefined, 'a response hold ignores it');
  });

  const bad: Array<[string, IncomingHttpHeaders, RegExp]> = [
    ['Grip-Hold other than response or stream', { 'grip-hold': 'websocket' }, /Grip-Hold must be "response" or "stream"/],
    ['an empty channel name', { 'grip-hold': 'response', 'grip-channel': '; prev-id=1' }, /Grip-Channel: invalid channel name/],
    ['a channel named twice', { 'grip-hold': 'response', 'grip-channel': 'a, a' }, /named twice/],
    ['an invalid prev-id', { 'grip-hold': 'response', 'grip-channel': 'a; prev-id=' }, /invalid prev-id/],
    ['a channel name with spaces', { 'grip-hold': 'response', 'grip-channel': 'room general' }, /invalid channel name/],
    ['an unterminated quote', { 'grip-hold': 'response', 'grip-channel': 'a; prev-id="1' }, /unterminated/],
    ['a negative Grip-Timeout', { 'grip-hold': 'response', 'grip-timeout': '-1' }, /Grip-Timeout/],
    ['a non-numeric Grip-Timeout', { 'grip-hold': 'response', 'grip-timeout': 'NaN' }, /Grip-Timeout/],
    ['an empty Grip-Timeout', { 'grip-hold': 'response', 'grip-timeout': '' }, /Grip-Timeout/],
    ['two Grip-Timeout values', { 'grip-hold': 'response', 'grip-timeout': '5, 6' }, /Grip-Timeout/],
    ['a Grip-Status below 100', { 'grip-hold': 'response', 'grip-status': '099' }, /Grip-Status/],
    ['a Grip-Status that is not a number', { 'grip-hold': 'response', 'grip-status': 'OK' }, /Grip-Status/],
    ['a Grip-Status of four digits', { 'grip-hold': 'response', 'grip-status': '2000' }, /Grip-Status/],
    ['a Grip-Status reason with control characters', { 'grip-hold': 'response', 'grip-status': '200 a\u0001b' }, /reason/],
    ['an invalid Grip-Connection-Id', { 'grip-hold': 'response', 'grip-connection-id': 'short' }, /Grip-Connection-Id/],
    ['an empty Grip-Keep-Alive', { 'grip-hold': 'stream', 'grip-keep-alive': '; timeout=5' }, /Grip-Keep-Alive cannot be empty/],
    ['an unknown cstring escape in Grip-Keep-Alive', { 'grip-hold': 'stream', 'grip-keep-alive': '\\t; format=cstring' }, /not valid cstring/],
    ['a dangling \\x in Grip-Keep-Alive', { 'grip-hold': 'stream', 'grip-keep-alive': 'a\\x4; format=cstring' }, /not valid cstring/],
    ['a Grip-Keep-Alive timeout of 0', { 'grip-hold': 'stream', 'grip-keep-alive': 'x; timeout=0' }, /timeout must be whole seconds/],
    ['a Grip-Keep-Alive mode other than idle or interval', { 'grip-hold': 'stream', 'grip-keep-alive': 'x; mode=burst' }, /mode must be idle or interval/],
    ['a Grip-Keep-Alive format other than raw, cstring, base64', { 'grip-hold': 'stream', 'grip-keep-alive': 'x; format=hex' }, /format must be raw, cstring or base64/],
    ['Grip-Stream-Resync data that is not base64', { 'grip-hold': 'stream', 'grip-stream-resync': '*; format=base64' }, /Grip-Stream-Resync data is not valid base64/],
  ];
  for (const [what, headers, message] of bad) {
    test(`${what} is a bad instruction`, () => {
      assert.throws(() => parse(headers), (err: unknown) => err instanceof InstructionError && message.test(err.message));
    });
  }
});
