/**
 * The `Date` header value (RFC 9110 §6.6.1, IMF-fixdate), made once per second as Node's own server does
 * (`utcDate()` in node:http): every answer the client front writes carries it.
 */
let cachedSecond = -1;
let cached = '';
let cachedLine: Buffer = Buffer.alloc(0);

export function httpDate(nowMs: number = Date.now()): string {
  const second = Math.floor(nowMs / 1000);
  if (second !== cachedSecond) {
    cachedSecond = second;
    cached = new Date(second * 1000).toUTCString();
    cachedLine = Buffer.from(`Date: ${cached}\r\n`, 'latin1');
  }
  return cached;
}

/** `Date: <httpDate()>\r\n` as bytes, shared by every answer of the same second (http/front/item-answer.ts). */
export function httpDateLine(nowMs: number = Date.now()): Buffer {
  httpDate(nowMs);
  return cachedLine;
}
