/**
 * The status page on the control port (`GET /status`, docs/operations.md): one
 * self-contained HTML file (status-page.html, inline CSS, JS and SVG chart, no
 * external resource) that polls `/stats` and `/metrics` every second.
 *
 * The page itself holds no data and needs no authentication; the numbers do.
 * The operator pastes the bearer secret into the page, which keeps it in
 * `sessionStorage` (this tab only, gone when it closes) and sends it in an
 * `Authorization` header: never in a URL, so it cannot end up in history,
 * logs or a `Referer`. A strict Content-Security-Policy (hashes of the inline
 * script and style, `connect-src 'self'`, no framing) keeps anything else from
 * running in a page that holds the secret.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { findPublicDir } from '../../common/public-dir.js';
import { sendError } from '../errors.js';

export const STATUS_PATH = '/status';

/** The HTML next to this file in the sources (`dist/` does not copy it: found from the repository root). */
export function defaultStatusPagePath(): string {
  return join(dirname(findPublicDir(import.meta.url)), 'proxy', 'control', 'status-page.html');
}

interface Page {
  body: Buffer;
  csp: string;
}

function hashes(html: string, tag: 'script' | 'style'): string[] {
  const out: string[] = [];
  const pattern = new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, 'g');
  for (const match of html.matchAll(pattern)) {
    out.push(`'sha256-${createHash('sha256').update(match[1]!, 'utf8').digest('base64')}'`);
  }
  return out;
}

/** The CSP for `html`: only its own inline script and style, fetches to this origin, nothing else. */
export function statusPagePolicy(html: string): string {
  return [
    "default-src 'none'",
    `script-src ${hashes(html, 'script').join(' ')}`,
    `style-src ${hashes(html, 'style').join(' ')}`,
    "connect-src 'self'",
    "img-src 'self' data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/** Returns the `/status` handler (GET and HEAD); the file is read once, on first use. */
export function createStatusPage(options: { path?: string; logger: Logger }): (req: IncomingMessage, res: ServerResponse) => void {
  const path = options.path ?? defaultStatusPagePath();
  let page: Promise<Page> | null = null;
  return (req, res) => {
    page ??= readFile(path, 'utf8').then((html) => ({ body: Buffer.from(html, 'utf8'), csp: statusPagePolicy(html) }));
    page.then(
      ({ body, csp }) => {
        res.writeHead(200, {
          'content-type': 'text/html; charset=utf-8',
          'content-length': body.length,
          'cache-control': 'no-store',
          'content-security-policy': csp,
          'x-content-type-options': 'nosniff',
          'x-frame-options': 'DENY',
          'referrer-policy': 'no-referrer',
        });
        res.end(req.method === 'HEAD' ? undefined : body);
      },
      (err: unknown) => {
        page = null; // retried on the next request
        options.logger.error({ err, path }, 'status page unreadable');
        sendError(res, 'PROXY_ERR_NOT_FOUND', 'the status page is not available');
      },
    );
  };
}
