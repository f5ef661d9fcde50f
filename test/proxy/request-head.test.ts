/**
 * The client front's head parser (proxy/http/front/request-head.ts), read on indexes into the receive buffer,
 * against the string-slicing parser it replaced (test/helpers/reference-request-head.ts) on many generated heads,
 * and against node:http's own parser on those it accepts: a head the front frames must read as the same request
 * both ways; a head it calls odd goes to Node, which decides.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import { connect } from 'node:net';
import { test } from 'node:test';
import { parseRequestHead, type RequestHead } from '../../proxy/http/front/request-head.js';
import { referenceParseRequestHead } from '../helpers/reference-request-head.js';
import { prng as seeded } from '../../bench/lib/prng.js';

/** Each part of a head: usual choices, and tricky ones taken now and then. */
interface Choices {
  usual: readonly string[];
  tricky: readonly string[];
}
const METHODS: Choices = { usual: ['GET', 'GET', 'GET', 'HEAD', 'POST', 'DELETE', 'OPTIONS'], tricky: ['get', 'FOO', 'G@T', 'CONNECT', '', 'M-SEARCH'] };
const TARGETS: Choices = {
  usual: ['/', '/poll?cid=c1&c=room:0:5', '/poll?cid=c%201&c=room%3A0%3A5', '/a%20b', '/#frag', `/${'a'.repeat(3000)}`, "/~!$&'()*+,;=:@", '/a"b<c>{|}\\^`'],
  tricky: ['/a b', '/\u00e4', '*', 'http://h/x', '/x\ty', ''],
};
const VERSIONS: Choices = { usual: ['HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0'], tricky: ['HTTP/2.0', 'http/1.1', 'HTTP/1.1x', 'HTTP/1', 'HTTP/1.2', 'HTTP/1.1 '] };
const NAMES: Choices = {
  usual: [
    'Host', 'host', 'HOST', 'hOsT', 'Cookie', 'cookie', 'Connection', 'connection', 'CONNECTION', 'User-Agent', 'user-agent', 'Accept',
    'X-Request-Id', 'x-request-id', 'X-Custom', 'x_custom', 'X-Forwarded-For', 'Content-Length', 'content-length', 'Keep-Alive', 'TE',
    'Sec-Fetch-Mode', 'a', 'Z', '1-2', "!#$%&'*+-.^_`|~", 'Priority', 'DNT', 'dnt', 'Accept-Encodinh', 'X-Requested-With', 'Grip-Sig',
  ],
  tricky: ['Transfer-Encoding', 'Upgrade', 'Expect', 'constructor', '__proto__', 'toString', '', ' Host', 'Ho st', 'Host ', 'Ho(st', 'H\u00e9', 'Ho\tst', 'Host\r', '\tX', 'X\n'],
};
const VALUES: Choices = {
  usual: ['', 'v', ' spaced ', '\tx\t', '  ', 'a b', 'a\tb', 'caf\u00e9', 'a\u00a0b', 'sid=s1', '127.0.0.1:8080', 'x'.repeat(2000), '"quoted"', '(){}<>@,;:\\/[]?=', '\u00ff\u0080'],
  tricky: ['\u00a0a', 'a\u00a0', ' \u00a0', 'x\u000by', 'x\u000b', '\u000cx', 'x\u0000', 'x\u007f', 'a\rb', 'a\nb', 'a\n', 'a\r'],
};
const CONNECTION_VALUES: Choices = {
  usual: [
    'keep-alive', 'close', 'Keep-Alive', 'CLOSE', ' keep-alive ', 'keep-alive, close', 'close,keep-alive', 'upgrade', 'close;q=1', 'foo, keep-alive',
    '', ',', 'te, close', 'keep-alive,,close', 'kEeP-aLiVe', ' , close', 'foo ,close', 'keep-alive ,x', 'closed', 'keep-alive-ish', 'close x', 'x-custom, keep-alive', 'cookie',
  ],
  tricky: ['keep-alive,\u00a0close', 'close\u00e9', '\tclose\t', 'close\t,x', 'x\t, close', 'foo,\tclose'],
};
const LENGTHS: Choices = { usual: ['0', '0', '5', '012345678901234', ' 7 ', '00'], tricky: ['', 'abc', '0123456789012345', '+5', '5,5', '-1', '1e3'] };
const SEPARATORS: Choices = { usual: [': ', ': ', ': ', ':', ':  ', ':\t', ': \t '], tricky: [' : ', ' :'] };
const EOLS: Choices = { usual: ['\r\n'], tricky: ['\n', '\r', '\r\r\n', ' \r\n'] };

/** One generated head (without its blank line): mostly well-formed, with the tricky parts mixed in. */
function generateHead(random: () => number): string {
  const pick = ({ usual, tricky }: Choices): string => {
    const list = random() < 0.03 ? tricky : usual;
    return list[Math.floor(random() * list.length)]!;
  };
  const sp = random() < 0.02 ? ['  ', '\t', ''][Math.floor(random() * 3)]! : ' ';
  let head = `${pick(METHODS)}${sp}${pick(TARGETS)} ${pick(VERSIONS)}`;
  const lines = Math.floor(random() * 7);
  for (let i = 0; i < lines; i++) {
    if (random() < 0.01) {
      head += `${pick(EOLS)} obs-folded`;
      continue;
    }
    const name = pick(NAMES);
    const lower = name.toLowerCase();
    const value =
      lower === 'connection' ? pick(CONNECTION_VALUES) : lower === 'content-length' ? pick(LENGTHS) : lower === 'host' && random() < 0.7 ? '127.0.0.1:8080' : pick(VALUES);
    head += `${pick(EOLS)}${name}${pick(SEPARATORS)}${value}`;
  }
  return head;
}

/**
 * Heads the reference parser accepted and the new one calls odd on purpose, as Node does not read them as the
 * reference did: JavaScript's trim took VT, FF, CR, LF and NO-BREAK SPACE off a value's edges (Node refuses the
 * first four and keeps the last), and read `Connection` tokens after trimming HTAB and non-ASCII spaces off them
 * (Node does not see `close` in `close<HTAB>`), and closed an HTTP/1.0 connection whose `Connection` names both
 * `close` and `keep-alive` (Node keeps it).
 */
function stricterOnPurpose(text: string): boolean {
  // HTTP/1.0 with both `close` and `keep-alive`: llhttp keeps the connection, the reference closed it.
  const connection = /\r\nconnection:([^\r]*)/i.exec(text)?.[1]?.split(',').map((token) => token.trim().toLowerCase());
  if (/ HTTP\/1\.0(\r\n|$)/.test(text) && connection?.includes('close') && connection.includes('keep-alive')) return true;
  return text
    .split('\r\n')
    .slice(1)
    .some((line) => {
      const colon = line.indexOf(':');
      const value = line.slice(colon + 1);
      if (/[\v\f\r\n]/.test(value) || /^[ \t]*\u00a0|\u00a0[ \t]*$/.test(value)) return true;
      return line.slice(0, colon).toLowerCase() === 'connection' && /[\t\u0080-\u00ff]/.test(value);
    });
}

/** The head as the front sees it: the bytes of the head, its blank line and whatever the client sent next. */
function framed(text: string): { buf: Buffer; end: number } {
  return { buf: Buffer.from(`${text}\r\n\r\nGET /next HTTP/1.1\r\n`, 'latin1'), end: Buffer.byteLength(text, 'latin1') };
}

/** Generated heads that are framed as one head (no blank line inside), each once. */
function generatedHeads(count: number, seed: number): string[] {
  const random = seeded(seed);
  const heads = new Set<string>();
  for (let tries = 0; heads.size < count && tries < count * 4; tries++) {
    const text = generateHead(random);
    if (!text.includes('\r\n\r\n') && !text.endsWith('\r\n')) heads.add(text);
  }
  return [...heads];
}

test('on 20,000 generated heads the parser reads every head it accepts as the reference parser did, and refuses only what it refuses on purpose', () => {
  let accepted = 0;
  let refusedOnPurpose = 0;
  let previous: RequestHead | null = null;
  for (const text of generatedHeads(20_000, 15)) {
    const { buf, end } = framed(text);
    const got = parseRequestHead(buf, end);
    const want = referenceParseRequestHead(text);
    if (got !== null) {
      accepted++;
      assert.deepEqual(got, want, `head ${JSON.stringify(text.slice(0, 300))}`);
      // Value strings taken from the connection's previous request never change what is read.
      assert.deepEqual(parseRequestHead(buf, end, got.rawHeaders), got);
      if (previous !== null) assert.deepEqual(parseRequestHead(buf, end, previous.rawHeaders), got);
      previous = got;
    } else if (want !== null) {
      refusedOnPurpose++;
      assert.ok(stricterOnPurpose(text), `refused a head the reference accepted: ${JSON.stringify(text.slice(0, 300))}`);
    }
  }
  // The generator must reach both sides, or the comparison proves little.
  assert.ok(accepted > 5000, `accepted ${accepted}`);
  assert.ok(refusedOnPurpose > 100, `refused on purpose ${refusedOnPurpose}`);
});

test('hand-picked heads: the common case, shared name strings in any case, and the odd ones', () => {
  const parse = (text: string) => {
    const { buf, end } = framed(text);
    return parseRequestHead(buf, end);
  };
  assert.deepEqual(parse('GET /poll?cid=c1&c=room:0:5 HTTP/1.1\r\ncookie: sid=s1\r\nHost: 127.0.0.1:8080\r\nConnection: keep-alive'), {
    method: 'GET',
    url: '/poll?cid=c1&c=room:0:5',
    httpVersion: '1.1',
    headers: { cookie: 'sid=s1', host: '127.0.0.1:8080', connection: 'keep-alive' },
    rawHeaders: ['cookie', 'sid=s1', 'Host', '127.0.0.1:8080', 'Connection', 'keep-alive'],
    contentLength: 0,
    keepAlive: true,
  });
  assert.deepEqual(parse('GET / HTTP/1.0\r\nhOsT: h\r\nCONNECTION: Keep-Alive')?.rawHeaders, ['hOsT', 'h', 'CONNECTION', 'Keep-Alive']);
  assert.equal(parse('GET / HTTP/1.0\r\nConnection: Keep-Alive')?.keepAlive, true);
  assert.equal(parse('GET / HTTP/1.0')?.keepAlive, false);
  assert.equal(parse('GET / HTTP/1.1\r\nConnection: keep-alive, close')?.keepAlive, false);
  assert.equal(parse('POST /x HTTP/1.1\r\nContent-Length: 12')?.contentLength, 12);
  for (const odd of [
    'GET / HTTP/1.1\r\nHost: a\r\nHost: b', // repeated
    'GET / HTTP/1.1\r\nHost: a\r\n folded', // obs-fold
    'GET / HTTP/1.1\r\nTransfer-Encoding: chunked',
    'GET / HTTP/1.1\r\nHost: a\nX: b', // bare LF
    'GET / HTTP/1.1\r\nX: a\r', // bare CR before the blank line
    'GET / HTTP/1.1\r\nX: \u00a0a', // NO-BREAK SPACE at a value's edge
    'GET / HTTP/1.1\r\nX: a\u000b', // VT
    'GET / HTTP/1.1\r\nConnection: keep-alive,\u00a0close',
    'GET / HTTP/1.1\r\nConnection: close\t', // Node keeps this connection alive, JavaScript's trim closed it
    'GET / HTTP/1.1\r\nconstructor: x',
    'CONNECT h:443 HTTP/1.1',
    'GET http://h/ HTTP/1.1',
    'GET  / HTTP/1.1',
    'GET / HTTP/1.1\r\nContent-Length: 1234567890123456',
  ]) {
    assert.equal(parse(odd), null, JSON.stringify(odd));
  }
});

interface NodeRead {
  method: string | undefined;
  url: string | undefined;
  httpVersion: string;
  headers: Record<string, unknown>;
  rawHeaders: string[];
  keepAlive: boolean;
}

test('on the generated heads it accepts, node:http reads the same method, target, version, headers and keep-alive', { timeout: 120_000 }, async (t) => {
  let read: (value: NodeRead | Error) => void = () => {};
  const server = http.createServer({ maxHeaderSize: 65_536, requireHostHeader: false }, (req, res) => {
    read({ method: req.method, url: req.url, httpVersion: req.httpVersion, headers: { ...req.headers }, rawHeaders: req.rawHeaders, keepAlive: res.shouldKeepAlive });
    // The head is what is compared: no body is sent or awaited.
    req.socket.destroy();
  });
  server.on('clientError', (err: Error, socket) => {
    read(err);
    socket.destroy();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const { port } = server.address() as { port: number };

  const heads = generatedHeads(20_000, 15)
    .map((text) => ({ text, head: parseRequestHead(framed(text).buf, framed(text).end) }))
    .filter((h): h is { text: string; head: RequestHead } => h.head !== null)
    .slice(0, 1000);
  assert.equal(heads.length, 1000);
  const refusedByNode: string[] = [];
  for (const { text, head } of heads) {
    const socket = connect(port, '127.0.0.1');
    // node:http either hands the request to the handler (`read`) or answers 400 and closes: whichever comes first.
    const node = await new Promise<NodeRead | Error>((resolve) => {
      read = resolve;
      socket.on('close', () => resolve(new Error('closed without a request')));
      socket.on('error', () => {});
      socket.end(Buffer.from(`${text}\r\n\r\n`, 'latin1'));
    });
    socket.destroy();
    if (node instanceof Error) {
      refusedByNode.push(`${node.message}: ${JSON.stringify(text.slice(0, 200))}`);
      continue;
    }
    const label = JSON.stringify(text.slice(0, 300));
    assert.equal(node.method, head.method, label);
    assert.equal(node.url, head.url, label);
    assert.equal(node.httpVersion, head.httpVersion, label);
    assert.deepEqual(node.headers, head.headers, label);
    assert.deepEqual(node.rawHeaders, head.rawHeaders, label);
    assert.equal(node.keepAlive, head.keepAlive, label);
  }
  // Node refuses methods it does not know (the front serves GET alone and hands any other method to Node).
  assert.deepEqual(
    refusedByNode.filter((line) => !/^Parse Error: Invalid method/.test(line)),
    [],
  );
});
