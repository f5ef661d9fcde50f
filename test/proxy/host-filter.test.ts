import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clientHostEntries, createHostFilter, isHostPattern } from '../../proxy/http/host-filter.js';
import { parseHost, type ParsedHost } from '../../proxy/http/host-syntax.js';

function host(text: string): ParsedHost {
  const parsed = parseHost(text);
  assert.ok('host' in parsed, `${text}: ${'error' in parsed ? parsed.error : ''}`);
  return parsed.host;
}

test('a Host parses into a lower-case name without trailing dot, its kind and its port', () => {
  assert.deepEqual(host('Chat.Test:8080'), { name: 'chat.test', kind: 'reg-name', port: 8080 });
  assert.deepEqual(host('c1.chat.test.'), { name: 'c1.chat.test', kind: 'reg-name', port: undefined });
  assert.deepEqual(host('127.0.0.1'), { name: '127.0.0.1', kind: 'ipv4', port: undefined });
  assert.deepEqual(host('[::1]:8080'), { name: '::1', kind: 'ipv6', port: 8080 });
  assert.deepEqual(host('[2001:DB8:0:0::1]'), { name: '2001:db8::1', kind: 'ipv6', port: undefined }, 'IPv6 in its canonical form');
  assert.deepEqual(host('my_host~1'), { name: 'my_host~1', kind: 'reg-name', port: undefined }, 'every unreserved character');
  assert.deepEqual(host('127.000.0.1'), { name: '127.000.0.1', kind: 'reg-name', port: undefined }, 'not an RFC 3986 IPv4address');
  assert.deepEqual(host('localhost:0'), { name: 'localhost', kind: 'reg-name', port: 0 });
});

test('anything but RFC 3986 host[:port] with an unreserved reg-name is refused with a reason', () => {
  const bad = ['', ' ', 'a@evil', 'chat.test:80@evil.example', 'evil.example#.chat.test', 'a b', 'a,b', 'a;b', "a'b", 'a%41', 'a/b', 'a?b', 'a\\b',
    'localhost:', 'localhost:65536', 'localhost:+1', 'localhost:1:2', ':80', '::1', '[::1', '[::1]:', '[::1]x', '[v1.x]', '[fe80::1%25eth0]', '[127.0.0.1]', 'é.test', 'a'.repeat(254), 'x:00000080'];
  for (const text of bad) {
    const parsed = parseHost(text);
    assert.ok('error' in parsed && parsed.error.length > 0, JSON.stringify(text));
  }
  assert.ok('host' in parseHost(`${'a'.repeat(253)}.`), 'a 253-character name with its trailing dot');
});

test('host patterns are names, *.suffix, IPv4, [IPv6] or *', () => {
  for (const ok of ['chat.test', 'localhost', '*.chat.test', '10.0.0.1', '[::1]', '[2001:db8::1]', '*', 'Chat.Test']) assert.equal(isHostPattern(ok), true, ok);
  for (const bad of ['', 'chat.test:8080', '*chat.test', '*.', 'a.*.test', 'a@b', 'http://chat.test', '::1', '[::1]:80', '**', ' chat.test']) {
    assert.equal(isHostPattern(bad), false, bad);
  }
});

test('loopback names are always served; other names only when an entry serves them', () => {
  const serves = createHostFilter([], { ipAddresses: false });
  for (const ok of ['localhost', 'a.b.localhost', '127.0.0.1', '127.255.0.9', '[::1]', '[::ffff:127.0.0.1]']) assert.equal(serves(host(ok)), true, ok);
  for (const bad of ['localhost.test', 'mylocalhost', '128.0.0.1', '[::2]', '10.0.0.1', 'evil.example', '2130706433']) assert.equal(serves(host(bad)), false, bad);
});

test('exact names, *.suffix (subdomains only), IP addresses and * each serve what they say', () => {
  const serves = createHostFilter(['Chat.Example.com', '*.shard.example.com', '192.0.2.1', '[2001:db8::1]'], { ipAddresses: false });
  for (const ok of ['chat.example.com', 'CHAT.example.com.', 'c1.shard.example.com', 'a.b.shard.example.com', '192.0.2.1', '[2001:db8:0::1]']) assert.equal(serves(host(ok)), true, ok);
  for (const bad of ['example.com', 'shard.example.com', 'xshard.example.com', 'x.chat.example.com', '192.0.2.2', '[2001:db8::2]']) assert.equal(serves(host(bad)), false, bad);
  const any = createHostFilter(['*'], { ipAddresses: false });
  assert.equal(any(host('anything.example')), true);
});

test('with ipAddresses every IP literal is served, never a name', () => {
  const serves = createHostFilter([], { ipAddresses: true });
  assert.equal(serves(host('10.1.2.3')), true);
  assert.equal(serves(host('[2001:db8::5]')), true);
  assert.equal(serves(host('rebind.evil.example')), false);
});

test('the client port serves allowedHosts, the base domain and its subdomains, and a concrete listen address', () => {
  assert.deepEqual(clientHostEntries({ allowedHosts: ['a.test'], baseDomain: 'chat.test', clientHost: '10.0.0.1' }), ['a.test', 'chat.test', '*.chat.test', '10.0.0.1']);
  assert.deepEqual(clientHostEntries({ allowedHosts: [], baseDomain: undefined, clientHost: '0.0.0.0' }), [], 'a wildcard address names nothing');
  assert.deepEqual(clientHostEntries({ allowedHosts: [], baseDomain: undefined, clientHost: '::' }), []);
  assert.deepEqual(clientHostEntries({ allowedHosts: [], baseDomain: undefined, clientHost: '::1' }), ['[::1]']);
  assert.deepEqual(clientHostEntries({ allowedHosts: [], baseDomain: undefined, clientHost: 'localhost' }), ['localhost']);
  const serves = createHostFilter(clientHostEntries({ allowedHosts: [], baseDomain: 'chat.test', clientHost: '10.0.0.1' }), { ipAddresses: false });
  for (const ok of ['chat.test', 'c1.chat.test', '10.0.0.1', '127.0.0.1']) assert.equal(serves(host(ok)), true, ok);
  for (const bad of ['evilchat.test', 'chat.test.evil.example', '10.0.0.2']) assert.equal(serves(host(bad)), false, bad);
});
