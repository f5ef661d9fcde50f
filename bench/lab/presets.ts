/**
 * Named lab runs: `npm run bench -- --preset models` (`npm run bench:models`) is the run docs/models.md reports,
 * so a reader re-measures the doc's tables with one command at the current commit. A preset is a list of stages,
 * each the flags of one ordinary lab run (one scenario); the stages' points go into one results.json, their
 * repeats interleaved (bench/lab/main.ts). Parsing and validation are in options.ts (`parseLabRuns`).
 */

export interface PresetStage {
  /** Short name, printed in progress lines. */
  name: string;
  /** Flags as for `npm run bench --`, without `--out` (the preset's) and `--no-progress`. */
  argv: readonly string[];
}

export interface Preset {
  /** One line for `--help` and the docs. */
  description: string;
  stages: readonly PresetStage[];
  /** Results root the run directory goes under (`<out>/<timestamp>/`), unless `--out` overrides it. */
  out: string;
  /** A Markdown file whose generated block (between the report's markers) the run rewrites when it ends. */
  doc?: string;
}

/**
 * Every target of the chat table. Not the scaled-out Suspend & Push rows (`-x2`, `-x3`, `-w2`): pinned, their 2 or
 * 3 proxies (or workers) share the target's one core, so they would measure the bus's or the workers' overhead,
 * not scale-out (docs/models.md, "Scale-out with targets and generator kept apart").
 */
export const MODELS_CHAT_TARGETS = [
  'suspend-resume',
  'mailbox',
  'mailbox-checked',
  'suspend-push',
  'suspend-push-sse',
  'suspend-push-plain',
  'event-driven',
  'short-poll',
  'sse',
  'forever-iframe',
  'pushpin',
  'nchan',
] as const;

/** The talk's three multicast claims are about models 1 to 3; the event-driven server is their floor. */
export const MODELS_MULTICAST_TARGETS = ['suspend-resume', 'mailbox', 'suspend-push', 'event-driven'] as const;

/**
 * Sized for about 40 minutes on a 2-core machine (docs/models.md, "Re-measuring"): 36 chat points of ~30 s and 36
 * multicast points of ~20 s, plus up to 30 s of publisher drain for each point whose target falls behind.
 * 100 rooms, not 10: at 10 rooms × 200 msg/s (20,000 deliveries/s) the load generator alone kept a core busy in
 * the 2026-11-21 run, and pinned it has exactly one core, so the fast targets' rows would measure the generator.
 */
export const PRESETS: Readonly<Record<string, Preset>> = {
  models: {
    description: "docs/models.md's tables: every target at 1,000 clients, and the multicast experiment; 3 runs each, pinned",
    stages: [
      {
        name: 'chat',
        argv: ['--models', MODELS_CHAT_TARGETS.join(','), '--clients', '1000', '--rooms', '100', '--rate', '200', '--duration', '20',
          '--repeat', '3', '--pin', '--drain-timeout', '20'],
      },
      {
        name: 'multicast',
        argv: ['--scenario', 'multicast', '--models', MODELS_MULTICAST_TARGETS.join(','), '--clients', '1000', '--rooms-list', '1,10,100',
          '--rate', '2', '--duration', '10', '--repeat', '3', '--pin', '--drain-timeout', '20'],
      },
    ],
    out: 'docs/models-results',
    doc: 'docs/models.md',
  },
};

/**
 * Flags a preset run accepts besides `--preset`, each applied to every stage: `--out`, `--no-progress`, and a
 * smaller size for trying the preset out (`--clients`, `--duration`, `--repeat`, and `--models` naming a subset of
 * the preset's targets). Anything else would make it another run than the one the doc reports.
 */
export const PRESET_OVERRIDES = ['out', 'no-progress', 'clients', 'duration', 'repeat', 'models'] as const;
