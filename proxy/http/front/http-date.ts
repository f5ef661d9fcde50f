/**
 * The `Date` header value (RFC 9110 §6.6.1, IMF-fixdate), made once per second as Node's own server does
 * (`utcDate()` in node:http): the clock is read when the value is first needed, and an unref'd timer clears
 * it at the next second, so the answers of a fan-out read no clock each (the window profile had the per-answer
 * `Date.now()` at 1.6% of busy time). Every answer the client front writes carries it.
 */
let cached: string | undefined;
let cachedLine: Buffer = Buffer.alloc(0);

function reset(): void {
  cached = undefined;
}

function fill(): string {
  const now = new Date();
  const value = now.toUTCString();
  cached = value;
  cachedLine = Buffer.from(`Date: ${value}\r\n`, 'latin1');
  setTimeout(reset, 1000 - now.getMilliseconds()).unref();
  return value;
}

export function httpDate(): string {
  return cached ?? fill();
}

/** `Date: <httpDate()>\r\n` as bytes, shared by every answer of the same second (http/front/item-answer.ts). */
export function httpDateLine(): Buffer {
  if (cached === undefined) fill();
  return cachedLine;
}
