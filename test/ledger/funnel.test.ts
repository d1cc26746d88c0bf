/**
 * The contract's Funnel from the ledger, on both backends, for a hand-made set of leads whose
 * figures are worked out by hand below: rates, medians, groups with `(none)`, month keys in
 * calendar order, cost per MQL, the [since, until) window, zero-filled stages.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { STAGES } from '../../src/domain/stages.js';
import type { Cohort } from '../../src/ledger/funnel.js';
import { BACKEND_TITLES, BACKENDS, useLedgerDatabase } from '../helpers/ledger.js';
import { seed } from './seed.js';

const COSTS = {
  'spring-webinar': { cost: 12000 },
  'trade-show': { cost: 5000 },
  'autumn-ads': { cost: 3000 },
  'never-ran': { cost: 999 },
};
const MARCH_APRIL = { since: '2025-03-01T00:00:00.000Z', until: '2025-05-01T00:00:00.000Z' };
const cohort = (
  mqls: number,
  sqls: number,
  opportunities: number,
  customers: number,
  mqlToSqlRate: number | null,
  mqlToCustomerRate: number | null,
  medianDaysMqlToSql: number | null,
  medianDaysMqlToCustomer: number | null,
  cost?: [number, number],
): Cohort => ({
  mqls,
  sqls,
  opportunities,
  customers,
  mqlToSqlRate,
  mqlToCustomerRate,
  medianDaysMqlToSql,
  medianDaysMqlToCustomer,
  ...(cost ? { cost: cost[0], costPerMql: cost[1] } : {}),
});

for (const backend of BACKENDS) {
  describe(`the funnel from the ledger on ${BACKEND_TITLES[backend]}`, () => {
    const db = useLedgerDatabase(backend);

    describe('funnel', () => {
      before(async () => {
        // In the March-April window (first MQL date), 7 MQLs:
        //   days MQL->SQL: p1 2, p2 6, p4 1, p5 3 -> median 2.5; MQL->customer: p1 20, p4 30 -> 25
        await seed(
          db.ledger,
          'p1',
          [
            ['mql', '2025-03-02'],
            ['sql', '2025-03-04'],
            ['opportunity', '2025-03-10'],
            ['customer', '2025-03-22'],
          ],
          { campaign: 'spring-webinar', channel: 'paid', model: 'm1' },
        );
        await seed(
          db.ledger,
          'p2',
          [
            ['mql', '2025-03-10'],
            ['sql', '2025-03-16'],
          ],
          { campaign: 'spring-webinar', channel: 'paid', model: 'm1' },
        );
        await seed(db.ledger, 'p3', [['mql', '2025-04-05']], { campaign: 'spring-webinar', channel: 'email' });
        // became customer after the window: still counts (ever)
        await seed(
          db.ledger,
          'p4',
          [
            ['mql', '2025-04-20'],
            ['sql', '2025-04-21'],
            ['opportunity', '2025-05-01'],
            ['customer', '2025-05-20'],
          ],
          { campaign: 'trade-show', channel: 'events' },
        );
        await seed(
          db.ledger,
          'p5',
          [
            ['mql', '2025-03-15'],
            ['sql', '2025-03-18'],
            ['opportunity', '2025-03-25'],
          ],
          { model: 'm2' },
        );
        // the last second of April, UTC: in the window and in 2025-04; recycled since
        await seed(
          db.ledger,
          'p6',
          [
            ['mql', '2025-04-30T23:59:59.000Z'],
            ['recycled', '2025-06-01'],
          ],
          { campaign: 'organic-blog', channel: 'organic' },
        );
        await seed(db.ledger, 'p7', [['mql', '2025-04-12']], { channel: 'email', model: 'm1' });
        // Outside the window: the last second before it, and its very end (until is excluded).
        await seed(
          db.ledger,
          'out1',
          [
            ['mql', '2025-02-28T23:59:59.000Z'],
            ['sql', '2025-03-01'],
          ],
          { campaign: 'spring-webinar', channel: 'paid' },
        );
        await seed(db.ledger, 'out2', [['mql', '2025-05-01']], { campaign: 'autumn-ads', channel: 'paid' });
        // Never MQL: in the stage counts, in no cohort.
        await seed(db.ledger, 'never', [], { campaign: 'spring-webinar' });
        await seed(db.ledger, 'dq', [['disqualified', '2025-03-05']]);
        // A recycled lead that re-qualified: its first MQL date is what counts.
        await seed(
          db.ledger,
          'again',
          [
            ['mql', '2024-11-01'],
            ['recycled', '2024-12-01'],
            ['mql', '2025-03-20'],
          ],
          { stage: 'mql', campaign: 'trade-show' },
        );
      });

      test('stages: every stage, zero-filled, in STAGES order, whatever the window', async () => {
        const f = await db.ledger.funnel(MARCH_APRIL, COSTS);
        const expected = {
          lead: 1,
          mql: 4,
          sql: 2,
          opportunity: 1,
          customer: 2,
          recycled: 1,
          disqualified: 1,
          dormant: 0,
        };
        assert.deepEqual(f.stages, expected);
        assert.deepEqual(Object.keys(f.stages), [...STAGES]);
        assert.deepEqual((await db.ledger.funnel({ since: '2030-01-01T00:00:00.000Z' })).stages, expected);
      });

      test('total: counts, rates to 4 decimals, medians, and the blended cost per MQL of the costed campaigns in the cohort', async () => {
        const f = await db.ledger.funnel(MARCH_APRIL, COSTS);
        assert.deepEqual([f.since, f.until, f.by, f.groups], [MARCH_APRIL.since, MARCH_APRIL.until, null, []]);
        // spring-webinar 12000 + trade-show 5000 (autumn-ads only outside, never-ran not at all) over 7 MQLs
        assert.deepEqual(f.total, cohort(7, 4, 3, 2, 0.5714, 0.2857, 2.5, 25, [17000, 2428.57]));
      });

      test('by campaign: every campaign seen, (none) for leads without one, cost only where configured', async () => {
        const f = await db.ledger.funnel({ ...MARCH_APRIL, by: 'campaign' }, COSTS);
        assert.equal(f.by, 'campaign');
        assert.deepEqual(f.total, cohort(7, 4, 3, 2, 0.5714, 0.2857, 2.5, 25, [17000, 2428.57]));
        assert.deepEqual(f.groups, [
          { key: 'spring-webinar', ...cohort(3, 2, 1, 1, 0.6667, 0.3333, 4, 20, [12000, 4000]) },
          { key: '(none)', ...cohort(2, 1, 1, 0, 0.5, 0, 3, null) },
          { key: 'organic-blog', ...cohort(1, 0, 0, 0, 0, 0, null, null) },
          { key: 'trade-show', ...cohort(1, 1, 1, 1, 1, 1, 1, 30, [5000, 5000]) },
        ]);
      });

      test('by month: UTC months of the first MQL date, in calendar order', async () => {
        const f = await db.ledger.funnel({ ...MARCH_APRIL, by: 'month' }, COSTS);
        assert.deepEqual(
          f.groups.map((g) => [g.key, g.mqls, g.sqls, g.customers, g.mqlToSqlRate, g.medianDaysMqlToSql, 'cost' in g]),
          [
            ['2025-03', 3, 3, 1, 1, 3, false],
            ['2025-04', 4, 1, 1, 0.25, 1, false],
          ],
        );
        assert.deepEqual(f.total, cohort(7, 4, 3, 2, 0.5714, 0.2857, 2.5, 25, [17000, 2428.57]));
      });

      test('by channel and by model: biggest first, then by key; no cost on these groups', async () => {
        const channels = await db.ledger.funnel({ ...MARCH_APRIL, by: 'channel' }, COSTS);
        assert.deepEqual(
          channels.groups.map((g) => [g.key, g.mqls, g.sqls]),
          [
            ['email', 2, 0],
            ['paid', 2, 2],
            ['(none)', 1, 1],
            ['events', 1, 1],
            ['organic', 1, 0],
          ],
        );
        assert.ok(channels.groups.every((g) => !('cost' in g) && !('costPerMql' in g)));
        const models = await db.ledger.funnel({ ...MARCH_APRIL, by: 'model' }, COSTS);
        assert.deepEqual(
          models.groups.map((g) => [g.key, g.mqls, g.customers]),
          [
            ['(none)', 3, 1],
            ['m1', 3, 1],
            ['m2', 1, 0],
          ],
        );
        assert.deepEqual(models.total, channels.total);
      });

      test('the window: open ends, a lead that re-qualified counts at its first MQL date, an empty window', async () => {
        const all = await db.ledger.funnel({ by: 'campaign' }, COSTS);
        assert.deepEqual([all.since, all.until], [null, null]);
        // + out1, out2, again; every configured campaign with a lead: 12000 + 5000 + 3000 over 10 MQLs
        assert.deepEqual([all.total.mqls, all.total.sqls, all.total.cost, all.total.costPerMql], [10, 5, 20000, 2000]);
        assert.deepEqual(
          all.groups.map((g) => [g.key, g.mqls, g.costPerMql]),
          [
            ['spring-webinar', 4, 3000],
            ['(none)', 2, undefined],
            ['trade-show', 2, 2500],
            ['autumn-ads', 1, 3000],
            ['organic-blog', 1, undefined],
          ],
        );
        const may = await db.ledger.funnel({ since: '2025-05-01T00:00:00.000Z' }, COSTS);
        assert.deepEqual(may.total, cohort(1, 0, 0, 0, 0, 0, null, null, [3000, 3000]));
        const before = await db.ledger.funnel({ until: '2025-03-01T00:00:00Z' }, COSTS);
        assert.equal(before.until, '2025-03-01T00:00:00.000Z');
        // out1 (spring-webinar) and again (trade-show, first MQL in 2024)
        assert.deepEqual([before.total.mqls, before.total.sqls, before.total.cost], [2, 1, 17000]);
        const empty = await db.ledger.funnel(
          { since: '2025-04-01T00:00:00.000Z', until: '2025-04-01T00:00:00.000Z', by: 'campaign' },
          COSTS,
        );
        assert.deepEqual(empty.total, cohort(0, 0, 0, 0, null, null, null, null));
        assert.deepEqual(empty.groups, []);
      });

      test('without configured costs nothing carries a cost; a bad date or by is invalid_input', async () => {
        const f = await db.ledger.funnel({ ...MARCH_APRIL, by: 'campaign' });
        assert.ok(!('cost' in f.total) && f.groups.every((g) => !('cost' in g)));
        await assert.rejects(
          db.ledger.funnel({ since: 'yesterday' }),
          (e: { code?: string }) => e.code === 'invalid_input',
        );
        await assert.rejects(
          db.ledger.funnel({ by: 'country' as never }),
          (e: { code?: string }) => e.code === 'invalid_input',
        );
      });
    });
  });
}
