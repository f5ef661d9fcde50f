/**
 * pino `redact` settings for the loggers main.ts and the launcher build: if a
 * request or its headers are ever logged (an error's `req`, a debugging field),
 * the credentials in them are not. The secret itself is never passed to a
 * logger; this covers the headers that carry it (`Authorization: Bearer
 * <secret>` on the control API, `Grip-Sig` signed with it) and session cookies.
 */
import type { LoggerOptions } from 'pino';

const HEADERS = ['authorization', 'cookie', 'set-cookie', 'grip-sig', 'grip-lease', 'proxy-authorization'];

export const LOG_REDACT: NonNullable<LoggerOptions['redact']> = {
  paths: [
    ...HEADERS.map((h) => `headers["${h}"]`),
    ...HEADERS.map((h) => `req.headers["${h}"]`),
    ...HEADERS.map((h) => `res.headers["${h}"]`),
    ...HEADERS.map((h) => `err.headers["${h}"]`),
    'secret',
    '*.secret',
    'leaseKey',
    '*.leaseKey',
  ],
  censor: '[redacted]',
};
