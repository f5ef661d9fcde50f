/**
 * The secrets `npm start` generates when they are not set (GRIP_SECRET,
 * CONTROL_SECRET, LEASE_KEY), kept where the operator can reach them: a file
 * `secrets.env` next to the SQLite database, mode 0600, one `NAME=value` a
 * line (bash and zsh read it with `set -a; . ./data/secrets.env; set +a`). The
 * next start reads them back, so the status page, the README's push examples
 * and re-poll leases keep working across restarts. A value set in the
 * environment always wins and is never written. The launcher prints the path,
 * never a secret.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, statSync, writeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

export const SECRET_NAMES = ['GRIP_SECRET', 'CONTROL_SECRET', 'LEASE_KEY'] as const;
export type SecretName = (typeof SECRET_NAMES)[number];

export const SECRETS_FILE_NAME = 'secrets.env';

export interface ProvidedSecrets {
  /** The file the generated secrets live in; null when none had to be generated, or the database is `:memory:`. */
  path: string | null;
  /** Made now (and saved, with a path). */
  generated: SecretName[];
  /** Read from the file, made by an earlier start. */
  reused: SecretName[];
}

/** A bad secrets file: the launcher reports it as bad configuration (exit 2), naming the file. */
export class SecretsFileError extends Error {}

/** The secrets file for the database at `dbPath`, or null for an in-memory database (nowhere to keep it). */
export function secretsPath(dbPath: string): string | null {
  return dbPath === ':memory:' ? null : join(dirname(resolve(dbPath)), SECRETS_FILE_NAME);
}

/** Fills each secret `env` lacks, from the file or freshly generated (then saved); returns what it did. */
export function provideSecrets(env: NodeJS.ProcessEnv, dbPath: string): ProvidedSecrets {
  const missing = SECRET_NAMES.filter((name) => !env[name]);
  if (missing.length === 0) return { path: null, generated: [], reused: [] };
  const path = secretsPath(dbPath);
  const saved = path !== null && existsSync(path) ? readSecretsFile(path) : new Map<string, string>();
  const generated: SecretName[] = [];
  const reused: SecretName[] = [];
  for (const name of missing) {
    const kept = saved.get(name);
    if (kept !== undefined) {
      env[name] = kept;
      reused.push(name);
    } else {
      // Each its own: the Grip-Sig key, the control credential and the lease key must differ (docs/protocol.md §7, §13).
      const value = randomBytes(32).toString('base64url');
      env[name] = value;
      saved.set(name, value);
      generated.push(name);
    }
  }
  if (path !== null && generated.length > 0) writeSecretsFile(path, saved);
  return { path, generated, reused };
}

function readSecretsFile(path: string): Map<string, string> {
  const mode = statSync(path).mode & 0o777;
  // As ssh does with a private key: a secret others may read is not a secret any more; say so rather than use it.
  if ((mode & 0o077) !== 0) {
    throw new SecretsFileError(`${path} is readable by other users (mode ${mode.toString(8).padStart(4, '0')}); run chmod 600 on it, or delete it to have new secrets made`);
  }
  const values = new Map<string, string>();
  readFileSync(path, 'utf8').split('\n').forEach((line, i) => {
    const text = line.trim();
    if (text === '' || text.startsWith('#')) return;
    const m = /^([A-Z_]+)=(\S+)$/.exec(text);
    if (m === null || !(SECRET_NAMES as readonly string[]).includes(m[1]!)) {
      throw new SecretsFileError(`${path} line ${i + 1} is not NAME=value with NAME one of ${SECRET_NAMES.join(', ')}`);
    }
    values.set(m[1]!, m[2]!);
  });
  return values;
}

/** Written whole to a temporary file created 0600, then renamed over: never a moment readable by others, or half written. */
function writeSecretsFile(path: string, values: Map<string, string>): void {
  mkdirSync(dirname(path), { recursive: true });
  const lines = [
    '# Made by npm start (launcher/secrets.ts) for the settings not given in the environment; reused at every start.',
    '# Read it into a shell with: set -a; . ./data/secrets.env; set +a',
    ...SECRET_NAMES.filter((name) => values.has(name)).map((name) => `${name}=${values.get(name)}`),
    '',
  ];
  const temporary = `${path}.${process.pid}.tmp`;
  const fd = openSync(temporary, 'wx', 0o600);
  try {
    writeSync(fd, lines.join('\n'));
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, path);
}
