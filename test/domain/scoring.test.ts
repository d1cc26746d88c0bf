import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { type Behavior, type Config, configSchema } from '../../src/domain/config.js';
import type { Profile } from '../../src/domain/lead.js';
import {
  addEngagement,
  CAP_RETENTION_MS,
  describeRule,
  disqualifiedBy,
  type Engagement,
  emptyEngagement,
  engagementAt,
  fitScore,
  matchesRule,
  rebase,
  type ScoredEvent,
  scoreAt,
} from '../../src/domain/scoring.js';

const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 5); // a Monday, 00:00 UTC
const HALF_LIFE = 30 * DAY;

function makeConfig(scoring: Record<string, unknown> = {}): Config {
  return configSchema.parse({
    scoring: {
      thresholds: { mql: 40, sql: 75, minFit: 10 },
      behavior: {
        email_open: { points: 1, maxPerDay: 3 },
        email_click: { points: 3, maxPerDay: 1 },
        content_download: { points: 10 },
        careers_page_view: { points: -10, maxPerDay: 1 },
        competitor_signal: { points: -5 },
        neutral: { points: 0 },
      },
      decay: { halfLife: '30d' },
      ...scoring,
    },
    timeouts: { mqlStaleAfter: '30d', salesAcceptWithin: '48h', dormantAfter: '180d' },
    routing: [{ owners: ['team@sales.example'] }],
    email: { from: 'Acme <m@acme.example>' },
  });
}

const makeModel = (scoring: Record<string, unknown> = {}) => makeConfig(scoring).scoring.models[0]!;
const model = makeModel();
const behaviors = model.behavior;
const TYPES = Object.keys(behaviors);
const behaviorOf = (type: string): Behavior => behaviors[type]!;

/** Feeds events in the given (arrival) order the way the workflow does: rebase to the arrival time, then add. */
function feed(
  events: readonly ScoredEvent[],
  start: Engagement = emptyEngagement(T0),
  decay: number | null = HALF_LIFE,
): Engagement {
  const halfLife = decay ?? undefined;
  let e = start;
  let now = start.at;
  for (const ev of events) {
    now = Math.max(now, ev.occurredAt);
    e = addEngagement(rebase(e, now, halfLife), ev, behaviorOf(ev.type), halfLife).engagement;
  }
  return e;
}

const later = (a: ScoredEvent, b: ScoredEvent) =>
  a.occurredAt - b.occurredAt || (a.eventId < b.eventId ? -1 : a.eventId > b.eventId ? 1 : 0);

/** What the documented rules say the engagement is at `t`: per type and UTC day, the maxPerDay latest events count. */
function expectedEngagement(
  events: readonly ScoredEvent[],
  t: number,
  halfLife = HALF_LIFE,
  resetAt = -Infinity,
): number {
  const groups = new Map<string, ScoredEvent[]>();
  for (const ev of events) {
    if (ev.occurredAt < resetAt) continue;
    const key = `${ev.type}|${Math.floor(ev.occurredAt / DAY)}`;
    groups.set(key, [...(groups.get(key) ?? []), ev]);
  }
  let sum = 0;
  for (const group of groups.values()) {
    const b = behaviorOf(group[0]!.type);
    const counted = b.maxPerDay ? [...group].sort(later).slice(-b.maxPerDay) : group;
    for (const ev of counted)
      sum += b.points >= 0 ? b.points * Math.pow(0.5, (t - ev.occurredAt) / halfLife) : b.points;
  }
  return sum;
}

// Events of the configured types within 20 days of T0 (well inside the cap retention), on a
// 30-minute grid so that several land on the same day and some at the same instant.
const eventsArb = fc
  .uniqueArray(
    fc.record({
      type: fc.constantFrom(...TYPES),
      slot: fc.integer({ min: 0, max: 20 * 48 }),
      id: fc.integer({ min: 0, max: 10_000 }),
    }),
    { selector: (r) => r.id, maxLength: 40 },
  )
  .map((rs) =>
    rs.map((r): ScoredEvent => ({ type: r.type, eventId: `ev-${r.id}`, occurredAt: T0 + r.slot * 30 * MIN })),
  );

const shuffle = <T>(xs: readonly T[], keys: readonly number[]) =>
  xs
    .map((x, i) => [x, keys[i] ?? 0] as const)
    .sort((a, b) => a[1] - b[1])
    .map(([x]) => x);

const lastTime = (events: readonly ScoredEvent[]) => Math.max(T0, ...events.map((e) => e.occurredAt));

describe('engagement (property)', () => {
  it('matches the documented rules: decayed sum of the maxPerDay latest events per type and UTC day', () => {
    fc.assert(
      fc.property(eventsArb, fc.integer({ min: 0, max: 60 * DAY }), (events, after) => {
        const t = lastTime(events) + after;
        const got = engagementAt(feed(events), t, HALF_LIFE);
        assert.ok(
          Math.abs(got - expectedEngagement(events, t)) < 1e-6,
          `got ${got}, expected ${expectedEngagement(events, t)}`,
        );
      }),
    );
  });

  it('does not depend on arrival order', () => {
    fc.assert(
      fc.property(
        eventsArb,
        fc.array(fc.double({ noNaN: true }), { minLength: 40, maxLength: 40 }),
        fc.integer({ min: 0, max: 30 * DAY }),
        (events, keys, after) => {
          const t = lastTime(events) + after;
          const a = engagementAt(feed(events), t, HALF_LIFE);
          const b = engagementAt(feed(shuffle(events, keys)), t, HALF_LIFE);
          const c = engagementAt(feed([...events].reverse()), t, HALF_LIFE);
          assert.ok(Math.abs(a - b) < 1e-6, `${a} vs ${b}`);
          assert.ok(Math.abs(a - c) < 1e-6, `${a} vs ${c}`);
        },
      ),
    );
  });

  it('never counts more than maxPerDay events of a type per UTC day, and keeps the latest ones', () => {
    fc.assert(
      fc.property(eventsArb, fc.array(fc.double({ noNaN: true }), { minLength: 40, maxLength: 40 }), (events, keys) => {
        const e = feed(shuffle(events, keys));
        for (const [key, counted] of Object.entries(e.caps)) {
          const [type, day] = key.split('|');
          const max = behaviorOf(type!).maxPerDay!;
          assert.ok(counted.length <= max, `${key}: ${counted.length} > ${max}`);
          const ofDay = events
            .filter((ev) => ev.type === type && Math.floor(ev.occurredAt / DAY) === Number(day))
            .sort(later);
          assert.deepEqual(
            counted,
            ofDay.slice(-max).map((ev) => [ev.occurredAt, ev.eventId]),
          );
        }
        for (const ev of events) {
          if (behaviorOf(ev.type).maxPerDay)
            assert.ok(e.caps[`${ev.type}|${Math.floor(ev.occurredAt / DAY)}`], `a bucket for ${ev.eventId}`);
        }
      }),
    );
  });

  it('decay never raises engagement', () => {
    fc.assert(
      fc.property(
        eventsArb,
        fc.integer({ min: 0, max: 400 * DAY }),
        fc.integer({ min: 0, max: 400 * DAY }),
        (events, d1, d2) => {
          const e = feed(events);
          const t1 = e.at + Math.min(d1, d2);
          const t2 = e.at + Math.max(d1, d2);
          assert.ok(
            engagementAt(e, t2, HALF_LIFE) <= engagementAt(e, t1, HALF_LIFE),
            `${engagementAt(e, t2, HALF_LIFE)} > ${engagementAt(e, t1, HALF_LIFE)}`,
          );
          assert.ok(scoreAt(0, e, t2, model).engagement <= scoreAt(0, e, t1, model).engagement);
        },
      ),
    );
  });

  it('a positive event never lowers engagement, a negative one never raises it', () => {
    fc.assert(
      fc.property(
        eventsArb,
        fc.constantFrom(...TYPES),
        fc.integer({ min: 0, max: 20 * 48 }),
        fc.integer({ min: 0, max: 10 * DAY }),
        fc.integer({ min: 0, max: 30 * DAY }),
        (events, type, slot, arrivalDelay, after) => {
          const before = feed(events);
          const ev: ScoredEvent = { type, eventId: 'new-event', occurredAt: T0 + slot * 30 * MIN };
          const now = Math.max(before.at, ev.occurredAt) + arrivalDelay;
          const { engagement } = addEngagement(rebase(before, now, HALF_LIFE), ev, behaviorOf(type), HALF_LIFE);
          const t = now + after;
          const delta = engagementAt(engagement, t, HALF_LIFE) - engagementAt(before, t, HALF_LIFE);
          if (behaviorOf(type).points >= 0) assert.ok(delta >= -1e-9, `${type} lowered engagement by ${-delta}`);
          else assert.ok(delta <= 1e-9, `${type} raised engagement by ${delta}`);
        },
      ),
    );
  });

  it('without decay, engagement is the plain sum of counted points', () => {
    fc.assert(
      fc.property(eventsArb, (events) => {
        const e = feed(events, emptyEngagement(T0), null);
        const t = lastTime(events) + 365 * DAY;
        assert.ok(Math.abs(engagementAt(e, t, undefined) - expectedEngagement(events, t, Infinity)) < 1e-9);
      }),
    );
  });
});

describe('engagement (examples)', () => {
  const at = (ms: number) => ms;

  it('halves positive points every half-life and keeps negative points', () => {
    let e = feed([{ type: 'content_download', eventId: 'a', occurredAt: T0 }]);
    assert.equal(engagementAt(e, T0, HALF_LIFE), 10);
    assert.ok(Math.abs(engagementAt(e, T0 + HALF_LIFE, HALF_LIFE) - 5) < 1e-9);
    assert.ok(Math.abs(engagementAt(e, T0 + 2 * HALF_LIFE, HALF_LIFE) - 2.5) < 1e-9);
    e = feed([{ type: 'competitor_signal', eventId: 'b', occurredAt: T0 }], e);
    assert.ok(Math.abs(engagementAt(e, T0 + 2 * HALF_LIFE, HALF_LIFE) - -2.5) < 1e-9);
    assert.equal(engagementAt(e, T0 + 100 * HALF_LIFE, HALF_LIFE) > -5 - 1e-9, true);
  });

  it('scores a late event at its own occurredAt', () => {
    const now = T0 + HALF_LIFE;
    const e = addEngagement(
      rebase(emptyEngagement(T0), now, HALF_LIFE),
      { type: 'content_download', eventId: 'late', occurredAt: T0 },
      behaviorOf('content_download'),
      HALF_LIFE,
    ).engagement;
    assert.ok(Math.abs(engagementAt(e, now, HALF_LIFE) - 5) < 1e-9);
  });

  it('caps a type per UTC day: an open earlier than the three counted does not count, the next day counts again', () => {
    const opens = [3, 2, 1, 0].map((i): ScoredEvent => ({
      type: 'email_open',
      eventId: `o${i}`,
      occurredAt: T0 + 10 * HOUR + i * MIN,
    }));
    let e = emptyEngagement(T0 + 11 * HOUR);
    const counted = opens.map((ev) => {
      const r = addEngagement(e, ev, behaviorOf('email_open'), undefined);
      e = r.engagement;
      return r.counted;
    });
    assert.deepEqual(counted, [true, true, true, false]);
    assert.equal(engagementAt(e, at(T0 + 12 * HOUR), undefined), 3);
    const r = addEngagement(
      e,
      { type: 'email_open', eventId: 'next-day', occurredAt: T0 + DAY + HOUR },
      behaviorOf('email_open'),
      undefined,
    );
    assert.equal(r.counted, true);
    assert.equal(engagementAt(r.engagement, T0 + 2 * DAY, undefined), 4);
  });

  it('a later event of a full day replaces the earliest counted one, an earlier one is refused', () => {
    const b = behaviorOf('email_click'); // 3 points, maxPerDay 1
    const now = T0 + 20 * HOUR;
    let e = rebase(emptyEngagement(T0), now, HALF_LIFE);
    e = addEngagement(e, { type: 'email_click', eventId: 'b', occurredAt: T0 + 12 * HOUR }, b, HALF_LIFE).engagement;
    const earlier = addEngagement(e, { type: 'email_click', eventId: 'a', occurredAt: T0 + 9 * HOUR }, b, HALF_LIFE);
    assert.equal(earlier.counted, false);
    assert.equal(earlier.engagement, e);
    const laterOne = addEngagement(e, { type: 'email_click', eventId: 'c', occurredAt: T0 + 15 * HOUR }, b, HALF_LIFE);
    assert.equal(laterOne.counted, true);
    assert.deepEqual(laterOne.engagement.caps[`email_click|${T0 / DAY}`], [[T0 + 15 * HOUR, 'c']]);
    assert.ok(
      Math.abs(engagementAt(laterOne.engagement, now, HALF_LIFE) - 3 * Math.pow(0.5, (5 * HOUR) / HALF_LIFE)) < 1e-9,
    );
    // Same instant: the tie goes to the greater eventId, so the order of arrival does not matter.
    const tieLow = addEngagement(e, { type: 'email_click', eventId: 'a', occurredAt: T0 + 12 * HOUR }, b, HALF_LIFE);
    const tieHigh = addEngagement(e, { type: 'email_click', eventId: 'z', occurredAt: T0 + 12 * HOUR }, b, HALF_LIFE);
    assert.equal(tieLow.counted, false);
    assert.equal(tieHigh.counted, true);
  });

  it('a capped negative type takes its points once a day', () => {
    const e = feed([0, 1, 2].map((i) => ({ type: 'careers_page_view', eventId: `c${i}`, occurredAt: T0 + i * HOUR })));
    assert.equal(e.neg, -10);
    assert.equal(e.pos, 0);
    assert.equal(engagementAt(e, T0 + 400 * DAY, HALF_LIFE), -10);
  });

  it('a zero-point type changes nothing', () => {
    const e = feed([{ type: 'neutral', eventId: 'n', occurredAt: T0 }]);
    assert.equal(engagementAt(e, T0, HALF_LIFE), 0);
  });

  it('events before a reset do not count, events from the reset on do', () => {
    const reset: Engagement = { ...emptyEngagement(T0 + DAY), resetAt: T0 + DAY };
    const before = addEngagement(
      reset,
      { type: 'content_download', eventId: 'old', occurredAt: T0 + DAY - 1 },
      behaviorOf('content_download'),
      HALF_LIFE,
    );
    assert.equal(before.counted, false);
    assert.equal(before.engagement, reset);
    const onReset = addEngagement(
      reset,
      { type: 'content_download', eventId: 'new', occurredAt: T0 + DAY },
      behaviorOf('content_download'),
      HALF_LIFE,
    );
    assert.equal(onReset.counted, true);
    assert.equal(engagementAt(onReset.engagement, T0 + DAY, HALF_LIFE), 10);
  });

  it("scoring does not de-duplicate eventIds: that is the workflow's job", () => {
    const ev: ScoredEvent = { type: 'content_download', eventId: 'same', occurredAt: T0 };
    const e = feed([ev, ev], emptyEngagement(T0), null);
    assert.equal(engagementAt(e, T0, undefined), 20);
  });

  it('rebase keeps the value, moves the reference time and drops cap buckets past retention', () => {
    const e = feed([
      { type: 'email_open', eventId: 'o', occurredAt: T0 + HOUR },
      { type: 'content_download', eventId: 'd', occurredAt: T0 + HOUR },
    ]);
    const t = T0 + 10 * DAY;
    const r = rebase(e, t, HALF_LIFE);
    assert.equal(r.at, t);
    assert.ok(Math.abs(engagementAt(r, t + DAY, HALF_LIFE) - engagementAt(e, t + DAY, HALF_LIFE)) < 1e-9);
    assert.deepEqual(Object.keys(r.caps), [`email_open|${T0 / DAY}`]);
    const far = rebase(e, T0 + CAP_RETENTION_MS + 2 * DAY, HALF_LIFE);
    assert.deepEqual(far.caps, {});
    assert.ok(Math.abs(engagementAt(far, far.at, HALF_LIFE) - engagementAt(e, far.at, HALF_LIFE)) < 1e-9);
  });

  it('scoreAt adds fit to rounded engagement', () => {
    const e: Engagement = { pos: 10.6, neg: -3, at: T0, caps: {} };
    assert.deepEqual(scoreAt(12, e, T0, model), { total: 20, fit: 12, engagement: 8 });
    assert.deepEqual(scoreAt(12, e, T0 + HALF_LIFE, model), { total: 14, fit: 12, engagement: 2 });
    for (const s of [scoreAt(12, e, T0 + 7 * DAY + 5, model)]) {
      assert.ok(Number.isInteger(s.total) && Number.isInteger(s.engagement));
    }
  });
});

describe('fit rules', () => {
  const rule = (r: Record<string, unknown>) => r as any;

  it('in / notIn compare case-insensitively and exactly for numbers', () => {
    assert.equal(matchesRule({ seniority: 'VP' }, rule({ field: 'seniority', in: ['vp', 'director'] })), true);
    assert.equal(matchesRule({ seniority: 'manager' }, rule({ field: 'seniority', in: ['vp', 'director'] })), false);
    assert.equal(matchesRule({ country: 'BR' }, rule({ field: 'country', notIn: ['US', 'DE'] })), true);
    assert.equal(matchesRule({ country: 'de' }, rule({ field: 'country', notIn: ['US', 'DE'] })), false);
    assert.equal(matchesRule({ companySize: 50 }, rule({ field: 'companySize', in: [50, 100] })), true);
    assert.equal(matchesRule({ companySize: 51 }, rule({ field: 'companySize', in: [50, 100] })), false);
    assert.equal(matchesRule({ partner: true }, rule({ field: 'partner', in: [true] })), true);
  });

  it('pattern is a case-insensitive regular expression', () => {
    const r = rule({ field: 'jobTitle', pattern: 'student|intern' });
    assert.equal(matchesRule({ jobTitle: 'Marketing Intern' }, r), true);
    assert.equal(matchesRule({ jobTitle: 'PhD STUDENT' }, r), true);
    assert.equal(matchesRule({ jobTitle: 'CMO' }, r), false);
    assert.equal(
      matchesRule({ jobTitle: 'Head of Sales' }, rule({ field: 'jobTitle', pattern: '\\b(cmo|head of)\\b' })),
      true,
    );
  });

  it('domain matches the domain of an address and its subdomains, not look-alikes', () => {
    const r = rule({ field: 'email', domain: ['competitor.example'] });
    assert.equal(matchesRule({ email: 'spy@competitor.example' }, r), true);
    assert.equal(matchesRule({ email: 'spy@EU.Competitor.Example' }, r), true);
    assert.equal(matchesRule({ email: 'ann@notcompetitor.example' }, r), false);
    assert.equal(matchesRule({ email: 'ann@competitor.example.org' }, r), false);
    assert.equal(
      matchesRule({ website: 'competitor.example' }, rule({ field: 'website', domain: ['competitor.example'] })),
      true,
    );
  });

  it('min / max are inclusive bounds on numbers (numeric strings too)', () => {
    const r = rule({ field: 'companySize', min: 200 });
    assert.equal(matchesRule({ companySize: 200 }, r), true);
    assert.equal(matchesRule({ companySize: 199 }, r), false);
    assert.equal(
      matchesRule({ companySize: 250 } as Profile, rule({ field: 'companySize', min: 200, max: 250 })),
      true,
    );
    assert.equal(matchesRule({ companySize: 251 }, rule({ field: 'companySize', min: 200, max: 250 })), false);
    assert.equal(matchesRule({ companySize: 5 }, rule({ field: 'companySize', max: 10 })), true);
    assert.equal(matchesRule({ employees: '500' }, rule({ field: 'employees', min: 200 })), true);
    assert.equal(matchesRule({ employees: 'many' }, rule({ field: 'employees', min: 200 })), false);
  });

  it('exists tests presence; empty and null count as missing', () => {
    assert.equal(matchesRule({ company: 'Acme' }, rule({ field: 'company', exists: true })), true);
    assert.equal(matchesRule({}, rule({ field: 'company', exists: true })), false);
    assert.equal(matchesRule({}, rule({ field: 'company', exists: false })), true);
    assert.equal(matchesRule({ company: '' }, rule({ field: 'company', exists: false })), true);
    assert.equal(matchesRule({ company: null } as unknown as Profile, rule({ field: 'company', exists: false })), true);
    assert.equal(matchesRule({ company: 'Acme' }, rule({ field: 'company', exists: false })), false);
  });

  it('a missing field never matches any other kind of rule, notIn and max included', () => {
    const rules = [
      rule({ field: 'x', in: ['a'] }),
      rule({ field: 'x', notIn: ['a'] }),
      rule({ field: 'x', pattern: '.*' }),
      rule({ field: 'x', domain: ['a.example'] }),
      rule({ field: 'x', min: 0 }),
      rule({ field: 'x', max: 100 }),
      rule({ field: 'x', min: -1e9, max: 1e9 }),
    ];
    for (const profile of [{}, { x: null }, { x: '' }] as unknown as Profile[]) {
      for (const r of rules)
        assert.equal(matchesRule(profile, r), false, `${JSON.stringify(profile)} vs ${describeRule(r)}`);
    }
  });

  it('fitScore sums every matching rule, negative points included', () => {
    const c = makeModel({
      fit: [
        { field: 'seniority', in: ['vp'], points: 20 },
        { field: 'jobTitle', pattern: 'intern', points: -25 },
        { field: 'companySize', min: 200, points: 15 },
        { field: 'companySize', min: 1000, points: 5 },
        { field: 'companySize', max: 10, points: -10 },
      ],
    });
    assert.equal(fitScore({}, c), 0);
    assert.equal(fitScore({ seniority: 'vp', companySize: 5000 }, c), 40);
    assert.equal(fitScore({ seniority: 'vp', companySize: 500 }, c), 35);
    assert.equal(fitScore({ jobTitle: 'Intern', companySize: 3 }, c), -35);
  });

  it('fitScore on the default config', () => {
    const c = makeModel({
      fit: [
        { field: 'seniority', in: ['c_level', 'vp', 'director'], points: 20 },
        { field: 'jobTitle', pattern: 'student|intern|trainee', points: -25 },
        { field: 'country', in: ['US', 'CA', 'GB', 'DE'], points: 5 },
      ],
    });
    assert.equal(fitScore({ seniority: 'director', country: 'US' }, c), 25);
    assert.equal(fitScore({ jobTitle: 'Sales trainee', country: 'FR' }, c), -25);
  });

  it("disqualifiedBy gives the first matching rule's reason, or its description", () => {
    const c = makeModel({
      disqualify: [
        { field: 'country', notIn: ['US', 'DE'], reason: 'outside the sales regions' },
        { field: 'email', domain: ['competitor.example'] },
        { field: 'jobTitle', pattern: 'student', reason: 'student' },
      ],
    });
    assert.equal(disqualifiedBy({ country: 'US' }, c), undefined);
    assert.equal(disqualifiedBy({}, c), undefined, 'a missing country is not outside the regions');
    assert.equal(disqualifiedBy({ country: 'BR', jobTitle: 'student' }, c), 'outside the sales regions');
    assert.equal(
      disqualifiedBy({ country: 'US', email: 'x@competitor.example' }, c),
      'email domain in [competitor.example]',
    );
    assert.equal(disqualifiedBy({ country: 'DE', jobTitle: 'Student' }, c), 'student');
  });

  it('describeRule says what each kind of rule tests', () => {
    assert.equal(describeRule(rule({ field: 'a', in: ['x', 'y'] })), 'a in [x, y]');
    assert.equal(describeRule(rule({ field: 'a', notIn: ['x'] })), 'a not in [x]');
    assert.equal(describeRule(rule({ field: 'a', pattern: 'x|y' })), 'a ~ /x|y/');
    assert.equal(describeRule(rule({ field: 'a', min: 1 })), 'a in [1, inf]');
    assert.equal(describeRule(rule({ field: 'a', max: 9 })), 'a in [-inf, 9]');
    assert.equal(describeRule(rule({ field: 'a', exists: false })), 'a missing');
  });
});
