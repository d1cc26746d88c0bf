/**
 * leadctl as users run it: `node bin/leadctl.mjs …` child processes against a real Temporal dev
 * server and a real worker (the repo's config/default.yaml on both sides), SMTP captured.
 */
import { sharedData } from '../helpers/shared-data.js';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { buildApi } from '../../src/api/server.js';
import { loadConfigFile } from '../../src/config-file.js';
import type { LeadState } from '../../src/domain/lead.js';
import type { TimelineEntry } from '../../src/ledger/ledger.js';
import { LinkSigner } from '../../src/links.js';
import { ROOT } from '../../src/env.js';
import { leadctl } from '../helpers/leadctl.js';
import { useStack } from '../helpers/stack.js';
import { seed } from '../ledger/seed.js';

const OLIST = sharedData('olist-marketing-qualified-leads.csv');
const CONFIG = join(ROOT, 'config', 'default.yaml');

const stack = useStack({ worker: { loaded: loadConfigFile(CONFIG) } });
const dir = mkdtempSync(join(tmpdir(), 'leadctl-'));

const cli = (...args: string[]) => leadctl(stack, CONFIG, ...args);

/** Runs leadctl and expects exit code 0. */
async function ok(...args: string[]): Promise<string> {
  const r = await cli(...args);
  assert.equal(r.code, 0, `leadctl ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r.stdout;
}

/** `leadctl show --json`. */
async function show(leadId: string): Promise<LeadState> {
  return JSON.parse(await ok('show', leadId, '--json')) as LeadState;
}

/** The same state queried in-process: cheaper for polling than a child process per look. */
function state(leadId: string): Promise<LeadState> {
  return stack.service.getState(leadId);
}

async function until<T>(fn: () => Promise<T>, check: (v: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (check(v)) return v;
    if (Date.now() > deadline) throw new Error(`condition never held; last: ${JSON.stringify(v).slice(0, 2000)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The parts of a state that an import must not change (score.engagement decays with the clock). */
const stable = (s: LeadState) => ({
  stage: s.stage,
  profile: s.profile,
  consent: s.consent,
  fit: s.score.fit,
  eventsProcessed: s.eventsProcessed,
  transitions: s.transitions,
  scoreLog: s.scoreLog,
  campaign: s.campaign,
  createdAt: s.createdAt,
  recycleCount: s.recycleCount,
});

describe('leadctl against Temporal', () => {
  it('create makes a lead, a second create updates its profile', async () => {
    // Fit stays under the MQL threshold (40) so that the lead waits in `lead`.
    assert.match(
      await ok(
        'create',
        '--lead-id',
        'cli-ana',
        '--email',
        'ana@corp.example',
        '--first-name',
        'Ana',
        '--company',
        'Corp',
        '--country',
        'US',
        '--campaign',
        'spring-webinar',
        '--set',
        'companySize=50',
        '--set',
        'profile.plan=pro',
      ),
      /^created lead cli-ana/,
    );
    assert.match(
      await ok('create', '--lead-id', 'cli-ana', '--email', 'ana@corp.example', '--job-title', 'VP Marketing'),
      /^updated lead cli-ana/,
    );
    const s = await until(
      () => state('cli-ana'),
      (x) => x.profile.jobTitle === 'VP Marketing',
    );
    assert.equal(s.stage, 'lead');
    assert.equal(s.profile.firstName, 'Ana');
    assert.equal(s.profile.companySize, 50);
    assert.equal(s.profile.plan, 'pro');
    assert.equal(s.campaign, 'spring-webinar');
    assert.ok(s.score.fit > 0);
  });

  it('show prints a readable summary; --json the raw state', async () => {
    const text = await ok('show', 'cli-ana');
    assert.match(text, /^lead\s+cli-ana$/m);
    assert.match(text, /^stage\s+lead/m);
    assert.match(text, /^score\s+\d+ = fit \d+ \+ engagement \d+/m);
    assert.match(text, /^consent\s+subscribed/m);
    assert.match(text, /^nurture\s+welcome, step/m);
    assert.match(text, /^transitions:/m);
    const s = await show('cli-ana');
    assert.equal(s.leadId, 'cli-ana');
    assert.deepEqual(stable(s), stable(await state('cli-ana')));
    assert.deepEqual(Object.keys(s.score).sort(), ['engagement', 'factors', 'fit', 'model', 'total']);
    assert.match(text, /^model\s+default$/m);
    if (s.score.factors.length) assert.match(text, /^why\s+\S/m);
  });

  it('event sends engagement; the same event id counts once', async () => {
    assert.match(
      await ok('event', 'cli-ana', 'pricing_page_view', '--event-id', 'cli-e1', '--campaign', 'spring-webinar'),
      /sent pricing_page_view for cli-ana \(event id cli-e1\)/,
    );
    await ok('event', 'cli-ana', 'pricing_page_view', '--event-id', 'cli-e1');
    const out = JSON.parse(await ok('event', 'cli-ana', 'email_open', '--json'));
    assert.match(out.eventId, /^[0-9a-f-]{36}$/); // a random uuid by default
    const s = await until(
      () => state('cli-ana'),
      (x) => x.eventsProcessed >= 2,
    );
    assert.equal(s.eventsProcessed, 2);
    assert.ok(s.scoreLog.some((e) => e.eventId === 'cli-e1' && e.points > 0));
  });

  it('outcome in the wrong stage fails with a clear message and exit code 2', async () => {
    const r = await cli('outcome', 'cli-ana', 'won');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /outcome won needs stage opportunity, but the lead is in (lead|mql)/);
    assert.equal(r.stdout, '');
  });

  it('outcome moves a handed-off lead: accepted, then won', async () => {
    await ok('event', 'cli-ana', 'demo_request', '--event-id', 'cli-demo');
    const sql = await until(
      () => state('cli-ana'),
      (x) => x.stage === 'sql' && !!x.owner,
    );
    assert.match(sql.owner!, /@sales\.example$/);
    assert.match(
      await ok('outcome', 'cli-ana', 'accepted', '--rep', 'ana@sales.example', '--note', 'call booked'),
      /lead cli-ana: sql -> opportunity/,
    );
    const won = JSON.parse(await ok('outcome', 'cli-ana', 'won', '--json')) as LeadState;
    assert.equal(won.stage, 'customer');
    assert.deepEqual(
      won.transitions.slice(-2).map((t) => t.to),
      ['opportunity', 'customer'],
    );
    assert.match(await ok('show', 'cli-ana'), /sql -> opportunity\s+sales accepted by ana@sales\.example: call booked/);
  });

  it('list shows leads from the ledger as a table, filters them and pages through them', async () => {
    await ok('create', '--lead-id', 'cli-ben', '--email', 'ben@other.example', '--campaign', 'google-ads-q2');
    // The ledger is written on each change: wait in-process, then ask leadctl.
    await until(
      () => stack.service.search({ campaign: 'spring-webinar' }),
      (r) => r.leads.some((l) => l.leadId === 'cli-ana' && l.stage === 'customer'),
    );
    await until(
      () => stack.service.search({ stage: 'lead' }),
      (r) => r.leads.some((l) => l.leadId === 'cli-ben'),
    );
    const listed = JSON.parse(await ok('list', '--campaign', 'spring-webinar', '--json')) as {
      leads: { leadId: string; stage: string }[];
    };
    assert.deepEqual(
      listed.leads.map((l) => [l.leadId, l.stage]),
      [['cli-ana', 'customer']],
    );
    assert.ok(
      (JSON.parse(await ok('list', '--stage', 'lead', '--json')) as { leads: { leadId: string }[] }).leads.some(
        (l) => l.leadId === 'cli-ben',
      ),
    );
    const table = await ok('list', '--stage', 'customer', '--min-score', '1', '--limit', '10');
    assert.match(table, /^LEAD\s+STAGE\s+SCORE\s+OWNER\s+CAMPAIGN\s+CONSENT/m);
    assert.match(table, /^cli-ana\s+customer\s+\d+\s+ana@sales\.example\s+spring-webinar\s+subscribed/m);
    assert.match(table, /^1 lead$/m);
    // Pages: the printed token continues the same search, and only that one.
    for (const id of ['cli-page-1', 'cli-page-2', 'cli-page-3'])
      await seed(stack.ledger, id, [], { campaign: 'cli-pages' });
    const first = await ok('list', '--campaign', 'cli-pages', '--limit', '2');
    assert.match(first, /^cli-page-1\s/m);
    assert.match(first, /^cli-page-2\s/m);
    const token = /more with --page-token (\S+)$/m.exec(first)?.[1];
    assert.ok(token, first);
    const second = JSON.parse(
      await ok('list', '--campaign', 'cli-pages', '--limit', '2', '--page-token', token!, '--json'),
    );
    assert.deepEqual(second, {
      leads: [{ leadId: 'cli-page-3', stage: 'lead', score: 50, campaign: 'cli-pages', consent: 'subscribed' }],
    });
    const foreign = await cli('list', '--campaign', 'other', '--page-token', token!);
    assert.equal(foreign.code, 2, foreign.stderr);
    assert.match(foreign.stderr, /pageToken/);
    // By scoring model: only that model's leads.
    await seed(stack.ledger, 'cli-model-1', [], { campaign: 'cli-models', model: 'enterprise' });
    await seed(stack.ledger, 'cli-model-2', [], { campaign: 'cli-models', model: 'smb' });
    const bySmb = JSON.parse(await ok('list', '--campaign', 'cli-models', '--model', 'smb', '--json')) as {
      leads: { leadId: string }[];
    };
    assert.deepEqual(
      bySmb.leads.map((l) => l.leadId),
      ['cli-model-2'],
    );
  });

  it('funnel prints the cohort funnel from the ledger; --json is the same Funnel the API answers', async () => {
    // A history in 2019: 3 MQLs in the window, one reached sql after 4 days and customer after 20.
    await seed(
      stack.ledger,
      'cli-f1',
      [
        ['mql', '2019-03-02'],
        ['sql', '2019-03-06'],
        ['opportunity', '2019-03-10'],
        ['customer', '2019-03-22'],
      ],
      { campaign: 'spring-webinar', channel: 'paid' },
    );
    await seed(stack.ledger, 'cli-f2', [['mql', '2019-03-10']], { campaign: 'spring-webinar', channel: 'paid' });
    await seed(stack.ledger, 'cli-f3', [['mql', '2019-04-05']], { campaign: 'linkedin-abm', channel: 'social' });
    await seed(stack.ledger, 'cli-f4', [['mql', '2019-06-05']], { campaign: 'linkedin-abm', channel: 'social' });
    const api = buildApi({
      service: stack.service,
      links: new LinkSigner('leadctl-test-link-secret-0123', 'http://links.test'),
      tokens: ['read:reader-0123456789abcdef'],
      healthCheck: async () => true,
    });
    try {
      for (const [args, query] of <[string[], string][]>[
        [
          ['--since', '2019-03-01', '--until', '2019-05-01', '--by', 'campaign'],
          'since=2019-03-01&until=2019-05-01&by=campaign',
        ],
        [['--since', '2019-03-01T00:00:00Z', '--by', 'month'], 'since=2019-03-01T00:00:00Z&by=month'],
        [['--until', '2019-05-01', '--by', 'channel'], 'until=2019-05-01&by=channel'],
        [['--by', 'model'], 'by=model'],
        [[], ''],
      ]) {
        const fromCli = JSON.parse(await ok('funnel', ...args, '--json'));
        const r = await api.inject({
          method: 'GET',
          url: `/v1/funnel?${query}`,
          headers: { authorization: 'Bearer reader-0123456789abcdef' },
        });
        assert.equal(r.statusCode, 200, r.body);
        assert.deepEqual(
          fromCli,
          r.json(),
          `leadctl funnel ${args.join(' ')} and GET /v1/funnel?${query} give the same figures`,
        );
      }
    } finally {
      await api.close();
    }
    const f = JSON.parse(
      await ok('funnel', '--since', '2019-03-01', '--until', '2019-05-01', '--by', 'campaign', '--json'),
    );
    assert.deepEqual(Object.keys(f), ['since', 'until', 'by', 'stages', 'total', 'groups']);
    assert.deepEqual(f.total, {
      mqls: 3,
      sqls: 1,
      opportunities: 1,
      customers: 1,
      mqlToSqlRate: 0.3333,
      mqlToCustomerRate: 0.3333,
      medianDaysMqlToSql: 4,
      medianDaysMqlToCustomer: 20,
      cost: 27000,
      costPerMql: 9000,
    });
    assert.deepEqual(
      f.groups.map((g: { key: string; mqls: number; costPerMql?: number }) => [g.key, g.mqls, g.costPerMql]),
      [
        ['spring-webinar', 2, 6000],
        ['linkedin-abm', 1, 15000],
      ],
    );
    assert.ok(f.stages.customer >= 2, JSON.stringify(f.stages));

    const text = await ok('funnel', '--since', '2019-03-01', '--until', '2019-05-01', '--by', 'campaign');
    assert.match(text, /^leads per stage now$/m);
    assert.match(text, /^STAGE\s+LEADS$/m);
    assert.match(text, new RegExp(`^customer\\s+${f.stages.customer}$`, 'm'));
    assert.match(text, /^cohort: leads that became MQL, 2019-03-01T00:00:00\.000Z to 2019-05-01T00:00:00\.000Z$/m);
    assert.match(text, /MQLs 3, SQLs 1, opportunities 1, customers 1/);
    assert.match(text, /MQL-to-SQL 33\.3%, MQL-to-customer 33\.3%/);
    assert.match(text, /median days MQL to SQL 4, MQL to customer 20/);
    assert.match(text, /cost 27000\.00, cost per MQL 9000\.00/);
    assert.match(
      text,
      /^CAMPAIGN\s+MQLS\s+SQLS\s+OPPS\s+CUSTOMERS\s+MQL-SQL\s+MQL-CUST\s+DAYS TO SQL\s+DAYS TO CUST\s+COST\s+COST\/MQL$/m,
    );
    assert.match(text, /^spring-webinar\s+2\s+1\s+1\s+1\s+50\.0%\s+50\.0%\s+4\s+20\s+12000\.00\s+6000\.00$/m);
    assert.match(text, /^linkedin-abm\s+1\s+0\s+0\s+0\s+0\.0%\s+0\.0%\s+-\s+-\s+15000\.00\s+15000\.00$/m);
    assert.match(await ok('funnel'), /^cohort: leads that became MQL, all time$/m);
  });

  it('show --timeline prints every event with its points, transition and outcome in order; --json the entries', async () => {
    const text = await ok('show', 'cli-ana', '--timeline');
    const lines = text.trim().split('\n');
    const entries = JSON.parse(await ok('show', 'cli-ana', '--timeline', '--json')) as TimelineEntry[];
    assert.deepEqual(entries, (await stack.ledger.timeline('cli-ana', { limit: 1000 })).entries);
    assert.equal(lines.length, entries.length, text);
    assert.deepEqual(
      lines.map((l) => l.split(/\s+/).slice(0, 2)),
      entries.map((e) => [e.at, e.kind]),
    );
    assert.match(text, /^\S+\s+event\s+pricing_page_view \+10 \(id cli-e1\) campaign=spring-webinar$/m);
    assert.match(text, /^\S+\s+event\s+demo_request \+30 \(id cli-demo\)$/m);
    assert.match(text, /^\S+\s+transition\s+sql -> opportunity\s+sales accepted by ana@sales\.example: call booked$/m);
    assert.match(text, /^\S+\s+transition\s+opportunity -> customer\s+/m);
    assert.match(text, /^\S+\s+outcome\s+accepted by ana@sales\.example: call booked$/m);
    assert.match(text, /^\S+\s+outcome\s+won$/m);
    assert.ok(entries.filter((e) => e.kind === 'event').length >= 3);
    assert.ok(
      entries.some((e) => e.kind === 'profile'),
      'the second create changed the profile',
    );

    // Every page: more entries than one read of the ledger returns.
    const leadId = 'cli-many';
    await stack.service.sendEvents(
      Array.from({ length: 230 }, (_, i) => ({
        leadId,
        eventId: `many-${String(i).padStart(3, '0')}`,
        type: 'page_view',
        email: 'many@corp.example',
        profile: { country: 'US' },
      })),
    );
    await until(
      () => state(leadId).catch(() => undefined),
      (x) => x?.eventsProcessed === 230,
    );
    const many = JSON.parse(await ok('show', leadId, '--timeline', '--json')) as TimelineEntry[];
    const ids = many.filter((e) => e.kind === 'event').map((e) => (e as { eventId: string }).eventId);
    assert.equal(ids.length, 230);
    assert.equal(new Set(ids).size, 230);
    assert.deepEqual(many, (await stack.ledger.timeline(leadId, { limit: 1000 })).entries);
  });
});

describe('leadctl and the API decide a sales outcome alike (LeadService.salesOutcome)', () => {
  const SALES_TOKEN = 'sales-outcome-test-0123456789';

  /** A US lead taken to customer in-process: a demo request hands it off, sales accepts, then wins it. */
  async function customer(leadId: string): Promise<void> {
    await stack.service.upsertLead({ leadId, email: `${leadId}@corp.example`, country: 'US' });
    await stack.service.sendEvent({ leadId, eventId: `${leadId}-demo`, type: 'demo_request' });
    await until(
      () => state(leadId),
      (x) => x.stage === 'sql' && !!x.owner,
    );
    await stack.service.salesOutcome(leadId, { outcome: 'accepted' });
    assert.equal((await stack.service.salesOutcome(leadId, { outcome: 'won' })).stage, 'customer');
    await until(
      () => state(leadId),
      (x) => x.stage === 'customer',
    );
  }

  it('answers the same for a customer whose run sleeps, has ended or is gone, and for an unknown lead', async () => {
    const api = buildApi({
      service: stack.service,
      links: new LinkSigner('leadctl-test-link-secret-0123', 'http://links.test'),
      tokens: [`sales:${SALES_TOKEN}`],
      healthCheck: async () => true,
    });
    try {
      await customer('cli-won-sleeping');
      await customer('cli-won-terminated');
      await stack.env.client.workflow.getHandle('lead-cli-won-terminated').terminate('test: a run that has ended');
      await customer('cli-won-deleted');
      // Deleted as retention deletes a closed run: only the ledger still knows the lead.
      await stack.env.client.workflowService.deleteWorkflowExecution({
        namespace: stack.env.namespace ?? 'default',
        workflowExecution: { workflowId: 'lead-cli-won-deleted' },
      });
      const described = () => stack.env.client.workflow.getHandle('lead-cli-won-deleted').describe();
      await until(
        () =>
          described().then(
            () => false,
            () => true,
          ),
        (gone) => gone,
      );

      for (const [leadId, status, code] of <[string, number, string][]>[
        ['cli-won-sleeping', 409, 'wrong_stage'],
        ['cli-won-terminated', 409, 'wrong_stage'],
        ['cli-won-deleted', 409, 'wrong_stage'],
        ['cli-nobody', 404, 'not_found'],
      ]) {
        const http = await api.inject({
          method: 'POST',
          url: `/v1/leads/${leadId}/sales-outcome`,
          payload: { outcome: 'won' },
          headers: { authorization: `Bearer ${SALES_TOKEN}` },
        });
        assert.equal(http.statusCode, status, `${leadId}: ${http.body}`);
        const { error } = http.json() as { error: { code: string; message: string } };
        assert.equal(error.code, code, http.body);
        const text = await cli('outcome', leadId, 'won');
        assert.equal(text.code, 2, `${leadId}: ${text.stderr}`);
        assert.equal(text.stdout, '');
        assert.equal(text.stderr, `error: ${error.message}\n`, `${leadId}: leadctl says what the API says`);
        const json = await cli('outcome', leadId, 'won', '--json');
        assert.equal(json.code, 2, json.stderr);
        assert.deepEqual(JSON.parse(json.stderr), http.json(), `${leadId}: leadctl --json errs with the API's body`);
      }
      for (const leadId of ['cli-won-sleeping', 'cli-won-terminated', 'cli-won-deleted']) {
        assert.equal((await state(leadId)).stage, 'customer', `${leadId}: the refused outcome changed nothing`);
      }
    } finally {
      await api.close();
    }
  });
});

describe('leadctl import', () => {
  let leadsCsv: string;
  let eventsCsv: string;
  before(() => {
    leadsCsv = join(dir, 'crm-export.csv');
    writeFileSync(
      leadsCsv,
      [
        'Contact ID,E-mail,Employees,Country,Favourite Colour',
        'imp-1,one@corp.example,250,us,blue',
        'imp-2,not-an-email,10,US,red',
        'imp-3,three@corp.example,,GB,',
      ].join('\n'),
    );
    eventsCsv = join(dir, 'events.csv');
    writeFileSync(
      eventsCsv,
      [
        'leadId,type,occurredAt,campaign',
        `imp-1,content_download,${new Date(Date.now() - 3600_000).toISOString()},spring-webinar`,
        'imp-1,email_open,,',
        'imp-1,teleport,,',
        `imp-3,webinar_attended,${new Date(Date.now() - 7200_000).toISOString()},`,
        'imp-1,email_open,,',
      ].join('\n'),
    );
  });

  it('imports the good rows of a CSV, reports the bad one by line and field, exit code 2', async () => {
    const r = await cli(
      'import',
      'leads',
      leadsCsv,
      '--map',
      'Contact ID=leadId',
      '--map',
      'E-mail=email',
      '--map',
      'Employees=companySize',
    );
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^line 3: email \(column "E-mail"\): Invalid email address$/m);
    assert.match(r.stdout, /3 rows read, 2 imported \(2 new, 0 updated\), 1 bad, 0 skipped/);
    assert.match(r.stdout, /ignored columns .*: Favourite Colour/);
    const one = await state('imp-1');
    assert.equal(one.profile.companySize, 250);
    assert.equal(one.profile.country, 'US');
    assert.equal((await state('imp-3')).profile.email, 'three@corp.example');
    const missing = await cli('show', 'imp-2');
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /lead imp-2 not found/);
  });

  it('a second import of the same file changes nothing', async () => {
    const before = [stable(await state('imp-1')), stable(await state('imp-3'))];
    const r = await cli(
      'import',
      'leads',
      leadsCsv,
      '--map',
      'Contact ID=leadId',
      '--map',
      'E-mail=email',
      '--map',
      'Employees=companySize',
      '--json',
    );
    assert.equal(r.code, 2);
    const summary = JSON.parse(r.stdout);
    assert.deepEqual(
      [summary.rowsRead, summary.imported, summary.created, summary.updated, summary.bad],
      [3, 2, 0, 2, 1],
    );
    assert.deepEqual(summary.badRows, [
      { line: 3, issues: [{ field: 'email', column: 'E-mail', message: 'Invalid email address' }] },
    ]);
    // A fresh event after the re-import: once it is counted, the re-import's signals were handled too.
    await ok('event', 'imp-3', 'email_open', '--event-id', 'after-reimport');
    await until(
      () => state('imp-3'),
      (s) => s.eventsProcessed === 1,
    );
    assert.deepEqual(stable(await state('imp-1')), before[0]);
    const three = stable(await state('imp-3'));
    assert.deepEqual(
      { ...three, eventsProcessed: 0, scoreLog: [] },
      { ...before[1]!, eventsProcessed: 0, scoreLog: [] },
    );
  });

  it('imports events with deterministic ids; importing them again leaves eventsProcessed unchanged', async () => {
    const first = await cli('import', 'events', eventsCsv, '--concurrency', '4');
    assert.equal(first.code, 2);
    assert.match(first.stderr, /^line 4: type: unknown event type "teleport"/m);
    assert.match(first.stdout, /5 rows read, 3 imported, 1 bad, 1 skipped \(1 duplicate rows\)/);
    const one = await until(
      () => state('imp-1'),
      (s) => s.eventsProcessed === 2,
    );
    await until(
      () => state('imp-3'),
      (s) => s.eventsProcessed === 2,
    );
    const again = await cli('import', 'events', eventsCsv);
    assert.equal(again.code, 2);
    assert.match(again.stdout, /5 rows read, 3 imported, 1 bad, 1 skipped/);
    await ok('event', 'imp-1', 'page_view', '--event-id', 'imp-1-sentinel');
    const after = await until(
      () => state('imp-1'),
      (s) => s.scoreLog.some((e) => e.eventId === 'imp-1-sentinel'),
    );
    assert.equal(after.eventsProcessed, one.eventsProcessed + 1);
    assert.equal(after.scoreLog.filter((e) => e.type === 'content_download').length, 1);
  });

  it('a dry run validates without sending', async () => {
    const r = await cli(
      'import',
      'leads',
      leadsCsv,
      '--map',
      'Contact ID=leadId',
      '--map',
      'E-mail=email',
      '--map',
      'Employees=companySize',
      '--dry-run',
    );
    assert.equal(r.code, 2);
    assert.match(r.stdout, /^dry run \(nothing sent\): .*3 rows read, 2 valid, 1 bad/m);
  });

  it('imports the real Olist MQL file as leads with placeholder addresses that are never mailed', async () => {
    const r = await cli(
      'import',
      'leads',
      OLIST,
      '--map',
      'mql_id=leadId',
      '--map',
      'origin=campaign',
      '--map',
      'first_contact_date=profile.firstContactAt',
      '--date-format',
      'dd-mm-yyyy',
      '--email-template',
      '{leadId}@import.invalid',
      '--limit',
      '200',
      '--concurrency',
      '32',
      '--json',
    );
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout);
    assert.deepEqual([summary.rowsRead, summary.imported, summary.created, summary.bad], [200, 200, 200, 0]);
    assert.deepEqual(summary.ignoredColumns, ['landing_page_id']);
    const s = await state('dac32acd4db4c29c230538b72f8dd87d');
    assert.equal(s.profile.email, 'dac32acd4db4c29c230538b72f8dd87d@import.invalid');
    assert.equal(s.profile.firstContactAt, '2018-02-01T00:00:00.000Z');
    assert.equal(s.campaign, 'social');
    assert.equal(s.consent, 'unsubscribed');
    await until(
      () => stack.service.search({ campaign: 'social', limit: 1000 }),
      (r) => r.leads.length > 0,
    );
    const social = JSON.parse(await ok('list', '--campaign', 'social', '--limit', '1000', '--json')).leads as {
      campaign: string;
    }[];
    assert.ok(social.length > 0 && social.length < 200 && social.every((l) => l.campaign === 'social'));

    // The same rows as form submissions on their first-contact date, twice: counted once.
    const events = [
      'import',
      'events',
      OLIST,
      '--type',
      'form_submit',
      '--map',
      'mql_id=leadId',
      '--map',
      'first_contact_date=occurredAt',
      '--map',
      'origin=campaign',
      '--map',
      'landing_page_id=asset',
      '--date-format',
      'dd-mm-yyyy',
      '--limit',
      '20',
    ];
    assert.match(await ok(...events), /20 rows read, 20 imported, 0 bad, 0 skipped/);
    await until(
      () => state('dac32acd4db4c29c230538b72f8dd87d'),
      (x) => x.eventsProcessed === 1,
    );
    await ok(...events);
    await ok('event', 'dac32acd4db4c29c230538b72f8dd87d', 'page_view', '--event-id', 'olist-sentinel');
    const later = await until(
      () => state('dac32acd4db4c29c230538b72f8dd87d'),
      (x) => x.scoreLog.some((e) => e.eventId === 'olist-sentinel'),
    );
    assert.equal(later.eventsProcessed, 2);
    assert.equal(later.scoreLog.filter((e) => e.type === 'form_submit').length, 1);
    assert.ok(!stack.smtp.messages.some((m) => m.to.some((a) => a.endsWith('@import.invalid'))));
  });
});

describe('leadctl refuses bad input, naming the field', () => {
  type Case = [args: string[], message: RegExp, code?: number];
  /** Each case in its own child process, all at once: none of them changes anything. */
  const refused = (cases: Case[]) =>
    Promise.all(
      cases.map(async ([args, message, code = 2]) => {
        const r = await cli(...args);
        assert.equal(r.code, code, `leadctl ${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, message, `leadctl ${args.join(' ')}`);
        return r;
      }),
    );

  it('create', async () => {
    await refused([
      [['create', '--lead-id', 'bad id!', '--email', 'x@y.example'], /leadId: must be 1-128 characters/],
      [['create', '--lead-id', 'ok-id', '--email', 'nope'], /email: Invalid email address/],
      [
        ['create', '--lead-id', 'ok-id', '--email', 'x@y.example', '--country', 'Germany'],
        /country: must be an ISO-3166 alpha-2 code/,
      ],
      [
        ['create', '--lead-id', 'ok-id', '--email', 'x@y.example', '--company-size', 'lots'],
        /companySize: expected a whole number/,
      ],
      [
        ['create', '--lead-id', 'ok-id', '--email', 'x@y.example', '--set', 'nosuch.field=1'],
        /nosuch\.field: not a LeadInput field/,
      ],
      [['create', '--email', 'x@y.example'], /required option '--lead-id <id>' not specified/, 1],
    ]);
    await assert.rejects(state('ok-id'), /not found/);
  });

  it('event', async () => {
    const [, , , json] = await refused([
      [['event', 'bad id!', 'email_open'], /leadId: must be 1-128 characters/],
      [['event', 'cli-ana', 'teleport'], /type: unknown event type "teleport"; known: email_open/],
      [['event', 'cli-ana', 'email_open', '--occurred-at', 'yesterday'], /occurredAt: /],
      [['event', 'cli-ana', 'teleport', '--json'], /unknown_event_type/],
    ]);
    assert.equal(JSON.parse(json!.stderr).error.issues[0].path, 'type');
  });

  it('outcome', async () => {
    await refused([
      [['outcome', 'cli-ben', 'maybe'], /outcome: Invalid discriminator value/],
      [['outcome', 'cli-ben', 'rejected'], /reason: Invalid option/],
      [['outcome', 'bad id!', 'accepted'], /leadId: must be 1-128 characters/],
      [['outcome', 'nobody-here', 'accepted'], /lead nobody-here not found/],
    ]);
    assert.equal((await state('cli-ben')).stage, 'lead');
  });

  it('show, show --timeline, list, funnel, import', async () => {
    await refused([
      [['show', 'bad id!'], /leadId: must be 1-128 characters/],
      [['list', '--stage', 'nirvana'], /stage: must be one of lead, mql/],
      [['list', '--min-score', 'high'], /minScore: expected a whole number/],
      [['list', '--model', 'm'.repeat(65)], /model: must be 1-64 characters/],
      [['funnel', '--since', 'last week'], /since: "last week" is not an ISO 8601 date/],
      [['funnel', '--until', '2025-02-30'], /until: "2025-02-30" is not a real date/],
      [['funnel', '--by', 'country'], /by: must be one of campaign, channel, month, model, got "country"/],
      [['funnel', '--json', '--by', 'country'], /"path":"by"/],
      [['funnel', '--since', '2025-05-01', '--until', '2025-01-01'], /until: since must be before until/],
      [['list', '--page-token', 'not a token!'], /pageToken: must be a nextPageToken/],
      [['list', '--page-token', 'Z2FyYmFnZQ'], /pageToken: must be the nextPageToken of an earlier answer/],
      [['show', 'nobody-here', '--timeline'], /lead nobody-here not found in the ledger/],
      [['show', 'bad id!', '--timeline'], /leadId: must be 1-128 characters/],
      [
        ['import', 'leads', join(dir, 'crm-export.csv'), '--map', 'E-mail=emial'],
        /"emial" is not a LeadInput field/,
        1,
      ],
      [['import', 'leads', join(dir, 'nope.csv')], /nope\.csv: no such file/, 1],
      [['import', 'contacts', join(dir, 'crm-export.csv')], /kind: expected leads or events/],
    ]);
  });

  it('Temporal unreachable is exit code 1 with the address', async () => {
    await refused([[['show', 'cli-ana', '--address', '127.0.0.1:1'], /cannot reach Temporal at 127\.0\.0\.1:1/, 1]]);
  });
});
