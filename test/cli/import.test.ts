/**
 * The CSV import without Temporal: mapping, coercion, bad rows by line, deterministic event ids,
 * dates (Olist's dd-mm-yyyy included) and a dry run over the real Olist file.
 */
import { importCsvText } from '../helpers/import.js';
import { sharedData } from '../helpers/shared-data.js';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { leadEventSchema } from '../../src/domain/lead.js';
import {
  describeBadRow,
  eventIdFor,
  ImportFatalError,
  ImportSetupError,
  parseDate,
  planColumns,
  processRow,
  readCsv,
  runImport,
  type RunImportOptions,
} from '../../src/cli/import.js';

const OLIST = sharedData('olist-marketing-qualified-leads.csv');
const TYPES = ['email_open', 'content_download', 'form_submit', 'unsubscribe', 'hard_bounce'];

async function importText(csv: string, o: Omit<RunImportOptions, 'file' | 'input'>) {
  const { summary, sent } = await importCsvText(csv, o, 'sent');
  return { summary, sent: sent.map((s) => s.value) };
}

describe('column mapping', () => {
  it('reads columns named like fields (case-insensitively) and ignores the rest', () => {
    const plan = planColumns(['LeadId', 'email', 'Company', 'favourite colour', 'consent.email'], { kind: 'leads' });
    assert.deepEqual(
      plan.columns.map((c) => c.field),
      ['leadId', 'email', 'company', 'consent.email'],
    );
    assert.deepEqual(plan.ignored, ['favourite colour']);
  });

  it("maps other tools' columns with --map, and the mapping wins over a same-named column", () => {
    const plan = planColumns(['Contact ID', 'E-mail Address', 'email', 'Employees'], {
      kind: 'leads',
      map: ['Contact ID=leadId', 'E-mail Address=email', 'Employees=companySize'],
    });
    assert.deepEqual(
      plan.columns.map((c) => [c.column, c.field]),
      [
        ['Contact ID', 'leadId'],
        ['E-mail Address', 'email'],
        ['Employees', 'companySize'],
      ],
    );
    assert.deepEqual(plan.ignored, ['email']);
  });

  it('refuses a map to a field that does not exist, a missing column, or no leadId', () => {
    assert.throws(
      () => planColumns(['id', 'mail'], { kind: 'leads', map: ['id=leadId', 'mail=emial'] }),
      (e: Error) => e instanceof ImportSetupError && /"emial" is not a LeadInput field/.test(e.message),
    );
    assert.throws(() => planColumns(['id'], { kind: 'leads', map: ['ID=leadId'] }), /the file has no column "ID"/);
    assert.throws(() => planColumns(['email'], { kind: 'leads' }), /no column gives leadId/);
    assert.throws(() => planColumns(['leadId'], { kind: 'leads' }), /no column gives email.*--email-template/);
    assert.throws(() => planColumns(['leadId'], { kind: 'events' }), /no column gives the event type/);
  });

  it('takes profile.<name> as a custom profile attribute', async () => {
    const { sent } = await importText('id,mail,Plan\nl1,a@x.example,pro\n', {
      kind: 'leads',
      map: ['id=leadId', 'mail=email', 'Plan=profile.plan'],
    });
    assert.deepEqual(sent, [{ leadId: 'l1', email: 'a@x.example', plan: 'pro' }]);
    const ev = await importText('id,type,Plan\nl1,email_open,pro\n', {
      kind: 'events',
      map: ['id=leadId', 'Plan=profile.plan'],
      knownTypes: TYPES,
    });
    assert.deepEqual((ev.sent[0] as { profile: unknown }).profile, { plan: 'pro' });
  });
});

describe('coercion', () => {
  it('makes companySize a number, consent.email a boolean, country upper case; empty cells are missing', async () => {
    const csv = [
      'leadId,email,companySize,consent.email,country,company',
      'a1,a1@x.example,"1,200",yes,de,',
      'a2,a2@x.example,15,FALSE,US,Acme',
    ].join('\n');
    const { summary, sent } = await importText(csv, { kind: 'leads' });
    assert.equal(summary.bad, 0);
    assert.deepEqual(sent, [
      { leadId: 'a1', email: 'a1@x.example', companySize: 1200, consent: { email: true }, country: 'DE' },
      {
        leadId: 'a2',
        email: 'a2@x.example',
        companySize: 15,
        consent: { email: false },
        country: 'US',
        company: 'Acme',
      },
    ]);
  });

  it('gives rows without a value the --set constants, and --type to events', async () => {
    const { sent } = await importText('leadId,email,consent.email\nb1,b1@x.example,\nb2,b2@x.example,true\n', {
      kind: 'leads',
      set: ['consent.email=false', 'campaign=spring-webinar'],
    });
    assert.deepEqual(
      sent.map((s) => [s.consent, s.campaign]),
      [
        [{ email: false }, 'spring-webinar'],
        [{ email: true }, 'spring-webinar'],
      ],
    );
    const ev = await importText('Lead=Id,kind\nl1,\n', {
      kind: 'events',
      map: ['Lead=Id=leadId', 'kind=type'],
      set: ['type=email_open', 'asset=https://x.example/?a=b'],
      knownTypes: TYPES,
    });
    assert.deepEqual(
      [ev.sent[0]!.leadId, ev.sent[0]!.type, ev.sent[0]!.asset],
      ['l1', 'email_open', 'https://x.example/?a=b'],
    );
  });

  it('builds placeholder emails from --email-template, with consent.email=false', async () => {
    const { sent } = await importText('id,email\nAbC,\nd2,real@x.example\n', {
      kind: 'leads',
      map: ['id=leadId'],
      emailTemplate: '{leadId}@import.invalid',
    });
    assert.deepEqual(sent, [
      { leadId: 'AbC', email: 'abc@import.invalid', consent: { email: false } },
      { leadId: 'd2', email: 'real@x.example' },
    ]);
  });
});

describe('bad rows', () => {
  it('are reported by line number with the field, column and reason; good rows still go in', async () => {
    const csv = [
      'Contact,E-mail,Employees,Country', // line 1
      'ok1,ok1@x.example,10,US', // 2
      'bad id,bad-email,lots,US', // 3
      '', // 4: blank line, skipped by the reader
      '"multi', // 5-6: a quoted field over two lines
      'line",ml@x.example,5,Germany',
      'ok2,ok2@x.example,,GB', // 7
      'short,row', // 8
      ',,,', // 9: an empty row
    ].join('\n');
    const { summary, sent } = await importText(csv, {
      kind: 'leads',
      map: ['Contact=leadId', 'E-mail=email', 'Employees=companySize'],
    });
    assert.deepEqual(
      sent.map((s) => s.leadId),
      ['ok1', 'ok2'],
    );
    assert.equal(summary.rowsRead, 6);
    assert.equal(summary.imported, 2);
    assert.equal(summary.bad, 3);
    assert.equal(summary.skipped, 1);
    const [l3, l5, l8] = summary.badRows;
    assert.equal(l3!.line, 3);
    assert.deepEqual(l3!.issues.map((i) => i.field).sort(), ['companySize', 'email', 'leadId']);
    assert.match(
      describeBadRow(l3!),
      /^line 3: .*companySize \(column "Employees"\): expected a whole number, got "lots"/,
    );
    assert.match(describeBadRow(l3!), /email \(column "E-mail"\): Invalid email/);
    assert.equal(l5!.line, 5);
    assert.match(describeBadRow(l5!), /leadId \(column "Contact"\)/);
    assert.match(describeBadRow(l5!), /country \(column "Country"\): must be an ISO-3166 alpha-2 code/);
    assert.equal(l8!.line, 8);
    assert.match(describeBadRow(l8!), /expected 4 columns as in the header, got 2/);
  });

  it('checks event types against the config', async () => {
    const { summary, sent } = await importText('leadId,type\nl1,email_open\nl1,teleport\n', {
      kind: 'events',
      knownTypes: TYPES,
    });
    assert.equal(sent.length, 1);
    assert.equal(summary.badRows[0]!.line, 3);
    assert.match(describeBadRow(summary.badRows[0]!), /type: unknown event type "teleport"; known: email_open/);
  });

  it('marks a row bad when the engine refuses it (4xx) and stops on any other error', async () => {
    const refuse = Object.assign(new Error('nope'), { status: 400, issues: [{ path: 'email', message: 'refused' }] });
    const r = await importText('leadId,email\nx1,x1@x.example\nx2,x2@x.example\n', {
      kind: 'leads',
      send: async (v) => {
        if (v.leadId === 'x2') throw refuse;
        return 'created';
      },
    });
    assert.equal(r.summary.imported, 1);
    assert.equal(r.summary.created, 1);
    assert.deepEqual(r.summary.badRows, [{ line: 3, issues: [{ field: 'email', message: 'refused' }] }]);
    await assert.rejects(
      importText('leadId,email\nx1,x1@x.example\n', {
        kind: 'leads',
        send: async () => {
          throw new Error('UNAVAILABLE');
        },
      }),
      (e: Error) => e instanceof ImportFatalError && /import stopped: UNAVAILABLE/.test(e.message),
    );
  });

  it('stops with the line on a malformed file', async () => {
    await assert.rejects(
      importText('leadId,email\n"x1,x1@x.example\n', { kind: 'leads' }),
      (e: Error) => e instanceof ImportFatalError && /test\.csv: .*Quote/i.test(e.message),
    );
  });
});

describe('deterministic event ids', () => {
  it('are a hash of lead id, type, occurredAt and the row, stable across imports', () => {
    const a = eventIdFor({ leadId: 'l1', type: 'email_open', occurredAt: '2024-01-01T00:00:00.000Z', campaign: 'c' });
    assert.equal(
      a,
      eventIdFor({ campaign: 'c', occurredAt: '2024-01-01T00:00:00.000Z', type: 'email_open', leadId: 'l1' }),
    );
    assert.notEqual(
      a,
      eventIdFor({ leadId: 'l1', type: 'email_open', occurredAt: '2024-01-01T00:00:01.000Z', campaign: 'c' }),
    );
    assert.notEqual(
      a,
      eventIdFor({ leadId: 'l1', type: 'email_open', occurredAt: '2024-01-01T00:00:00.000Z', campaign: 'd' }),
    );
    assert.notEqual(
      a,
      eventIdFor({ leadId: 'l2', type: 'email_open', occurredAt: '2024-01-01T00:00:00.000Z', campaign: 'c' }),
    );
    assert.match(a, /^csv-[0-9a-f]{32}$/);
    assert.ok(leadEventSchema.shape.eventId.safeParse(a).success);
  });

  it('give the same ids on a second import; identical rows are one event; an eventId column is kept', async () => {
    const csv =
      'leadId,type,occurredAt\nl1,email_open,2024-03-01T10:00:00Z\nl1,email_open,2024-03-01T10:00:00Z\nl1,email_open,2024-03-02\n';
    const one = await importText(csv, { kind: 'events', knownTypes: TYPES });
    const two = await importText(csv, { kind: 'events', knownTypes: TYPES });
    assert.deepEqual(
      one.sent.map((e) => e.eventId),
      two.sent.map((e) => e.eventId),
    );
    assert.equal(one.sent.length, 2);
    assert.equal(one.summary.skipped, 1);
    assert.equal(one.summary.skippedReasons.duplicate, 1);
    const given = await importText('leadId,type,eventId\nl1,email_open,mine-1\n', {
      kind: 'events',
      knownTypes: TYPES,
    });
    assert.equal(given.sent[0]!.eventId, 'mine-1');
  });
});

describe('dates', () => {
  it('accept ISO 8601, normalised to UTC', () => {
    assert.deepEqual(parseDate('2024-05-01'), { value: '2024-05-01T00:00:00.000Z' });
    assert.deepEqual(parseDate('2024-05-01T09:30:00+02:00'), { value: '2024-05-01T07:30:00.000Z' });
    assert.deepEqual(parseDate('2018-02-26 19:58:54'), { value: '2018-02-26T19:58:54.000Z' });
    assert.ok('error' in parseDate('2024-02-30'));
    assert.ok('error' in parseDate('01-02-2018'));
  });

  it("read Olist's dd-mm-yyyy with --date-format", () => {
    assert.deepEqual(parseDate('01-02-2018', 'dd-mm-yyyy'), { value: '2018-02-01T00:00:00.000Z' });
    assert.deepEqual(parseDate('20-10-2017', 'dd-mm-yyyy'), { value: '2017-10-20T00:00:00.000Z' });
    assert.deepEqual(parseDate('02/01/2018', 'mm/dd/yyyy'), { value: '2018-02-01T00:00:00.000Z' });
    assert.ok('error' in parseDate('31-02-2018', 'dd-mm-yyyy'));
    assert.ok('error' in parseDate('2018-02-01', 'dd-mm-yyyy'));
  });

  it('map onto occurredAt, and report a bad date with its line', async () => {
    const { summary, sent } = await importText('id,when\nl1,01-02-2018\nl1,2018-02-01\n', {
      kind: 'events',
      map: ['id=leadId', 'when=occurredAt'],
      set: ['type=form_submit'],
      dateFormat: 'dd-mm-yyyy',
      knownTypes: TYPES,
    });
    assert.equal(sent[0]!.occurredAt, '2018-02-01T00:00:00.000Z');
    assert.match(
      describeBadRow(summary.badRows[0]!),
      /^line 3: occurredAt \(column "when"\): "2018-02-01" is not a dd-mm-yyyy date/,
    );
  });
});

describe('the real Olist MQL file', () => {
  it('reads with line numbers from the header on', async () => {
    const { createReadStream } = await import('node:fs');
    const rows: number[] = [];
    for await (const r of readCsv(createReadStream(OLIST))) {
      rows.push(r.line);
      if (rows.length === 3) break;
    }
    assert.deepEqual(rows, [1, 2, 3]);
  });

  it('imports as leads with placeholder emails, all 8,000 rows valid (dry run)', async () => {
    const summary = await runImport({
      kind: 'leads',
      file: OLIST,
      dryRun: true,
      dateFormat: 'dd-mm-yyyy',
      emailTemplate: '{leadId}@import.invalid',
      map: ['mql_id=leadId', 'origin=campaign', 'first_contact_date=profile.firstContactAt'],
    });
    assert.equal(summary.rowsRead, 8000);
    assert.equal(summary.imported, 8000);
    assert.equal(summary.bad, 0);
    assert.deepEqual(summary.ignoredColumns, ['landing_page_id']);
  });

  it('imports as form_submit events on the first-contact date', async () => {
    const sent: Record<string, unknown>[] = [];
    const summary = await runImport({
      kind: 'events',
      file: OLIST,
      limit: 200,
      dateFormat: 'dd-mm-yyyy',
      knownTypes: TYPES,
      set: ['type=form_submit'],
      map: ['mql_id=leadId', 'first_contact_date=occurredAt', 'origin=campaign', 'landing_page_id=asset'],
      send: async (v) => {
        sent.push(v);
        return 'sent';
      },
    });
    assert.equal(summary.rowsRead, 200);
    assert.equal(summary.bad, 0);
    assert.equal(sent.length, 200);
    assert.deepEqual(sent[0], {
      leadId: 'dac32acd4db4c29c230538b72f8dd87d',
      type: 'form_submit',
      occurredAt: '2018-02-01T00:00:00.000Z',
      campaign: 'social',
      asset: '88740e65d5d6b056e0cda098e1ea6313',
      eventId: sent[0]!.eventId,
    });
    assert.match(String(sent[0]!.eventId), /^csv-/);
  });
});

describe('processRow', () => {
  it('returns the validated value and a dedup key', () => {
    const plan = planColumns(['leadId', 'email'], { kind: 'leads' });
    const r = processRow(plan, ['p1', 'p1@x.example'], 2);
    assert.equal(r.kind, 'ok');
    assert.equal(processRow(plan, ['', ' '], 3).kind, 'empty');
  });
});
