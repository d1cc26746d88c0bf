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
import type { Behavior, Config, Rule, ScoringModel } from './config.js';
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
  /**
   * The same points by event type, for the score's factors: `[pos, neg, earned, count]` with `pos`
   * decayed to `at` like the total, `earned` the points as they were earned (undecayed) and `count`
   * the counted events. Absent in engagement carried from before it was kept.
   */
  types?: Record<string, [number, number, number, number]>;
}

export const emptyEngagement = (now: number): Engagement => ({ pos: 0, neg: 0, at: now, caps: {}, types: {} });

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
  const f = decayFactor(e.at, t, halfLifeMs);
  const types =
    e.types &&
    Object.fromEntries(
      Object.entries(e.types).map(([k, [p, n, earned, count]]) => [
        k,
        [p * f, n, earned, count] as [number, number, number, number],
      ]),
    );
  return { ...e, pos: e.pos * f, at: t, caps, ...(types ? { types } : {}) };
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
  const add = (x: Engagement, sign: 1 | -1, occurredAt: number): Engagement => {
    const [p, n, earned, count] = x.types?.[ev.type] ?? [0, 0, 0, 0];
    const part: [number, number, number, number] =
      behavior.points >= 0
        ? [p + sign * contribution(occurredAt), n, earned + sign * behavior.points, count + sign]
        : [p, n + sign * behavior.points, earned + sign * behavior.points, count + sign];
    const types = x.types && { ...x.types, [ev.type]: part };
    const sum =
      behavior.points >= 0
        ? { ...x, pos: x.pos + sign * contribution(occurredAt) }
        : { ...x, neg: x.neg + sign * behavior.points };
    return types ? { ...sum, types } : sum;
  };

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

/** The id a config with a single (flat) model gives it. */
export const DEFAULT_MODEL_ID = 'default';
const normalized = new WeakMap<object, ScoringModel[]>();

/**
 * The config's models. A config parsed before models (a flat `scoring`) still reaches the model:
 * recorded in running leads' histories (the leadContext result a replay reads back) and sent by a
 * worker not yet upgraded; it is the one model `default`, as config.ts would parse it now.
 */
export function modelsOf(config: Config): ScoringModel[] {
  const scoring = config.scoring as Config['scoring'] | Omit<ScoringModel, 'id'>;
  if ('models' in scoring) return scoring.models;
  let models = normalized.get(scoring);
  if (!models) normalized.set(scoring, (models = [{ id: DEFAULT_MODEL_ID, ...scoring }]));
  return models;
}

/** Whether some model scores events of this type. */
export function isScoredType(type: string, config: Config): boolean {
  return modelsOf(config).some((m) => type in m.behavior);
}

/** The model that scores a profile: the first whose `when` rules all match (the last has none). */
export function modelFor(profile: Profile, config: Config): ScoringModel {
  const models = modelsOf(config);
  return models.find((m) => !m.when || m.when.every((r) => matchesRule(profile, r))) ?? models[models.length - 1]!;
}

/** A model by id, or (an id this config does not have) the one the profile gets now. */
export function modelById(id: string | undefined, profile: Profile, config: Config): ScoringModel {
  return modelsOf(config).find((m) => m.id === id) ?? modelFor(profile, config);
}

/** Fit score: the sum of every matching fit rule's points. */
export function fitScore(profile: Profile, model: ScoringModel): number {
  return model.fit.reduce((sum, rule) => sum + (matchesRule(profile, rule) ? rule.points : 0), 0);
}

/** The first matching disqualify rule, described, or undefined. */
export function disqualifiedBy(profile: Profile, model: ScoringModel): string | undefined {
  const rule = model.disqualify.find((r) => matchesRule(profile, r));
  return rule && (rule.reason ?? describeRule(rule));
}

export interface Score {
  total: number;
  fit: number;
  engagement: number;
}

/** Whole-number score at time `t`: fit plus rounded engagement. */
export function scoreAt(fit: number, e: Engagement, t: number, model: ScoringModel): Score {
  const engagement = Math.round(engagementAt(e, t, model.decay?.halfLife));
  return { total: fit + engagement, fit, engagement };
}

/** One part of a score (CONTRACT.md `score.factors`). */
export interface Factor {
  /** The fit rule as the config reads, or the behaviour (event type). */
  rule: string;
  /** What it adds now (whole points; engagement decayed to now). */
  points: number;
  /** Fit: the profile value that matched. */
  value?: string | number | boolean;
  /** Behaviour: the counted events, and the points they earned before decay. */
  count?: number;
  earned?: number;
}

/** Engagement kept before the score remembered it by type (a lead carried from an older version). */
export const EARLIER_ENGAGEMENT = 'earlier engagement';

/**
 * Every fit rule and behaviour that contributes to the score at time `t`, largest (by size) first:
 * the matching fit rules, and the engagement of each event type decayed to `t`.
 */
export function scoreFactors(profile: Profile, e: Engagement, t: number, model: ScoringModel): Factor[] {
  const halfLife = model.decay?.halfLife;
  const factors: Factor[] = model.fit
    .filter((r) => matchesRule(profile, r))
    .map((r) => {
      const value = profile[r.field];
      return { rule: describeRule(r), points: r.points, ...(value !== undefined && value !== null ? { value } : {}) };
    });
  const f = decayFactor(e.at, t, halfLife);
  let attributed = 0;
  for (const [type, [pos, neg, earned, count]] of Object.entries(e.types ?? {})) {
    const now = pos * f + neg;
    attributed += now;
    if (count > 0) factors.push({ rule: type, points: Math.round(now), count, earned });
  }
  const rest = engagementAt(e, t, halfLife) - attributed;
  if (!e.types && Math.round(rest) !== 0) factors.push({ rule: EARLIER_ENGAGEMENT, points: Math.round(rest) });
  return factors.sort(
    (a, b) => Math.abs(b.points) - Math.abs(a.points) || (a.rule < b.rule ? -1 : a.rule > b.rule ? 1 : 0),
  );
}
