import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hostName, isAcceptedHost } from '../../proxy/forward/host-filter.js';

test('the host name drops the port, IPv6 brackets and a trailing dot, and is lower-cased', () => {
  assert.equal(hostName('Chat.Test:8080'), 'chat.test');
  assert.equal(hostName('c1.chat.test.'), 'c1.chat.test');
  assert.equal(hostName('[::1]:8080'), '::1');
  assert.equal(hostName(undefined), '');
});

test('with a base domain only it and its subdomains are accepted', () => {
  for (const ok of ['chat.test', 'chat.test:8080', 'c1.chat.test:8080', 'WWW.CHAT.TEST']) {
    assert.equal(isAcceptedHost(ok, 'chat.test'), true, ok);
  }
  for (const bad of ['evilchat.test', 'chat.test.evil.example', '127.0.0.1:8080', '', undefined]) {
    assert.equal(isAcceptedHost(bad, 'chat.test'), false, String(bad));
  }
});

test('without a base domain every host is accepted', () => {
  assert.equal(isAcceptedHost('127.0.0.1:1234', undefined), true);
  assert.equal(isAcceptedHost(undefined, undefined), true);
});
