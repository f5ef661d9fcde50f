/**
 * Shows which load point and phase the lab is in: a cli-progress bar on a
 * terminal, one plain line per phase otherwise (CI logs).
 */
import cliProgress from 'cli-progress';

export interface PhaseDisplay {
  /** A new phase of `total` units (clients, seconds, deliveries). */
  phase(name: string, total: number): void;
  /** Progress within the current phase. */
  update(value: number): void;
  /** Ends the bar of the current load point. */
  stop(): void;
}

export function createPhaseDisplay(label: string, useBar: boolean): PhaseDisplay {
  if (!useBar) {
    return {
      phase(name, total) {
        process.stderr.write(`[lab] ${label}: ${name} (${total})\n`);
      },
      update() {},
      stop() {},
    };
  }
  const bar = new cliProgress.SingleBar(
    { format: `${label.padEnd(34)} {phase} |{bar}| {value}/{total}`, hideCursor: true, clearOnComplete: false },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    phase(name, total) {
      const payload = { phase: name.padEnd(10) };
      if (!started) {
        bar.start(total, 0, payload);
        started = true;
      } else {
        bar.setTotal(total);
        bar.update(0, payload);
      }
    },
    update(value) {
      if (started) bar.update(value);
    },
    stop() {
      if (started) bar.stop();
    },
  };
}
