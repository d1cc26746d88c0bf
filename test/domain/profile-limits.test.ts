/**
 * The profile's bound (CONTRACT.md §Security: at most 100 fields and 16 KB of JSON) and its text
 * rule (no control characters), in the one schema every entry point and the workflow use, and in
 * the workflow's merge (applyProfile), where many small patches could add up past the bound.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as z from 'zod/mini';
import { loadConfigFile } from '../../src/config-file.js';
import type { Config } from '../../src/domain/config.js';
import {
  leadEventSchema,
  leadInputSchema,
  leadStartSchema,
  PROFILE_LIMITS,
  profileLimitProblem,
  profileSchema,
  profileWithinLimits,
} from '../../src/domain/lead.js';
import { applyProfile, type LeadCore, newLead } from '../../src/domain/lifecycle.js';

const { config, version } = loadConfigFile('config/default.yaml');
const fields = (n: number, value = 'x') => Object.fromEntries(Array.from({ length: n }, (_, i) => [`f${i}`, value]));
const issues = (schema: z.core.$ZodType, v: unknown) => {
  const r = z.safeParse(schema, v);
  return r.success ? [] : r.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
};

describe('profile bound', () => {
  it('takes 100 fields and 16 KB, refuses 101 fields or 16 KB + 1, naming the reason', () => {
    assert.ok(profileWithinLimits(fields(100)));
    assert.equal(issues(profileSchema, fields(100)).length, 0);
    assert.match(profileLimitProblem(fields(101))!, /at most 100 fields, this one has 101/);
    assert.deepEqual(issues(profileSchema, fields(101)), [
      { path: '', message: 'a profile holds at most 100 fields, this one has 101' },
    ]);
    // 16 fields of 1000 characters plus their keys and quotes is just over 16 KB; 15 is under.
    assert.equal(issues(profileSchema, fields(15, 'y'.repeat(1000))).length, 0);
    assert.match(issues(profileSchema, fields(17, 'y'.repeat(1000)))[0]!.message, /at most 16384 bytes of JSON/);
    // Bytes, not characters: 6,000 euro signs are 18,000 bytes of UTF-8.
    assert.ok(!profileWithinLimits({ a: '€'.repeat(900), ...fields(20, '€'.repeat(300)) }));
    assert.equal(PROFILE_LIMITS.fields, 100);
  });

  it('bounds the profile part of a lead, an event and a workflow start, not their other fields', () => {
    const lead = { leadId: 'a', email: 'a@example.com', campaign: 'c', channel: 'web', consent: { email: true } };
    // 98 extra fields + email = 99 profile fields: fine although the input has 104 keys.
    assert.equal(issues(leadInputSchema, { ...lead, ...fields(98) }).length, 0);
    assert.match(issues(leadInputSchema, { ...lead, ...fields(100) })[0]!.message, /this one has 101/);
    assert.match(issues(leadStartSchema, { leadId: 'a', ...fields(101) })[0]!.message, /at most 100 fields/);
    assert.deepEqual(
      issues(leadEventSchema, { leadId: 'a', eventId: 'e', type: 'email_open', profile: fields(101) }).map(
        (i) => i.path,
      ),
      ['profile'],
    );
  });
});

describe('profile text', () => {
  it('refuses CR, LF, NUL, other C0/C1 controls and bidi overrides in any profile text, naming the field', () => {
    for (const bad of [
      'Acme\r\nBcc: victim@example.com',
      'a\u0000b',
      'a\tb',
      'a\u001bb',
      'a\u0085b',
      'a\u2028b',
      'evil\u202Etxt.exe',
    ]) {
      assert.deepEqual(
        issues(profileSchema, { company: bad }).map((i) => i.path),
        ['company'],
        JSON.stringify(bad),
      );
      assert.deepEqual(
        issues(profileSchema, { anything: bad }).map((i) => i.path),
        ['anything'],
        JSON.stringify(bad),
      );
      assert.deepEqual(
        issues(leadEventSchema, { leadId: 'a', eventId: 'e', type: 'x', campaign: bad }).map((i) => i.path),
        ['campaign'],
      );
    }
    // Surrounding whitespace is trimmed from the named fields; ordinary Unicode text is fine.
    const r = z.safeParse(profileSchema, { company: ' Müller & Söhne — 東京\n', note: 'ok: naïve café' });
    assert.ok(r.success);
    assert.equal(r.data.company, 'Müller & Söhne — 東京');
  });
});

describe('applyProfile keeps the merged profile within the bound', () => {
  const start = (): LeadCore =>
    (newLead as unknown as (i: object, c: Config, v: string, now: number) => LeadCore)(
      { leadId: 'big', email: 'big@example.com', country: 'US' },
      config,
      version,
      0,
    );

  it('refuses a patch that would take the merged profile past 100 fields, and says so in the score log', () => {
    let core = start();
    const before = Object.keys(core.profile).length;
    core = applyProfile(core, fields(100 - before), config, 1);
    assert.equal(Object.keys(core.profile).length, 100);
    const refused = applyProfile(core, { onemore: 'x' }, config, 2);
    assert.deepEqual(refused.profile, core.profile);
    assert.match(refused.scoreLog.at(-1)!.note!, /profile change refused: a profile holds at most 100 fields/);
    // A change to a field it already has still goes in.
    assert.equal(applyProfile(core, { f0: 'changed' }, config, 3).profile.f0, 'changed');
  });

  it('refuses patches that add up past 16 KB', () => {
    let core = start();
    for (let i = 0; i < 3; i++)
      core = applyProfile(
        core,
        {
          [`big${i}`]: 'z'.repeat(1000),
          ...Object.fromEntries(Array.from({ length: 5 }, (_, j) => [`b${i}_${j}`, 'z'.repeat(1000)])),
        },
        config,
        i + 1,
      );
    assert.ok(profileWithinLimits(core.profile), 'stays within the bound');
    assert.equal(
      Object.keys(core.profile).filter((k) => k.startsWith('big')).length,
      2,
      'the third 6 KB patch was refused',
    );
  });
});
