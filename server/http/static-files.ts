/**
 * Static files from the repository's `public/`.
 */
import express, { type RequestHandler } from 'express';
import { findPublicDir } from '../../common/public-dir.js';

export interface StaticFilesOptions {
  /** `Origin-Agent-Cluster` value for HTML documents (see AppOptions.originAgentCluster). */
  originAgentCluster: '?0' | '?1';
  publicDir?: string;
}

/**
 * Serves `public/` (index.html at `/`); misses fall through to the JSON 404.
 * API paths (`/api/`, and the Bayeux endpoint `/cometd`) skip it: `express.static` would `stat()` the disk
 * for every poll (about 5% of the app's CPU under load) only to find nothing.
 */
function isDynamic(path: string): boolean {
  return path.startsWith('/api/') || path === '/cometd' || path.startsWith('/cometd/');
}

export function staticFiles(options: StaticFilesOptions): RequestHandler {
  const serve = express.static(options.publicDir ?? findPublicDir(), {
    index: 'index.html',
    fallthrough: true,
    dotfiles: 'ignore',
    setHeaders(res, path) {
      // document.domain only works between documents that both opt out of
      // origin-keyed agent clusters (Chromium keys by origin by default).
      if (path.endsWith('.html')) res.setHeader('Origin-Agent-Cluster', options.originAgentCluster);
    },
  });
  return (req, res, next) => (isDynamic(req.path) ? next() : serve(req, res, next));
}
