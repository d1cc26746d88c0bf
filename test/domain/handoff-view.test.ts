/**
 * The handoff mail in words (src/domain/handoff-view.ts and templates/handoff.yaml, issue 14 part
 * 3): a name and company without stray punctuation whatever is missing, only the rows that have a
 * value, dates in the owner's time zone with the time left, no ISO timestamp and no "undefined".
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { loadConfigFile } from '../../src/config-file.js';
import { dateInWords, handoffView, shortDate, spanInWords, timeLeft } from '../../src/domain/handoff-view.js';
import type { MailLead } from '../../src/domain/mail.js';

const loaded = loadConfigFile('config/default.yaml');
const T0 = Date.parse('2026-12-02T18:32:01.030Z'); // a Wednesday
const HOUR = 3_600_000;

function lead(profile: MailLead['profile'], extra: Partial<MailLead> = {}): MailLead {
  return {
    leadId: 'l-1',
    stage: 'sql',
    score: {
      total: 85,
      fit: 40,
      engagement: 45,
      factors: [
        { kind: 'fit', rule: 'seniority in c_level,vp', value: 'vp', points: 20 },
        { kind: 'behavior', rule: 'webinar_attended', points: 11, count: 1, earned: 15 },
      ],
    },
    owner: 'ana@sales.example',
    profile,
    consent: 'granted',
    becameSqlAt: new Date(T0).toISOString(),
    slaDeadline: new Date(T0 + 48 * HOUR).toISOString(),
    recycleCount: 0,
    escalations: 0,
    transitions: [{ at: new Date(T0).toISOString(), from: 'mql', to: 'sql', reason: 'hand-raiser: demo_request' }],
    scoreLog: [
      { at: new Date(T0 - 3 * HOUR).toISOString(), type: 'webinar_attended', points: 15, eventId: 'e1' },
      { at: new Date(T0 - HOUR).toISOString(), type: 'profile', points: 5, note: 'profile changed' },
    ],
    ...extra,
  } as MailLead;
}

const links = { accept: 'http://l/a', reject: 'http://l/r' };
const render = (l: MailLead, timeZone = 'UTC', now = T0) =>
  loaded.templates.render('handoff', {
    lead: l,
    profile: l.profile,
    view: handoffView(l, { timeZone, now }),
    owner: 'ana@sales.example',
    escalation: 0,
    links,
  });

describe('handoffView', () => {
  it('names the person and company without stray punctuation whatever is missing', () => {
    const full = { email: 'dana@globex.example', firstName: 'Dana', lastName: 'Smith', company: 'Globex' };
    const cases: [MailLead['profile'], string, string][] = [
      [full, 'Dana Smith, Globex', 'Dana Smith (Globex)'],
      [{ email: full.email, firstName: 'Dana', company: 'Globex' }, 'Dana, Globex', 'Dana (Globex)'],
      [{ ...full, firstName: '  ' }, 'Smith, Globex', 'Smith (Globex)'],
      [{ email: full.email, company: 'Globex' }, 'Globex', 'Globex'],
      [{ email: full.email, firstName: 'Dana' }, 'Dana', 'Dana'],
      [{ email: full.email }, 'dana@globex.example', 'dana@globex.example'],
      [{}, 'l-1', 'l-1'],
    ];
    for (const [profile, heading, subjectWho] of cases) {
      const v = handoffView(lead(profile), { timeZone: 'UTC', now: T0 });
      assert.equal(v.heading, heading, JSON.stringify(profile));
      assert.equal(v.subjectWho, subjectWho, JSON.stringify(profile));
    }
  });

  it('lists only the rows with a value; the title says the seniority once', () => {
    const rows = (p: MailLead['profile']) =>
      Object.fromEntries(handoffView(lead(p), { timeZone: 'UTC', now: T0 }).details.map((d) => [d.label, d.value]));
    assert.deepEqual(rows({ email: 'a@b.example', jobTitle: 'VP Marketing', seniority: 'vp', companySize: 5000 }), {
      Email: 'a@b.example',
      Title: 'VP Marketing',
      'Company size': '5,000 employees',
    });
    assert.equal(rows({ jobTitle: 'Head of Growth', seniority: 'director' }).Title, 'Head of Growth (director)');
    assert.equal(rows({ seniority: 'c_level' }).Title, 'c level');
    assert.deepEqual(rows({}), {});
  });

  it("writes the deadline in the owner's time zone, with the time left", () => {
    const utc = handoffView(lead({}), { timeZone: 'UTC', now: T0 });
    assert.deepEqual(utc.deadline, { words: 'Friday 4 December 2026 at 18:32 UTC', left: '2 days left' });
    const ny = handoffView(lead({}), { timeZone: 'America/New_York', now: T0 + 90 * 60_000 });
    assert.deepEqual(ny.deadline, {
      words: 'Friday 4 December 2026 at 13:32 EST',
      left: '1 day 22 hours left',
    });
    assert.equal(handoffView(lead({}, { slaDeadline: undefined }), { timeZone: 'UTC', now: T0 }).deadline, undefined);
    assert.equal(
      handoffView(lead({}), { timeZone: 'UTC', now: T0 }).lastEngagement,
      'webinar attended +15, 3 hours ago',
      'the last event the lead sent, not a profile change',
    );
  });

  it('spans and dates in words', () => {
    assert.equal(spanInWords(0), 'less than a minute');
    assert.equal(spanInWords(59_000), 'less than a minute');
    assert.equal(spanInWords(60_000), '1 minute');
    assert.equal(spanInWords(HOUR + 5 * 60_000), '1 hour 5 minutes');
    assert.equal(spanInWords(26 * HOUR + 7 * 60_000), '1 day 2 hours', 'the two largest units');
    assert.equal(spanInWords(24 * HOUR + 7 * 60_000), '1 day', 'a zero unit is left out');
    assert.equal(timeLeft(T0 - 2 * HOUR, T0), 'overdue by 2 hours');
    assert.equal(
      dateInWords(Date.parse('2026-07-01T12:00:00Z'), 'Europe/Berlin'),
      'Wednesday 1 July 2026 at 14:00 CEST',
    );
    assert.equal(shortDate(T0, 'UTC', T0), '2 Dec, 18:32');
    assert.equal(shortDate(Date.parse('2025-12-31T23:00:00Z'), 'UTC', T0), '31 Dec 2025, 23:00');
  });
});

describe('the handoff template', () => {
  it('a sparse lead renders without stray punctuation, "undefined" or ISO timestamps', () => {
    const r = render(lead({ email: 'dana@globex.example', firstName: 'Dana' }));
    assert.equal(r.subject, 'New sales-ready lead: Dana, score 85');
    for (const part of [r.text, r.html, r.subject]) {
      assert.doesNotMatch(part, /undefined|null|\(\s*\)|Dana ,|- \(|\d{4}-\d\d-\d\dT/);
    }
    assert.match(r.text, /^New sales-ready lead: Dana$/m);
    assert.match(r.text, /^Accept or reject by Friday 4 December 2026 at 18:32 UTC \(2 days left\)\.$/m);
    assert.match(r.text, /^Accept: http:\/\/l\/a$/m);
    assert.match(r.text, /^- seniority vp \+20$/m);
    assert.match(r.text, /^- webinar attended \+11 \(decayed from 15 to 11\)$/m);
    assert.match(r.text, /^Last engagement: webinar attended \+15, 3 hours ago$/m);
    assert.doesNotMatch(r.text, /\n\n\n/, 'no runs of blank lines');
    assert.match(r.html, /<a href="http:\/\/l\/a" style="[^"]+">Accept<\/a>/, 'accept is a button');
    assert.doesNotMatch(r.html, /<tr><td[^>]*>Title</, 'no Title row without a title');
  });

  it('escapes profile values in the HTML part, whatever they hold', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), (firstName, company) => {
        const r = render(lead({ firstName: `<b>${firstName}`, company: `${company}<script>` }));
        assert.doesNotMatch(r.html, /<b>|<script>/);
      }),
    );
  });

  it("an escalated lead says so, in the owner's zone", () => {
    const l = lead({ company: 'Globex' }, { escalations: 1 });
    const r = loaded.templates.render('handoff', {
      lead: l,
      profile: l.profile,
      view: handoffView(l, { timeZone: 'Asia/Tokyo', now: T0 }),
      owner: 'ana@sales.example',
      escalation: 1,
      links,
    });
    assert.match(r.subject, /^\[Escalated\] New sales-ready lead: Globex, score 85$/);
    assert.match(r.text, /Saturday 5 December 2026 at 03:32 GMT\+9/);
    assert.match(r.text, /^Times are Asia\/Tokyo\.$/m);
  });
});
