/**
 * The API's reads from the lead ledger, against a real Temporal dev server and worker writing an
 * embedded ledger (test/api/fixture.ts): the search (`GET /v1/leads`), the cohort funnel
 * (`GET /v1/funnel`, CONTRACT.md "Funnel") and a lead's timeline (`GET /v1/leads/:leadId/timeline`),
 * their sealed page tokens and their refusals of bad input. Leads with a history (dates in 2019)
 * are written into the ledger directly, as an import would; live leads go through the workflow.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { buildApi } from '../../src/api/server.js';
import { STAGES } from '../../src/domain/stages.js';
import type { TimelineEntry } from '../../src/ledger/ledger.js';
import { testConfig } from '../helpers/temporal.js';
import { seed } from '../ledger/seed.js';
import { useStack } from '../helpers/stack.js';
import { eventually, header, mailsFor, type Res, TOKEN, uid, waitState } from './fixture.js';

const CAMPAIGNS = { 'spring-webinar': { cost: 12000 }, 'trade-show': { cost: 5000 }, 'never-ran': { cost: 999 } };
const config = testConfig({ campaigns: CAMPAIGNS });

const s = useStack({ worker: { loaded: config }, api: true });

const lead = (leadId: string, extra: Record<string, unknown> = {}) => ({
  leadId,
  email: `${leadId.toLowerCase().replace(/[^a-z0-9]/g, '')}@example.com`,
  firstName: 'Ada',
  company: 'Acme',
  country: 'US',
  seniority: 'vp',
  ...extra,
});
const issuePaths = (r: Res) => (r.json?.error?.issues ?? []).map((i: { path: string }) => i.path);

/** A 4xx in the error shape, naming `path` among its issues when given. */
function assertBad(r: Res, status: number, path?: string) {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.body}`);
  assert.deepEqual(Object.keys(r.json ?? {}), ['error'], r.body);
  assert.equal(typeof r.json.error.code, 'string', r.body);
  assert.equal(typeof r.json.error.message, 'string', r.body);
  if (path) assert.ok(issuePaths(r).includes(path), `issues should name ${path}: ${r.body}`);
}

/** Every page of a GET that answers `{ <key>, nextPageToken }`, following the tokens. */
async function allPages(url: string, key: 'leads' | 'entries'): Promise<{ pages: Res[]; items: any[] }> {
  const pages: Res[] = [];
  let next: string | undefined;
  do {
    const r = await s.call(
      'GET',
      next ? `${url}${url.includes('?') ? '&' : '?'}pageToken=${encodeURIComponent(next)}` : url,
    );
    assert.equal(r.status, 200, r.body);
    pages.push(r);
    next = r.json.nextPageToken ?? undefined;
    assert.ok(pages.length < 100, 'paging ends');
  } while (next);
  return { pages, items: pages.flatMap((p) => p.json[key]) };
}

describe('search from the ledger', () => {
  const campaign = 'search-camp';
  before(async () => {
    // Leads with a history, closed ones included: the ledger keeps them whatever Temporal keeps.
    await seed(
      s.ledger,
      'srch-a',
      [
        ['mql', '2019-01-02'],
        ['sql', '2019-01-03'],
        ['opportunity', '2019-01-04'],
        ['customer', '2019-02-01'],
      ],
      { campaign, owner: 'ana@sales.example', score: 90 },
    );
    await seed(s.ledger, 'srch-b', [['disqualified', '2019-01-05']], { campaign, score: -5 });
    await seed(s.ledger, 'srch-c', [['mql', '2019-01-06']], { campaign, owner: 'ben@sales.example', score: 55 });
    await seed(s.ledger, 'srch-d', [['mql', '2019-01-07']], { campaign, owner: 'ana@sales.example', score: 45 });
    await seed(s.ledger, 'srch-e', [], { campaign, score: 10, consent: 'unsubscribed' });
    await seed(s.ledger, 'srch-other', [['mql', '2019-01-08']], { campaign: 'another', score: 70 });
  });

  it('lists every lead of the ledger matching the filters, closed ones included, in lead id order, in sealed pages', async () => {
    const { pages, items } = await allPages(`/v1/leads?campaign=${campaign}&limit=2`, 'leads');
    assert.deepEqual(
      items.map((l) => l.leadId),
      ['srch-a', 'srch-b', 'srch-c', 'srch-d', 'srch-e'],
    );
    assert.deepEqual(
      pages.map((p) => p.json.leads.length),
      [2, 2, 1],
    );
    assert.equal(pages.at(-1)!.json.nextPageToken, null, 'the last page says there is no more');
    for (const p of pages.slice(0, -1))
      assert.match(p.json.nextPageToken, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/, 'a sealed token');
    assert.deepEqual(items[0], {
      leadId: 'srch-a',
      stage: 'customer',
      score: 90,
      owner: 'ana@sales.example',
      campaign,
      becameMqlAt: '2019-01-02T00:00:00.000Z',
      becameSqlAt: '2019-01-03T00:00:00.000Z',
      consent: 'subscribed',
    });
    assert.equal(items[4].consent, 'unsubscribed');
    assert.equal(items[4].becameMqlAt, undefined);

    const ids = async (q: string) =>
      (await allPages(`/v1/leads?campaign=${campaign}&${q}`, 'leads')).items.map((l) => l.leadId);
    assert.deepEqual(await ids('stage=mql'), ['srch-c', 'srch-d']);
    assert.deepEqual(await ids('stage=disqualified'), ['srch-b']);
    assert.deepEqual(await ids('owner=ana%40sales.example'), ['srch-a', 'srch-d']);
    assert.deepEqual(await ids('minScore=50'), ['srch-a', 'srch-c']);
    assert.deepEqual(await ids('minScore=-10&stage=disqualified'), ['srch-b']);
    assert.deepEqual(await ids('stage=sql'), []);
    // Empty values are no filter.
    assert.deepEqual(await ids('stage=&owner=&minScore='), ['srch-a', 'srch-b', 'srch-c', 'srch-d', 'srch-e']);
  });

  it('filters by scoring model: only its leads, and a page token only for that model', async () => {
    await seed(s.ledger, 'srch-model-1', [], { campaign: 'model-camp', model: 'enterprise' });
    await seed(s.ledger, 'srch-model-2', [], { campaign: 'model-camp', model: 'smb' });
    await seed(s.ledger, 'srch-model-3', [], { campaign: 'model-camp', model: 'enterprise' });
    await seed(s.ledger, 'srch-model-4', [], { campaign: 'model-camp' });
    const { items } = await allPages('/v1/leads?campaign=model-camp&model=enterprise&limit=1', 'leads');
    assert.deepEqual(
      items.map((l) => l.leadId),
      ['srch-model-1', 'srch-model-3'],
    );
    const smb = await s.call('GET', '/v1/leads?model=smb');
    assert.deepEqual(
      smb.json.leads.map((l: { leadId: string }) => l.leadId),
      ['srch-model-2'],
    );
    const first = await s.call('GET', '/v1/leads?campaign=model-camp&model=enterprise&limit=1');
    const token = encodeURIComponent(first.json.nextPageToken);
    assertBad(
      await s.call('GET', `/v1/leads?campaign=model-camp&model=smb&limit=1&pageToken=${token}`),
      400,
      'pageToken',
    );
    assertBad(await s.call('GET', `/v1/leads?campaign=model-camp&limit=1&pageToken=${token}`), 400, 'pageToken');
    assertBad(await s.call('GET', `/v1/leads?model=${'m'.repeat(65)}`), 400, 'model');
    assertBad(await s.call('GET', '/v1/leads?model=a%01b'), 400, 'model');
  });

  it('finds a live lead as its workflow recorded it, with its current stage and score', async () => {
    const leadId = uid('live');
    const camp = uid('camp');
    assert.equal((await s.call('POST', '/v1/leads', { body: lead(leadId, { campaign: camp }) })).status, 201);
    await s.call('POST', '/v1/events', {
      body: ['content_download', 'webinar_attended', 'pricing_page_view'].map((type) => ({
        leadId,
        eventId: uid('e'),
        type,
      })),
    });
    const st = await waitState(s, leadId, (x) => x.stage === 'mql' && x.eventsProcessed === 3, 'mql');
    const r = await s.call('GET', `/v1/leads?campaign=${camp}`);
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json.leads.length, 1);
    assert.deepEqual(r.json.leads[0], {
      leadId,
      stage: 'mql',
      score: st.score.total,
      campaign: camp,
      becameMqlAt: st.becameMqlAt,
      consent: 'subscribed',
    });
    assert.equal(r.json.nextPageToken, null);
  });

  it('refuses bad parameters and page tokens that are not its own with a 400 naming the field', async () => {
    assertBad(await s.call('GET', '/v1/leads?minScore=abc'), 400, 'minScore');
    assertBad(await s.call('GET', '/v1/leads?minScore=1.5'), 400, 'minScore');
    assertBad(await s.call('GET', '/v1/leads?limit=0'), 400, 'limit');
    assertBad(await s.call('GET', '/v1/leads?limit=5000'), 400, 'limit');
    assertBad(await s.call('GET', '/v1/leads?stage=hot'), 400, 'stage');
    assertBad(await s.call('GET', '/v1/leads?stage=mql&stage=sql'), 400, 'stage');
    assertBad(await s.call('GET', '/v1/leads?pageToken=%25%25'), 400, 'pageToken');
    assertBad(await s.call('GET', '/v1/leads?pageToken=garbage'), 400, 'pageToken');
    assertBad(await s.call('GET', '/v1/leads?stag=mql'), 400);

    const first = await s.call('GET', `/v1/leads?campaign=${campaign}&limit=2`);
    const token = first.json.nextPageToken as string;
    // Another search's token (other filters), a tampered one, the ledger's own unsealed token.
    assertBad(
      await s.call('GET', `/v1/leads?campaign=another&limit=2&pageToken=${encodeURIComponent(token)}`),
      400,
      'pageToken',
    );
    assertBad(await s.call('GET', `/v1/leads?limit=2&pageToken=${encodeURIComponent(token)}`), 400, 'pageToken');
    const tampered = token.slice(0, -2) + (token.endsWith('AA') ? 'BB' : 'AA');
    assertBad(
      await s.call('GET', `/v1/leads?campaign=${campaign}&limit=2&pageToken=${encodeURIComponent(tampered)}`),
      400,
      'pageToken',
    );
    const raw = (await s.ledger.search({ campaign, limit: 2 })).nextPageToken!;
    assertBad(
      await s.call('GET', `/v1/leads?campaign=${campaign}&limit=2&pageToken=${encodeURIComponent(raw)}`),
      400,
      'pageToken',
    );
    // Sealed by this server for these filters but not a ledger token (one from before the ledger's search).
    const stale = s.links.seal(
      'leads-page',
      JSON.stringify([undefined, undefined, campaign, undefined]),
      Buffer.from('CgRsZWFk'),
    );
    assertBad(
      await s.call('GET', `/v1/leads?campaign=${campaign}&pageToken=${encodeURIComponent(stale)}`),
      400,
      'pageToken',
    );
    // The good token still works after all that.
    const second = await s.call('GET', `/v1/leads?campaign=${campaign}&limit=2&pageToken=${encodeURIComponent(token)}`);
    assert.equal(second.status, 200, second.body);
    assert.deepEqual(
      second.json.leads.map((l: { leadId: string }) => l.leadId),
      ['srch-c', 'srch-d'],
    );
  });
});

describe('the funnel from the ledger', () => {
  const WINDOW = 'since=2019-03-01&until=2019-05-01';
  before(async () => {
    // In [2019-03-01, 2019-05-01): 4 MQLs; days MQL->SQL f1 2, f2 6 -> median 4; MQL->customer f1 20.
    await seed(
      s.ledger,
      'f1',
      [
        ['mql', '2019-03-02'],
        ['sql', '2019-03-04'],
        ['opportunity', '2019-03-10'],
        ['customer', '2019-03-22'],
      ],
      { campaign: 'spring-webinar', channel: 'paid', model: 'm1' },
    );
    await seed(
      s.ledger,
      'f2',
      [
        ['mql', '2019-03-10'],
        ['sql', '2019-03-16'],
      ],
      { campaign: 'spring-webinar', channel: 'paid', model: 'm1' },
    );
    await seed(s.ledger, 'f3', [['mql', '2019-04-05']], { campaign: 'trade-show', channel: 'events' });
    await seed(s.ledger, 'f4', [['mql', '2019-04-30T23:59:59.000Z']], { channel: 'organic' });
    // until is excluded; since is included
    await seed(
      s.ledger,
      'f-out',
      [
        ['mql', '2019-05-01'],
        ['sql', '2019-05-02'],
      ],
      { campaign: 'spring-webinar', channel: 'paid' },
    );
    await seed(
      s.ledger,
      'f-edge',
      [
        ['mql', '2019-03-01'],
        ['disqualified', '2019-03-02'],
      ],
      { campaign: 'edge', channel: 'paid' },
    );
  });

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
  ) => ({
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

  it("answers the contract's Funnel: stages now, the window's cohort, groups by campaign with cost per MQL", async () => {
    const r = await s.call('GET', `/v1/funnel?${WINDOW}&by=campaign`);
    assert.equal(r.status, 200, r.body);
    const f = r.json;
    assert.deepEqual(Object.keys(f), ['since', 'until', 'by', 'stages', 'total', 'groups']);
    assert.equal(f.since, '2019-03-01T00:00:00.000Z');
    assert.equal(f.until, '2019-05-01T00:00:00.000Z');
    assert.equal(f.by, 'campaign');
    assert.deepEqual(Object.keys(f.stages), [...STAGES]);
    // Stages are the leads in each stage now, whatever the window: the ledger's counts, zero-filled.
    const now = await s.ledger.stageCounts();
    assert.deepEqual(f.stages, Object.fromEntries(STAGES.map((st) => [st, now[st] ?? 0])));
    assert.ok(f.stages.customer >= 1 && f.stages.dormant === 0, JSON.stringify(f.stages));
    // Spring webinar 12000 + trade show 5000 are in the cohort (never-ran is not): 17000 / 5 MQLs.
    assert.deepEqual(f.total, cohort(5, 2, 1, 1, 0.4, 0.2, 4, 20, [17000, 3400]));
    assert.deepEqual(f.groups, [
      { key: 'spring-webinar', ...cohort(2, 2, 1, 1, 1, 0.5, 4, 20, [12000, 6000]) },
      { key: '(none)', ...cohort(1, 0, 0, 0, 0, 0, null, null) },
      { key: 'edge', ...cohort(1, 0, 0, 0, 0, 0, null, null) },
      { key: 'trade-show', ...cohort(1, 0, 0, 0, 0, 0, null, null, [5000, 5000]) },
    ]);
  });

  it('groups by channel, month and model; without by there are no groups; the total is the same whatever by is', async () => {
    const get = async (q: string) => {
      const r = await s.call('GET', `/v1/funnel?${q}`);
      assert.equal(r.status, 200, r.body);
      return r.json;
    };
    const plain = await get(WINDOW);
    assert.equal(plain.by, null);
    assert.deepEqual(plain.groups, []);
    const months = await get(`${WINDOW}&by=month`);
    assert.deepEqual(
      months.groups.map((g: { key: string; mqls: number }) => [g.key, g.mqls]),
      [
        ['2019-03', 3],
        ['2019-04', 2],
      ],
    );
    const channels = await get(`${WINDOW}&by=channel`);
    assert.deepEqual(
      channels.groups.map((g: { key: string; mqls: number }) => [g.key, g.mqls]),
      [
        ['paid', 3],
        ['events', 1],
        ['organic', 1],
      ],
    );
    const models = await get(`${WINDOW}&by=model`);
    assert.deepEqual(
      models.groups.map((g: { key: string; mqls: number }) => [g.key, g.mqls]),
      [
        ['(none)', 3],
        ['m1', 2],
      ],
    );
    for (const f of [months, channels, models]) assert.deepEqual(f.total, plain.total);
    // The same figures as the ledger's own funnel with the config's costs; dates and date-times alike.
    assert.deepEqual(
      await get('since=2019-03-01T00:00:00Z&until=2019-05-01T00:00:00.000Z&by=channel'),
      await s.ledger.funnel({ since: '2019-03-01', until: '2019-05-01', by: 'channel' }, CAMPAIGNS),
    );
    // A window with no MQLs: zeros, null rates and medians, no cost.
    const empty = await get('since=2018-01-01&until=2018-02-01&by=campaign');
    assert.deepEqual(empty.total, cohort(0, 0, 0, 0, null, null, null, null));
    assert.deepEqual(empty.groups, []);
    // No window: every lead that ever became MQL, the live ones included.
    const all = await get('');
    assert.equal(all.since, null);
    assert.equal(all.until, null);
    assert.ok(all.total.mqls >= 7, JSON.stringify(all.total));
  });

  it('refuses a bad by, bad dates and unknown parameters with a 400 naming the field', async () => {
    assertBad(await s.call('GET', '/v1/funnel?by=country'), 400, 'by');
    assertBad(await s.call('GET', '/v1/funnel?by='.concat('campaign&by=month')), 400, 'by');
    assertBad(await s.call('GET', '/v1/funnel?since=yesterday'), 400, 'since');
    assertBad(await s.call('GET', '/v1/funnel?until=2025-13-01'), 400, 'until');
    assertBad(await s.call('GET', '/v1/funnel?since=2025-02-30'), 400, 'since');
    assertBad(await s.call('GET', '/v1/funnel?since=2019-05-01&until=2019-03-01'), 400, 'until');
    assertBad(await s.call('GET', '/v1/funnel?since=2019-05-01&until=2019-05-01'), 400, 'until');
    assertBad(await s.call('GET', '/v1/funnel?from=2025-01-01'), 400);
  });
});

describe("a lead's timeline from the ledger", () => {
  it('lists every event with its points, transition, mail and outcome of a live lead, in order, in opaque pages', async () => {
    const leadId = uid('tl');
    assert.equal(
      (await s.call('POST', '/v1/leads', { body: lead(leadId, { campaign: 'spring-webinar' }) })).status,
      201,
    );
    const events = [
      { eventId: uid('dl'), type: 'content_download', asset: 'guide.pdf', points: 10 },
      { eventId: uid('wb'), type: 'webinar_attended', points: 15 },
      { eventId: uid('pp'), type: 'pricing_page_view', points: 10 },
    ];
    for (const { points: _p, ...e } of events)
      assert.equal((await s.call('POST', '/v1/events', { body: { leadId, ...e } })).status, 202);
    await waitState(s, leadId, (x) => x.stage === 'mql' && x.eventsProcessed === 3, 'mql');
    const demo = { eventId: uid('demo'), type: 'demo_request', points: 30 };
    await s.call('POST', '/v1/events', { body: { leadId, eventId: demo.eventId, type: demo.type } });
    await waitState(s, leadId, (x) => x.stage === 'sql' && !!x.owner, 'sql');
    await eventually('handoff mail', async () =>
      mailsFor(s.smtp, leadId).some((m) => header(m, 'x-lead-handoff') === '1'),
    );
    assert.equal(
      (
        await s.call('POST', `/v1/leads/${leadId}/sales-outcome`, {
          body: { outcome: 'accepted', rep: 'ana@sales.example', note: 'call booked' },
        })
      ).status,
      200,
    );
    assert.equal((await s.call('POST', `/v1/leads/${leadId}/sales-outcome`, { body: { outcome: 'won' } })).status, 200);

    // The mails are recorded by their activities: wait until both are in the timeline as sent.
    const all = await eventually('both mails recorded', async () => {
      const { items } = await allPages(`/v1/leads/${leadId}/timeline?limit=3`, 'entries');
      return items.filter((e) => e.kind === 'mail' && e.status === 'sent').length >= 2
        ? (items as TimelineEntry[])
        : undefined;
    });
    // In order, whichever page they came on.
    const ats = all.map((e) => Date.parse(e.at));
    assert.deepEqual(
      ats,
      [...ats].sort((a, b) => a - b),
      'time order',
    );
    const whole = await s.call('GET', `/v1/leads/${leadId}/timeline?limit=1000`);
    assert.equal(whole.status, 200);
    assert.deepEqual(whole.json, { entries: all }, 'pages add up to the whole, no entry lost or repeated');

    // Every event once, with the points it scored.
    const evs = all.filter((e): e is Extract<TimelineEntry, { kind: 'event' }> => e.kind === 'event');
    // (Events applied in one workflow activation share their time; the ledger orders those by id.)
    const byId = (a: unknown[], b: unknown[]) => String(a[0]).localeCompare(String(b[0]));
    assert.deepEqual(
      evs
        .slice(0, 3)
        .map((e) => [e.eventId, e.type, e.attributes.points])
        .sort(byId),
      events.map((e) => [e.eventId, e.type, e.points]).sort(byId),
    );
    assert.deepEqual(
      [evs[3]!.eventId, evs[3]!.type, evs[3]!.attributes.points],
      [demo.eventId, demo.type, demo.points],
    );
    assert.equal(evs.length, 4);
    assert.equal(evs.find((e) => e.type === 'content_download')!.attributes.asset, 'guide.pdf');
    // The stage path.
    const path = all
      .filter((e) => e.kind === 'transition')
      .map((e) => `${(e as { from: string }).from}>${(e as { to: string }).to}`);
    assert.deepEqual(path, ['lead>mql', 'mql>sql', 'sql>opportunity', 'opportunity>customer']);
    const mql = all.findIndex((e) => e.kind === 'transition' && e.to === 'mql');
    assert.ok(
      mql > all.findIndex((e) => e.kind === 'event' && e.eventId === events[2]!.eventId),
      'the event that qualified it comes before the transition',
    );
    // The outcomes.
    const outcomes = all.filter((e): e is Extract<TimelineEntry, { kind: 'outcome' }> => e.kind === 'outcome');
    assert.deepEqual(
      outcomes.map((o) => [o.outcome, o.rep, o.note]),
      [
        ['accepted', 'ana@sales.example', 'call booked'],
        ['won', undefined, undefined],
      ],
    );
    // The mails: the welcome nurture mail and the handoff to the owner.
    const mails = all.filter((e): e is Extract<TimelineEntry, { kind: 'mail' }> => e.kind === 'mail');
    assert.ok(
      mails.some((m) => m.mailKind === 'nurture' && m.track === 'welcome' && m.step === 1),
      JSON.stringify(mails),
    );
    assert.ok(
      mails.some((m) => m.mailKind === 'handoff'),
      JSON.stringify(mails),
    );
    for (const m of mails) assert.match(m.messageId, /^<.+@.+>$/);
  });

  it('shows a lead recorded without a workflow (imported history), and an empty page for a known lead with nothing recorded', async () => {
    await seed(s.ledger, 'tl-seeded', [
      ['mql', '2019-06-01'],
      ['sql', '2019-06-03'],
    ]);
    const r = await s.call('GET', '/v1/leads/tl-seeded/timeline');
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(r.json, {
      entries: [
        { at: '2019-06-01T00:00:00.000Z', kind: 'transition', from: 'lead', to: 'mql', reason: 'imported' },
        { at: '2019-06-03T00:00:00.000Z', kind: 'transition', from: 'mql', to: 'sql', reason: 'imported' },
      ],
    });
    await seed(s.ledger, 'tl-quiet', []);
    assert.deepEqual((await s.call('GET', '/v1/leads/tl-quiet/timeline')).json, { entries: [] });
  });

  it('answers 404 for a lead the ledger does not know, 400 for a bad id, limit or page token', async () => {
    assertBad(await s.call('GET', `/v1/leads/${uid('ghost')}/timeline`), 404);
    assert.equal((await s.call('GET', `/v1/leads/${uid('ghost')}/timeline`)).json.error.code, 'not_found');
    assertBad(await s.call('GET', `/v1/leads/${encodeURIComponent('a<b>')}/timeline`), 400, 'leadId');
    assertBad(await s.call('GET', '/v1/leads/tl-seeded/timeline?limit=0'), 400, 'limit');
    assertBad(await s.call('GET', '/v1/leads/tl-seeded/timeline?limit=1001'), 400, 'limit');
    assertBad(await s.call('GET', '/v1/leads/tl-seeded/timeline?limit=many'), 400, 'limit');
    assertBad(await s.call('GET', '/v1/leads/tl-seeded/timeline?pageToken=garbage'), 400, 'pageToken');
    assertBad(await s.call('GET', '/v1/leads/tl-seeded/timeline?pageToken=%00'), 400, 'pageToken');
    assertBad(await s.call('GET', '/v1/leads/tl-seeded/timeline?since=2019-01-01'), 400);
    // A token is bound to its lead: another lead's is refused; the ledger's raw offsets are not accepted.
    const first = await s.call('GET', '/v1/leads/tl-seeded/timeline?limit=1');
    const token = first.json.nextPageToken as string;
    assert.match(token, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    assertBad(await s.call('GET', `/v1/leads/f1/timeline?pageToken=${encodeURIComponent(token)}`), 400, 'pageToken');
    const raw = (await s.ledger.timeline('tl-seeded', { limit: 1 })).nextPageToken!;
    assertBad(
      await s.call('GET', `/v1/leads/tl-seeded/timeline?pageToken=${encodeURIComponent(raw)}`),
      400,
      'pageToken',
    );
    const stale = s.links.seal('timeline-page', 'tl-seeded', Buffer.from('not an offset'));
    assertBad(
      await s.call('GET', `/v1/leads/tl-seeded/timeline?pageToken=${encodeURIComponent(stale)}`),
      400,
      'pageToken',
    );
    const second = await s.call('GET', `/v1/leads/tl-seeded/timeline?limit=1&pageToken=${encodeURIComponent(token)}`);
    assert.equal(second.status, 200, second.body);
    assert.deepEqual(
      second.json.entries.map((e: { to: string }) => e.to),
      ['sql'],
    );
    assert.equal(second.json.nextPageToken, undefined);
  });

  it('needs a token with scope read (or admin)', async () => {
    const api = buildApi({
      service: s.service,
      links: s.links,
      healthCheck: async () => true,
      tokens: ['read:reader-token-0123456789', 'ingest:ingest-token-0123456789', TOKEN],
    });
    try {
      const get = (token: string) =>
        api.inject({
          method: 'GET',
          url: '/v1/leads/tl-seeded/timeline',
          headers: { authorization: `Bearer ${token}` },
        });
      assert.equal((await get('reader-token-0123456789')).statusCode, 200);
      assert.equal((await get(TOKEN)).statusCode, 200);
      const refused = await get('ingest-token-0123456789');
      assert.equal(refused.statusCode, 403);
      assert.equal(refused.json().error.code, 'insufficient_scope');
    } finally {
      await api.close();
    }
  });
});
