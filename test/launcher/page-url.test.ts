/**
 * The page URL `npm start` prints (launcher/page-url.ts), in each mode: under
 * BASE_DOMAIN (where the session cookie works), a specific listen address, a
 * wildcard one (loopback), IPv6.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pageUrl } from '../../launcher/page-url.js';

test('the printed page URL is one a browser on this machine can sign in on, in every mode', () => {
  assert.equal(pageUrl({ clientHost: '127.0.0.1', clientPort: 8080, baseDomain: undefined }), 'http://127.0.0.1:8080/');
  assert.equal(pageUrl({ clientHost: '127.0.0.1', clientPort: 8080, baseDomain: 'chat.test' }), 'http://chat.test:8080/');
  assert.equal(pageUrl({ clientHost: '0.0.0.0', clientPort: 80, baseDomain: 'chat.example.com' }), 'http://chat.example.com:80/');
  assert.equal(pageUrl({ clientHost: '0.0.0.0', clientPort: 8080, baseDomain: undefined }), 'http://localhost:8080/');
  assert.equal(pageUrl({ clientHost: '::', clientPort: 8080, baseDomain: undefined }), 'http://localhost:8080/');
  assert.equal(pageUrl({ clientHost: '::1', clientPort: 8080, baseDomain: undefined }), 'http://[::1]:8080/');
  assert.equal(pageUrl({ clientHost: '192.0.2.7', clientPort: 9000, baseDomain: undefined }), 'http://192.0.2.7:9000/');
});
