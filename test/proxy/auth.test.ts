import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { signGripSig } from '../../protocol/grip-sig.js';
import { createControlAuth } from '../../proxy/control/auth.js';

const SECRET = 'control-secret-0123456789';

describe('createControlAuth', () => {
  const check = createControlAuth(SECRET);

  test('accepts the secret as a Bearer token, whatever the scheme case', async () => {
    assert.equal(await check(`Bearer ${SECRET}`), true);
    assert.equal(await check(`bearer ${SECRET}`), true);
  });

  test('accepts an unexpired JWT signed with the secret', async () => {
    assert.equal(await check(`Bearer ${await signGripSig(SECRET)}`), true);
  });

  test('refuses anything else', async () => {
    const refused = [
      undefined,
      '',
      SECRET,
      `Basic ${SECRET}`,
      'Bearer ',
      `Bearer ${SECRET.slice(0, -1)}`,
      `Bearer ${SECRET} extra`,
      `Bearer ${await signGripSig('other-secret-0123456789')}`,
      `Bearer ${await signGripSig(SECRET, Date.now() - 10_000_000, 60)}`,
    ];
    for (const header of refused) assert.equal(await check(header), false, String(header));
  });
});
