import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { loadConfigFile } from '../../src/config-file.js';
import type { Config } from '../../src/domain/config.js';
import {
  OUTCOME_STAGE,
  type Profile,
  REJECT_REASONS,
  type SalesOutcome,
  STAGES,
  type Stage,
} from '../../src/domain/lead.js';
import {
  advance,
  applyEvent,
  applyOutcome,
  isKnownEventType,
  applyProfile,
  assignOwner,
  earnedPoints,
  type Effect,
  type EventFact,
  isTerminal,
  type LeadCore,
  mqlStaleAt,
  newLead,
  nextWake,
  outcomeError,
  routingRuleFor,
  searchAttributesOf,
  toState,
  transition,
} from '../../src/domain/lifecycle.js';

// Run from the repository root: the default config and its templates.
const { config, version } = loadConfigFile('config/default.yaml');

const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
const T0 = Date.parse('2026-01-05T15:00:00Z'); // Monday 10:00 in New York

/** A LeadInput as callers send it (zod's inferred LeadStart type cannot hold `consent` next to its catch-all). */
type Input = { leadId: string; consent?: { email: boolean } } & Record<string, unknown>;
const create = newLead as unknown as (input: Input, config: Config, configVersion: string, now: number) => LeadCore;

/** fit 30 on the default config: manager 10, companySize >= 200 15, US 5. */
const MANAGER: Input = {
  leadId: 'lead-manager',
  email: 'pat@buyer.example',
  firstName: 'Pat',
  country: 'US',
  seniority: 'manager',
  companySize: 250,
};
/** fit 5 (US only): below minFit 10. */
const LOW_FIT: Input = { leadId: 'lead-low', email: 'lo@buyer.example', country: 'US' };

let seq = 0;
const ev = (type: string, occurredAt: number, extra: Partial<EventFact> = {}): EventFact => ({
  eventId: `ev-${++seq}`,
  type,
  occurredAt,
  ...extra,
});

/** Applies events at `now` (each occurring at `now` unless given). */
function events(core: LeadCore, now: number, ...types: string[]): LeadCore {
  return types.reduce((c, type) => applyEvent(c, ev(type, now), config, now), core);
}

/**
 * Lets the rules act at `now` the way the workflow does: carries out the effects (the first owner of
 * the rule is picked, mail "is sent") and advances again until nothing more happens.
 */
function settle(core: LeadCore, now: number, cfg: Config = config): { core: LeadCore; effects: Effect[] } {
  const all: Effect[] = [];
  let c = core;
  for (let i = 0; i < 20; i++) {
    const r = advance(c, cfg, now);
    c = r.core;
    const effects: Effect[] = [];
    for (const e of r.effects) {
      effects.push(e);
      if (e.kind === 'assignOwner') {
        const assigned = assignOwner(c, e.owners[0]!);
        c = assigned.core;
        effects.push(assigned.effect);
      }
    }
    all.push(...effects);
    if (!effects.length) return { core: c, effects: all };
  }
  throw new Error('advance did not settle');
}

const nurtureOf = (effects: Effect[]) =>
  effects.filter((e): e is Extract<Effect, { kind: 'nurture' }> => e.kind === 'nurture');
const lastTransition = (c: LeadCore) => c.transitions.at(-1)!;
/** The score's total and parts (its model and factors have tests of their own). */
const score = (c: LeadCore, now: number) => {
  const { total, fit, engagement } = toState(c, config, now).score;
  return { total, fit, engagement };
};

function lead(input: Input = MANAGER, now = T0): LeadCore {
  return settle(create(input, config, version, now), now).core;
}
function mql(input: Input = MANAGER, now = T0): LeadCore {
  const c = settle(events(lead(input, now), now, 'content_download'), now).core;
  assert.equal(c.stage, 'mql');
  return c;
}
function sql(input: Input = MANAGER, now = T0): LeadCore {
  const c = settle(events(lead(input, now), now, 'demo_request'), now).core;
  assert.equal(c.stage, 'sql');
  return c;
}
function opportunity(now = T0): LeadCore {
  const c = applyOutcome(sql(MANAGER, now), { outcome: 'accepted', rep: 'ana@sales.example' }, config, now + HOUR);
  assert.equal(c.stage, 'opportunity');
  return c;
}

describe('newLead', () => {
  it('starts as a lead with its fit, subscribed, on the welcome track', () => {
    const c = create({ ...MANAGER, campaign: 'spring-webinar', channel: 'webinar' }, config, version, T0);
    assert.equal(c.stage, 'lead');
    assert.equal(c.fit, 30);
    assert.equal(c.consent, 'subscribed');
    assert.equal(c.campaign, 'spring-webinar');
    assert.equal(c.profile.email, MANAGER.email);
    assert.equal((c.profile as Record<string, unknown>).leadId, undefined, 'the id is not a profile field');
    assert.deepEqual(c.nurture, { track: 'welcome', step: 0, lastStepAt: T0, nextStepAt: T0 });
    assert.equal(c.configVersion, version);
    assert.deepEqual(c.transitions, []);
  });

  it('without email consent, starts unsubscribed', () => {
    assert.equal(create({ ...MANAGER, consent: { email: false } }, config, version, T0).consent, 'unsubscribed');
    assert.equal(create({ ...MANAGER, consent: { email: true } }, config, version, T0).consent, 'subscribed');
  });

  it('its public state uses ISO times and whole-number scores', () => {
    const c = applyEvent(create(MANAGER, config, version, T0), ev('email_open', T0 - 10 * DAY), config, T0);
    const s = toState(c, config, T0 + 3 * DAY);
    assert.equal(s.createdAt, '2026-01-05T15:00:00.000Z');
    assert.equal(s.lastEngagedAt, '2025-12-26T15:00:00.000Z');
    assert.equal(s.nurture.nextStepAt, '2026-01-05T15:00:00.000Z');
    assert.deepEqual(
      { total: s.score.total, fit: s.score.fit, engagement: s.score.engagement, model: s.score.model },
      { total: 31, fit: 30, engagement: 1, model: 'default' },
    );
    assert.equal(s.scoreLog[0]!.at, '2025-12-26T15:00:00.000Z');
    assert.equal(s.configVersion, version);
  });
});

describe('events and profile', () => {
  it('count events, keep the first campaign and score late events at their own time', () => {
    let c = create(MANAGER, config, version, T0);
    c = applyEvent(c, ev('content_download', T0 - 30 * DAY, { campaign: 'google-ads-q2' }), config, T0);
    c = applyEvent(c, ev('page_view', T0, { campaign: 'linkedin-abm' }), config, T0);
    assert.equal(c.eventsProcessed, 2);
    assert.equal(c.campaign, 'google-ads-q2');
    assert.deepEqual(score(c, T0), { total: 36, fit: 30, engagement: 6 }); // 10 halved + 1
    assert.match(c.scoreLog[0]!.note!, /late event/);
    assert.equal(c.scoreLog[0]!.points, 5);
    assert.equal(c.lastEngagedAt, T0);
  });

  it('an event from the future counts as happening now', () => {
    const c = applyEvent(create(MANAGER, config, version, T0), ev('content_download', T0 + 5 * DAY), config, T0);
    assert.equal(c.lastEngagedAt, T0);
    assert.equal(score(c, T0).engagement, 10);
  });

  it('ignores a type the config does not know, as the workflow always has: not counted, no points, not logged', () => {
    const before = create(MANAGER, config, version, T0);
    const c = applyEvent(before, ev('carrier_pigeon', T0), config, T0);
    assert.equal(isKnownEventType('carrier_pigeon', config), false);
    assert.equal(isKnownEventType('unsubscribe', config), true);
    assert.equal(isKnownEventType('email_open', config), true);
    assert.equal(c.eventsProcessed, 0);
    assert.deepEqual(score(c, T0), { total: 30, fit: 30, engagement: 0 });
    assert.deepEqual(c, before);
    assert.equal(c.lastEngagedAt, undefined);
  });

  it('counts earned points without decay or the clock: fit plus every counted event, negatives included', () => {
    // An old download (decayed in the score, not in the earned points), a careers visit, a capped repeat.
    let c = applyEvent(create(MANAGER, config, version, T0), ev('content_download', T0 - 60 * DAY), config, T0);
    c = events(c, T0, 'careers_page_view', 'careers_page_view', 'email_open');
    assert.equal(earnedPoints(c), 30 + 10 - 10 + 1);
    assert.notEqual(score(c, T0).total, earnedPoints(c), 'the score decays, the earned points do not');
    // The same facts applied under another task clock give the same points.
    let later = applyEvent(
      create(MANAGER, config, version, T0),
      ev('content_download', T0 - 60 * DAY),
      config,
      T0 + HOUR,
    );
    later = events(later, T0 + HOUR, 'careers_page_view', 'careers_page_view', 'email_open');
    assert.equal(earnedPoints(later), earnedPoints(c));
  });

  it('logs capped events without points', () => {
    let c = events(create(MANAGER, config, version, T0), T0, 'careers_page_view');
    c = applyEvent(c, ev('careers_page_view', T0 - HOUR), config, T0);
    assert.equal(score(c, T0).engagement, -10);
    assert.deepEqual(
      c.scoreLog.map((s) => s.points),
      [-10, 0],
    );
    assert.match(c.scoreLog.at(-1)!.note!, /capped at 1\/day/);
  });

  it('re-scores fit on a profile change, from a profile patch or an event', () => {
    let c = create(LOW_FIT, config, version, T0);
    assert.equal(c.fit, 5);
    c = applyProfile(c, { seniority: 'vp', jobTitle: 'VP Marketing' }, config, T0);
    assert.equal(c.fit, 35);
    assert.equal(c.scoreLog.at(-1)!.note, 'fit 5 -> 35');
    c = applyEvent(
      c,
      ev('page_view', T0, { profile: { jobTitle: 'Marketing intern' }, email: 'new@buyer.example' }),
      config,
      T0,
    );
    assert.equal(c.fit, 20 + 5 - 25);
    assert.equal(c.profile.email, 'new@buyer.example');
    assert.equal(c.eventsProcessed, 1);
  });
});

describe('qualification', () => {
  it('lead -> mql by score, when fit reaches minFit', () => {
    let c = lead();
    c = events(c, T0 + HOUR, 'email_click', 'email_click'); // 36
    c = settle(c, T0 + HOUR).core;
    assert.equal(c.stage, 'lead');
    c = settle(events(c, T0 + 2 * HOUR, 'pricing_page_view'), T0 + 2 * HOUR).core; // 46
    assert.equal(c.stage, 'mql');
    assert.equal(c.becameMqlAt, T0 + 2 * HOUR);
    assert.deepEqual(lastTransition(c), {
      at: T0 + 2 * HOUR,
      from: 'lead',
      to: 'mql',
      reason: 'score 46 >= mql 40 and fit 30 >= 10',
    });
    assert.equal(c.nurture.track, 'mql');
    assert.equal(c.nurture.nextStepAt, T0 + 2 * HOUR + DAY);
  });

  it('not to mql while fit is below minFit, however engaged', () => {
    let c = lead(LOW_FIT);
    c = settle(events(c, T0, 'webinar_attended', 'trial_signup', 'content_download', 'form_submit'), T0).core; // 5 + 58
    assert.equal(score(c, T0).total, 63);
    assert.equal(c.stage, 'lead');
    c = settle(applyProfile(c, { seniority: 'manager' }, config, T0 + HOUR), T0 + HOUR).core; // fit 15
    assert.equal(c.stage, 'mql', 'the profile change lifts fit over minFit');
  });

  it('mql -> sql by score, handing off to the routed owner with the SLA running', () => {
    let c = mql();
    c = settle(events(c, T0 + DAY, 'webinar_attended', 'trial_signup'), T0 + DAY).core;
    assert.equal(c.stage, 'sql');
    assert.deepEqual(lastTransition(c), {
      at: T0 + DAY,
      from: 'mql',
      to: 'sql',
      reason: `score ${score(c, T0 + DAY).total} >= sql 75`,
    });
    assert.equal(c.becameSqlAt, T0 + DAY);
    assert.equal(c.slaDeadline, T0 + DAY + 48 * HOUR);
    assert.equal(c.owner, 'ana@sales.example');
    assert.equal(c.routingRule, 0);
  });

  it('lead -> mql -> sql in one step when the score passes both', () => {
    const r = settle(events(lead(), T0, 'webinar_attended', 'trial_signup', 'content_download'), T0);
    assert.equal(r.core.stage, 'sql');
    assert.deepEqual(
      r.core.transitions.map((t) => [t.from, t.to]),
      [
        ['lead', 'mql'],
        ['mql', 'sql'],
      ],
    );
    assert.deepEqual(
      r.effects.filter((e) => e.kind !== 'nurture'),
      [
        { kind: 'assignOwner', rule: 0, owners: ['ana@sales.example', 'ben@sales.example'] },
        { kind: 'handoff', owner: 'ana@sales.example', escalation: 0 },
      ],
    );
  });

  it('a hand-raiser goes lead -> mql -> sql whatever its score and fit', () => {
    const c = settle(events(lead(LOW_FIT), T0 + HOUR, 'demo_request'), T0 + HOUR).core;
    assert.equal(c.stage, 'sql');
    assert.deepEqual(
      c.transitions.map((t) => [t.from, t.to, t.reason]),
      [
        ['lead', 'mql', 'hand-raiser: demo_request'],
        ['mql', 'sql', 'hand-raiser: demo_request'],
      ],
    );
    assert.equal(c.handRaised, undefined);
  });

  it('routes by the first matching rule, the catch-all last', () => {
    assert.equal(routingRuleFor({ country: 'US' }, config), 0);
    assert.equal(routingRuleFor({ country: 'ca' }, config), 0);
    assert.equal(routingRuleFor({ country: 'DE' }, config), 1);
    assert.equal(routingRuleFor({}, config), 2);
    const de = sql({ ...MANAGER, leadId: 'de', country: 'DE' });
    assert.equal(de.owner, 'eva@sales.example');
  });

  it('recycled re-qualifies to mql by score like lead does', () => {
    let c = applyOutcome(sql(), { outcome: 'rejected', reason: 'not_ready' }, config, T0 + HOUR);
    assert.equal(c.stage, 'recycled');
    c = settle(events(c, T0 + 2 * HOUR, 'content_download'), T0 + 2 * HOUR).core;
    assert.equal(c.stage, 'mql');
    assert.deepEqual([lastTransition(c).from, lastTransition(c).to], ['recycled', 'mql']);
  });
});

describe('disqualification', () => {
  const competitor = { email: 'spy@competitor.example' };

  it('a disqualify rule disqualifies a new lead', () => {
    const c = lead({ ...MANAGER, country: 'BR' });
    assert.equal(c.stage, 'disqualified');
    assert.equal(lastTransition(c).reason, 'disqualify rule: outside the sales regions');
    assert.ok(isTerminal(c));
  });

  it('a disqualify rule applies in every open stage', () => {
    const reach: Record<string, () => LeadCore> = {
      lead: () => lead(),
      mql: () => mql(),
      sql: () => sql(),
      opportunity: () => opportunity(),
      recycled: () => applyOutcome(sql(), { outcome: 'rejected', reason: 'other' }, config, T0 + HOUR),
    };
    for (const [stage, get] of Object.entries(reach)) {
      const c = get();
      assert.equal(c.stage, stage);
      const d = settle(applyProfile(c, competitor, config, T0 + 2 * HOUR), T0 + 2 * HOUR).core;
      assert.equal(d.stage, 'disqualified', `from ${stage}`);
      assert.deepEqual(lastTransition(d), {
        at: T0 + 2 * HOUR,
        from: stage,
        to: 'disqualified',
        reason: 'disqualify rule: competitor',
      });
      assert.equal(d.slaDeadline, undefined);
    }
  });

  it('a hand-raiser that is disqualified is not handed off', () => {
    const r = settle(
      events(create({ ...MANAGER, email: 'x@mailinator.com' }, config, version, T0), T0, 'demo_request'),
      T0,
    );
    assert.equal(r.core.stage, 'disqualified');
    assert.equal(r.effects.filter((e) => e.kind !== 'nurture').length, 0);
  });

  it('does not touch a customer', () => {
    const customer = applyOutcome(opportunity(), { outcome: 'won' }, config, T0 + DAY);
    const c = settle(applyProfile(customer, competitor, config, T0 + 2 * DAY), T0 + 2 * DAY).core;
    assert.equal(c.stage, 'customer');
  });

  it('is lifted when the profile no longer matches, unless sales disqualified', () => {
    const byRule = settle(applyProfile(lead(), competitor, config, T0 + HOUR), T0 + HOUR).core;
    const back = settle(
      applyProfile(byRule, { email: 'pat@buyer.example' }, config, T0 + 2 * HOUR),
      T0 + 2 * HOUR,
    ).core;
    assert.equal(back.stage, 'lead');
    assert.equal(lastTransition(back).reason, 'no disqualify rule matches any more');
    const bySales = applyOutcome(sql(), { outcome: 'rejected', reason: 'bad_fit' }, config, T0 + HOUR);
    assert.equal(settle(bySales, T0 + 2 * HOUR).core.stage, 'disqualified');
  });
});

describe('sales outcomes', () => {
  it('sql -> accepted -> opportunity -> won -> customer', () => {
    let c = sql();
    c = applyOutcome(c, { outcome: 'accepted', rep: 'ben@sales.example', note: 'call booked' }, config, T0 + HOUR);
    assert.equal(c.stage, 'opportunity');
    assert.equal(c.owner, 'ben@sales.example');
    assert.equal(c.slaDeadline, undefined);
    assert.equal(lastTransition(c).reason, 'sales accepted by ben@sales.example: call booked');
    assert.equal(nextWake(c, config), undefined, 'an opportunity waits for sales');
    c = applyOutcome(c, { outcome: 'won' }, config, T0 + 10 * DAY);
    assert.equal(c.stage, 'customer');
    assert.ok(isTerminal(c));
    assert.deepEqual(
      c.transitions.map((t) => t.to),
      ['mql', 'sql', 'opportunity', 'customer'],
    );
    // A customer who clicks a mail stays a customer, and gets no nurture.
    const later = settle(events(c, T0 + 20 * DAY, 'email_click', 'demo_request'), T0 + 20 * DAY);
    assert.equal(later.core.stage, 'customer');
    assert.deepEqual(later.effects, []);
  });

  for (const reason of ['not_ready', 'no_response', 'other'] as const) {
    it(`rejected ${reason} -> recycled, engagement reset`, () => {
      let c = settle(events(lead(), T0, 'webinar_attended', 'trial_signup', 'content_download'), T0).core;
      assert.equal(c.stage, 'sql');
      const now = T0 + HOUR;
      c = applyOutcome(c, { outcome: 'rejected', reason, rep: 'ana@sales.example' }, config, now);
      assert.equal(c.stage, 'recycled');
      assert.equal(c.recycleCount, 1);
      assert.equal(c.owner, undefined);
      assert.equal(c.slaDeadline, undefined);
      assert.deepEqual(score(c, now), { total: 30, fit: 30, engagement: 0 });
      assert.deepEqual(lastTransition(c), {
        at: now,
        from: 'sql',
        to: 'recycled',
        reason: `sales rejected (${reason}) by ana@sales.example`,
      });
      assert.deepEqual(c.nurture, { track: 'recycle', step: 0, lastStepAt: now, nextStepAt: now + 7 * DAY });
      // Events from before the recycle no longer count; new ones do.
      c = applyEvent(c, ev('content_download', T0), config, now + MIN);
      assert.equal(score(c, now + MIN).engagement, 0);
      assert.match(c.scoreLog.at(-1)!.note!, /before the last recycle/);
      c = applyEvent(c, ev('page_view', now + MIN), config, now + MIN);
      assert.equal(score(c, now + MIN).engagement, 1);
      assert.equal(settle(c, now + MIN).core.stage, 'recycled');
    });
  }

  for (const reason of ['bad_fit', 'duplicate'] as const) {
    it(`rejected ${reason} -> disqualified`, () => {
      const c = applyOutcome(sql(), { outcome: 'rejected', reason }, config, T0 + HOUR);
      assert.equal(c.stage, 'disqualified');
      assert.ok(isTerminal(c));
      assert.equal(lastTransition(c).reason, `sales rejected (${reason})`);
      assert.equal(c.nurture.track, undefined);
    });
  }

  it('lost -> recycled', () => {
    const c = applyOutcome(
      opportunity(),
      { outcome: 'lost', reason: 'budget', rep: 'ana@sales.example' },
      config,
      T0 + 5 * DAY,
    );
    assert.equal(c.stage, 'recycled');
    assert.equal(c.recycleCount, 1);
    assert.equal(c.owner, undefined);
    assert.equal(lastTransition(c).reason, 'lost (budget) by ana@sales.example');
    assert.equal(c.nurture.track, 'recycle');
  });

  it('outcomeError refuses an outcome that does not fit the stage', () => {
    const outcomes: SalesOutcome[] = [
      { outcome: 'accepted' },
      { outcome: 'rejected', reason: 'not_ready' },
      { outcome: 'won' },
      { outcome: 'lost' },
    ];
    for (const stage of STAGES) {
      const c = { ...lead(), stage };
      for (const o of outcomes) {
        const err = outcomeError(c, o);
        if (OUTCOME_STAGE[o.outcome] === stage) assert.equal(err, undefined, `${o.outcome} in ${stage}`);
        else
          assert.equal(
            err,
            `outcome ${o.outcome} needs stage ${OUTCOME_STAGE[o.outcome]}, but the lead is in ${stage}`,
          );
      }
    }
    assert.equal(
      outcomeError(sql(), { outcome: 'won' }),
      'outcome won needs stage opportunity, but the lead is in sql',
    );
    assert.equal(
      outcomeError(lead(), { outcome: 'accepted' }),
      'outcome accepted needs stage sql, but the lead is in lead',
    );
    assert.equal(
      outcomeError(opportunity(), { outcome: 'rejected', reason: 'bad_fit' }),
      'outcome rejected needs stage sql, but the lead is in opportunity',
    );
  });
});

describe('timeouts', () => {
  it('an mql with no engagement for mqlStaleAfter is recycled', () => {
    let c = mql();
    assert.equal(mqlStaleAt(c, config), T0 + 30 * DAY);
    assert.equal(nextWake({ ...c, nurture: { step: 0 } }, config), T0 + 30 * DAY);
    c = settle(c, T0 + 30 * DAY - 1).core;
    assert.equal(c.stage, 'mql');
    c = settle(c, T0 + 30 * DAY).core;
    assert.equal(c.stage, 'recycled');
    assert.deepEqual(lastTransition(c), {
      at: T0 + 30 * DAY,
      from: 'mql',
      to: 'recycled',
      reason: 'no engagement for 30d as mql',
    });
    assert.equal(c.recycleCount, 1);
    assert.equal(score(c, T0 + 30 * DAY).engagement, 0);
  });

  it('engagement as mql pushes staleness back', () => {
    let c = applyEvent(mql(), ev('page_view', T0 + 20 * DAY), config, T0 + 20 * DAY);
    assert.equal(mqlStaleAt(c, config), T0 + 50 * DAY);
    c = settle(c, T0 + 49 * DAY).core;
    assert.equal(c.stage, 'mql');
    assert.equal(settle(c, T0 + 50 * DAY).core.stage, 'recycled');
  });

  it('an expired SLA escalates to the next owner salesEscalations times, then recycles', () => {
    let c = sql();
    assert.equal(c.owner, 'ana@sales.example');
    assert.equal(nextWake(c, config), T0 + 48 * HOUR);
    let r = settle(c, T0 + 48 * HOUR - 1);
    assert.deepEqual(
      r.effects.filter((e) => e.kind === 'handoff'),
      [],
    );
    r = settle(r.core, T0 + 48 * HOUR);
    assert.deepEqual(r.effects, [{ kind: 'handoff', owner: 'ben@sales.example', escalation: 1 }]);
    c = r.core;
    assert.equal(c.stage, 'sql');
    assert.equal(c.owner, 'ben@sales.example');
    assert.equal(c.escalations, 1);
    assert.equal(c.slaDeadline, T0 + 96 * HOUR);
    assert.deepEqual(lastTransition(c), {
      at: T0 + 48 * HOUR,
      from: 'sql',
      to: 'sql',
      reason: 'SLA expired; escalated from ana@sales.example to ben@sales.example',
    });
    r = settle(c, T0 + 96 * HOUR);
    assert.equal(r.core.stage, 'recycled');
    assert.equal(lastTransition(r.core).reason, 'sales SLA of 2d expired after 1 escalation(s)');
    assert.equal(r.core.owner, undefined);
    assert.deepEqual(
      r.effects.filter((e) => e.kind === 'handoff'),
      [],
    );
  });

  it('escalates round robin as many times as configured; with none, recycles at once', () => {
    const three: Config = { ...config, timeouts: { ...config.timeouts, salesEscalations: 3 } };
    let c = settle(events(create(MANAGER, three, version, T0), T0, 'demo_request'), T0, three).core;
    const owners: string[] = [c.owner!];
    for (let i = 1; i <= 3; i++) {
      c = settle(c, T0 + i * 48 * HOUR, three).core;
      owners.push(c.owner!);
      assert.equal(c.escalations, i);
    }
    assert.deepEqual(owners, ['ana@sales.example', 'ben@sales.example', 'ana@sales.example', 'ben@sales.example']);
    assert.equal(settle(c, T0 + 4 * 48 * HOUR, three).core.stage, 'recycled');

    const none: Config = { ...config, timeouts: { ...config.timeouts, salesEscalations: 0 } };
    const d = settle(events(create(MANAGER, none, version, T0), T0, 'demo_request'), T0, none).core;
    const r = settle(d, T0 + 48 * HOUR, none).core;
    assert.equal(r.stage, 'recycled');
    assert.equal(lastTransition(r).reason, 'sales SLA of 2d expired');
  });

  it('a lead with no engagement at all for dormantAfter goes dormant', () => {
    let c = lead(LOW_FIT);
    c = settle(c, T0 + 180 * DAY - 1).core;
    assert.equal(c.stage, 'lead');
    c = settle(c, T0 + 180 * DAY).core;
    assert.equal(c.stage, 'dormant');
    assert.equal(lastTransition(c).reason, 'no engagement for 180d');
    assert.ok(isTerminal(c));
    assert.equal(nextWake(c, config), undefined);
  });

  it('engagement pushes dormancy back; a recycled lead goes dormant too', () => {
    let c = applyEvent(lead(LOW_FIT), ev('page_view', T0 + 100 * DAY), config, T0 + 100 * DAY);
    assert.equal(settle(c, T0 + 279 * DAY).core.stage, 'lead');
    assert.equal(settle(c, T0 + 280 * DAY).core.stage, 'dormant');
    c = applyOutcome(sql(), { outcome: 'rejected', reason: 'not_ready' }, config, T0 + HOUR);
    assert.equal(settle(c, T0 + HOUR + 180 * DAY - 1).core.stage, 'recycled');
    assert.equal(settle(c, T0 + HOUR + 180 * DAY).core.stage, 'dormant');
  });

  it('a dormant lead that engages comes back as recycled, and the event counts', () => {
    const dormant = settle(lead(LOW_FIT), T0 + 180 * DAY).core;
    const now = T0 + 200 * DAY;
    const c = applyEvent(dormant, ev('content_download', now - HOUR), config, now);
    assert.equal(c.stage, 'recycled');
    assert.equal(c.recycleCount, 1);
    assert.deepEqual(lastTransition(c), {
      at: now,
      from: 'dormant',
      to: 'recycled',
      reason: 're-engaged (content_download) after dormancy',
    });
    assert.equal(c.lastEngagedAt, now - HOUR);
    assert.equal(score(c, now).engagement, 10);
    assert.equal(c.scoreLog.at(-1)!.points, 10);
    assert.equal(settle(c, now).core.stage, 'recycled');
  });

  it('a dormant lead that asks for a demo is handed off', () => {
    const dormant = settle(lead(LOW_FIT), T0 + 180 * DAY).core;
    const now = T0 + 200 * DAY;
    const c = settle(applyEvent(dormant, ev('demo_request', now), config, now), now).core;
    assert.equal(c.stage, 'sql');
    assert.deepEqual(
      c.transitions.slice(-3).map((t) => t.to),
      ['recycled', 'mql', 'sql'],
    );
  });

  it('a consent event does not wake a dormant lead', () => {
    const dormant = settle(lead(LOW_FIT), T0 + 180 * DAY).core;
    const c = applyEvent(dormant, ev('unsubscribe', T0 + 200 * DAY), config, T0 + 200 * DAY);
    assert.equal(c.stage, 'dormant');
    assert.equal(c.consent, 'unsubscribed');
  });
});

describe('nurture', () => {
  it('keeps a step due for a lead without an address, and mails it once an address arrives', () => {
    const anon = settle(create({ leadId: 'anon', country: 'US' }, config, version, T0), T0);
    assert.deepEqual(anon.effects, []);
    assert.equal(
      nextWake(anon.core, config),
      T0 + 180 * DAY,
      'only dormancy wakes it: the pending step needs an address',
    );
    const known = applyProfile(anon.core, { email: 'anon@buyer.example' }, config, T0 + HOUR);
    assert.deepEqual(settle(known, T0 + HOUR).effects, [
      { kind: 'nurture', track: 'welcome', step: 1, template: 'welcome' },
    ]);
  });

  it('emits welcome step 0 as an effect when the lead is created in the send window', () => {
    const r = settle(create(MANAGER, config, version, T0), T0);
    assert.deepEqual(r.effects, [{ kind: 'nurture', track: 'welcome', step: 1, template: 'welcome' }]);
    assert.deepEqual(r.core.nurture, { track: 'welcome', step: 1, lastStepAt: T0, nextStepAt: T0 + 3 * DAY });
    assert.deepEqual(r.core.sentAt, [T0]);
    assert.equal(nextWake(r.core, config), T0 + 3 * DAY);
  });

  it('sends the whole welcome track on schedule', () => {
    let c = lead(LOW_FIT);
    let r = settle(c, T0 + 3 * DAY); // Thursday 10:00
    assert.deepEqual(nurtureOf(r.effects), [{ kind: 'nurture', track: 'welcome', step: 2, template: 'guide' }]);
    r = settle(r.core, T0 + 10 * DAY);
    assert.deepEqual(nurtureOf(r.effects), [{ kind: 'nurture', track: 'welcome', step: 3, template: 'case-study' }]);
    c = r.core;
    assert.deepEqual(c.nurture, { track: 'welcome', step: 3, lastStepAt: T0 + 10 * DAY, nextStepAt: undefined });
    assert.deepEqual(settle(c, T0 + 30 * DAY).effects, []);
  });

  it("waits for the lead's send window: created Saturday 03:00 New York, welcomed Monday 09:00", () => {
    const sat = Date.parse('2026-01-10T08:00:00Z');
    const r = settle(create(MANAGER, config, version, sat), sat);
    assert.deepEqual(r.effects, []);
    assert.equal(r.core.nurture.nextStepAt, Date.parse('2026-01-12T14:00:00Z'));
    assert.equal(nextWake(r.core, config), Date.parse('2026-01-12T14:00:00Z'));
    const mon = settle(r.core, Date.parse('2026-01-12T14:00:00Z'));
    assert.deepEqual(mon.effects, [{ kind: 'nurture', track: 'welcome', step: 1, template: 'welcome' }]);
    // A German lead created at the same instant is welcomed at 09:00 Berlin time.
    const de = settle(create({ ...MANAGER, country: 'DE' }, config, version, sat), sat);
    assert.equal(de.core.nurture.nextStepAt, Date.parse('2026-01-12T08:00:00Z'));
    const tokyo = settle(create({ ...MANAGER, country: 'DE', timezone: 'Asia/Tokyo' }, config, version, sat), sat);
    assert.equal(tokyo.core.nurture.nextStepAt, Date.parse('2026-01-12T00:00:00Z'));
  });

  it('skips a step with skipIfEngagedWithin when the lead engaged recently', () => {
    let c = lead(LOW_FIT);
    c = applyEvent(c, ev('page_view', T0 + 2 * DAY + 12 * HOUR), config, T0 + 2 * DAY + 12 * HOUR);
    const r = settle(c, T0 + 3 * DAY);
    assert.deepEqual(nurtureOf(r.effects), []);
    assert.deepEqual(r.core.nurture, {
      track: 'welcome',
      step: 2,
      lastStepAt: T0 + 3 * DAY,
      nextStepAt: T0 + 10 * DAY,
    });
    assert.match(r.core.scoreLog.at(-1)!.note!, /skipped welcome step 2 \(guide\): engaged recently/);
    assert.deepEqual(nurtureOf(settle(r.core, T0 + 10 * DAY).effects), [
      { kind: 'nurture', track: 'welcome', step: 3, template: 'case-study' },
    ]);
    // Engagement just over a day before does not skip.
    const d = applyEvent(lead(LOW_FIT), ev('page_view', T0 + 2 * DAY - MIN), config, T0 + 2 * DAY);
    assert.deepEqual(nurtureOf(settle(d, T0 + 3 * DAY).effects), [
      { kind: 'nurture', track: 'welcome', step: 2, template: 'guide' },
    ]);
  });

  it('defers a step over the frequency cap, never drops it', () => {
    const tracks = config.nurture.tracks.map((t) =>
      t.id === 'mql' ? { ...t, steps: [{ after: 0, template: 'webinar-invite' }] } : t,
    );
    const cfg: Config = { ...config, nurture: { tracks } };
    let r = settle(create(MANAGER, cfg, version, T0), T0, cfg);
    assert.equal(nurtureOf(r.effects).length, 1);
    r = settle(events(r.core, T0 + HOUR, 'content_download'), T0 + HOUR, cfg);
    assert.equal(r.core.stage, 'mql');
    assert.deepEqual(r.effects, []);
    assert.equal(r.core.nurture.nextStepAt, T0 + DAY, 'one nurture mail a day');
    r = settle(r.core, T0 + DAY, cfg);
    assert.deepEqual(r.effects, [{ kind: 'nurture', track: 'mql', step: 1, template: 'webinar-invite' }]);
  });

  it('unsubscribed and bounced leads get no nurture, and scoring goes on', () => {
    const none = settle(create({ ...MANAGER, consent: { email: false } }, config, version, T0), T0);
    assert.deepEqual(none.effects, []);
    assert.equal(none.core.nurture.step, 0, 'the step stays pending, but nothing wakes the lead for it');
    assert.equal(nextWake(none.core, config), T0 + 180 * DAY);

    for (const type of ['unsubscribe', 'hard_bounce']) {
      let c = lead(LOW_FIT);
      c = applyEvent(c, ev(type, T0 + HOUR), config, T0 + HOUR);
      assert.equal(c.consent, type === 'unsubscribe' ? 'unsubscribed' : 'bounced');
      for (const day of [3, 10, 20]) assert.deepEqual(settle(c, T0 + day * DAY).effects, [], `${type}, day ${day}`);
      c = applyEvent(c, ev('webinar_attended', T0 + 2 * HOUR), config, T0 + 2 * HOUR);
      assert.equal(score(c, T0 + 2 * HOUR).engagement, 15);
    }
  });

  it('a bounce is not undone by an unsubscribe', () => {
    let c = applyEvent(lead(), ev('hard_bounce', T0), config, T0);
    c = applyEvent(c, ev('unsubscribe', T0), config, T0);
    assert.equal(c.consent, 'bounced');
  });

  it('a lead without an email address gets no nurture', () => {
    const r = settle(create({ leadId: 'anon', country: 'US' }, config, version, T0), T0);
    assert.deepEqual(r.effects, []);
  });

  it('sql has no nurture: the mql track stops at handoff', () => {
    let c = mql();
    assert.equal(c.nurture.track, 'mql');
    c = sql();
    assert.deepEqual(c.nurture, { step: 0 });
    for (const day of [1, 2]) assert.deepEqual(nurtureOf(settle(c, T0 + day * DAY - HOUR).effects), []);
  });
});

describe('transitions', () => {
  it('are recorded with reasons and capped at the last 50', () => {
    let c = lead(LOW_FIT);
    let now = T0;
    for (let i = 0; i < 20; i++) {
      now += DAY;
      c = settle(applyEvent(c, ev('contact_sales', now), config, now), now).core;
      assert.equal(c.stage, 'sql');
      now += HOUR;
      c = applyOutcome(c, { outcome: 'rejected', reason: 'not_ready', note: `round ${i}` }, config, now);
    }
    assert.equal(c.recycleCount, 20);
    assert.equal(c.transitions.length, 50);
    assert.deepEqual(lastTransition(c), {
      at: now,
      from: 'sql',
      to: 'recycled',
      reason: 'sales rejected (not_ready): round 19',
    });
    for (const t of c.transitions) assert.ok(t.reason.length > 0);
    for (let i = 1; i < c.transitions.length; i++) {
      assert.equal(c.transitions[i]!.from, c.transitions[i - 1]!.to);
      assert.ok(c.transitions[i]!.at >= c.transitions[i - 1]!.at);
    }
    assert.equal(toState(c, config, now).transitions.length, 50);
  });

  it('transition to the same stage records nothing', () => {
    const c = lead();
    assert.equal(transition(c, 'lead', 'again', T0, config), c);
  });

  it('search attributes carry stage, score, owner, campaign and milestones', () => {
    const c = sql({ ...MANAGER, campaign: 'spring-webinar' });
    assert.deepEqual(searchAttributesOf(c, config, T0), {
      stage: 'sql',
      score: 60,
      owner: 'ana@sales.example',
      campaign: 'spring-webinar',
      becameMqlAt: T0,
      becameSqlAt: T0,
      model: 'default',
    });
  });
});

describe('the lifecycle (property)', () => {
  type Op =
    | { kind: 'event'; type: string; back: number }
    | { kind: 'profile'; patch: Record<string, unknown> }
    | { kind: 'outcome'; outcome: SalesOutcome }
    | { kind: 'wait' };
  const opArb: fc.Arbitrary<{ dt: number; op: Op }> = fc.record({
    dt: fc.oneof(
      { weight: 4, arbitrary: fc.integer({ min: 0, max: 6 * HOUR }) },
      { weight: 3, arbitrary: fc.integer({ min: 0, max: 40 * DAY }) },
      { weight: 1, arbitrary: fc.integer({ min: 100 * DAY, max: 250 * DAY }) },
    ),
    op: fc.oneof(
      {
        weight: 5,
        arbitrary: fc.record({
          kind: fc.constant('event' as const),
          type: fc.constantFrom(...Object.keys(config.scoring.models[0]!.behavior), 'unsubscribe', 'hard_bounce'),
          back: fc.integer({ min: 0, max: 3 * DAY }),
        }),
      },
      {
        weight: 1,
        arbitrary: fc.record({
          kind: fc.constant('profile' as const),
          patch: fc.constantFrom<Record<string, unknown>>(
            { country: 'DE' },
            { country: 'BR' },
            { country: 'US' },
            { seniority: 'vp' },
            { seniority: 'student' },
            { email: 'x@competitor.example' },
            { email: 'pat@buyer.example' },
            { timezone: 'Asia/Tokyo' },
          ),
        }),
      },
      {
        weight: 2,
        arbitrary: fc.record({
          kind: fc.constant('outcome' as const),
          outcome: fc.constantFrom<SalesOutcome>(
            { outcome: 'accepted' },
            { outcome: 'won' },
            { outcome: 'lost' },
            ...REJECT_REASONS.map((reason) => ({ outcome: 'rejected' as const, reason })),
          ),
        }),
      },
      { weight: 3, arbitrary: fc.constant({ kind: 'wait' as const }) },
    ),
  });

  it('keeps its invariants through any sequence of events, profile changes, outcomes and time', () => {
    const tzOf = (c: LeadCore) =>
      (c.profile.timezone as string | undefined) ??
      ({ US: 'America/New_York', DE: 'Europe/Berlin', BR: 'America/Sao_Paulo' } as Record<string, string>)[
        c.profile.country as string
      ] ??
      'America/New_York';
    const inWindow = (t: number, tz: string) => {
      const p = Object.fromEntries(
        new Intl.DateTimeFormat('en-US', { timeZone: tz, weekday: 'short', hour: 'numeric', hourCycle: 'h23' })
          .formatToParts(new Date(t))
          .map((x) => [x.type, x.value]),
      );
      return ['Mon', 'Tue', 'Wed', 'Thu', 'Fri'].includes(p.weekday!) && Number(p.hour) >= 9 && Number(p.hour) < 17;
    };
    fc.assert(
      fc.property(
        fc.constantFrom(MANAGER, LOW_FIT),
        fc.array(opArb, { minLength: 5, maxLength: 60, size: 'large' }),
        (input, ops) => {
          let now = T0;
          let c = create(input, config, version, now);
          const sends: number[] = [];
          let wonAt: number | undefined;
          let salesDisqualified = false;
          const check = (effects: Effect[]) => {
            for (const e of nurtureOf(effects)) {
              assert.equal(c.consent, 'subscribed', 'nurture only with consent');
              assert.ok(
                inWindow(now, tzOf(c)),
                `nurture at ${new Date(now).toISOString()} outside the window in ${tzOf(c)}`,
              );
              assert.ok(
                config.nurture.tracks.find((t) => t.id === e.track)!.for.includes(c.stage),
                `track ${e.track} in ${c.stage}`,
              );
              sends.push(now);
              assert.ok(sends.filter((s) => s > now - DAY).length <= 1, 'perDay cap');
              assert.ok(sends.filter((s) => s > now - 7 * DAY).length <= 3, 'perWeek cap');
            }
            const s = toState(c, config, now);
            assert.ok(STAGES.includes(s.stage));
            assert.ok(
              Number.isInteger(s.score.total) && Number.isInteger(s.score.fit) && Number.isInteger(s.score.engagement),
            );
            assert.ok(c.transitions.length <= 50);
            assert.equal(c.slaDeadline !== undefined, c.stage === 'sql');
            if (c.stage === 'sql' || c.stage === 'opportunity') assert.ok(c.owner, 'a lead in sales has an owner');
            if (wonAt !== undefined) assert.equal(c.stage, 'customer', 'a customer stays a customer');
            if (salesDisqualified) assert.equal(c.stage, 'disqualified', 'disqualified by sales stays disqualified');
            const wake = nextWake(c, config);
            if (wake !== undefined) assert.ok(wake > now || c.stage === 'sql', 'nothing is left due after settling');
          };
          const first = settle(c, now);
          c = first.core;
          check(first.effects);
          for (const { dt, op } of ops) {
            // Time passes: the workflow wakes at every due time on the way.
            const target = now + dt;
            for (let wake = nextWake(c, config); wake !== undefined && wake <= target; wake = nextWake(c, config)) {
              if (wake < now) break;
              now = wake;
              const r = settle(c, now);
              c = r.core;
              check(r.effects);
              if (nextWake(c, config) === wake) break;
            }
            now = target;
            if (op.kind === 'event') c = applyEvent(c, ev(op.type, now - op.back), config, now);
            if (op.kind === 'profile') c = applyProfile(c, op.patch as Profile, config, now);
            if (op.kind === 'outcome') {
              if (outcomeError(c, op.outcome)) continue;
              const before: Stage = c.stage;
              c = applyOutcome(c, op.outcome, config, now);
              assert.equal(
                c.stage,
                ({ accepted: 'opportunity', won: 'customer', lost: 'recycled' } as Record<string, Stage>)[
                  op.outcome.outcome
                ] ??
                  (op.outcome.outcome === 'rejected' && ['bad_fit', 'duplicate'].includes(op.outcome.reason)
                    ? 'disqualified'
                    : 'recycled'),
              );
              assert.notEqual(before, c.stage);
              if (c.stage === 'customer') wonAt = now;
              if (c.stage === 'disqualified') salesDisqualified = true;
            }
            const r = settle(c, now);
            c = r.core;
            check(r.effects);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('deadlines act when their timer fired (firedUntil), not when the clock passes them', () => {
  // The workflow passes the `at` of the latest fired timer; an iteration that runs under a later
  // (or an older task's) clock must not act on a deadline its timer has not reached.
  it('a nurture step waits for its timer, then goes out under any clock', () => {
    const c = lead(LOW_FIT);
    const due = c.nurture.nextStepAt!;
    assert.equal(due, T0 + 3 * DAY);
    assert.deepEqual(
      nurtureOf(advance(c, config, due + HOUR, due - 1).effects),
      [],
      'the clock passed it, the timer did not',
    );
    assert.deepEqual(nurtureOf(advance(c, config, due + HOUR, due).effects), [
      { kind: 'nurture', track: 'welcome', step: 2, template: 'guide' },
    ]);
    // The iteration that handles the timer may run under the clock of the task before (the wedge).
    assert.deepEqual(nurtureOf(advance(c, config, due - HOUR, due).effects), [
      { kind: 'nurture', track: 'welcome', step: 2, template: 'guide' },
    ]);
  });

  it('mql staleness, dormancy and the SLA wait for their timer', () => {
    const m = mql();
    assert.equal(advance(m, config, T0 + 31 * DAY, T0 + 30 * DAY - 1).core.stage, 'mql');
    assert.equal(advance(m, config, T0 + 31 * DAY, T0 + 30 * DAY).core.stage, 'recycled');
    const l = { ...lead(), nurture: { step: 0 } };
    assert.equal(advance(l, config, T0 + 181 * DAY, T0 + 180 * DAY - 1).core.stage, 'lead');
    assert.equal(advance(l, config, T0 + 181 * DAY, T0 + 180 * DAY).core.stage, 'dormant');
    const s = sql();
    assert.deepEqual(advance(s, config, T0 + 49 * HOUR, T0 + 48 * HOUR - 1).effects, []);
    assert.deepEqual(advance(s, config, T0 + 49 * HOUR, T0 + 48 * HOUR).effects, [
      { kind: 'handoff', owner: 'ben@sales.example', escalation: 1 },
    ]);
  });

  it('a first step with no delay goes out in the iteration that enrols the lead, with no timer', () => {
    const r = advance(create(MANAGER, config, version, T0), config, T0, Number.NEGATIVE_INFINITY);
    assert.deepEqual(nurtureOf(r.effects), [{ kind: 'nurture', track: 'welcome', step: 1, template: 'welcome' }]);
    // Without an address it stays due, and goes out with the address (a fact, not the clock).
    const anon = advance(
      create({ leadId: 'anon', country: 'US' }, config, version, T0),
      config,
      T0,
      Number.NEGATIVE_INFINITY,
    ).core;
    const known = applyProfile(anon, { email: 'anon@buyer.example' }, config, T0 + HOUR);
    assert.deepEqual(nurtureOf(advance(known, config, T0 + HOUR, Number.NEGATIVE_INFINITY).effects), [
      { kind: 'nurture', track: 'welcome', step: 1, template: 'welcome' },
    ]);
  });

  it('(property) with the timer bound fixed, the effects do not depend on the clock an iteration runs under', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 200 }),
        fc.integer({ min: -48, max: 48 }),
        fc.integer({ min: -48, max: 48 }),
        (bound, dA, dB) => {
          const c = lead(LOW_FIT);
          const firedUntil = T0 + bound * DAY;
          // Clocks around the bound (a stale clock, the real one): the same effects, the same kinds.
          const a = advance(c, config, Math.max(T0, firedUntil + dA * MIN), firedUntil);
          const b = advance(c, config, Math.max(T0, firedUntil + dB * MIN), firedUntil);
          assert.deepEqual(a.effects, b.effects);
          assert.equal(a.core.stage, b.core.stage);
        },
      ),
      { numRuns: 200 },
    );
  });
});
