/**
 * The mail activities' input (src/domain/mail.ts): what templates, headers and Message-IDs read,
 * with a hard size bound whatever the lead holds; templates render the same content from it as
 * from the whole state.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { loadConfigFile } from '../../src/config-file.js';
import type { Config } from '../../src/domain/config.js';
import {
  factorWords,
  MAIL_PROFILE_MAX_BYTES,
  MAIL_SCORE_LOG_MAX,
  MAIL_TEXT_MAX,
  MAIL_TRANSITIONS_MAX,
  mailLead,
  mailProfile,
  mailText,
  type MailLead,
} from '../../src/domain/mail.js';
import { handoffView } from '../../src/domain/handoff-view.js';
import { applyEvent, type LeadCore, newLead, toState } from '../../src/domain/lifecycle.js';

const loaded = loadConfigFile('config/default.yaml');
const { config, version } = loaded;
const T0 = Date.parse('2026-01-05T15:00:00Z');
const DAY = 86_400_000;
const create = newLead as unknown as (
  input: Record<string, unknown>,
  config: Config,
  configVersion: string,
  now: number,
) => LeadCore;

function sqlLead(): LeadCore {
  let c = create(
    {
      leadId: 'lead+7@x',
      email: 'pat@buyer.example',
      firstName: 'Pat',
      lastName: 'Lee',
      company: 'Globex',
      country: 'US',
      seniority: 'director',
      companySize: 250,
      jobTitle: 'Head of Ops',
    },
    config,
    version,
    T0,
  );
  c = applyEvent(c, { eventId: 'e1', type: 'demo_request', occurredAt: T0 }, config, T0);
  return {
    ...c,
    stage: 'sql',
    becameSqlAt: T0 + 1234,
    becameMqlAt: T0,
    slaDeadline: T0 + 2 * DAY,
    owner: 'ana@sales.example',
    recycleCount: 2,
    escalations: 1,
    transitions: [
      { at: T0, from: 'lead', to: 'mql', reason: 'score 45 >= 40' },
      { at: T0 + 1234, from: 'mql', to: 'sql', reason: 'hand-raiser demo_request' },
    ],
  };
}

/** The biggest lead the model can hold: a profile of thousands of 1,000-character extra fields, every list full, long notes. */
function hugeLead(): LeadCore {
  const profile: Record<string, unknown> = {
    email: 'big@buyer.example',
    firstName: 'x'.repeat(1000),
    company: 'c'.repeat(1000),
  };
  for (let i = 0; i < 3000; i++) profile[`extra${i}`] = 'y'.repeat(1000);
  const c = sqlLead();
  return {
    ...c,
    profile: profile as LeadCore['profile'],
    campaign: 'k'.repeat(5000),
    transitions: Array.from({ length: 50 }, (_, i) => ({
      at: T0 + i,
      from: 'lead' as const,
      to: 'mql' as const,
      reason: 'r'.repeat(5000),
    })),
    scoreLog: Array.from({ length: 20 }, (_, i) => ({
      at: T0 + i,
      eventId: 'e'.repeat(5000),
      type: 'email_open',
      points: 1,
      note: 'n'.repeat(5000),
    })),
  };
}

describe('mailLead: what a mail activity is given', () => {
  it('carries what templates, headers and Message-IDs read, exactly as the state has it', () => {
    const c = sqlLead();
    const m = mailLead(c, config, T0 + DAY);
    const s = toState(c, config, T0 + DAY);
    assert.equal(m.leadId, s.leadId);
    assert.deepEqual(m.score, s.score);
    assert.equal(m.becameSqlAt, s.becameSqlAt, 'the handoff Message-ID reads it');
    assert.equal(m.recycleCount, 2, 'the nurture Message-ID reads it');
    assert.equal(m.slaDeadline, s.slaDeadline);
    assert.equal(m.campaign, s.campaign);
    assert.equal(m.owner, 'ana@sales.example');
    assert.deepEqual(m.transitions, s.transitions);
    assert.deepEqual(m.scoreLog, s.scoreLog);
    assert.deepEqual(m.profile, s.profile);
  });

  it('the handoff and nurture templates render the same from it as from the whole state', () => {
    const c = sqlLead();
    const m = mailLead(c, config, T0 + DAY);
    const s = toState(c, config, T0 + DAY);
    const links = {
      accept: 'http://l/a',
      reject: 'http://l/r',
      unsubscribe: 'http://l/u',
      click: 'http://l/c',
      open: 'http://l/o',
    };
    const handoff = (lead: MailLead, profile: object) =>
      loaded.templates.render('handoff', {
        lead,
        profile,
        view: handoffView(lead, { timeZone: 'UTC', now: T0 + DAY }),
        owner: 'ana@sales.example',
        escalation: 1,
        links,
      });
    assert.deepEqual(handoff(m, m.profile), handoff(s, s.profile));
    const nurture = (lead: { profile: object }) =>
      loaded.templates.render('welcome', { ...lead.profile, profile: lead.profile, lead, links });
    assert.deepEqual(nurture(m), nurture(s));
    assert.match(handoff(m, m.profile).text, /Pat Lee, Globex/);
  });

  it('is bounded whatever the lead holds (Temporal refuses payloads over 2 MiB)', () => {
    const c = hugeLead();
    assert.ok(
      JSON.stringify(toState(c, config, T0)).length > 2 * 1024 * 1024,
      'the whole state of this lead is over the limit',
    );
    const m = mailLead(c, config, T0);
    const size = JSON.stringify(m).length;
    assert.ok(size < 16 * 1024, `mail input is ${size} bytes`);
    assert.ok(JSON.stringify(m.profile).length <= MAIL_PROFILE_MAX_BYTES + 64);
    assert.equal(m.transitions.length, MAIL_TRANSITIONS_MAX);
    assert.equal(m.scoreLog.length, MAIL_SCORE_LOG_MAX);
    assert.deepEqual(m.transitions.at(-1)!.at, new Date(T0 + 49).toISOString(), 'the latest transitions are kept');
    assert.equal(m.profile.email, 'big@buyer.example', 'the address is kept whole');
    assert.equal((m.profile.firstName as string).length, MAIL_TEXT_MAX, 'long strings are cut');
    assert.ok(m.profile.extra0, 'extra fields are kept while they fit');
    assert.ok(m.campaign!.length <= MAIL_TEXT_MAX);
  });

  it('named fields come before extra ones when the budget is short', () => {
    const profile: Record<string, unknown> = {};
    for (let i = 0; i < 100; i++) profile[`a${i}`] = 'z'.repeat(1000);
    Object.assign(profile, { email: 'p@x.example', country: 'DE', companySize: 12, industry: 'Retail' });
    const p = mailProfile(profile as never);
    assert.equal(p.country, 'DE');
    assert.equal(p.companySize, 12);
    assert.equal(p.industry, 'Retail');
    assert.ok(Object.keys(p).length < 100);
  });

  it('control characters (CR/LF among them) never reach a mail', () => {
    assert.equal(mailText('Pat\r\nBcc: evil@x\u0000\u2028'), 'Pat  Bcc: evil@x  ');
    const c = { ...sqlLead(), profile: { email: 'p@x.example', company: 'Globex\r\nX-Injected: 1' } };
    assert.equal(mailLead(c, config, T0).profile.company, 'Globex  X-Injected: 1');
  });

  it('property: any profile gives a bounded input free of control characters', () => {
    fc.assert(
      fc.property(
        fc.dictionary(
          fc.string({ unit: 'binary', maxLength: 80 }),
          fc.oneof(fc.string({ unit: 'binary', maxLength: 1000 }), fc.integer(), fc.boolean(), fc.constant(null)),
          { maxKeys: 200 },
        ),
        (profile) => {
          const m = mailLead({ ...sqlLead(), profile: profile as never }, config, T0);
          const json = JSON.stringify(m.profile);
          assert.ok(json.length <= MAIL_PROFILE_MAX_BYTES + 400, `profile ${json.length} bytes`);
          for (const [k, v] of Object.entries(m.profile)) {
            assert.doesNotMatch(k, /[\u0000-\u001f\u007f]/);
            if (typeof v === 'string') assert.doesNotMatch(v, /[\u0000-\u001f\u007f]/);
            if (typeof v === 'string' && k !== 'email') assert.ok(v.length <= MAIL_TEXT_MAX);
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('the score factors in words (handoff mail, sales page)', () => {
  it('names the field and value of a fit rule, the count and decay of a behaviour, largest first, zeros left out', () => {
    const words = factorWords([
      { rule: 'seniority in [c_level, vp, director]', points: 20, value: 'vp' },
      { rule: 'webinar_attended', points: 11, count: 1, earned: 15 },
      { rule: 'email_open', points: 3, count: 3, earned: 3 },
      { rule: 'careers_page_view', points: -10, count: 1, earned: -10 },
      { rule: 'pricing_page_view', points: 0, count: 1, earned: 10 },
      { rule: 'earlier engagement', points: 4 },
    ]);
    assert.deepEqual(words, [
      'seniority vp +20',
      'webinar attended +11 (decayed from 15 to 11)',
      'email open x3 +3',
      'careers page view -10',
      'earlier engagement +4',
    ]);
    assert.equal(
      factorWords([{ rule: 'a', points: 1, value: 'x\r\nBcc: evil@example.com' }])[0],
      'a x  Bcc: evil@example.com +1',
    );
  });
});
