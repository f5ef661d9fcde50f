/**
 * The lab's report as Markdown, from results.json alone: the command and
 * machine, one table per client count (targets side by side at the same load
 * is the comparison the lab exists for), lossy rows flagged with a footnote,
 * and what every column means.
 */
import type { LoadPointResult, MetricSpread, RunResult } from '../results.js';
import { GENERATOR_SATURATED_SHARE } from '../headroom.js';
import { DEFAULT_SUSTAIN_P99_MS } from '../options.js';
import { memorySlopes } from '../memory-slope.js';
import { BOOTSTRAP_RESAMPLES, CONFIDENCE } from '../stats.js';
import { SUSTAINED_PUBLISH_SHARE, type SweepResult, sweepsOf } from '../sustain.js';
import { difference, type LeaseSide, leasePairs, multicastCosts, multicastSlopeSpread } from './experiments.js';
import { scaleoutSection } from './scaleout-section.js';
import { BYTES_PER_KB, clientCounts, formatCount, formatSig, isLossy, NO_VALUE, repeats, summariesOf, targetOrder } from './format.js';

export interface MarkdownOptions {
  /** Chart files written next to the report (relative paths), embedded as images under the tables. */
  charts?: ReadonlyArray<{ file: string; caption: string }>;
}

/** A table cell: pipes and newlines would break the row; `<` would start HTML. */
export function cell(text: string): string {
  return text.replace(/\r?\n/g, ' ').replace(/\|/g, '\\|').replace(/</g, '&lt;');
}

export function row(cells: readonly string[]): string {
  return `| ${cells.join(' | ')} |`;
}

/** "10" or "10 / 20" when points of one table differ (they should not, but the report must not hide it). */
function distinct(values: readonly number[], format: (n: number) => string): string {
  return [...new Set(values)].sort((a, b) => a - b).map(format).join(' / ');
}

function percent(part: number, whole: number): string {
  return whole > 0 ? `${formatSig((part / whole) * 100)} %` : 'n/a';
}

interface Footnote {
  label: string;
  text: string;
}

function lossFootnote(p: LoadPointResult, label: string): Footnote {
  const s = p.subscribers!;
  return {
    label,
    text:
      `${p.title}, ${formatCount(p.clients)} clients: ${formatCount(s.lost)} of ${formatCount(s.expectedDeliveries)} ` +
      `expected deliveries lost (${percent(s.lost, s.expectedDeliveries)}), ${formatCount(s.duplicated)} duplicated, ` +
      `${formatCount(s.outOfOrder)} out of order. Its other figures cover only what arrived.` +
      (p.drainedAll === false
        ? ` The drain deadline passed before every subscriber had caught up${errorsNote(p)}: "lost" here means not ` +
          'received by the deadline, and some of it may have been late rather than lost.'
        : ''),
  };
}

/** ", with N failed requests (HTTP 502 × N, ...)" when the point saw errors, else "". */
function errorsNote(p: LoadPointResult): string {
  const s = p.subscribers!;
  if (s.errors === 0) return '';
  const statuses = Object.entries(s.badStatuses).map(([code, n]) => `${code} × ${formatCount(n)}`);
  return `, while subscribers saw ${formatCount(s.errors)} failed requests${statuses.length > 0 ? ` (HTTP ${statuses.join(', ')})` : ''}`;
}

/** CPU seconds over a window of `windowS` seconds, as cores kept busy; undefined when either is unknown. */
function busyCores(cpuS: number | undefined, windowS: number | undefined): number | undefined {
  return cpuS === undefined || windowS === undefined || windowS <= 0 ? undefined : cpuS / windowS;
}

/** "measured windows 31.2-40.5 s (publishing plus drain)" over the points that recorded one. */
function windowRange(points: readonly LoadPointResult[]): string {
  const windows = points.map((p) => p.windowS).filter((w): w is number => w !== undefined && Number.isFinite(w));
  if (windows.length === 0) return 'no measured window recorded';
  const low = Math.min(...windows);
  const high = Math.max(...windows);
  const range = formatSig(low) === formatSig(high) ? formatSig(low) : `${formatSig(low)}-${formatSig(high)}`;
  return `measured window${windows.length > 1 ? 's' : ''} ${range} s (publishing plus drain; per point in the Window column)`;
}

/** Median of a non-empty list. */
function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * The park (connection storm, memory at rest) and fan-out scenarios' own figures (docs/performance.md), one
 * row per point; nothing when the run has only chat points.
 */
function scenarioSection(run: RunResult, order: ReadonlyMap<string, number>): string[] {
  const points = run.points
    .filter((p) => p.status === 'ok' && (p.scenario === 'park' || p.scenario === 'fanout'))
    .sort((a, b) => a.clients - b.clients || order.get(a.target)! - order.get(b.target)!);
  if (points.length === 0) return [];
  const out = ['## Park and fan-out figures', ''];
  out.push(
    row(['Target', 'Scenario', 'Clients', 'Park s', 'Park errors', 'Listen-queue drops', 'Accept queue: peak / size, s full', 'KB / parked, per process role', 'Fan-out: last delivery ms per round', 'Median last delivery ms']),
    row(['---', '---', '---:', '---:', '---:', '---:', '---:', '---', '---', '---:'])
  );
  for (const p of points) {
    const roles = Object.entries(p.derived?.memoryPerParkedByRole ?? {})
      .map(([role, bytes]) => `${role} ${formatSig(bytes / BYTES_PER_KB)}`)
      .join(', ');
    const rounds = p.scenario === 'fanout' ? Object.values(p.subscribers?.lastDeliveryMsBySeq ?? {}) : [];
    out.push(
      row([
        cell(p.title),
        p.scenario!,
        formatCount(p.clients),
        formatSig(p.park === undefined ? undefined : p.park.ms / 1000),
        formatCount(p.park?.errors),
        formatCount(p.park?.listenOverflows),
        p.park?.acceptQueue === undefined
          ? ''
          : `${formatCount(p.park.acceptQueue.peak)} / ${formatCount(p.park.acceptQueue.backlog)}, ${formatSig(p.park.acceptQueue.fullMs / 1000)}`,
        cell(roles),
        rounds.map((ms) => formatSig(ms)).join(', '),
        rounds.length > 0 ? formatSig(median(rounds)) : '',
      ]),
    );
  }
  out.push(
    '',
    '**Park s**: from the first poll sent to every subscriber parked (the target\'s own count; Pushpin cannot tell, so ' +
      'until the subscribers\' requests stopped for a second). In the `park` scenario every subscriber sends its first ' +
      'poll in one burst, and memory is read once RSS has settled. **Fan-out**: per round, one message to every ' +
      'subscriber of one channel, from the publisher sending it to the last subscriber reading it. **Listen-queue ' +
      'drops**: connections the kernel dropped during the park phase because a listen queue was full (Linux ' +
      '`TcpExt ListenOverflows`, machine-wide); each one costs its client a SYN retransmit (1, 3, 7, 15 s), so a storm ' +
      'with drops measures the kernel\'s queue as much as the target. **Accept queue**: the target\'s own client ' +
      'port over the park phase (sampled every 50 ms from /proc/net/tcp): the longest queue of connections the kernel ' +
      'had completed and the server not yet accepted, the queue\'s size (the `listen()` backlog as `net.core.somaxconn` ' +
      'capped it), and how long it was seen full, when SYNs to it were being dropped.',
    '',
  );
  return out;
}

/** Commit, peers' versions, steal time and pinning, as results.json recorded them (older runs: nothing). */
export function provenanceLines(run: RunResult): string[] {
  const p = run.provenance;
  if (p === undefined) return ['Provenance: not recorded (a run made before the lab recorded it).', ''];
  const commit = p.git.commit === null ? 'unknown commit' : `commit \`${p.git.commit.slice(0, 12)}\`${p.git.dirty ? ' **with uncommitted changes**' : p.git.dirty === null ? ' (clean or not: unknown)' : ''}`;
  const v = (name: string, b: { version: string | null }): string => `${name} ${b.version ?? 'unknown'}`;
  const steal = p.stealShare === undefined ? 'not read' : `${formatSig(p.stealShare * 100)} %`;
  const pin = p.pin ? `generator on CPU ${p.pin.generator.join(',')}, target on CPU ${p.pin.target.join(',')} (\`--pin\`)` : 'not pinned (generator and target share every core)';
  return [
    `Code: ${commit}. Node ${cell(p.node)}; ${cell([v('nginx', p.versions.nginx), v('Nchan', p.versions.nchan), v('Pushpin', p.versions.pushpin)].join(', '))} (each read from its binary or package; how: \`provenance.versions\` in results.json). ` +
      `CPU: ${cell(p.cpuModel)}. Steal time over the run: ${steal}. Cores: ${pin}.`,
    '',
  ];
}

/** "12.3 [10.1, 15.2]": a median and its interval; the median alone when one run measured it. */
export function formatSpread(spread: MetricSpread | undefined, scale = 1): string {
  if (spread === undefined) return NO_VALUE;
  const m = formatSig(spread.median / scale);
  return spread.n < 2 ? m : `${m} [${formatSig(spread.low / scale)}, ${formatSig(spread.high / scale)}]`;
}

/** With `--repeat N`: one table per scenario and client count of medians with their 95% intervals. */
function spreadSection(run: RunResult, order: Map<string, number>): string[] {
  const n = repeats(run);
  if (n < 2) return [];
  const out: string[] = [`## Medians over ${formatCount(n)} runs`, ''];
  out.push(
    `Each cell: the median over the point's measured runs and, in brackets, a ${formatSig(CONFIDENCE * 100)} % ` +
      `confidence interval of that median by the percentile bootstrap (${formatCount(BOOTSTRAP_RESAMPLES)} resamples ` +
      'of the runs, seeded). With 3 runs or fewer the interval is close to the min-max range: read it as the spread ' +
      'seen, not as a tight bound. Failed runs are left out and counted in **Runs**.',
    '',
  );
  const header = ['Target', 'Runs', 'Published msg/s', 'Dropped', 'Deliveries/s', 'p50 ms', 'p99 ms', 'CPU s / 1,000 deliveries', 'Load generator cores busy', 'KB / parked connection', 'Requests / delivery'];
  const summaries = summariesOf(run);
  const groups = [...new Set(summaries.map((x) => `${x.scenario}|${x.clients}|${x.ratePerS}`))];
  for (const group of groups) {
    const rows = summaries.filter((x) => `${x.scenario}|${x.clients}|${x.ratePerS}` === group).sort((a, b) => order.get(a.target)! - order.get(b.target)!);
    const first = rows[0]!;
    out.push(`### ${first.scenario}, ${formatCount(first.clients)} clients, ${formatSig(first.ratePerS)} messages/s requested`, '');
    out.push(row(header), row(header.map((_, i) => (i < 1 ? '---' : '---:'))));
    for (const x of rows) {
      const notes = [
        ...(x.lossy > 0 ? [`${formatCount(x.lossy)} lossy`] : []),
        ...((x.generatorSaturated ?? 0) > 0 ? [`${formatCount(x.generatorSaturated)} ‡`] : []),
      ];
      const runs = `${formatCount(x.measured)} of ${formatCount(x.runs)}${notes.length > 0 ? ` (${notes.join(', ')})` : ''}`;
      if (x.measured === 0) {
        out.push(row([cell(x.title), runs, `*${x.unavailable ? 'unavailable' : 'no measured run'}*`, ...Array<string>(header.length - 3).fill('')]));
        continue;
      }
      const m = x.metrics;
      out.push(
        row([
          cell(x.title),
          runs,
          formatSpread(m.publishedPerS),
          formatSpread(m.dropped),
          formatSpread(m.deliveriesPerS),
          formatSpread(m.p50Ms),
          formatSpread(m.p99Ms),
          formatSpread(m.cpuSPer1000Deliveries),
          formatSpread(m.generatorCoresBusy),
          x.protocol === 'chat-short-poll' ? 'n/a' : formatSpread(m.memoryPerParkedBytes, BYTES_PER_KB),
          formatSpread(m.requestsPerDelivery),
        ]),
      );
    }
    out.push('');
  }
  return out;
}

/** The sweeps results.json carries, or computed from its summaries with the yardstick it was run with. */
export function sweepsOfRun(run: RunResult): SweepResult[] {
  const limit = typeof run.options.sustainP99Ms === 'number' ? run.options.sustainP99Ms : DEFAULT_SUSTAIN_P99_MS;
  return run.sweeps ?? sweepsOf(summariesOf(run), limit);
}

/** With `--rates`: per client count, which rates each target sustained, its maximum, and CPU at matched rates. */
function sweepSection(run: RunResult, order: Map<string, number>): string[] {
  const sweeps = sweepsOfRun(run);
  if (sweeps.length === 0) return [];
  const limit = typeof run.options.sustainP99Ms === 'number' ? run.options.sustainP99Ms : DEFAULT_SUSTAIN_P99_MS;
  const out: string[] = ['## Rate sweep', ''];
  out.push(
    `A requested rate is **sustained** (✓) when every run of the point was measured and, in the median run, no due ` +
      `message was dropped, at least ${formatSig(SUSTAINED_PUBLISH_SHARE * 100)} % of the rate was accepted and p99 ` +
      `due-to-receipt latency stayed at or under ${formatCount(limit)} ms; and no run lost or duplicated a delivery or ` +
      'saturated its load generator. **Maximum sustainable**: the highest rate such that it and every lower rate held, ' +
      'with its median deliveries/s; "≥" when the highest rate tried still held.',
    '',
  );
  for (const clients of [...new Set(sweeps.map((x) => x.clients))].sort((a, b) => a - b)) {
    const rows = sweeps.filter((x) => x.clients === clients).sort((a, b) => order.get(a.target)! - order.get(b.target)!);
    const rates = [...new Set(rows.flatMap((x) => x.rates.map((r) => r.ratePerS)))].sort((a, b) => a - b);
    const header = ['Target', ...rates.map((r) => `${formatSig(r)} msg/s`), 'Maximum sustainable'];
    out.push(`### ${formatCount(clients)} clients: deliveries/s and p99 per requested rate`, '');
    out.push(row(header), row(header.map((_, i) => (i === 0 ? '---' : '---:'))));
    for (const x of rows) {
      const cells = rates.map((rate) => {
        const v = x.rates.find((r) => r.ratePerS === rate);
        if (v === undefined) return NO_VALUE;
        const figures = v.deliveriesPerS === undefined ? '' : ` ${formatSig(v.deliveriesPerS)}/s, p99 ${formatSig(v.p99Ms)} ms`;
        return cell(v.sustained ? `✓${figures}` : `✗${figures} (${v.reasons.join('; ')})`);
      });
      const max =
        x.bound === 'below-lowest'
          ? `below ${formatSig(rates[0])} msg/s`
          : `${x.bound === 'above-highest' ? '≥ ' : ''}${formatSig(x.maxSustainedRatePerS)} msg/s (${formatSig(x.maxSustainedDeliveriesPerS)} deliveries/s)`;
      out.push(row([cell(x.title), ...cells, max]));
    }
    out.push('');
    // Sustained points at one requested rate and client count all delivered the same offered load (within the
    // publish share above): their CPU per delivery compares targets doing the same work, in the same regime.
    out.push(`### ${formatCount(clients)} clients: CPU s / 1,000 deliveries at matched delivery rates`, '');
    out.push(row(header.slice(0, -1)), row(header.slice(0, -1).map((_, i) => (i === 0 ? '---' : '---:'))));
    for (const x of rows) {
      out.push(
        row([
          cell(x.title),
          ...rates.map((rate) => {
            const v = x.rates.find((r) => r.ratePerS === rate);
            if (v === undefined) return NO_VALUE;
            return v.sustained ? formatSpread(v.cpuSPer1000Deliveries) : `${NO_VALUE} (not sustained)`;
          }),
        ]),
      );
    }
    out.push('');
  }
  return out;
}

/** Memory per parked connection as a slope over the client counts, when the run had two or more. */
function memorySection(run: RunResult, order: Map<string, number>): string[] {
  const slopes = (run.memorySlopes ?? memorySlopes(run.points)).slice().sort((a, b) => order.get(a.target)! - order.get(b.target)! || a.ratePerS - b.ratePerS);
  if (slopes.length === 0) return [];
  const out: string[] = ['## Memory per parked connection, as a slope', ''];
  out.push(
    'The least-squares slope of (RSS all parked − RSS set up, not polling) against the number of parked ' +
      'connections, over the client counts of the run: what one more parked connection costs. Fixed costs go into ' +
      "the intercept instead of being divided over the clients. Node targets collect garbage before each reading " +
      '(forced GC); Nchan and Pushpin are read as they are. Short polling parks nothing and has no row. ' +
      `1 KB = ${formatCount(BYTES_PER_KB)} bytes.`,
    '',
  );
  const header = ['Target', 'Scenario', 'Clients', 'Runs', 'KB / parked connection (slope)', 'Fixed part, KB', 'r²', 'Per role, KB', 'Forced GC'];
  out.push(row(header), row(header.map((_, i) => (i < 2 ? '---' : '---:'))));
  for (const m of slopes) {
    out.push(
      row([
        cell(m.title),
        m.scenario,
        m.clients.map((c) => formatCount(c)).join(', '),
        formatCount(m.runs),
        formatSig(m.bytesPerConnection / BYTES_PER_KB),
        formatSig(m.interceptBytes / BYTES_PER_KB),
        formatSig(m.r2),
        cell(Object.entries(m.bytesPerConnectionByRole).map(([role, b]) => `${role} ${formatSig(b / BYTES_PER_KB)}`).join(', ')),
        m.gcForced ? 'Node processes' : 'none (RSS as read)',
      ]),
    );
  }
  out.push('', 'A low r² means the readings did not line up (noise, or memory that grows in steps): read the slope with it.', '');
  return out;
}

/** The multicast scenario: per target and client count, the room counts at one delivery rate and the CPU per message. */
export function multicastSection(run: RunResult, order: Map<string, number>): string[] {
  const costs = multicastCosts(summariesOf(run)).sort((a, b) => a.clients - b.clients || order.get(a.target)! - order.get(b.target)!);
  if (costs.length === 0) return [];
  const out: string[] = ['## Multicast: room count varied at one delivery rate', ''];
  out.push(
    'Each room gets the same messages/s, so every subscriber receives the same stream and deliveries/s (clients × ' +
      'rate per room) stay fixed while a message reaches clients / rooms subscribers. Medians over measured runs. ' +
      '**CPU ms / message** is the least-squares slope of server cores busy against messages/s over the room counts: ' +
      'what one more message costs with the deliveries unchanged (the per-message part of fan-out; near 0: the ' +
      'target pays per delivery, not per message); with repeats, the median of the slopes fitted to each run r of ' +
      'every room count (run side by side) and its 95 % interval. \\*: the target accepted less than 95 % of that room count\'s ' +
      'requested rate, so its deliveries/s were not the fixed rate and no slope is given (—).',
    '',
  );
  const header = ['Target', 'Clients', 'Rooms (clients / room)', 'Published msg/s', 'Deliveries/s', 'Server cores busy', 'CPU s / 1,000 deliveries', 'p99 ms', 'CPU ms / message'];
  out.push(row(header), row(header.map((_, i) => (i === 0 ? '---' : '---:'))));
  for (const c of costs) {
    const col = (read: (r: (typeof c.rooms)[number]) => string): string => c.rooms.map(read).join(' · ');
    out.push(
      row([
        cell(c.title),
        formatCount(c.clients),
        col((r) => `${formatCount(r.rooms)} (${formatCount(Math.floor(c.clients / r.rooms))})`),
        col((r) => `${formatSig(r.publishedPerS)}${c.fellBehind.includes(r.rooms) ? '*' : ''}`),
        col((r) => formatSig(r.deliveriesPerS)),
        col((r) => formatSig(r.serverCoresBusy)),
        col((r) => formatSig(r.cpuSPer1000Deliveries)),
        col((r) => formatSig(r.p99Ms)),
        // With repeats, the median of per-run slopes and its interval; else the slope of the medians.
        c.cpuMsPerMessage === null ? NO_VALUE : formatSpread(multicastSlopeSpread(run.points, c.target, c.clients) ?? { median: c.cpuMsPerMessage, low: 0, high: 0, n: 1 }),
      ]),
    );
  }
  out.push('');
  return out;
}

/**
 * Commit-to-push latency: for every point whose events carried their commit time, the delay from the commit to the
 * subscriber, beside the due-to-receipt figures (which add the publisher's queue and its request).
 */
export function commitSection(run: RunResult, order: Map<string, number>): string[] {
  const rows = summariesOf(run)
    .filter((x) => x.metrics.commitP50Ms !== undefined)
    .sort((a, b) => a.clients - b.clients || a.ratePerS - b.ratePerS || order.get(a.target)! - order.get(b.target)!);
  if (rows.length === 0) return [];
  const out: string[] = ['## Commit-to-push latency (DB-change-triggered push)', ''];
  out.push(
    'From the commit time the server stamped in the event (`at`, whole milliseconds, wall clock) to the ' +
      'subscriber\'s receipt, first copies only: for the chat app (Suspend & Resume, Queue / mailbox, Suspend & Push, ' +
      'Pushpin) the SQLite commit, the outbox relay and the push; for the event-driven server and its baselines, the ' +
      'append to memory. Due-to-receipt adds the publisher\'s queue and the post request. Medians over measured runs ' +
      'with their 95 % intervals. Nchan carries no commit time.',
    '',
  );
  const header = ['Target', 'Load', 'Commit-to-receipt p50 ms', 'Commit-to-receipt p99 ms', 'Due-to-receipt p50 ms', 'Due-to-receipt p99 ms'];
  out.push(row(header), row(header.map((_, i) => (i < 2 ? '---' : '---:'))));
  for (const x of rows) {
    const load = `${x.scenario}, ${formatCount(x.clients)} clients, ${formatSig(x.ratePerS)} msg/s${x.rooms === undefined ? '' : `, ${formatCount(x.rooms)} rooms`}`;
    out.push(row([cell(x.title), load, formatSpread(x.metrics.commitP50Ms), formatSpread(x.metrics.commitP99Ms), formatSpread(x.metrics.p50Ms), formatSpread(x.metrics.p99Ms)]));
  }
  out.push('');
  return out;
}

/** Suspend & Push with and without re-poll leases at each load both ran: the leases' own row. */
export function leaseSection(run: RunResult): string[] {
  const pairs = leasePairs(summariesOf(run), run.points);
  if (pairs.length === 0) return [];
  const out: string[] = ['## Suspend & Push: leases against no leases', ''];
  out.push(
    '`suspend-push` grants each poll a signed re-poll lease that the proxy answers or parks without the app; ' +
      '`suspend-push-plain` sends every re-poll through the proxy to the app. Medians over measured runs; ' +
      '**Δ** is leased − plain. App share: the app process\'s CPU over the stack\'s (proxy + app).',
    '',
  );
  const header = ['Load', 'Requests / delivery (leased · plain · Δ)', 'CPU s / 1,000 deliveries (leased · plain · Δ)', 'p99 ms (leased · plain)', 'App share of CPU (leased · plain)'];
  out.push(row(header), row(header.map((_, i) => (i === 0 ? '---' : '---:'))));
  const pct = (x: number | undefined): string => (x === undefined ? NO_VALUE : `${formatSig(x * 100)} %`);
  const triple = (read: (s: LeaseSide) => number | undefined, a: LeaseSide, b: LeaseSide): string =>
    `${formatSig(read(a))} · ${formatSig(read(b))} · ${formatSig(difference(read(a), read(b)))}`;
  for (const p of pairs) {
    const load =
      `${p.scenario}, ${formatCount(p.clients)} clients, ${formatSig(p.ratePerS)} msg/s` + (p.rooms === undefined ? '' : `, ${formatCount(p.rooms)} rooms`);
    out.push(
      row([
        cell(load),
        triple((x) => x.requestsPerDelivery, p.leased, p.plain),
        triple((x) => x.cpuSPer1000Deliveries, p.leased, p.plain),
        `${formatSig(p.leased.p99Ms)} · ${formatSig(p.plain.p99Ms)}`,
        `${pct(p.leased.appCpuShare)} · ${pct(p.plain.appCpuShare)}`,
      ]),
    );
  }
  out.push('');
  return out;
}

export function renderMarkdown(run: RunResult, options: MarkdownOptions = {}): string {
  const out: string[] = [];
  const m = run.machine;
  out.push('# Models lab results', '');
  out.push(`Run started ${run.startedAt}:`, '', '```sh', run.command, '```', '');
  out.push(
    `Machine: ${formatCount(m.cpus)} × ${m.cpuModel}, ${formatSig(m.memoryGiB)} GiB memory, Node ${m.node}, ${m.os}.`,
    '',
  );
  out.push(...provenanceLines(run));
  if (Object.keys(run.options).length > 0) out.push(`Options: \`${JSON.stringify(run.options)}\``, '');

  // One column set for the whole run, so tables line up: out-of-order only when some point saw any.
  const showOutOfOrder = run.points.some((p) => p.status === 'ok' && (p.subscribers?.outOfOrder ?? 0) > 0);
  const header = [
    'Target',
    'Kind',
    'Published msg/s',
    'Dropped',
    'Window s',
    'Deliveries/s',
    'p50 ms',
    'p95 ms',
    'p99 ms',
    'max ms',
    'CPU s / 1,000 deliveries',
    'Server cores busy',
    'Load generator cores busy',
    'KB / parked connection',
    'Requests / delivery',
    'Bytes / delivery',
    'Lost',
    'Duplicated',
    ...(showOutOfOrder ? ['Out of order'] : []),
    'Errors',
  ];
  const numericColumns = header.length - 2;

  const order = new Map(targetOrder(run).map((t, i) => [t.target, i]));
  const footnotes: Footnote[] = [];
  const multiRun = repeats(run) > 1;

  if (run.points.length === 0) out.push('No load points were recorded.', '');
  // A rate sweep gets one table per client count and rate: rows of one table are always at one load.
  const sweep = new Set(run.points.map((p) => p.ratePerS)).size > 1;
  // A preset's stages share one run: a table per scenario too, so a multicast point never sits in a chat table.
  const scenarios = [...new Set(run.points.map((p) => p.scenario ?? 'chat'))];
  const tables = scenarios.flatMap((scenario) =>
    clientCounts(run.points.filter((p) => (p.scenario ?? 'chat') === scenario)).flatMap((clients) =>
      [...new Set(run.points.filter((p) => (p.scenario ?? 'chat') === scenario && p.clients === clients).map((p) => p.ratePerS))]
        .sort((a, b) => a - b)
        .map((rate) => ({ scenario, clients, rate })),
    ),
  );
  for (const { scenario, clients, rate } of tables) {
    const points = run.points
      .filter((p) => (p.scenario ?? 'chat') === scenario && p.clients === clients && p.ratePerS === rate)
      .sort((a, b) => order.get(a.target)! - order.get(b.target)! || (a.repeat ?? 1) - (b.repeat ?? 1));
    out.push(`## ${scenarios.length > 1 ? `${scenario}, ` : ''}${formatCount(clients)} clients${sweep ? `, ${formatSig(rate)} msg/s` : ''}`, '');
    out.push(
      `${distinct(points.map((p) => p.rooms), formatCount)} rooms, ` +
        `${distinct(points.map((p) => p.ratePerS), formatSig)} messages/s requested over all rooms, ` +
        `${distinct(points.map((p) => p.durationS), formatSig)} s of publishing; ` +
        // The measured window is publishing plus drain, different per point: say its real range, never the duration.
        `${windowRange(points)}.`,
      '',
    );
    out.push(row(header), row(header.map((_, i) => (i < 2 ? '---' : '---:'))));

    const badStatuses: string[] = [];
    const publishErrors: string[] = [];
    for (const p of points) {
      const kind = cell(p.kind);
      if (p.status !== 'ok') {
        // The reason takes the first numeric cell; the rest stay empty so no number is implied.
        const reason = `*${p.status}*: ${cell(p.error ?? 'no reason recorded')}`;
        out.push(row([cell(multiRun ? `${p.title} · run ${p.repeat ?? 1}` : p.title), kind, reason, ...Array<string>(numericColumns - 1).fill('')]));
        continue;
      }
      const s = p.subscribers;
      const d = p.derived;
      const lossy = isLossy(p);
      let title = cell(multiRun ? `${p.title} · run ${p.repeat ?? 1}` : p.title);
      if (lossy) {
        const fn = lossFootnote(p, `loss-${footnotes.length + 1}`);
        footnotes.push(fn);
        title = `**${title}**[^${fn.label}]`;
      }
      const bold = (text: string, flag: boolean) => (flag ? `**${text}**` : text);
      const errors = s === undefined && p.publisher === undefined ? undefined : (s?.errors ?? 0) + (p.publisher?.errors ?? 0);
      out.push(
        row([
          title,
          kind,
          formatSig(p.publisher?.ratePerS),
          bold(formatCount(p.publisher?.dropped), (p.publisher?.dropped ?? 0) > 0),
          formatSig(p.windowS),
          formatSig(d?.deliveriesPerS),
          formatSig(s?.latency.p50),
          formatSig(s?.latency.p95),
          formatSig(s?.latency.p99),
          formatSig(s?.latency.max),
          formatSig(d?.cpuSPer1000Deliveries),
          formatSig(busyCores(p.cost?.total?.cpuS, p.windowS)),
          p.generatorSaturated ? `${formatSig(busyCores(p.loadGeneratorCpuS, p.windowS))} ‡` : formatSig(busyCores(p.loadGeneratorCpuS, p.windowS)),
          p.protocol === 'chat-short-poll' ? 'n/a' : formatSig(d === undefined ? undefined : d.memoryPerParkedBytes / BYTES_PER_KB),
          formatSig(d?.requestsPerDelivery),
          formatSig(d?.bytesPerDelivery),
          bold(formatCount(s?.lost), (s?.lost ?? 0) > 0),
          bold(formatCount(s?.duplicated), (s?.duplicated ?? 0) > 0),
          ...(showOutOfOrder ? [bold(formatCount(s?.outOfOrder), (s?.outOfOrder ?? 0) > 0)] : []),
          formatCount(errors),
        ]),
      );
      const statuses = Object.entries(s?.badStatuses ?? {}).filter(([, n]) => n > 0);
      if (statuses.length > 0) {
        badStatuses.push(`${cell(p.title)}: ${statuses.map(([code, n]) => `${code} × ${formatCount(n)}`).join(', ')}`);
      }
      const kinds = Object.entries(p.publisher?.errorKinds ?? {}).filter(([, n]) => n > 0);
      if (kinds.length > 0) publishErrors.push(`${cell(p.title)}: ${kinds.map(([kind, n]) => `${kind} × ${formatCount(n)}`).join(', ')}`);
    }
    out.push('');
    if (badStatuses.length > 0) out.push(`Answers other than 200 seen by subscribers: ${badStatuses.join('; ')}.`, '');
    if (publishErrors.length > 0) out.push(`Failed publish requests (each retried): ${publishErrors.join('; ')}.`, '');
    if (points.some((p) => p.generatorSaturated)) {
      out.push(
        `‡ A load-generator worker passed ${formatSig(GENERATOR_SATURATED_SHARE * 100)} % of a core in the window: this row measures the ` +
          'generator as much as the target (add `--workers`, or `--pin`).',
        '',
      );
    }
  }

  if (footnotes.length > 0) {
    out.push('**Bold** rows lost or duplicated deliveries (see the notes at the end).', '');
  }

  out.push(...spreadSection(run, order));
  out.push(...sweepSection(run, order));
  out.push(...memorySection(run, order));
  out.push(...scenarioSection(run, order));
  out.push(...scaleoutSection(run, order));
  out.push(...multicastSection(run, order));
  out.push(...leaseSection(run));
  out.push(...commitSection(run, order));

  for (const chart of options.charts ?? []) out.push(`![${chart.caption}](${chart.file})`, '');

  out.push('## How to read this', '');
  out.push(
    '- **Target**: the server under test; **Kind**: `model` (a Comet model built in this repository), ' +
      '`baseline` (another transport on the event-driven server: short polling, SSE, forever iframe) or `external` (a third-party server such as Pushpin or Nchan).',
    '- **Published msg/s**: messages the target accepted per second of publishing. The publisher is open loop: ' +
      'message k falls due at k / rate whatever the target does; it keeps one publish in flight per room and the ' +
      "others wait in the room's queue (at most 100). **Dropped**: messages that fell due while their room's queue " +
      'was full, never sent; a non-zero count means the target could not keep up with the requested rate.',
    '- **Window s**: the measured window, from the start of publishing to the last subscriber holding every accepted ' +
      'message (publishing plus drain). CPU, traffic and the per-second rates are over this window.',
    "- **Server cores busy** / **Load generator cores busy**: CPU seconds of the target's processes / of the " +
      "load generator's subscriber processes during the measured window, divided by its length. Client and server " +
      'share the machine: when the two add up to the core count, the figures measure the machine as much as the target. ' +
      `‡: one generator worker (publisher or subscriber process) passed ${formatSig(GENERATOR_SATURATED_SHARE * 100)} % of a core ` +
      '(each worker\'s share is in results.json, `loadGeneratorWorkers`).',
    '- **Deliveries/s**: distinct (subscriber, message) pairs received during the measured window, divided by its length.',
    '- **p50 / p95 / p99 / max ms**: due-to-receipt latency over every delivery, from the message\'s due time on the ' +
      "publisher's schedule (so time spent waiting in a room's queue counts: no coordinated omission) to the " +
      'subscriber reading the message (one clock, loopback). Dropped messages have no latency: read them with **Dropped**.',
    "- **CPU s / 1,000 deliveries**: CPU seconds (user + system) of the server's processes, including all their " +
      'descendants, during the measured window, per 1,000 deliveries. The load generator is not counted.',
    "- **KB / parked connection**: (RSS of the server's processes with every subscriber parked − RSS with every " +
      `subscriber set up but not polling) / clients, with 1 KB = ${formatCount(BYTES_PER_KB)} bytes, both read after a forced GC in ` +
      'the Node targets. A fixed cost is spread over the clients, so small counts look expensive: with several client ' +
      'counts, cite the slope section instead.',
    "- **Requests / delivery**: HTTP requests the subscribers sent during the measured window (each poll; one per " +
      'stream connection or reconnection) per delivery.',
    "- **Bytes / delivery**: bytes on the subscribers' sockets, both directions, HTTP headers included, during the " +
      'measured window, per delivery.',
    "- **Lost**: deliveries expected (each room's published messages × its subscribers) but never received; " +
      '**Duplicated**: extra copies received' +
      (showOutOfOrder ? '; **Out of order**: messages received after a later one of the same room' : '') +
      '. Both must be 0.',
    '- **Errors**: failed subscriber requests or broken streams plus failed publish requests; the clients retried each one.',
    '- Rows marked *unavailable* (the target cannot run on this machine) or *failed* (the run broke) give the reason ' +
      'instead of figures. Charts mark such points `✕ failed` / `✕ unavailable` where their dot would be, and draw a ' +
      'suspect point (lost, dropped, or a saturated generator) hollow.',
    '',
  );

  for (const fn of footnotes) out.push(`[^${fn.label}]: ${cell(fn.text)}`);
  if (footnotes.length > 0) out.push('');

  return out.join('\n');
}
