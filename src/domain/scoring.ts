/**
 * Scoring, as pure functions.
 *
 * - Fit comes from the profile (demographics, firmographics): the sum of matching fit rules,
 *   re-applied in full on every profile change.
 * - Engagement comes from behaviour. Positive points decay exponentially (they halve every
 *   half-life); negative points are facts about the lead (a job seeker, a competitor) and stay
 *   until offset, so decay never raises engagement. The value is kept as a decayed sum at a
 *   reference time, so late events are scored at their own occurredAt and arrival order does not
 *   matter.
 * - Per-day caps count, for each event type and UTC day, the `maxPerDay` latest events of that
 *   day (ties broken by eventId): the same set of events gives the same score in any order, and a
 *   positive event never lowers the score.
 */
import type { Behavior, Config, Rule } from './config.js';
import type { Profile } from './lead.js';

const DAY = 86_400_000;
/** Cap buckets older than this (by occurredAt, before the newest event) are dropped from state. */
export const CAP_RETENTION_MS = 60 * DAY;

export interface Engagement {
  /** Positive points, decayed to time `at`. */
  pos: number;
  /** Negative points (never decay). */
  neg: number;
  /** Reference time (epoch ms) of `pos`. */
  at: number;
  /** Events before this time (ms) no longer count: set when sales recycles the lead. */
  resetAt?: number;
  /** Counted events of capped types: `type|utcDay` -> [occurredAt, eventId][] (at most maxPerDay). */
  caps: Record<string, [number, string][]>;
}

export const emptyEngagement = (now: number): Engagement => ({ pos: 0, neg: 0, at: now, caps: {} });

function decayFactor(fromMs: number, toMs: number, halfLifeMs: number | undefined): number {
  return halfLifeMs ? Math.pow(0.5, (toMs - fromMs) / halfLifeMs) : 1;
}

/** Engagement at time `t` (unrounded). */
export function engagementAt(e: Engagement, t: number, halfLifeMs: number | undefined): number {
  return e.pos * decayFactor(e.at, t, halfLifeMs) + e.neg;
}

/** Moves the reference time to `t` (keeps the value; bounds the exponent). */
export function rebase(e: Engagement, t: number, halfLifeMs: number | undefined): Engagement {
  const caps = Object.fromEntries(
    Object.entries(e.caps).filter(([k]) => Number(k.split('|')[1]) * DAY >= t - CAP_RETENTION_MS),
  );
  return { ...e, pos: e.pos * decayFactor(e.at, t, halfLifeMs), at: t, caps };
}

export interface ScoredEvent {
  type: string;
  eventId: string;
  occurredAt: number;
}

/**
 * Adds one behaviour event. Returns the new engagement and the points it changed at the
 * reference time (0 when capped out or before a reset).
 */
export function addEngagement(
  e: Engagement,
  ev: ScoredEvent,
  behavior: Behavior,
  halfLifeMs: number | undefined,
): { engagement: Engagement; counted: boolean } {
  if (e.resetAt !== undefined && ev.occurredAt < e.resetAt) return { engagement: e, counted: false };
  const contribution = (occurredAt: number) => behavior.points * decayFactor(occurredAt, e.at, halfLifeMs);
  const add = (x: Engagement, sign: 1 | -1, occurredAt: number): Engagement =>
    behavior.points >= 0
      ? { ...x, pos: x.pos + sign * contribution(occurredAt) }
      : { ...x, neg: x.neg + sign * behavior.points };

  if (!behavior.maxPerDay) return { engagement: add(e, 1, ev.occurredAt), counted: true };

  const key = `${ev.type}|${Math.floor(ev.occurredAt / DAY)}`;
  const counted = e.caps[key] ?? [];
  const later = (a: [number, string], b: [number, string]) => a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0);
  const entry: [number, string] = [ev.occurredAt, ev.eventId];
  if (counted.length < behavior.maxPerDay) {
    const next = [...counted, entry].sort(later);
    return { engagement: { ...add(e, 1, ev.occurredAt), caps: { ...e.caps, [key]: next } }, counted: true };
  }
  // Full day: the new event counts only if it is later than the earliest counted one, which it replaces.
  const earliest = counted[0]!;
  if (later(entry, earliest) <= 0) return { engagement: e, counted: false };
  const next = [...counted.slice(1), entry].sort(later);
  const swapped = add(add(e, -1, earliest[0]), 1, ev.occurredAt);
  return { engagement: { ...swapped, caps: { ...e.caps, [key]: next } }, counted: true };
}

/** True when a profile matches one rule. A missing field matches only `exists: false`. */
export function matchesRule(profile: Profile, rule: Rule): boolean {
  const value = profile[rule.field];
  if (rule.exists !== undefined) return (value !== undefined && value !== null && value !== '') === rule.exists;
  if (value === undefined || value === null || value === '') return false;
  const same = (a: unknown, b: unknown) =>
    typeof a === 'string' && typeof b === 'string' ? a.toLowerCase() === b.toLowerCase() : a === b;
  if (rule.in) return rule.in.some((x) => same(x, value));
  if (rule.notIn) return !rule.notIn.some((x) => same(x, value));
  if (rule.pattern) return new RegExp(rule.pattern, 'i').test(String(value));
  if (rule.domain) {
    const domain = String(value).split('@').pop()!.toLowerCase();
    return rule.domain.some((d) => domain === d.toLowerCase() || domain.endsWith(`.${d.toLowerCase()}`));
  }
  const n = typeof value === 'number' ? value : Number(value);
  if (Number.isNaN(n)) return false;
  return (rule.min === undefined || n >= rule.min) && (rule.max === undefined || n <= rule.max);
}

export function describeRule(rule: Rule): string {
  if (rule.exists !== undefined) return `${rule.field} ${rule.exists ? 'present' : 'missing'}`;
  if (rule.in) return `${rule.field} in [${rule.in.join(', ')}]`;
  if (rule.notIn) return `${rule.field} not in [${rule.notIn.join(', ')}]`;
  if (rule.pattern) return `${rule.field} ~ /${rule.pattern}/`;
  if (rule.domain) return `${rule.field} domain in [${rule.domain.join(', ')}]`;
  return `${rule.field} in [${rule.min ?? '-inf'}, ${rule.max ?? 'inf'}]`;
}

/** Fit score: the sum of every matching fit rule's points. */
export function fitScore(profile: Profile, config: Config): number {
  return config.scoring.fit.reduce((sum, rule) => sum + (matchesRule(profile, rule) ? rule.points : 0), 0);
}

/** The first matching disqualify rule, described, or undefined. */
export function disqualifiedBy(profile: Profile, config: Config): string | undefined {
  const rule = config.scoring.disqualify.find((r) => matchesRule(profile, r));
  return rule && (rule.reason ?? describeRule(rule));
}

export interface Score {
  total: number;
  fit: number;
  engagement: number;
}

/** Whole-number score at time `t`: fit plus rounded engagement. */
export function scoreAt(fit: number, e: Engagement, t: number, config: Config): Score {
  const engagement = Math.round(engagementAt(e, t, config.scoring.decay?.halfLife));
  return { total: fit + engagement, fit, engagement };
}
