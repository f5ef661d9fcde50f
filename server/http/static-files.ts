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

/** Serves `public/` (index.html at `/`); misses fall through to the JSON 404. */
export function staticFiles(publicDir: string = findPublicDir()): RequestHandler {
  return express.static(publicDir, { index: 'index.html', fallthrough: true, dotfiles: 'ignore' });
}
