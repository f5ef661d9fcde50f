/**
 * Static files from the repository's `public/`.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type RequestHandler } from 'express';

/**
 * The repository's `public/` directory, found by walking up from this module
 * to the directory holding package.json: the same answer from `server/http/`
 * (run with tsx) and from `dist/server/http/` (compiled).
 */
export function findPublicDir(fromUrl: string = import.meta.url): string {
  let dir = dirname(fileURLToPath(fromUrl));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return join(dir, 'public');
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${fileURLToPath(fromUrl)}`);
    dir = parent;
  }
}

export interface StaticFilesOptions {
  /** `Origin-Agent-Cluster` value for HTML documents (see AppOptions.originAgentCluster). */
  originAgentCluster: '?0' | '?1';
  publicDir?: string;
}

/** Serves `public/` (index.html at `/`); misses fall through to the JSON 404. */
export function staticFiles(options: StaticFilesOptions): RequestHandler {
  return express.static(options.publicDir ?? findPublicDir(), {
    index: 'index.html',
    fallthrough: true,
    dotfiles: 'ignore',
    setHeaders(res, path) {
      // document.domain only works between documents that both opt out of
      // origin-keyed agent clusters (Chromium keys by origin by default).
      if (path.endsWith('.html')) res.setHeader('Origin-Agent-Cluster', options.originAgentCluster);
    },
  });
}
