/** Importing a real history: stage dates become `imported` transitions; imported outcomes may skip stages. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { importedOutcomeStage, importedSteps } from '../../src/domain/imported.js';

const d = (s: string) => Date.parse(s);
const NOW = d('2026-12-01T00:00:00Z');
const path = (r: ReturnType<typeof importedSteps>) =>
  'steps' in r ? r.steps.map((s) => `${s.from}>${s.to}@${new Date(s.at).toISOString().slice(0, 10)}`) : r.problems;

describe('imported stage history', () => {
  it('an Olist MQL (stage mql with its first-contact date) is one transition at that date', () => {
    assert.deepEqual(path(importedSteps({ stage: 'mql', becameMqlAt: d('2018-02-01') }, NOW)), ['lead>mql@2018-02-01']);
  });

  it('walks the funnel path as far as the stage, skipping stages the history never dated', () => {
    assert.deepEqual(
      path(importedSteps({ stage: 'customer', becameMqlAt: d('2018-02-01'), becameCustomerAt: d('2018-03-05') }, NOW)),
      ['lead>mql@2018-02-01', 'mql>customer@2018-03-05'],
    );
    assert.deepEqual(
      path(
        importedSteps(
          { becameMqlAt: d('2018-02-01'), becameSqlAt: d('2018-02-02'), becameOpportunityAt: d('2018-02-03') },
          NOW,
        ),
      ),
      ['lead>mql@2018-02-01', 'mql>sql@2018-02-02', 'sql>opportunity@2018-02-03'],
    );
  });

  it('a stage without a date of its own is entered now; one off the path comes last', () => {
    assert.deepEqual(path(importedSteps({ stage: 'sql', becameMqlAt: d('2018-02-01') }, NOW)), [
      'lead>mql@2018-02-01',
      'mql>sql@2026-12-01',
    ]);
    assert.deepEqual(path(importedSteps({ stage: 'dormant', becameMqlAt: d('2018-02-01') }, NOW)), [
      'lead>mql@2018-02-01',
      'mql>dormant@2026-12-01',
    ]);
    assert.deepEqual(path(importedSteps({}, NOW)), []);
    assert.deepEqual(path(importedSteps({ stage: 'lead' }, NOW)), []);
  });

  it('refuses dates out of order, and dates beyond the stage, naming the field', () => {
    assert.deepEqual(path(importedSteps({ becameMqlAt: d('2018-02-05'), becameSqlAt: d('2018-02-01') }, NOW)), [
      { field: 'becameSqlAt', message: 'is before becameMqlAt: a lead reaches sql after mql' },
    ]);
    assert.deepEqual(
      path(importedSteps({ stage: 'mql', becameMqlAt: d('2018-02-01'), becameCustomerAt: d('2018-03-01') }, NOW)),
      [{ field: 'becameCustomerAt', message: "dates customer, beyond the lead's stage mql" }],
    );
  });

  it('property: steps chain from lead, in time order, and end in the stage', () => {
    const date = fc.integer({ min: d('2015-01-01'), max: d('2025-01-01') });
    fc.assert(
      fc.property(
        fc.array(date, { minLength: 4, maxLength: 4 }),
        fc.boolean(),
        fc.boolean(),
        fc.boolean(),
        fc.boolean(),
        (ds, a, b, c, e) => {
          const [m, s, o, cu] = [...ds].sort((x, y) => x - y);
          const h = {
            ...(a ? { becameMqlAt: m } : {}),
            ...(b ? { becameSqlAt: s } : {}),
            ...(c ? { becameOpportunityAt: o } : {}),
            ...(e ? { becameCustomerAt: cu } : {}),
          };
          const r = importedSteps(h, NOW);
          assert.ok('steps' in r);
          let from = 'lead';
          let at = -Infinity;
          for (const st of r.steps) {
            assert.equal(st.from, from);
            assert.ok(st.at >= at);
            assert.equal(st.reason, 'imported');
            from = st.to;
            at = st.at;
          }
          assert.equal(r.steps.length, [a, b, c, e].filter(Boolean).length);
        },
      ),
    );
  });
});

describe('imported outcomes', () => {
  const mql = { stage: 'mql' as const, becameMqlAt: d('2018-02-01'), createdAt: d('2018-02-01') };
  it('won on an mql is customer; accepted is opportunity; lost and not-ready rejections recycle; bad fit disqualifies', () => {
    assert.deepEqual(importedOutcomeStage({ outcome: 'won', at: d('2018-03-01') }, mql), { to: 'customer' });
    assert.deepEqual(importedOutcomeStage({ outcome: 'accepted', at: d('2018-03-01') }, mql), { to: 'opportunity' });
    assert.deepEqual(importedOutcomeStage({ outcome: 'lost', at: d('2018-03-01') }, mql), { to: 'recycled' });
    assert.deepEqual(importedOutcomeStage({ outcome: 'rejected', reason: 'not_ready', at: d('2018-03-01') }, mql), {
      to: 'recycled',
    });
    assert.deepEqual(importedOutcomeStage({ outcome: 'rejected', reason: 'duplicate', at: d('2018-03-01') }, mql), {
      to: 'disqualified',
    });
  });
  it("an outcome dated before the lead's MQL date is refused, saying so", () => {
    const r = importedOutcomeStage({ outcome: 'won', at: d('2018-01-15') }, mql);
    assert.deepEqual(r, {
      problem: "is dated 2018-01-15T00:00:00.000Z, before the lead's MQL date 2018-02-01T00:00:00.000Z",
    });
  });
});
