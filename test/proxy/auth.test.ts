import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SignJWT, type JWTPayload } from 'jose';
import { signGripSig } from '../../protocol/grip-sig.js';
import { CONTROL_TOKEN_CLOCK_SKEW_S, createControlAuth } from '../../proxy/control/auth.js';

const SECRET = 'control-secret-0123456789';
const GRIP_KEY = 'grip-sig-key-0123456789';
const ISSUER = 'my-publisher';
const AUDIENCE = 'my-control';
/** A fixed wall clock: 2030-01-01T00:00:00Z, in ms. */
const NOW_MS = Date.UTC(2030, 0, 1);
const NOW_S = NOW_MS / 1000;
const HOUR_S = 3600;

const check = createControlAuth({ secret: SECRET, issuer: ISSUER, audience: AUDIENCE, maxLifetimeMs: HOUR_S * 1000, now: () => NOW_MS });

function jwt(claims: JWTPayload, key = SECRET): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(key));
}

async function accepts(claims: JWTPayload): Promise<boolean> {
  return check(`Bearer ${await jwt(claims)}`);
}

describe('createControlAuth', () => {
  test('accepts the control secret as a Bearer token, whatever the scheme case', async () => {
    assert.equal(await check(`Bearer ${SECRET}`), true);
    assert.equal(await check(`bearer ${SECRET}`), true);
  });

  test('accepts a control JWT: the issuer, exp within the lifetime, an optional matching audience', async () => {
    assert.equal(await accepts({ iss: ISSUER, exp: NOW_S + HOUR_S }), true);
    assert.equal(await accepts({ iss: ISSUER, aud: AUDIENCE, exp: NOW_S + 60 }), true);
    assert.equal(await accepts({ iss: ISSUER, aud: ['other', AUDIENCE], iat: NOW_S, nbf: NOW_S, exp: NOW_S + 60 }), true);
  });

  test('the lifetime cap allows the clock skew and not a second more', async () => {
    assert.equal(await accepts({ iss: ISSUER, exp: NOW_S + HOUR_S + CONTROL_TOKEN_CLOCK_SKEW_S }), true);
    assert.equal(await accepts({ iss: ISSUER, exp: NOW_S + HOUR_S + CONTROL_TOKEN_CLOCK_SKEW_S + 1 }), false);
    assert.equal(await accepts({ iss: ISSUER, iat: NOW_S - 10, exp: NOW_S - 10 + HOUR_S }), true);
    assert.equal(await accepts({ iss: ISSUER, iat: NOW_S - 10, exp: NOW_S - 9 + HOUR_S }), false, 'exp - iat over the lifetime');
  });

  test('exp, nbf and iat are honoured within the clock skew', async () => {
    assert.equal(await accepts({ iss: ISSUER, exp: NOW_S - CONTROL_TOKEN_CLOCK_SKEW_S + 1 }), true);
    assert.equal(await accepts({ iss: ISSUER, exp: NOW_S - CONTROL_TOKEN_CLOCK_SKEW_S - 1 }), false);
    assert.equal(await accepts({ iss: ISSUER, nbf: NOW_S + CONTROL_TOKEN_CLOCK_SKEW_S, exp: NOW_S + 600 }), true);
    assert.equal(await accepts({ iss: ISSUER, nbf: NOW_S + CONTROL_TOKEN_CLOCK_SKEW_S + 1, exp: NOW_S + 600 }), false);
    assert.equal(await accepts({ iss: ISSUER, iat: NOW_S + CONTROL_TOKEN_CLOCK_SKEW_S + 1, exp: NOW_S + 600 }), false);
  });

  test('refuses a JWT without iss or exp, from another issuer or for another audience, or not HS256 with the control secret', async () => {
    const refused: Array<[string, Promise<string>]> = [
      ['no iss', jwt({ exp: NOW_S + 60 })],
      ['no exp', jwt({ iss: ISSUER })],
      ['another issuer', jwt({ iss: 'comet-chat', exp: NOW_S + 60 })],
      ['another audience', jwt({ iss: ISSUER, aud: 'pushpin', exp: NOW_S + 60 })],
      ['an empty audience list', jwt({ iss: ISSUER, aud: [], exp: NOW_S + 60 })],
      ['a string exp', jwt({ iss: ISSUER, exp: String(NOW_S + 60) as unknown as number })],
      ['the Grip-Sig key', jwt({ iss: ISSUER, exp: NOW_S + 60 }, GRIP_KEY)],
      ['HS384', new SignJWT({ iss: ISSUER, exp: NOW_S + 60 }).setProtectedHeader({ alg: 'HS384' }).sign(new TextEncoder().encode(SECRET))],
      ['a Grip-Sig signed with the control secret', signGripSig(SECRET, NOW_MS)],
    ];
    for (const [what, token] of refused) assert.equal(await check(`Bearer ${await token}`), false, what);
  });

  test('refuses anything else without throwing', async () => {
    const refused = [
      undefined,
      '',
      SECRET,
      `Basic ${SECRET}`,
      'Bearer ',
      `Bearer ${SECRET.slice(0, -1)}`,
      `Bearer ${SECRET} extra`,
      `Bearer ${'a'.repeat(5000)}`,
      'Bearer eyJhbGciOiJub25lIn0.eyJpc3MiOiJteS1wdWJsaXNoZXIifQ.',
    ];
    for (const header of refused) assert.equal(await check(header), false, String(header));
  });
});
