/**
 * Child-process entry of the lab's in-process servers (models 1, 2, 4 and the
 * baselines): `node dist/bench/models/serve.js --model NAME [--mode MODE]
 * --db PATH --hold-timeout-s N`. Listens on 127.0.0.1 and an ephemeral port,
 * prints one JSON line `{"msg":"lab server listening","port":N}` when ready,
 * and closes cleanly on SIGTERM/SIGINT (exit 0). Run compiled, so the
 * measured process carries no TypeScript compiler.
 */
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { createEventDrivenServer } from './event-driven.js';
import type { LabServerFactory } from './lab-server.js';
import { createMailboxServer } from './mailbox.js';
import { createSuspendResumeServer } from './suspend-resume.js';

const FACTORIES: Record<string, LabServerFactory> = {
  'suspend-resume': createSuspendResumeServer,
  mailbox: createMailboxServer,
  'event-driven': createEventDrivenServer,
};

function fail(message: string): never {
  process.stderr.write(`serve: ${message}\n`);
  process.exit(2);
}

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    mode: { type: 'string' },
    db: { type: 'string' },
    'hold-timeout-s': { type: 'string', default: '30' },
  },
  strict: true,
});

const factory = FACTORIES[values.model ?? ''];
if (!factory) fail(`--model must be one of ${Object.keys(FACTORIES).join(', ')}`);
const holdTimeoutS = Number(values['hold-timeout-s']);
if (!Number.isInteger(holdTimeoutS) || holdTimeoutS < 1) fail('--hold-timeout-s must be a positive integer');
if (!values.db) fail('--db is required (a SQLite file path; in-memory servers ignore it)');

const lab = factory({ dbPath: values.db, holdTimeoutS, ...(values.mode === undefined ? {} : { mode: values.mode }) });
lab.server.listen(0, '127.0.0.1', () => {
  const { port } = lab.server.address() as AddressInfo;
  process.stdout.write(`${JSON.stringify({ msg: 'lab server listening', port })}\n`);
});

let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  lab.server.close();
  lab.close().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`serve: close failed: ${String(err)}\n`);
      process.exit(1);
    },
  );
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
