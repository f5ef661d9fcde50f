/**
 * The scale-out scenario's table in results.md (bench/lab/scaleout.ts): one row per point, the columns the
 * separate scale-out bench printed (proxies, parked/s, park ms, deliveries/s, fan-out ms, p50, p99, lost / dup),
 * plus parked per proxy and the publishes each proxy applied during the timed phases (the rounds' own only).
 */
import type { RunResult } from '../results.js';
import { formatCount, formatSig } from './format.js';

function row(cells: readonly string[]): string {
  return `| ${cells.join(' | ')} |`;
}

export function scaleoutSection(run: RunResult, order: ReadonlyMap<string, number>): string[] {
  const points = run.points
    .filter((p) => p.status === 'ok' && p.scaleout !== undefined)
    .sort((a, b) => a.clients - b.clients || order.get(a.target)! - order.get(b.target)! || (a.repeat ?? 1) - (b.repeat ?? 1));
  if (points.length === 0) return [];
  const out = ['## Scale-out figures', ''];
  out.push(
    row(['Target', 'Clients', 'Proxies', 'Parked/s', 'Park ms', 'Parked per proxy', 'Deliveries/s', 'Fan-out ms', 'Fan-out ms per round', 'p50 ms', 'p99 ms', 'Lost / dup', 'Drain wait ms', 'Publishes per proxy']),
    row(['---', '---:', '---:', '---:', '---:', '---', '---:', '---:', '---', '---:', '---:', '---', '---:', '---:']),
  );
  for (const p of points) {
    const s = p.scaleout!;
    out.push(
      row([
        p.title + (p.repeat !== undefined && p.repeat > 1 ? ` (run ${p.repeat})` : ''),
        formatCount(p.clients),
        formatCount(s.frontDoors),
        formatSig(s.parkedPerS),
        formatCount(s.parkMs),
        (s.parkedPerFrontDoor ?? []).map(formatCount).join(' / '),
        formatSig(s.deliveriesPerSMedian),
        formatSig(s.fanoutMsMedian),
        s.rounds.map((r) => formatSig(r.fanoutMs)).join(', '),
        formatSig(s.p50Ms),
        formatSig(s.p99Ms),
        `${formatCount(s.lost)} / ${formatCount(s.duplicated)}`,
        formatCount(s.drainWaitMs),
        (s.publishesPerFrontDoor ?? []).map(formatCount).join(' / '),
      ]),
    );
  }
  out.push(
    '',
    '**Scale-out** (`--scenario scaleout`, docs/scaleout.md): one stack per row, one room. The timed phases start once ' +
      'every join made during setup has left the app and reached every proxy (**Drain wait ms**). **Park**: every ' +
      'subscriber sends its first poll in one burst, timed to all parked by the proxies\' own counts; **Parked/s** is ' +
      'clients / park time; subscriber i polls proxy i mod N. **Fan-out**: per round one message, from its due time ' +
      'to the last subscriber reading it; **Deliveries/s** is clients / that time; both are medians over the rounds ' +
      'of this one stack. **p50 / p99**: due-to-receipt over every round\'s deliveries. **Publishes per proxy**: items each proxy ' +
      'applied during the timed phases: the rounds\' messages only (one per round, summed over a proxy\'s workers), so no ' +
      'setup event crossed a proxy while timed. The per-round proxy counters and ' +
      'the re-park times are in results.json (`scaleout`).',
    '',
  );
  return out;
}
