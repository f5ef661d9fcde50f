import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseGripChannels } from '../../protocol/grip-channel.js';
import { buildHold } from '../../server/grip/hold.js';

test('a hold names every room channel with its last event id as prev-id, the timeout and the connection ID', () => {
  const hold = buildHold({
    rooms: [
      { room: 'general', lastEventId: 42 },
      { room: 'new-room', lastEventId: 0 },
    ],
    connectionId: 'V1StGXR8_Z5jdHi6B-myT',
    timeoutS: 55,
  });
  assert.deepEqual(hold.headers, {
    'grip-hold': 'response',
    'grip-channel': 'room:general; prev-id=42, room:new-room; prev-id=0',
    'grip-timeout': '55',
    'grip-connection-id': 'V1StGXR8_Z5jdHi6B-myT',
  });
  assert.deepEqual(hold.body, { events: [], connectionId: 'V1StGXR8_Z5jdHi6B-myT' });
});

test("a hold's Grip-Channel parses back with the shared protocol parser", () => {
  const hold = buildHold({ rooms: [{ room: 'a_b-c', lastEventId: 7 }], connectionId: 'V1StGXR8_Z5jdHi6B-myT', timeoutS: 1.5 });
  assert.deepEqual(parseGripChannels(hold.headers['grip-channel']), [{ name: 'room:a_b-c', prevId: '7' }]);
  assert.equal(hold.headers['grip-timeout'], '1.5');
});
