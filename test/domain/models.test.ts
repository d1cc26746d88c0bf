/** Scoring models (scoring.models) and the score's factors (CONTRACT.md §Scoring models). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parse } from 'yaml';
import { readFileSync } from 'node:fs';
import { ConfigError, validateConfig } from '../../src/config-file.js';
import type { Config } from '../../src/domain/config.js';
import { advance, applyEvent, applyProfile, type LeadCore, newLead, toState } from '../../src/domain/lifecycle.js';
import type { LeadStart } from '../../src/domain/lead.js';
import { EARLIER_ENGAGEMENT, engagementAt, modelFor, modelsOf, scoreFactors } from '../../src/domain/scoring.js';

const DAY = 86_400_000;
const T0 = Date.parse('2026-01-05T15:00:00Z');
const base = parse(readFileSync('config/default.yaml', 'utf8')) as Record<string, Record<string, unknown>>;

/** The default config with `scoring` replaced. */
function withScoring(scoring: unknown): Config {
  return validateConfig({ ...base, scoring }, 'models.yaml', process.cwd()).config;
}

function problems(scoring: unknown): { path: string; message: string }[] {
  try {
    withScoring(scoring);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

const enterprise = {
  id: 'enterprise',
  when: { field: 'companySize', min: 1000 },
  thresholds: { mql: 60, sql: 90 },
  fit: [
    { field: 'seniority', in: ['vp', 'c_level'], points: 30 },
    { field: 'companySize', min: 5000, points: 20 },
  ],
  behavior: { webinar_attended: { points: 20 }, demo_request: { points: 40, handRaiser: true } },
  decay: { halfLife: '30d' },
};
const smb = {
  id: 'smb',
  thresholds: { mql: 30, sql: 60 },
  fit: [{ field: 'seniority', in: ['owner', 'founder'], points: 25 }],
  disqualify: [{ field: 'country', notIn: ['US', 'CA'], reason: 'outside the SMB regions' }],
  behavior: { pricing_page_view: { points: 15 }, email_open: { points: 1, maxPerDay: 2 } },
};
const twoModels = withScoring({ models: [enterprise, smb] });

const start = (leadId: string, profile: Record<string, unknown>) => ({ leadId, ...profile }) as LeadStart;
const event = (type: string, occurredAt: number, eventId = `${type}-${occurredAt}`) => ({ eventId, type, occurredAt });

describe('scoring.models in the config', () => {
  it('a flat scoring section is one model, `default`', () => {
    const c = withScoring(base.scoring);
    assert.deepEqual(
      c.scoring.models.map((m) => m.id),
      ['default'],
    );
    assert.equal(c.scoring.models[0]!.when, undefined);
  });

  it('models keep their order; `when` is a rule or a list of rules, all of which must match', () => {
    const c = withScoring({
      models: [
        {
          ...enterprise,
          when: [
            { field: 'companySize', min: 1000 },
            { field: 'country', in: ['US'] },
          ],
        },
        smb,
      ],
    });
    assert.deepEqual(
      c.scoring.models.map((m) => m.id),
      ['enterprise', 'smb'],
    );
    assert.equal(modelFor({ companySize: 2000, country: 'US' }, c).id, 'enterprise');
    assert.equal(modelFor({ companySize: 2000, country: 'DE' }, c).id, 'smb', 'one rule of the when fails');
    assert.equal(modelFor({}, c).id, 'smb', 'a missing field matches no `when`');
    assert.deepEqual(twoModels.scoring.models[0]!.when, [{ field: 'companySize', min: 1000 }]);
  });

  it('reports every problem with its path in the models form', () => {
    const found = problems({
      models: [
        { ...enterprise, behavior: { webinar_attended: { points: 'many' } } },
        { ...smb, id: 'enterprise', when: { field: 'country', in: ['US'] } },
      ],
    });
    const paths = found.map((p) => p.path);
    assert.ok(paths.includes('scoring.models.0.behavior.webinar_attended.points'), JSON.stringify(found));
    assert.ok(paths.includes('scoring.models.1.id'), JSON.stringify(found));
    assert.ok(paths.includes('scoring.models.1.when'), JSON.stringify(found));
    assert.match(found.find((p) => p.path === 'scoring.models.1.id')!.message, /duplicate model id enterprise/);
  });

  it('refuses a model without `when` before the last, an empty list, a bad id and unknown keys', () => {
    const early = problems({ models: [{ ...smb, id: 'first' }, smb] });
    assert.deepEqual(
      early.map((p) => p.path),
      ['scoring.models.0'],
    );
    assert.match(early[0]!.message, /only the last model may have no `when`/);
    assert.equal(problems({ models: [] })[0]!.path, 'scoring.models');
    assert.equal(problems({ models: [{ ...smb, id: 'Big Deals' }] })[0]!.path, 'scoring.models.0.id');
    assert.equal(problems({ models: [{ ...smb, wehn: {} }] })[0]!.path, 'scoring.models.0');
    assert.ok(problems({ models: [smb], fit: [] }).some((p) => p.path === 'scoring'));
  });

  it('a config parsed before models (recorded in running histories) is read as the one model default', () => {
    const { id: _id, when: _when, ...flatModel } = twoModels.scoring.models[1]!;
    const flat = { ...twoModels, scoring: flatModel } as unknown as Config;
    assert.deepEqual(
      modelsOf(flat).map((m) => [m.id, m.thresholds.mql]),
      [['default', 30]],
    );
    assert.equal(modelsOf(flat), modelsOf(flat), 'normalised once');
    assert.equal(newLead(start('old', { seniority: 'owner' }), flat, 'v', T0).fit, 25);
  });

  it('flat scoring keeps its own paths', () => {
    const found = problems({ ...base.scoring, behavior: { email_open: { points: 'one' } } });
    assert.deepEqual(
      found.map((p) => p.path),
      ['scoring.behavior.email_open.points'],
    );
  });
});

describe('a lead under several models', () => {
  it('is scored by the first model whose when matches: its fit rules, thresholds, disqualify rules', () => {
    const big = newLead(start('big', { seniority: 'vp', companySize: 8000, country: 'DE' }), twoModels, 'v', T0);
    assert.equal(big.model, 'enterprise');
    assert.equal(big.fit, 50);
    const small = newLead(start('small', { seniority: 'founder', companySize: 12, country: 'DE' }), twoModels, 'v', T0);
    assert.equal(small.model, 'smb');
    assert.equal(small.fit, 25);
    // smb disqualifies outside US/CA; enterprise has no such rule.
    assert.equal(advance(small, twoModels, T0).core.stage, 'disqualified');
    assert.equal(advance(big, twoModels, T0).core.stage, 'lead');
    // enterprise's mql is 60: fit 50 + a webinar (20) = 70.
    const engaged = applyEvent(big, event('webinar_attended', T0), twoModels, T0);
    assert.equal(advance(engaged, twoModels, T0).core.stage, 'mql');
    const s = toState(engaged, twoModels, T0);
    assert.equal(s.score.model, 'enterprise');
    assert.equal(s.score.total, 70);
  });

  it('an event type only another model scores is counted with no points, and says why', () => {
    const big = newLead(start('big', { companySize: 8000 }), twoModels, 'v', T0);
    const c = applyEvent(big, event('pricing_page_view', T0), twoModels, T0);
    assert.equal(c.eventsProcessed, 1);
    assert.equal(toState(c, twoModels, T0).score.engagement, 0);
    assert.equal(c.scoreLog.at(-1)!.note, 'not scored by model enterprise');
  });

  it('a profile change that picks another model re-scores fit there and logs the switch', () => {
    const c0 = newLead(start('grow', { seniority: 'vp', companySize: 300, country: 'US' }), twoModels, 'v', T0);
    assert.equal(c0.model, 'smb');
    const c1 = applyProfile(c0, { companySize: 6000 }, twoModels, T0 + DAY);
    assert.equal(c1.model, 'enterprise');
    assert.equal(c1.fit, 50);
    assert.equal(c1.scoreLog.at(-1)!.note, 'model smb -> enterprise, fit 0 -> 50');
  });

  it('a core from before models (no model id) takes the model its profile picks, with no switch logged', () => {
    const c0 = newLead(start('old', { companySize: 8000 }), twoModels, 'v', T0);
    const { model: _model, ...old } = c0;
    const c1 = applyProfile(old as LeadCore, { firstName: 'Kim' }, twoModels, T0);
    assert.equal(c1.model, 'enterprise');
    assert.equal(c1.scoreLog.length, 0);
    assert.equal(toState(old as LeadCore, twoModels, T0).score.model, 'enterprise');
  });
});

describe('score.factors', () => {
  const model = twoModels.scoring.models[0]!;

  it('lists the matching fit rules (with the value) and each behaviour decayed, largest first', () => {
    let c = newLead(start('f', { seniority: 'vp', companySize: 8000 }), twoModels, 'v', T0);
    c = applyEvent(c, event('webinar_attended', T0 - 30 * DAY, 'w1'), twoModels, T0);
    c = applyEvent(c, event('webinar_attended', T0, 'w2'), twoModels, T0);
    c = applyEvent(c, event('demo_request', T0, 'd1'), twoModels, T0);
    const f = toState(c, twoModels, T0).score.factors;
    assert.deepEqual(f, [
      { rule: 'demo_request', points: 40, count: 1, earned: 40 },
      { rule: 'seniority in [vp, c_level]', points: 30, value: 'vp' },
      // 20 + 20 halved by 30 days = 30, earned 40
      { rule: 'webinar_attended', points: 30, count: 2, earned: 40 },
      { rule: 'companySize in [5000, inf]', points: 20, value: 8000 },
    ]);
    // a month later the behaviours have halved; fit has not
    const later = toState(c, twoModels, T0 + 30 * DAY).score.factors;
    assert.deepEqual(
      later.map((x) => [x.rule, x.points]),
      [
        ['seniority in [vp, c_level]', 30],
        ['companySize in [5000, inf]', 20], // ties in name order
        ['demo_request', 20],
        ['webinar_attended', 15],
      ],
    );
  });

  it('negative behaviour and a capped day count as the total does', () => {
    const cfg = withScoring({
      ...base.scoring,
      behavior: { email_open: { points: 2, maxPerDay: 2 }, careers_page_view: { points: -10 } },
    });
    let c = newLead(start('n', { country: 'US' }), cfg, 'v', T0);
    for (let i = 0; i < 4; i++) c = applyEvent(c, event('email_open', T0 + i * 1000, `o${i}`), cfg, T0 + 5000);
    c = applyEvent(c, event('careers_page_view', T0), cfg, T0 + 5000);
    const s = toState(c, cfg, T0 + 5000).score;
    const opens = s.factors.find((x) => x.rule === 'email_open')!;
    assert.equal(opens.count, 2, 'two of four opens count on a capped day');
    assert.equal(opens.earned, 4);
    assert.deepEqual(
      s.factors.find((x) => x.rule === 'careers_page_view'),
      {
        rule: 'careers_page_view',
        points: -10,
        count: 1,
        earned: -10,
      },
    );
    assert.equal(s.engagement, -6);
  });

  it('engagement carried from before factors were kept is one factor, `earlier engagement`', () => {
    const f = scoreFactors({}, { pos: 12, neg: -3, at: T0, caps: {} }, T0, model);
    assert.deepEqual(f, [{ rule: EARLIER_ENGAGEMENT, points: 9 }]);
  });

  it('(property) the behaviour factors add up to the engagement, each off by at most its rounding', () => {
    const types = ['webinar_attended', 'demo_request'];
    fc.assert(
      fc.property(
        fc.array(fc.record({ type: fc.constantFrom(...types), back: fc.integer({ min: 0, max: 90 * DAY }) }), {
          maxLength: 30,
        }),
        fc.integer({ min: 0, max: 60 * DAY }),
        (evs, later) => {
          let c = newLead(start('p', { companySize: 8000 }), twoModels, 'v', T0);
          evs.forEach((e, i) => (c = applyEvent(c, event(e.type, T0 - e.back, `e${i}`), twoModels, T0)));
          const t = T0 + later;
          const f = scoreFactors(c.profile, c.engagement, t, model).filter((x) => types.includes(x.rule));
          const sum = f.reduce((s, x) => s + x.points, 0);
          const exact = engagementAt(c.engagement, t, model.decay?.halfLife);
          assert.ok(Math.abs(sum - exact) <= 0.5 * f.length + 1e-9, `${sum} vs ${exact}`);
          for (let i = 1; i < f.length; i++) assert.ok(Math.abs(f[i - 1]!.points) >= Math.abs(f[i]!.points));
        },
      ),
    );
  });
});
