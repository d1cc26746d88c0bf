/**
 * The lead ledger on both backends (the embedded PGlite and a real PostgreSQL server): the schema
 * migrates, every write is idempotent, a lead's row never goes back to an older version, stage
 * dates are the first time each stage was reached, the cohort funnel and the timeline read back
 * what was written, and suppression is by address.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { readdirSync } from 'node:fs';
import { DatabaseUnreachable, MIGRATIONS_DIR, migrate, openDatabase } from '../../src/ledger/database.js';
import type { LedgerBatch } from '../../src/ledger/ledger.js';
import { BACKEND_TITLES, BACKENDS, useLedgerDatabase } from '../helpers/ledger.js';

const lead = (
  leadId: string,
  version: number,
  over: Partial<NonNullable<LedgerBatch['lead']>> = {},
): NonNullable<LedgerBatch['lead']> => ({
  leadId,
  stage: 'lead',
  consent: 'subscribed',
  score: 10,
  createdAt: '2026-01-01T00:00:00.000Z',
  state: { leadId, v: version },
  version,
  ...over,
});

for (const backend of BACKENDS) {
  describe(`lead ledger on ${BACKEND_TITLES[backend]}`, () => {
    const db = useLedgerDatabase(backend);

    test('migrations run again without effect', async () => {
      await migrate(db.pool);
      const r = await db.pool.query('SELECT count(*)::int AS n FROM ledger_migrations');
      assert.equal(r.rows[0].n, readdirSync(MIGRATIONS_DIR).filter((f) => f.endsWith('.sql')).length);
    });

    test('a batch written twice is stored once; events keep their first applied time', async () => {
      const batch: LedgerBatch = {
        leadId: 'a-1',
        lead: lead('a-1', 1),
        events: [
          {
            eventId: 'e1',
            type: 'email_open',
            occurredAt: '2026-01-02T10:00:00.000Z',
            appliedAt: '2026-01-02T10:00:01.000Z',
            attributes: { campaign: 'x' },
          },
        ],
        profileChanges: [{ appliedAt: '2026-01-02T10:00:01.000Z', seq: 0, patch: { jobTitle: 'CTO' } }],
        transitions: [{ at: '2026-01-02T10:00:01.000Z', from: 'lead', to: 'mql', reason: 'score 45 >= mql 40' }],
        outcomes: [],
      };
      await db.ledger.record(batch);
      await db.ledger.record(batch);
      await db.ledger.record({
        leadId: 'a-1',
        events: [
          {
            eventId: 'e1',
            type: 'email_open',
            occurredAt: '2026-01-02T10:00:00.000Z',
            appliedAt: '2026-01-09T00:00:00.000Z',
          },
        ],
      });
      const counts = await db.pool
        .query(`SELECT (SELECT count(*) FROM lead_events WHERE lead_id = 'a-1')::int AS events,
        (SELECT count(*) FROM lead_transitions WHERE lead_id = 'a-1')::int AS transitions,
        (SELECT count(*) FROM lead_profile_changes WHERE lead_id = 'a-1')::int AS profiles,
        (SELECT applied_at FROM lead_events WHERE lead_id = 'a-1') AS applied`);
      assert.deepEqual(
        { ...counts.rows[0], applied: (counts.rows[0].applied as Date).toISOString() },
        { events: 1, transitions: 1, profiles: 1, applied: '2026-01-02T10:00:01.000Z' },
      );
    });

    test("a lead's row only moves to a higher version", async () => {
      await db.ledger.record({ leadId: 'v-1', lead: lead('v-1', 5, { stage: 'mql', score: 50 }) });
      await db.ledger.record({ leadId: 'v-1', lead: lead('v-1', 3, { stage: 'lead', score: 5 }) });
      await db.ledger.record({ leadId: 'v-1', lead: lead('v-1', 5, { stage: 'lead', score: 5 }) });
      let row = await db.ledger.lead('v-1');
      assert.equal(row?.stage, 'mql');
      assert.equal(row?.version, 5);
      await db.ledger.record({
        leadId: 'v-1',
        lead: lead('v-1', 6, { stage: 'sql', score: 80, owner: 'ana@sales.example' }),
      });
      row = await db.ledger.lead('v-1');
      assert.deepEqual([row?.stage, row?.score, row?.owner, row?.version], ['sql', 80, 'ana@sales.example', 6]);
      assert.equal(await db.ledger.lead('nobody'), undefined);
    });

    test("a failed task attempt's rows go when the retry writes; the row keeps what it said before the run", async () => {
      const ev = (id: string, appliedAt: string) => ({
        eventId: id,
        type: 'email_open',
        occurredAt: '2026-04-01T00:00:00.000Z',
        appliedAt,
      });
      // Run r1 wrote twice (completed tasks); then run r2 starts from it.
      await db.ledger.record({
        leadId: 'p-1',
        lead: lead('p-1', 100, { carried: { v: 1, core: { from: 'r1-a' } } }),
        run: { id: 'r1', after: 0 },
        events: [ev('e0', '2026-04-01T00:00:00.000Z')],
      });
      await db.ledger.record({
        leadId: 'p-1',
        lead: lead('p-1', 200, { carried: { v: 1, core: { from: 'r1-b' } } }),
        run: { id: 'r1', after: 100 },
      });
      // r2's first task, attempt 1: it writes, then its worker dies before the task completes.
      await db.ledger.record({
        leadId: 'p-1',
        lead: lead('p-1', 300, { stage: 'mql', carried: { v: 1, core: { from: 'r2-attempt-1' } } }),
        run: { id: 'r2', after: 0 },
        events: [ev('e1', '2026-04-02T00:00:10.000Z'), ev('e2', '2026-04-02T00:00:10.000Z')],
        transitions: [{ at: '2026-04-02T00:00:10.000Z', from: 'lead', to: 'mql', reason: 'score' }],
        profileChanges: [{ appliedAt: '2026-04-02T00:00:10.000Z', seq: 1, patch: { jobTitle: 'CTO' } }],
        outcomes: [{ outcome: 'accepted', occurredAt: '2026-04-02T00:00:10.000Z' }],
      });
      let row = await db.ledger.lead('p-1');
      assert.deepEqual([row?.runId, row?.runOrigin], ['r2', { v: 1, core: { from: 'r1-b' } }]);
      assert.deepEqual(await db.ledger.recentEventIds('p-1', 10, { exceptRun: 'r2' }), ['e0']);
      // Attempt 2 decides again at its own clock (and saw only e1 by then).
      const retry: LedgerBatch = {
        leadId: 'p-1',
        lead: lead('p-1', 400, { stage: 'mql', carried: { v: 1, core: { from: 'r2-attempt-2' } } }),
        run: { id: 'r2', after: 0 },
        events: [ev('e1', '2026-04-02T00:00:20.000Z')],
        transitions: [{ at: '2026-04-02T00:00:20.000Z', from: 'lead', to: 'mql', reason: 'score' }],
      };
      await db.ledger.record(retry);
      await db.ledger.record(retry); // a local-activity retry of the same write removes nothing of its own
      const rows = await db.pool.query(`SELECT
        (SELECT json_agg(json_build_array(event_id, applied_at) ORDER BY event_id) FROM lead_events WHERE lead_id = 'p-1') AS events,
        (SELECT json_agg(at ORDER BY at) FROM lead_transitions WHERE lead_id = 'p-1') AS transitions,
        (SELECT count(*) FROM lead_profile_changes WHERE lead_id = 'p-1')::int AS profiles,
        (SELECT count(*) FROM lead_outcomes WHERE lead_id = 'p-1')::int AS outcomes`);
      assert.deepEqual(rows.rows[0], {
        events: [
          ['e0', '2026-04-01T00:00:00+00:00'],
          ['e1', '2026-04-02T00:00:20+00:00'],
        ],
        transitions: ['2026-04-02T00:00:20+00:00'],
        profiles: 0,
        outcomes: 0,
      });
      row = await db.ledger.lead('p-1');
      assert.equal(row?.becameMqlAt, '2026-04-02T00:00:20.000Z');
      assert.deepEqual(
        [row?.runId, row?.runOrigin, row?.carried],
        ['r2', { v: 1, core: { from: 'r1-b' } }, { v: 1, core: { from: 'r2-attempt-2' } }],
      );
      // A late write older than the row (a zombie worker's) removes nothing.
      await db.ledger.record({ leadId: 'p-1', lead: lead('p-1', 350), run: { id: 'r2', after: 0 } });
      assert.equal(
        (await db.pool.query(`SELECT count(*)::int AS n FROM lead_events WHERE lead_id = 'p-1'`)).rows[0].n,
        2,
      );
      assert.equal((await db.ledger.lead('p-1'))?.version, 400);
    });

    test('stage dates are the first time each stage was reached, whatever order the transitions arrive in', async () => {
      await db.ledger.record({
        leadId: 's-1',
        lead: lead('s-1', 1, { stage: 'recycled' }),
        transitions: [
          { at: '2026-03-10T00:00:00.000Z', from: 'recycled', to: 'mql', reason: 'again' },
          { at: '2026-03-01T00:00:00.000Z', from: 'sql', to: 'recycled', reason: 'sales rejected (not_ready)' },
        ],
      });
      await db.ledger.record({
        leadId: 's-1',
        transitions: [
          { at: '2026-02-01T00:00:00.000Z', from: 'lead', to: 'mql', reason: 'score' },
          { at: '2026-02-03T12:00:00.000Z', from: 'mql', to: 'sql', reason: 'score' },
        ],
      });
      const row = await db.ledger.lead('s-1');
      assert.equal(row?.becameMqlAt, '2026-02-01T00:00:00.000Z');
      assert.equal(row?.becameSqlAt, '2026-02-03T12:00:00.000Z');
      assert.equal(row?.becameCustomerAt, undefined);
    });

    test('the cohort funnel counts leads by first MQL date, per group, with medians', async () => {
      const t = (leadId: string, mql: string, rest: [string, string][], channel?: string) =>
        db.ledger.record({
          leadId,
          lead: lead(leadId, 1, { stage: 'mql', channel, campaign: channel === 'paid' ? 'spring' : undefined }),
          transitions: [
            { at: mql, from: 'lead', to: 'mql', reason: 'imported' },
            ...rest.map(([to, at], i) => ({
              at,
              from: (i ? rest[i - 1]![0] : 'mql') as never,
              to: to as never,
              reason: 'imported',
            })),
          ],
        });
      await t(
        'f-1',
        '2025-05-01T00:00:00.000Z',
        [
          ['sql', '2025-05-03T00:00:00.000Z'],
          ['opportunity', '2025-05-04T00:00:00.000Z'],
          ['customer', '2025-05-11T00:00:00.000Z'],
        ],
        'paid',
      );
      await t('f-2', '2025-05-10T00:00:00.000Z', [['sql', '2025-05-11T00:00:00.000Z']], 'paid');
      await t('f-3', '2025-05-20T00:00:00.000Z', [], 'organic');
      await t('f-4', '2025-06-02T00:00:00.000Z', [['customer', '2025-06-06T00:00:00.000Z']]);
      const may = await db.ledger.cohorts(
        { since: '2025-05-01T00:00:00.000Z', until: '2025-06-01T00:00:00.000Z' },
        'channel',
      );
      assert.deepEqual(may.total, {
        mqls: 3,
        sqls: 2,
        opportunities: 1,
        customers: 1,
        medianDaysMqlToSql: 1.5,
        medianDaysMqlToCustomer: 10,
      });
      assert.deepEqual(
        may.groups.map((g) => [g.key, g.mqls, g.sqls, g.customers]),
        [
          ['paid', 2, 2, 1],
          ['organic', 1, 0, 0],
        ],
      );
      const months = await db.ledger.cohorts(
        { since: '2025-01-01T00:00:00.000Z', until: '2026-01-01T00:00:00.000Z' },
        'month',
      );
      assert.deepEqual(
        months.groups.map((g) => [g.key, g.mqls, g.customers]),
        [
          ['2025-05', 3, 1],
          ['2025-06', 1, 1],
        ],
      );
      const campaigns = await db.ledger.cohorts(
        { since: '2025-01-01T00:00:00.000Z', until: '2026-01-01T00:00:00.000Z' },
        'campaign',
      );
      assert.deepEqual(
        campaigns.groups.map((g) => [g.key, g.mqls]),
        [
          ['(none)', 2],
          ['spring', 2],
        ],
      );
      const stages = await db.ledger.stageCounts();
      assert.ok(stages.mql! >= 4);
    });

    test('the timeline lists everything in time order, page by page', async () => {
      await db.ledger.record({
        leadId: 'tl-1',
        lead: lead('tl-1', 1),
        profileChanges: [{ appliedAt: '2026-04-01T00:00:00.000Z', seq: 0, patch: { company: 'Globex' } }],
        events: Array.from({ length: 5 }, (_, i) => ({
          eventId: `ev${i}`,
          type: 'email_open',
          occurredAt: `2026-04-0${i + 1}T01:00:00.000Z`,
          appliedAt: `2026-04-0${i + 1}T01:00:00.000Z`,
        })),
        transitions: [{ at: '2026-04-03T02:00:00.000Z', from: 'lead', to: 'mql', reason: 'score' }],
        outcomes: [{ outcome: 'accepted', occurredAt: '2026-04-06T00:00:00.000Z', rep: 'ana@sales.example' }],
      });
      const all = [];
      let pageToken: string | undefined;
      let pages = 0;
      do {
        const page = await db.ledger.timeline('tl-1', { limit: 3, pageToken });
        all.push(...page.entries);
        pageToken = page.nextPageToken;
        pages++;
      } while (pageToken);
      assert.equal(pages, 3);
      assert.deepEqual(
        all.map((e) => e.kind),
        ['profile', 'event', 'event', 'event', 'transition', 'event', 'event', 'outcome'],
      );
      const sorted = [...all].sort((a, b) => a.at.localeCompare(b.at));
      assert.deepEqual(
        all.map((e) => e.at),
        sorted.map((e) => e.at),
      );
      await assert.rejects(db.ledger.timeline('tl-1', { pageToken: 'garbage' }), /pageToken/);
    });

    test('suppression is by address, case-insensitively, and idempotent', async () => {
      await db.ledger.suppress('Dana@Globex.example', 'unsubscribed', 'd-1');
      await db.ledger.suppress('dana@globex.example ', 'hard_bounce', 'd-2');
      assert.equal(await db.ledger.isSuppressed('DANA@globex.EXAMPLE'), true);
      assert.deepEqual(
        (await db.ledger.suppressions()).map((s) => [s.address, s.reason, s.leadId]),
        [['dana@globex.example', 'unsubscribed', 'd-1']],
      );
      assert.equal(await db.ledger.unsuppress('dana@globex.example'), true);
      assert.equal(await db.ledger.unsuppress('dana@globex.example'), false);
      assert.equal(await db.ledger.isSuppressed('dana@globex.example'), false);
    });
  });
}

test('a DATABASE_URL that cannot be reached is one clear error naming it, without its password', async () => {
  const err = await openDatabase({ url: 'postgres://engine:s3cret@127.0.0.1:1/ledger', connectTimeoutMs: 2_000 }).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(err instanceof DatabaseUnreachable, String(err));
  assert.match(err.message, /^the lead ledger database postgres:\/\/engine@127\.0\.0\.1:1\/ledger is not reachable: /);
  assert.doesNotMatch(err.message, /s3cret/);
});
