/**
 * The replay (src/domain/replay.ts) against lives run through the model as the workflow's loop
 * runs them: facts at their moments, the rules once per moment, deadlines acting when their timer
 * fired. The replay must end where the live lead ended, including when a fact came between a
 * deadline and its timer's firing.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfigFile } from '../../src/config-file.js';
import type { LeadStart, Profile } from '../../src/domain/lead.js';
import { advance, applyEvent, applyOutcome, type LeadCore, newLead, scoreOf } from '../../src/domain/lifecycle.js';
import { type LeadHistory, type RecordedFact, replay } from '../../src/domain/replay.js';

const { config, version } = loadConfigFile('config/default.yaml');
const DAY = 86_400_000;
const T0 = Date.parse('2026-01-05T15:00:00Z');
/** fit 40 (vp 20, size 15, US 5): an mql on fit alone. */
const PROFILE = { email: 'pat@buyer.example', country: 'US', seniority: 'vp', companySize: 500 };
/** fit 30: an mql with one webinar (15), short of sql (75). */
const MANAGER = { ...PROFILE, seniority: 'manager' };

/** A live lead, driven as the loop drives it, keeping what the ledger would record. */
class Live {
  core: LeadCore;
  fired = Number.NEGATIVE_INFINITY;
  readonly facts: RecordedFact[] = [];
  private seq = 0;
  constructor(
    readonly leadId: string,
    readonly profile: Profile = PROFILE,
  ) {
    this.core = newLead({ leadId, ...profile } as LeadStart, config, version, T0);
    this.act(T0);
  }
  private act(now: number) {
    const step = advance(this.core, config, now, this.fired);
    this.core = step.core;
    const pick = step.effects.find((e) => e.kind === 'assignOwner');
    if (pick?.kind === 'assignOwner')
      this.core = advance({ ...this.core, owner: pick.owners[0] }, config, now, this.fired).core;
  }
  event(type: string, at: number) {
    const ev = { eventId: `${type}-${at}`, type, occurredAt: at };
    this.core = applyEvent(this.core, ev, config, at);
    this.facts.push({ kind: 'event', at, seq: ++this.seq, event: ev });
    this.act(at);
  }
  outcome(o: Parameters<typeof applyOutcome>[1], at: number) {
    this.core = applyOutcome(this.core, o, config, at);
    this.facts.push({ kind: 'outcome', at, seq: 0, outcome: o });
    this.act(at);
  }
  /** The timer for `deadline` fires `latency` ms late. */
  timer(deadline: number, latency: number) {
    this.fired = Math.max(this.fired, deadline);
    this.act(deadline + latency);
  }
  history(): LeadHistory {
    return {
      leadId: this.leadId,
      createdAt: T0,
      start: this.profile,
      facts: this.facts,
      transitions: this.core.transitions.map((t) => ({ ...t })),
    };
  }
}

const replayed = (l: Live, until: number) => replay(l.history(), until, { initial: { config, version } });

describe('replay', () => {
  it('reproduces a lead through mql, sql, an SLA escalation, acceptance and a lost deal', () => {
    const l = new Live('r1');
    l.event('webinar_attended', T0 + 1000);
    l.event('pricing_page_view', T0 + 2000);
    l.event('demo_request', T0 + 3000);
    assert.equal(l.core.stage, 'sql');
    l.timer(l.core.slaDeadline!, 35); // escalated 35 ms late
    l.outcome({ outcome: 'accepted' }, T0 + 3 * DAY);
    l.outcome({ outcome: 'lost', reason: 'budget' }, T0 + 5 * DAY);
    const end = T0 + 6 * DAY;
    const r = replayed(l, end);
    assert.equal(r.stage, l.core.stage);
    assert.ok(r.transitions.some((t) => t.to === 'recycled' && t.reason.startsWith('lost')));
    assert.equal(scoreOf(r, config, end).total, scoreOf(l.core, config, end).total);
    assert.deepEqual(
      r.transitions.map((t) => [t.at, t.from, t.to]),
      l.core.transitions.map((t) => [t.at, t.from, t.to]),
      'the escalation at its recorded (late) moment',
    );
  });

  it('a fact between a deadline and its late timer comes first, as it did', () => {
    const l = new Live('r2', MANAGER);
    l.event('webinar_attended', T0 + 1000);
    assert.equal(l.core.stage, 'mql');
    const stale = T0 + 1000 + 30 * DAY; // mqlStaleAfter 30d from the last engagement
    // An event lands 10 ms after the deadline, before its timer fired: the lead stays an mql.
    l.event('email_open', stale + 10);
    l.timer(stale, 40);
    assert.equal(l.core.stage, 'mql');
    const r = replayed(l, stale + DAY);
    assert.equal(r.stage, 'mql');
    assert.equal(r.transitions.length, l.core.transitions.length);
  });

  it('a deadline whose timer fired is acted on at its recorded moment, before a later fact', () => {
    const l = new Live('r3', MANAGER);
    l.event('webinar_attended', T0 + 1000);
    assert.equal(l.core.stage, 'mql');
    const stale = T0 + 1000 + 30 * DAY;
    l.timer(stale, 25);
    assert.equal(l.core.stage, 'recycled');
    l.event('email_open', stale + 50);
    const r = replayed(l, stale + DAY);
    assert.equal(r.stage, l.core.stage);
    assert.equal(r.transitions.at(-1)!.at, stale + 25);
    assert.equal(scoreOf(r, config, stale + DAY).total, scoreOf(l.core, config, stale + DAY).total);
  });
});
