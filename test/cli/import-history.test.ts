/**
 * Importing a real history without Temporal: a lead row's stage and stage dates become its
 * `history` fact (never profile fields), outcome rows become theirs, with deterministic importIds;
 * bad stages, dates and outcomes are bad rows by line with the field and reason and send nothing;
 * and the wait for the ledger.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { importedFactSchema } from '../../src/domain/lead.js';
import {
  describeBadRow,
  ImportSetupError,
  importIdFor,
  parseDate,
  planColumns,
  runImport,
  type RunImportOptions,
  waitForLedger,
} from '../../src/cli/import.js';
import { importCsvText } from '../helpers/import.js';
import { sharedData } from '../helpers/shared-data.js';

const NOW = Date.parse('2026-12-01T12:00:00Z');

async function importText(csv: string, o: Omit<RunImportOptions, 'file' | 'input'>) {
  const { summary, sent } = await importCsvText(csv, { now: NOW, ...o }, 'created');
  return { summary, sent, lines: summary.badRows.map(describeBadRow) };
}

describe('import leads with a history', () => {
  const olistLike = {
    kind: 'leads' as const,
    map: ['id=leadId', 'first=becameMqlAt', 'origin=channel'],
    set: ['stage=mql'],
    dateFormat: 'dd-mm-yyyy' as const,
    emailTemplate: '{leadId}@import.invalid',
  };

  it('takes stage and the stage dates off the lead: they travel as its history fact, not as profile fields', async () => {
    const { sent, summary } = await importText('id,first,origin\nm1,01-02-2018,social\n', olistLike);
    assert.equal(summary.bad, 0);
    assert.equal(sent.length, 1);
    const [{ value, row }] = sent as [(typeof sent)[number]];
    assert.deepEqual(value, { leadId: 'm1', email: 'm1@import.invalid', consent: { email: false }, channel: 'social' });
    assert.deepEqual(row.fact, { importId: row.fact!.importId, stage: 'mql', becameMqlAt: '2018-02-01T00:00:00.000Z' });
    assert.match(row.fact!.importId, /^import:lead:[0-9a-f]{32}$/);
    assert.ok(importedFactSchema.safeParse(row.fact).success);
    assert.deepEqual(row.stages, ['mql']);
  });

  it('gives the same history the same importId however the file writes it, and another history another', async () => {
    const a = await importText('id,first,origin\nm1,01-02-2018,social\n', olistLike);
    const b = await importText('leadId,becameMqlAt,stage,email\nm1,2018-02-01,MQL,x@y.example\n', { kind: 'leads' });
    const c = await importText('id,first,origin\nm1,02-02-2018,social\n', olistLike);
    assert.equal(a.sent[0]!.row.fact!.importId, b.sent[0]!.row.fact!.importId);
    assert.notEqual(a.sent[0]!.row.fact!.importId, c.sent[0]!.row.fact!.importId);
    assert.equal(
      a.sent[0]!.row.fact!.importId,
      importIdFor('lead', ['m1', { stage: 'mql', becameMqlAt: '2018-02-01T00:00:00.000Z' }]),
    );
  });

  it('walks a longer history; a lead without history fields has no fact', async () => {
    const csv = [
      'leadId,email,stage,becameMqlAt,becameSqlAt,becameOpportunityAt,becameCustomerAt',
      'w1,w1@x.example,customer,2018-01-01,2018-01-05,2018-01-09,2018-02-01T10:30:00Z',
      'w2,w2@x.example,,2018-01-01,2018-01-05,,',
      'p1,p1@x.example,,,,,',
    ].join('\n');
    const { sent, summary } = await importText(csv, { kind: 'leads' });
    assert.equal(summary.bad, 0);
    assert.deepEqual(
      sent.map((s) => s.row.stages),
      [['mql', 'sql', 'opportunity', 'customer'], ['mql', 'sql'], undefined],
    );
    assert.equal(
      sent[0]!.row.fact && 'becameCustomerAt' in sent[0]!.row.fact && sent[0]!.row.fact.becameCustomerAt,
      '2018-02-01T10:30:00.000Z',
    );
    assert.equal(sent[2]!.row.fact, undefined);
  });

  it('reports a bad stage, a bad or future date, dates out of order or beyond the stage by line, field and column, and sends none of them', async () => {
    const csv = [
      'Contact,Mail,Stage,MQL date,SQL date,Won date', // 1
      'g1,g1@x.example,mql,01-02-2018,,', // 2: good
      'b1,b1@x.example,hot,01-02-2018,,', // 3: no such stage
      'b2,b2@x.example,mql,31-02-2018,,', // 4: no such date
      'b3,b3@x.example,sql,05-02-2018,01-02-2018,', // 5: sql before mql
      'b4,b4@x.example,mql,01-02-2018,,01-03-2018', // 6: a customer date on an mql
      'b5,b5@x.example,mql,01-02-2030,,', // 7: in the future
      'b6,b6@x.example,mql,2018-02-01,,', // 8: not dd-mm-yyyy
      'g2,g2@x.example,customer,01-02-2018,,01-03-2018 17:45', // 9: good, won with a time
    ].join('\n');
    const { sent, summary, lines } = await importText(csv, {
      kind: 'leads',
      dateFormat: 'dd-mm-yyyy',
      map: [
        'Contact=leadId',
        'Mail=email',
        'Stage=stage',
        'MQL date=becameMqlAt',
        'SQL date=becameSqlAt',
        'Won date=becameCustomerAt',
      ],
    });
    assert.deepEqual(
      sent.map((s) => s.value.leadId),
      ['g1', 'g2'],
    );
    assert.equal(summary.bad, 6);
    assert.deepEqual(lines, [
      'line 3: stage (column "Stage"): unknown stage "hot"; one of lead, mql, sql, opportunity, customer, recycled, disqualified, dormant',
      'line 4: becameMqlAt (column "MQL date"): "31-02-2018" is not a real date (dd-mm-yyyy)',
      'line 5: becameSqlAt (column "SQL date"): is before becameMqlAt: a lead reaches sql after mql',
      'line 6: becameCustomerAt (column "Won date"): dates customer, beyond the lead\'s stage mql',
      'line 7: becameMqlAt (column "MQL date"): 2030-02-01T00:00:00.000Z is in the future: an imported history is the past',
      'line 8: becameMqlAt (column "MQL date"): "2018-02-01" is not a dd-mm-yyyy date',
    ]);
    assert.equal((sent[1]!.row.fact as { becameCustomerAt?: string }).becameCustomerAt, '2018-03-01T17:45:00.000Z');
  });

  it('a bad --set stage makes every row bad, naming --set', async () => {
    const { lines, sent } = await importText('leadId,email\nx1,x1@x.example\n', {
      kind: 'leads',
      set: ['stage=qualified'],
    });
    assert.equal(sent.length, 0);
    assert.match(lines[0]!, /^line 2: stage \(column "--set"\): unknown stage "qualified"/);
  });
});

describe('import outcomes', () => {
  const deals = {
    kind: 'outcomes' as const,
    map: ['mql_id=leadId', 'won_date=occurredAt'],
    set: ['outcome=won'],
    dateFormat: 'dd-mm-yyyy' as const,
  };

  it("reads Olist's closed deals: dd-mm-yyyy HH:mm, --map and --set; other columns ignored", async () => {
    const { sent, summary } = await importText(
      'mql_id,seller_id,won_date,business_segment\nabc,s1,26-02-2018 19:58,pet\n',
      deals,
    );
    assert.equal(summary.bad, 0);
    assert.deepEqual(summary.ignoredColumns, ['seller_id', 'business_segment']);
    assert.deepEqual(sent[0]!.value, { leadId: 'abc', outcome: 'won', occurredAt: '2018-02-26T19:58:00.000Z' });
    assert.deepEqual(sent[0]!.row.fact, {
      importId: importIdFor('outcome', ['abc', 'won', '2018-02-26T19:58:00.000Z']),
      outcome: 'won',
      occurredAt: '2018-02-26T19:58:00.000Z',
    });
    assert.ok(importedFactSchema.safeParse(sent[0]!.row.fact).success);
  });

  it('takes every LeadOutcome field; a row without occurredAt is dated now, its importId the same on every import', async () => {
    const csv =
      'leadId,outcome,occurredAt,reason,note,rep\nl1,Rejected,2024-03-01T10:00:00Z,Bad_Fit,wrong size,ana@sales.example\nl2,lost,,price,,\n';
    const one = await importText(csv, { kind: 'outcomes' });
    assert.deepEqual(
      one.sent.map((s) => s.value),
      [
        {
          leadId: 'l1',
          outcome: 'rejected',
          occurredAt: '2024-03-01T10:00:00.000Z',
          reason: 'bad_fit',
          note: 'wrong size',
          rep: 'ana@sales.example',
        },
        { leadId: 'l2', outcome: 'lost', occurredAt: new Date(NOW).toISOString(), reason: 'price' },
      ],
    );
    const later = await importText(csv, { kind: 'outcomes', now: NOW + 86_400_000 });
    assert.deepEqual(
      later.sent.map((s) => s.row.fact!.importId),
      one.sent.map((s) => s.row.fact!.importId),
    );
    assert.equal(later.sent[1]!.value.occurredAt, new Date(NOW + 86_400_000).toISOString());
  });

  it('reports an unknown outcome, a missing or unknown reject reason, a bad or future date by line; good rows still go in', async () => {
    const csv = [
      'leadId,outcome,occurredAt,reason', // 1
      'ok1,won,01/03/2018 09:05,', // 2
      'b1,closed,01/03/2018,', // 3
      'b2,rejected,01/03/2018,', // 4
      'b3,rejected,01/03/2018,too expensive', // 5
      'b4,won,30/02/2018,', // 6
      'b5,won,01/03/2031,', // 7
      'bad id!,won,01/03/2018,', // 8
      'ok2,rejected,02/03/2018,not_ready', // 9
      'ok1,won,01/03/2018 09:05,', // 10: the same outcome again
    ].join('\n');
    const { sent, summary, lines } = await importText(csv, { kind: 'outcomes', dateFormat: 'dd/mm/yyyy' });
    assert.deepEqual(
      sent.map((s) => [s.value.leadId, s.value.occurredAt]),
      [
        ['ok1', '2018-03-01T09:05:00.000Z'],
        ['ok2', '2018-03-02T00:00:00.000Z'],
      ],
    );
    assert.equal(summary.skippedReasons.duplicate, 1);
    assert.deepEqual(lines, [
      'line 3: outcome: unknown outcome "closed"; one of accepted, rejected, won, lost',
      'line 4: reason: a rejection needs a reason: one of not_ready, no_response, bad_fit, duplicate, other (--set reason=other for all)',
      'line 5: reason: unknown reject reason "too expensive"; one of not_ready, no_response, bad_fit, duplicate, other',
      'line 6: occurredAt: "30/02/2018" is not a real date (dd/mm/yyyy)',
      'line 7: occurredAt: 2031-03-01T00:00:00.000Z is in the future: an imported history is the past',
      'line 8: leadId: must be 1-128 characters of A-Z a-z 0-9 . _ : @ + -',
    ]);
  });

  it("reports by line what the sender refuses (a lead the ledger does not have, an outcome before the lead's MQL date)", async () => {
    const refuse = (path: string, message: string) =>
      Object.assign(new Error(message), { status: path === 'leadId' ? 404 : 409, issues: [{ path, message }] });
    const { sent, lines, summary } = await importText(
      'leadId,outcome,occurredAt\nnobody,won,2018-03-01\nearly,won,2018-01-01\nfine,won,2018-03-01\n',
      {
        kind: 'outcomes',
        send: async (_v, row) => {
          if (row.leadId === 'nobody')
            throw refuse('leadId', 'no lead "nobody" in the ledger (import the leads first)');
          if (row.leadId === 'early')
            throw refuse(
              'occurredAt',
              "is dated 2018-01-01T00:00:00.000Z, before the lead's MQL date 2018-02-01T00:00:00.000Z",
            );
          return 'sent';
        },
      },
    );
    assert.equal(sent.length, 0);
    assert.equal(summary.imported, 1);
    assert.deepEqual(lines, [
      'line 2: leadId: no lead "nobody" in the ledger (import the leads first)',
      "line 3: occurredAt: is dated 2018-01-01T00:00:00.000Z, before the lead's MQL date 2018-02-01T00:00:00.000Z",
    ]);
  });

  it('needs an outcome column or --set outcome, and knows only LeadOutcome fields', () => {
    assert.throws(
      () => planColumns(['leadId', 'when'], { kind: 'outcomes' }),
      (e: Error) => e instanceof ImportSetupError && /no column gives the outcome.*--set outcome=won/.test(e.message),
    );
    assert.throws(
      () => planColumns(['leadId'], { kind: 'outcomes', map: ['leadId=amount'] }),
      /"amount" is not a LeadOutcome field; use one of leadId, outcome, occurredAt, reason, note, rep$/,
    );
    assert.throws(
      () => planColumns(['leadId'], { kind: 'outcomes', set: ['profile.plan=pro'] }),
      /"profile.plan" is not a LeadOutcome field/,
    );
  });

  it('all 842 rows of the real Olist closed deals are valid rows (dry run)', async () => {
    const summary = await runImport({ ...deals, file: sharedData('olist-closed-deals.csv'), dryRun: true });
    assert.deepEqual([summary.rowsRead, summary.imported, summary.bad], [842, 842, 0]);
  });
});

describe('rows the ledger already shows', () => {
  it('are counted as unchanged (leads: as updated too) and said so in the summary', async () => {
    const { formatSummary } = await import('../../src/cli/import.js');
    const leads = await importText('leadId,email\nu1,u1@x.example\nu2,u2@x.example\nu3,u3@x.example\n', {
      kind: 'leads',
      send: async (v) => (v.leadId === 'u3' ? 'created' : 'unchanged'),
    });
    assert.deepEqual(
      [leads.summary.imported, leads.summary.created, leads.summary.updated, leads.summary.unchanged],
      [3, 1, 2, 2],
    );
    assert.match(
      formatSummary(leads.summary),
      /3 rows read, 3 imported \(1 new, 2 updated; 2 already so in the ledger, not sent\), 0 bad/,
    );
    const outcomes = await importText('leadId,outcome\nu1,won\nu2,won\n', {
      kind: 'outcomes',
      send: async (v) => (v.leadId === 'u1' ? 'unchanged' : 'sent'),
    });
    assert.deepEqual([outcomes.summary.imported, outcomes.summary.updated, outcomes.summary.unchanged], [2, 0, 1]);
    assert.match(
      formatSummary(outcomes.summary),
      /2 rows read, 2 imported \(1 already in the ledger, not sent\), 0 bad/,
    );
  });
});

describe('dates with a time', () => {
  it('dd-mm-yyyy and dd/mm/yyyy take an optional " HH:mm" (and :ss), read as UTC', () => {
    assert.deepEqual(parseDate('26-02-2018 19:58', 'dd-mm-yyyy'), { value: '2018-02-26T19:58:00.000Z' });
    assert.deepEqual(parseDate('26/02/2018 19:58', 'dd/mm/yyyy'), { value: '2018-02-26T19:58:00.000Z' });
    assert.deepEqual(parseDate('26/02/2018 7:05:09', 'dd/mm/yyyy'), { value: '2018-02-26T07:05:09.000Z' });
    assert.deepEqual(parseDate('02/26/2018 19:58', 'mm/dd/yyyy'), { value: '2018-02-26T19:58:00.000Z' });
    assert.ok('error' in parseDate('26-02-2018 24:00', 'dd-mm-yyyy'));
    assert.ok('error' in parseDate('26-02-2018 19:5', 'dd-mm-yyyy'));
    assert.ok('error' in parseDate('26/02/2018 19:58', 'dd-mm-yyyy'));
  });
});

describe('waitForLedger', () => {
  it('polls until the ledger shows every item', async () => {
    let round = 0;
    const r = await waitForLedger({
      items: [1, 2, 3, 4, 5],
      batchSize: 2,
      pollMs: 1,
      stallMs: 1000,
      check: async (batch) => batch.map((x) => x <= ++round),
    });
    assert.deepEqual([r.recorded, r.pending], [5, []]);
  });

  it('gives up once nothing new showed for stallMs, returning what is missing', async () => {
    const r = await waitForLedger({
      items: ['a', 'b', 'c'],
      pollMs: 5,
      stallMs: 50,
      check: async (batch) => batch.map((x) => x !== 'b'),
    });
    assert.deepEqual([r.recorded, r.pending], [2, ['b']]);
    assert.ok(r.waitedMs >= 50);
  });
});
