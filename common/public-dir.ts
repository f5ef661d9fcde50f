/**
 * Where the repository's `public/` directory is, for the parts that serve
 * files from it (the app's static files, the proxy's bridge page).
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Walks up from `fromUrl` to the directory holding package.json: the same
 * answer from the sources (run with tsx) and from `dist/` (compiled).
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
