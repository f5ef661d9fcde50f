import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import type { PublishItem } from '../../protocol/control-api.js';
import { HttpPublisher, PublishError } from '../../server/outbox/publisher.js';
import { startControlRecorder } from '../helpers/app-control-recorder.js';
import { defer } from '../helpers/app-harness.js';

const secret = 'publisher-secret-0123';
const item: PublishItem = {
  channel: 'room:lobby',
  id: '3',
  'prev-id': '2',
  formats: { 'http-response': { code: 200, body: '{"events":[]}' } },
};

test('publish posts {items} with the bearer secret and resolves with the control result', async (t) => {
  const control = await startControlRecorder(t);
  const publisher = new HttpPublisher({ controlUrl: `${control.url}/`, secret, timeoutMs: 2000 });
  t.after(() => publisher.close());
  const result = await publisher.publish([item, { ...item, id: '4', 'prev-id': '3' }]);
  assert.deepEqual(result, { delivered: 2, queued: 0, dropped: 0, reasked: 0 });
  assert.deepEqual(control.accepted, [
    { authorization: `Bearer ${secret}`, contentType: 'application/json', items: [item, { ...item, id: '4', 'prev-id': '3' }] },
  ]);
});

test('a non-2xx answer rejects with a PublishError carrying the status', async (t) => {
  const control = await startControlRecorder(t);
  control.status = 401;
  const publisher = new HttpPublisher({ controlUrl: control.url, secret, timeoutMs: 2000 });
  t.after(() => publisher.close());
  await assert.rejects(publisher.publish([item]), (err: PublishError) => {
    assert.equal(err.code, 'APP_ERR_PUBLISH_FAILED');
    assert.equal(err.status, 401);
    assert.match(err.message, /control API answered 401/);
    return true;
  });
});

test('a refused connection rejects with a PublishError without status', async (t) => {
  const control = await startControlRecorder(t);
  await control.down();
  const publisher = new HttpPublisher({ controlUrl: control.url, secret, timeoutMs: 2000 });
  t.after(() => publisher.close());
  await assert.rejects(publisher.publish([item]), (err: PublishError) => {
    assert.equal(err.code, 'APP_ERR_PUBLISH_FAILED');
    assert.equal(err.status, undefined);
    assert.match(err.message, /ECONNREFUSED/);
    return true;
  });
});

test('a control API that does not answer in time rejects with a timeout PublishError', async (t) => {
  const silent = http.createServer(() => {
    // Never answers.
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  defer(t, () => new Promise<void>((resolve) => {
    silent.close(() => resolve());
    silent.closeAllConnections();
  }));
  const port = (silent.address() as AddressInfo).port;
  const publisher = new HttpPublisher({ controlUrl: `http://127.0.0.1:${port}`, secret, timeoutMs: 50 });
  t.after(() => publisher.close());
  await assert.rejects(publisher.publish([item]), (err: PublishError) => err.code === 'APP_ERR_PUBLISH_FAILED' && /timed out after 50 ms/.test(err.message));
});

test('a closed publisher refuses to publish', async () => {
  const publisher = new HttpPublisher({ controlUrl: 'http://127.0.0.1:1', secret, timeoutMs: 50 });
  publisher.close();
  await assert.rejects(publisher.publish([item]), /publisher is closed/);
});
