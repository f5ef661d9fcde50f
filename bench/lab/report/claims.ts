/**
 * The talk's comparative claims, each judged mechanically from a run by the yardstick docs/models.md states: one
 * target's 95% interval against another's. A is "above" B when A's interval lies wholly above B's, "below" when
 * wholly below; overlapping intervals do not resolve the claim. A target that fell behind the offered load is in
 * another regime (its CPU per delivery, or its multicast slope, is not comparable), and the verdict says so
 * instead of comparing. Pure: tested in test/bench/lab/models-doc.test.ts.
 */
import type { LoadPointResult, MetricSpread, PointSummary } from '../results.js';
import { keptUp, multicastCosts, multicastSlopeSpread } from './experiments.js';

export interface Claim {
  claim: string;
  /** What is compared: CPU per delivery in the chat table, or CPU per message in the multicast table. */
  metric: 'cpu-per-delivery' | 'cpu-per-message';
  subject: string;
  against: readonly string[];
  /** Confirmed when the subject is this side of every target it is compared with. */
  expect: 'above' | 'below';
}

export const CLAIMS: readonly Claim[] = [
  { claim: 'Suspend & Resume is heavy', metric: 'cpu-per-delivery', subject: 'suspend-resume', against: ['mailbox'], expect: 'above' },
  { claim: 'Queue / mailbox is light', metric: 'cpu-per-delivery', subject: 'mailbox', against: ['suspend-resume', 'suspend-push-plain'], expect: 'below' },
  { claim: 'Suspend & Push (the talk\'s, no leases) is light', metric: 'cpu-per-delivery', subject: 'suspend-push-plain', against: ['suspend-resume'], expect: 'below' },
  { claim: 'Suspend & Push with leases is light', metric: 'cpu-per-delivery', subject: 'suspend-push', against: ['suspend-resume'], expect: 'below' },
  { claim: 'Suspend & Resume is poor at multicast', metric: 'cpu-per-message', subject: 'suspend-resume', against: ['mailbox', 'suspend-push'], expect: 'above' },
  { claim: 'Queue / mailbox is good at multicast', metric: 'cpu-per-message', subject: 'mailbox', against: ['suspend-resume'], expect: 'below' },
  { claim: 'Suspend & Push is good at multicast', metric: 'cpu-per-message', subject: 'suspend-push', against: ['suspend-resume'], expect: 'below' },
];

export interface Side {
  target: string;
  title: string;
  spread?: MetricSpread;
  /** Why there is no figure to compare: absent, failed, or fell behind the offered load. */
  missing?: string;
}

export interface ClaimVerdict extends Claim {
  subjectSide: Side;
  againstSides: Side[];
  verdict: 'confirmed' | 'refuted' | 'not resolved' | 'not comparable';
  /** One sentence, number-free: the comparison made, or why none was. */
  reason: string;
}

/** Where A's interval lies against B's. */
export function compareIntervals(a: MetricSpread, b: MetricSpread): 'above' | 'below' | 'overlap' {
  if (a.low > b.high) return 'above';
  if (a.high < b.low) return 'below';
  return 'overlap';
}

function chatSide(summaries: readonly PointSummary[], target: string): Side {
  const s = summaries.find((x) => x.scenario === 'chat' && x.target === target);
  if (s === undefined) return { target, title: target, missing: 'not in this run' };
  if (s.measured === 0) return { target, title: s.title, missing: 'no measured run' };
  if (!keptUp(s)) return { target, title: s.title, missing: 'fell behind the offered load' };
  const spread = s.metrics.cpuSPer1000Deliveries;
  return spread === undefined ? { target, title: s.title, missing: 'no CPU figure' } : { target, title: s.title, spread };
}

function multicastSide(summaries: readonly PointSummary[], points: readonly LoadPointResult[], target: string): Side {
  const cost = multicastCosts(summaries).find((c) => c.target === target);
  if (cost === undefined) return { target, title: target, missing: 'not in the multicast experiment' };
  if (cost.cpuMsPerMessage === null) return { target, title: cost.title, missing: 'fell behind at some room count, so no slope' };
  const spread = multicastSlopeSpread(points, target, cost.clients) ?? { median: cost.cpuMsPerMessage, low: cost.cpuMsPerMessage, high: cost.cpuMsPerMessage, n: 1 };
  return { target, title: cost.title, spread };
}

type Where = 'above' | 'below' | 'overlap' | 'not comparable';

const fellBehind = (s: Side): boolean => s.missing?.startsWith('fell behind') === true;

/**
 * Where the subject stands against one other target. Falling behind the offered load where the other kept up is
 * the heavier side, as a higher CPU figure would be (both directions: "heavy" and "light" claims alike); both behind,
 * or a figure missing for another reason, leaves the pair not comparable.
 */
function wherePair(subject: Side, other: Side): Where {
  if (subject.spread !== undefined && other.spread !== undefined) return compareIntervals(subject.spread, other.spread);
  if (fellBehind(subject) && other.spread !== undefined) return 'above';
  if (fellBehind(other) && subject.spread !== undefined) return 'below';
  return 'not comparable';
}

function pairReason(subject: Side, other: Side, where: Where): string {
  if (where === 'not comparable') return [subject, other].filter((s) => s.missing !== undefined).map((s) => `${s.title}: ${s.missing}`).join('; ');
  if (subject.spread === undefined) return `${subject.title} fell behind where ${other.title} kept up`;
  if (other.spread === undefined) return `${other.title} fell behind where ${subject.title} kept up`;
  return `${subject.title}'s interval ${where === 'overlap' ? 'overlaps' : `lies ${where}`} ${other.title}'s`;
}

/** Every claim of CLAIMS whose subject ran, judged. */
export function judgeClaims(summaries: readonly PointSummary[], points: readonly LoadPointResult[]): ClaimVerdict[] {
  const side = (c: Claim, target: string): Side => (c.metric === 'cpu-per-delivery' ? chatSide(summaries, target) : multicastSide(summaries, points, target));
  const out: ClaimVerdict[] = [];
  for (const c of CLAIMS) {
    const subjectSide = side(c, c.subject);
    if (subjectSide.missing === 'not in this run' || subjectSide.missing === 'not in the multicast experiment') continue;
    const againstSides = c.against.map((t) => side(c, t));
    const where = againstSides.map((s) => wherePair(subjectSide, s));
    const verdict: ClaimVerdict['verdict'] = where.includes('not comparable')
      ? 'not comparable'
      : where.every((w) => w === c.expect)
        ? 'confirmed'
        : where.some((w) => w !== 'overlap' && w !== c.expect)
          ? 'refuted'
          : 'not resolved';
    const reason = againstSides.map((s, i) => pairReason(subjectSide, s, where[i]!)).join('; ');
    out.push({ ...c, subjectSide, againstSides, verdict, reason });
  }
  return out;
}
