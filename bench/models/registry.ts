/**
 * Every target of the models lab by name, in report order: the four Comet
 * models, the baselines, then the external servers.
 */
import { nchanTarget } from './nchan.js';
import { pushpinTarget } from './pushpin.js';
import { labServerTarget } from './spawn-lab-server.js';
import {
  plainSuspendPushTarget,
  scaledSuspendPushTarget,
  sseSuspendPushTarget,
  suspendPushTarget,
  workersSuspendPushTarget,
} from './suspend-push.js';
import type { Target } from './target.js';

export const TARGETS: readonly Target[] = [
  labServerTarget({ name: 'suspend-resume', title: 'Suspend & Resume', kind: 'model', protocol: 'chat-long-poll', model: 'suspend-resume' }),
  labServerTarget({ name: 'mailbox', title: 'Queue / mailbox', kind: 'model', protocol: 'chat-long-poll', model: 'mailbox' }),
  // The access control experiment: the same tier reading the session from SQLite on every poll (docs/models.md).
  labServerTarget({
    name: 'mailbox-checked',
    title: 'Queue / mailbox, session read per poll',
    kind: 'model',
    protocol: 'chat-long-poll',
    model: 'mailbox',
    mode: 'session-check',
  }),
  suspendPushTarget,
  sseSuspendPushTarget,
  plainSuspendPushTarget,
  workersSuspendPushTarget(2),
  scaledSuspendPushTarget(2),
  scaledSuspendPushTarget(3),
  labServerTarget({ name: 'event-driven', title: 'Event-driven (node:http)', kind: 'model', protocol: 'chat-long-poll', model: 'event-driven' }),
  labServerTarget({ name: 'short-poll', title: 'Short polling', kind: 'baseline', protocol: 'chat-short-poll', model: 'event-driven', mode: 'short-poll' }),
  labServerTarget({ name: 'sse', title: 'SSE stream', kind: 'baseline', protocol: 'sse', model: 'event-driven' }),
  labServerTarget({ name: 'forever-iframe', title: 'Forever iframe', kind: 'baseline', protocol: 'forever-iframe', model: 'event-driven' }),
  pushpinTarget,
  nchanTarget,
];

/**
 * The targets named in `list` (comma-separated names, `all`, `models`,
 * `baselines` or `external`), in registry order. Throws on an unknown name.
 */
export function selectTargets(list: string): Target[] {
  const wanted = new Set(list.split(',').map((s) => s.trim()).filter((s) => s !== ''));
  const known = new Set(TARGETS.map((t) => t.name));
  for (const name of wanted) {
    if (!['all', 'models', 'baselines', 'external'].includes(name) && !known.has(name)) {
      throw new Error(`unknown target "${name}"; known: all, models, baselines, external, ${[...known].join(', ')}`);
    }
  }
  const groups: Record<string, Target['kind']> = { models: 'model', baselines: 'baseline', external: 'external' };
  return TARGETS.filter(
    (t) => wanted.has('all') || wanted.has(t.name) || Object.entries(groups).some(([g, kind]) => wanted.has(g) && t.kind === kind),
  );
}
