/**
 * The rules the workflow used to decide itself, as model functions: how a run starts, what a new
 * config version does, a stale owner pick, the bounce event, the carried state's version check.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { loadConfigFile, validateConfig } from '../../src/config-file.js';
import { carriedProblem, readCarried } from '../../src/domain/carried.js';
import {
  advance,
  applyEvent,
  applyOutcome,
  bounceEvent,
  type LeadCore,
  newLead,
  ownerPicked,
  reconfigure,
  startRun,
  summaryOf,
} from '../../src/domain/lifecycle.js';

const { config } = loadConfigFile('config/default.yaml');
const T0 = Date.parse('2026-01-05T15:00:00Z');
const HOUR = 3_600_000;
const lead = (over: Record<string, unknown> = {}) =>
  newLead(
    { leadId: 'r-1', email: 'pat@buyer.example', country: 'US', seniority: 'manager', ...over } as never,
    config,
    'v1',
    T0,
  );

/** A lead in sql with no owner yet (a demo request), and the routing effect that asks for one. */
function inSql(): LeadCore {
  const c = applyEvent(lead(), { eventId: 'd1', type: 'demo_request', occurredAt: T0 }, config, T0);
  return advance(c, config, T0).core;
}

describe('startRun', () => {
  it('starts a new lead when nothing was carried', () => {
    assert.deepEqual(
      startRun(undefined, { leadId: 'r-1', email: 'pat@buyer.example' } as never, config, 'v1', T0),
      newLead({ leadId: 'r-1', email: 'pat@buyer.example' } as never, config, 'v1', T0),
    );
  });
  it("resumes what was carried under the worker's config version, keeping what the start says", () => {
    const carried = {
      ...applyEvent(lead(), { eventId: 'e', type: 'webinar_attended', occurredAt: T0 }, config, T0),
      campaign: undefined,
    };
    const c = startRun(
      carried,
      { leadId: 'r-1', jobTitle: 'VP Sales', campaign: 'spring', channel: 'ads' } as never,
      config,
      'v2',
      T0 + HOUR,
    );
    assert.equal(c.configVersion, 'v2');
    assert.equal(c.eventsProcessed, 1, 'the carried lead, not a new one');
    assert.equal(c.profile.jobTitle, 'VP Sales');
    assert.equal(c.profile.email, 'pat@buyer.example');
    assert.deepEqual([c.campaign, c.channel], ['spring', 'ads']);
    const kept = startRun(
      { ...carried, campaign: 'first' },
      { leadId: 'r-1', campaign: 'second' } as never,
      config,
      'v2',
      T0,
    );
    assert.equal(kept.campaign, 'first', 'a first campaign is kept');
  });
});

describe('reconfigure', () => {
  it('re-scores fit under a new version and keeps the engagement it earned; the same version changes nothing', () => {
    const c = applyEvent(lead(), { eventId: 'e', type: 'webinar_attended', occurredAt: T0 }, config, T0);
    assert.equal(reconfigure(c, config, c.configVersion, T0), c);
    const raw = parse(readFileSync('config/default.yaml', 'utf8'));
    const stricter = validateConfig(
      { ...raw, scoring: { ...raw.scoring, fit: [] } },
      'config/default.yaml',
      '.',
    ).config;
    const r = reconfigure(c, stricter, 'v2', T0 + HOUR);
    assert.equal(r.configVersion, 'v2');
    assert.equal(r.fit, 0);
    assert.deepEqual(r.engagement, c.engagement);
  });
});

describe('ownerPicked', () => {
  it('takes an owner for the sql episode it was picked for, and none for another or after one was set', () => {
    const sql = inSql();
    assert.equal(sql.stage, 'sql');
    const r = ownerPicked(sql, 'ana@sales.example', sql.becameSqlAt);
    assert.equal(r?.core.owner, 'ana@sales.example');
    assert.deepEqual(r?.effect, { kind: 'handoff', owner: 'ana@sales.example', escalation: 0 });
    assert.equal(ownerPicked(sql, 'ana@sales.example', sql.becameSqlAt! - 1), undefined, 'an earlier episode');
    assert.equal(ownerPicked(r!.core, 'ben@sales.example', sql.becameSqlAt), undefined, 'an owner already');
    const recycled = applyOutcome(r!.core, { outcome: 'rejected', reason: 'not_ready' }, config, T0 + HOUR);
    assert.equal(ownerPicked(recycled, 'ben@sales.example', sql.becameSqlAt), undefined, 'no longer in sql');
  });
});

describe('bounceEvent', () => {
  it("names the step and the recycle, so a retried delivery's bounce counts once", () => {
    const c = { ...lead(), recycleCount: 2 };
    assert.deepEqual(bounceEvent(c, { track: 'welcome', step: 1 }), {
      leadId: 'r-1',
      eventId: 'bounce:welcome:1:2',
      type: 'hard_bounce',
    });
    const bounced = applyEvent(c, { ...bounceEvent(c, { track: 'welcome', step: 1 }), occurredAt: T0 }, config, T0);
    assert.equal(bounced.consent, 'bounced');
  });
});

describe('summaryOf', () => {
  it('says the stage, score, nurture and consent in one line', () => {
    assert.match(
      summaryOf(lead(), config, T0),
      /^\*\*lead\*\* · score \d+ \(fit \d+, engagement 0\) · nurture welcome step 0 next .* · consent subscribed · 0 events$/,
    );
  });
});

describe('readCarried', () => {
  const good = { v: 1, core: lead(), recentEventIds: ['a:b'] };
  it('reads version 1, and a state written before versions (no v) as version 1', () => {
    assert.equal(readCarried(good, 'x'), good);
    const { v: _v, ...legacy } = good;
    assert.equal(readCarried(legacy, 'x'), legacy);
    assert.equal(readCarried(undefined, 'x'), undefined);
  });
  it('refuses a version it does not know and a malformed state, naming the part', () => {
    assert.throws(
      () => readCarried({ ...good, v: 2 }, 'the previous run'),
      /carried from the previous run cannot be read: version 2, and this worker reads version 1/,
    );
    assert.equal(carriedProblem('x'), 'not an object');
    assert.equal(
      carriedProblem({ ...good, core: { ...good.core, stage: 'limbo' } }),
      'core.stage: limbo is not a stage',
    );
    assert.equal(carriedProblem({ ...good, core: { ...good.core, fit: 'high' } }), 'core.fit: not a number');
    assert.equal(carriedProblem({ ...good, recentEventIds: [1] }), 'recentEventIds: not a list of strings');
    assert.equal(carriedProblem({ ...good, inbox: [{ kind: 'telegram' }] }), 'inbox: not a list of facts');
  });
});
