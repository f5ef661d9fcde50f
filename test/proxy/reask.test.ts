import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { verifyGripSig } from '../../protocol/grip-sig.js';
import { jsonFormat, startHarness, TEST_SECRET, waitFor } from '../helpers/proxy-harness.js';
import { writeHold } from '../helpers/scripted-app.js';

function answerJson(res: import('node:http').ServerResponse, body: unknown): void {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** A promise the test resolves when it wants the scripted app to go on. */
function gate(): { open: () => void; opened: Promise<void> } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
}

describe('re-asking on a prev-id mismatch', { timeout: 10_000 }, () => {
  test('an item whose prev-id differs from the request prev-id re-asks the app with a fresh Grip-Sig and Grip-Last at the prev-ids it was held with', async (t) => {
    const h = await startHarness(t);
    h.app.handle = (req, res) => {
      if (req.headers['grip-last'] === undefined) writeHold(res, { channel: 'room:general; prev-id=1, room:other; prev-id=9, room:plain' });
      else answerJson(res, { events: [2, 3], from: 'reask' });
    };
    const poll = h.get('/poll?rooms=general:1');
    await h.waitParked(1);

    const published = await h.control('/publish/', {
      items: [{ channel: 'room:general', id: '3', 'prev-id': '2', formats: jsonFormat({ events: [3] }) }],
    });
    assert.deepEqual(published.json(), { delivered: 0, queued: 0, dropped: 0, reasked: 1 });

    const res = await poll;
    assert.deepEqual(res.json(), { events: [2, 3], from: 'reask' }, "the client gets the re-ask's answer");
    const reask = await h.app.waitForRequest(2);
    assert.equal(reask.method, 'GET');
    assert.equal(reask.url, '/poll?rooms=general:1');
    // The client's position, as Pushpin sends it (not the channel's last id 3); a channel held without prev-id has none.
    assert.equal(reask.headers['grip-last'], 'room:general; last-id=1, room:other; last-id=9');
    assert.equal(await verifyGripSig(reask.headers['grip-sig'] as string, TEST_SECRET), true);
    assert.ok(reask.headers['x-forwarded-for'], 'the re-ask carries the forwarding headers too');
    const stats = h.proxy.stats();
    assert.equal(stats.reasks, 1);
    assert.equal(stats.reasking, 0);
    assert.equal(stats.parked, 0);
  });

  test('a re-ask answered with another hold parks the request again', async (t) => {
    const h = await startHarness(t);
    h.app.handle = (req, res) => {
      const prev = req.headers['grip-last'] === undefined ? '1' : '3';
      writeHold(res, { channel: `room:a; prev-id=${prev}` });
    };
    const poll = h.get('/poll');
    await h.waitParked(1);
    await h.control('/publish/', { items: [{ channel: 'room:a', id: '3', 'prev-id': '2', formats: jsonFormat({ n: 3 }) }] });
    await h.app.waitForRequest(2);
    await h.waitParked(1);
    await h.control('/publish/', { items: [{ channel: 'room:a', id: '4', 'prev-id': '3', formats: jsonFormat({ n: 4 }) }] });
    assert.deepEqual((await poll).json(), { n: 4 });
  });

  test('a hint item re-asks every parked request instead of delivering', async (t) => {
    const h = await startHarness(t);
    h.app.handle = (req, res) => {
      if (req.headers['grip-last'] === undefined) writeHold(res, { channel: 'room:a; prev-id=1' });
      else answerJson(res, { hinted: true });
    };
    const poll = h.get('/poll');
    await h.waitParked(1);
    const published = await h.control('/publish/', {
      items: [{ channel: 'room:a', id: '2', formats: { 'http-response': { action: 'hint' } } }],
    });
    assert.deepEqual(published.json(), { delivered: 0, queued: 0, dropped: 0, reasked: 1 });
    assert.deepEqual((await poll).json(), { hinted: true });
    assert.equal((await h.app.waitForRequest(2)).headers['grip-last'], 'room:a; last-id=1', "the request's prev-id, not the hint's id");
  });

  test('a hint for the item the parked request already has (its prev-id) re-asks nothing', async (t) => {
    const h = await startHarness(t);
    h.app.handle = (req, res) => {
      if (req.headers['grip-last'] === undefined) writeHold(res, { channel: 'room:a; prev-id=2' });
      else answerJson(res, { hinted: true });
    };
    const poll = h.get('/poll');
    await h.waitParked(1);
    const stale = await h.control('/publish/', { items: [{ channel: 'room:a', id: '2', formats: { 'http-response': { action: 'hint' } } }] });
    assert.deepEqual(stale.json(), { delivered: 0, queued: 0, dropped: 0, reasked: 0 });
    assert.equal(h.proxy.stats().parked, 1);
    // The next one is news: re-asked.
    const fresh = await h.control('/publish/', { items: [{ channel: 'room:a', id: '3', formats: { 'http-response': { action: 'hint' } } }] });
    assert.deepEqual(fresh.json(), { delivered: 0, queued: 0, dropped: 0, reasked: 1 });
    assert.deepEqual((await poll).json(), { hinted: true });
    assert.equal(h.app.requests.length, 2);
  });

  test('past maxReasks the client gets the reask-limit resync answer', async (t) => {
    const h = await startHarness(t, { maxReasks: 1 });
    h.app.handle = (_req, res) => writeHold(res, { channel: 'room:a; prev-id=1' });
    const poll = h.get('/poll');
    await h.waitParked(1);
    await h.control('/publish/', { items: [{ channel: 'room:a', id: '3', 'prev-id': '2', formats: jsonFormat({}) }] });
    await h.app.waitForRequest(2);
    await h.waitParked(1);
    await h.control('/publish/', { items: [{ channel: 'room:a', id: '4', 'prev-id': '3', formats: jsonFormat({}) }] });
    const res = await poll;
    assert.equal(res.headers['comet-resync'], 'reask-limit');
    assert.deepEqual(res.json(), { resync: { reason: 'reask-limit', channels: ['room:a'] } });
    assert.equal(h.app.requests.length, 2);
  });

  test('a POST body is retained and sent again on the re-ask', async (t) => {
    const h = await startHarness(t);
    h.app.handle = (req, res) => {
      if (req.headers['grip-last'] === undefined) writeHold(res, { channel: 'room:a; prev-id=1' });
      else answerJson(res, { echoed: req.body.toString() });
    };
    const poll = h.get('/poll', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'cursor=1' });
    await h.waitParked(1);
    await h.control('/publish/', { items: [{ channel: 'room:a', id: '3', 'prev-id': '2', formats: jsonFormat({}) }] });
    assert.deepEqual((await poll).json(), { echoed: 'cursor=1' });
    const reask = await h.app.waitForRequest(2);
    assert.equal(reask.method, 'POST');
    assert.equal(reask.headers['content-length'], '8');
  });

  test('a body too large to retain cannot be re-asked: the client gets reask-failed', async (t) => {
    const h = await startHarness(t, { reaskBodyMaxBytes: 4 });
    h.app.handle = (_req, res) => writeHold(res, { channel: 'room:a; prev-id=1' });
    const poll = h.get('/poll', { method: 'POST', body: 'longer than four bytes' });
    await h.waitParked(1);
    await h.control('/publish/', { items: [{ channel: 'room:a', id: '3', 'prev-id': '2', formats: jsonFormat({}) }] });
    const res = await poll;
    assert.equal(res.headers['comet-resync'], 'reask-failed');
    assert.equal((await h.app.waitForRequest(1)).body.toString(), 'longer than four bytes', 'the first request still had its body');
    assert.equal(h.app.requests.length, 1);
  });

  test('a re-ask that fails on the network gives the client the reask-failed resync answer', async (t) => {
    const h = await startHarness(t);
    h.app.handle = (_req, res) => writeHold(res, { channel: 'room:a; prev-id=1' });
    const poll = h.get('/poll');
    await h.waitParked(1);
    await h.app.close(); // the app goes down while the request is parked
    await h.control('/publish/', { items: [{ channel: 'room:a', id: '3', 'prev-id': '2', formats: jsonFormat({}) }] });
    const res = await poll;
    assert.equal(res.headers['comet-resync'], 'reask-failed');
    assert.deepEqual(res.json(), { resync: { reason: 'reask-failed', channels: ['room:a'] } });
  });

  test('a client that goes away during a re-ask is forgotten and the late answer is discarded', async (t) => {
    const h = await startHarness(t);
    const answerReask = gate();
    h.app.handle = async (req, res) => {
      if (req.headers['grip-last'] === undefined) return writeHold(res, { channel: 'room:a; prev-id=1' });
      await answerReask.opened;
      if (!res.destroyed) answerJson(res, { late: true });
    };
    const abort = new AbortController();
    const poll = h.get('/poll', { signal: abort.signal });
    await h.waitParked(1);
    await h.control('/publish/', { items: [{ channel: 'room:a', id: '3', 'prev-id': '2', formats: jsonFormat({}) }] });
    await h.app.waitForRequest(2);
    assert.equal(h.proxy.stats().reasking, 1);

    abort.abort();
    await assert.rejects(poll);
    await waitFor(() => h.proxy.stats().reasking === 0, { message: 'the re-asking request to be forgotten' });
    assert.equal(h.proxy.stats().clientAborts, 1);
    answerReask.open();
    assert.equal(h.proxy.stats().parked, 0);
  });
});

describe('the race check', { timeout: 10_000 }, () => {
  test('a publish that arrives while the app is answering makes the proxy re-ask instead of parking', async (t) => {
    const h = await startHarness(t);
    const published = gate();
    h.app.handle = async (req, res) => {
      if (req.headers['grip-last'] !== undefined) return answerJson(res, { events: [2] });
      await published.opened; // the app read its state (last event 1) before the publish landed
      writeHold(res, { channel: 'room:a; prev-id=1' });
    };
    const poll = h.get('/poll');
    await h.app.waitForRequest(1);
    const result = await h.control('/publish/', { items: [{ channel: 'room:a', id: '2', 'prev-id': '1', formats: jsonFormat({ events: [2] }) }] });
    assert.deepEqual(result.json(), { delivered: 0, queued: 0, dropped: 0, reasked: 0 }, 'nothing was parked yet');
    published.open();

    assert.deepEqual((await poll).json(), { events: [2] });
    const reask = await h.app.waitForRequest(2);
    assert.equal(reask.headers['grip-last'], 'room:a; last-id=1', "the hold's prev-id, as Pushpin's re-ask of a stale hold sends it");
    assert.equal(h.proxy.stats().reasks, 1);
    assert.equal(h.proxy.stats().parked, 0);
  });

  test('a publish before the request was sent does not trigger a re-ask', async (t) => {
    const h = await startHarness(t);
    await h.control('/publish/', { items: [{ channel: 'room:a', id: '2', formats: jsonFormat({}) }] });
    h.app.handle = (_req, res) => writeHold(res, { channel: 'room:a; prev-id=2' });
    void h.get('/poll');
    await h.waitParked(1);
    assert.equal(h.proxy.stats().reasks, 0);
  });

  test('a prev-id ahead of the proxy last id parks without a re-ask', async (t) => {
    const h = await startHarness(t);
    await h.control('/publish/', { items: [{ channel: 'room:a', id: '3', formats: jsonFormat({}) }] });
    h.app.handle = (_req, res) => writeHold(res, { channel: 'room:a; prev-id=5' });
    const poll = h.get('/poll');
    await h.waitParked(1);
    assert.equal(h.proxy.stats().reasks, 0);
    assert.equal(h.app.requests.length, 1);

    // The publish that was in flight (4, then 5) is checked against the parked prev-id.
    await h.control('/publish/', { items: [{ channel: 'room:a', id: '5', 'prev-id': '4', formats: jsonFormat({ n: 5 }) }] });
    assert.equal(h.proxy.stats().parked, 1, 'item 5 is the one the client has');
    await h.control('/publish/', { items: [{ channel: 'room:a', id: '6', 'prev-id': '5', formats: jsonFormat({ n: 6 }) }] });
    assert.deepEqual((await poll).json(), { n: 6 });
  });
});
