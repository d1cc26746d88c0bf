/**
 * The HTTP API against a real Temporal dev server, a real worker and a real SMTP capture: every
 * route, its auth, its validation (bad input is a 4xx naming the field and changes nothing), and
 * the signed links in mail.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { Client, Connection } from '@temporalio/client';
import { LeadService } from '../../src/lead-service.js';
import { buildApi } from '../../src/api/server.js';
import { testConfig } from '../helpers/temporal.js';
import { useStack } from '../helpers/stack.js';
import {
  eventually,
  header,
  LINK_BASE,
  mailLinks,
  mailsFor,
  OTHER_TOKEN,
  type Res,
  settle,
  uid,
  waitState,
} from './fixture.js';

/** The test config plus an `email_click` behaviour, so the click redirect records an event. */
const config = testConfig({
  scoring: {
    thresholds: { mql: 40, sql: 75, minFit: 10 },
    fit: [
      { field: 'seniority', in: ['c_level', 'vp', 'director'], points: 20 },
      { field: 'companySize', min: 200, points: 15 },
    ],
    disqualify: [{ field: 'country', notIn: ['US', 'CA', 'GB', 'IE', 'DE', 'FR', 'NL'] }],
    behavior: {
      email_open: { points: 1, maxPerDay: 3 },
      email_click: { points: 3, maxPerDay: 5 },
      content_download: { points: 10 },
      webinar_attended: { points: 15 },
      pricing_page_view: { points: 10 },
      demo_request: { points: 30, handRaiser: true },
    },
  },
});

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
  assert.equal(typeof r.json?.error?.code, 'string', r.body);
  assert.equal(typeof r.json?.error?.message, 'string', r.body);
  if (path) assert.ok(issuePaths(r).includes(path), `issues should name ${path}: ${r.body}`);
}

const s = useStack({ worker: { loaded: config }, api: true });

async function createLead(leadId: string, extra: Record<string, unknown> = {}) {
  const r = await s.call('POST', '/v1/leads', { body: lead(leadId, extra) });
  assert.equal(r.status, 201, r.body);
  return waitState(s, leadId, () => true, 'started');
}

/** Drives a lead to sql with a demo request and waits for the handoff mail to its owner. */
async function toSql(leadId: string) {
  await createLead(leadId);
  const r = await s.call('POST', '/v1/events', { body: { leadId, eventId: uid('demo'), type: 'demo_request' } });
  assert.equal(r.status, 202, r.body);
  const st = await waitState(s, leadId, (x) => x.stage === 'sql' && x.owner !== undefined, 'sql with an owner');
  const [handoff] = await eventually('handoff mail', async () => {
    const m = mailsFor(s.smtp, leadId).filter((x) => header(x, 'x-lead-handoff') === '1');
    return m.length ? m : undefined;
  });
  return { state: st, handoff: handoff! };
}

describe('auth and open routes', () => {
  it('refuses /v1 without a valid bearer token, in the error shape', async () => {
    for (const headers of [
      {},
      { authorization: 'Bearer wrong' },
      { authorization: `Basic ${OTHER_TOKEN}` },
      { authorization: 'Bearer' },
    ] as Record<string, string>[]) {
      const r = await s.call('GET', '/v1/leads', { token: null, headers });
      assertBad(r, 401);
      assert.equal(r.json.error.code, 'unauthorized');
      assert.match(String(r.headers['www-authenticate']), /Bearer/);
    }
    // Bad input from an unauthenticated caller is refused before it is looked at, and changes nothing.
    const leadId = uid('noauth');
    assertBad(await s.call('POST', '/v1/leads', { token: 'nope', body: lead(leadId) }), 401);
    assertBad(await s.call('GET', `/v1/leads/${leadId}`), 404);
    // Every configured token works (rotation).
    assert.equal((await s.call('GET', '/v1/leads?limit=1', { token: OTHER_TOKEN })).status, 200);
  });

  it('answers /healthz without a token: 200 when Temporal answers, 503 otherwise', async () => {
    const r = await s.call('GET', '/healthz', { token: null });
    assert.equal(r.status, 200, r.body);
    for (const healthCheck of [
      async () => false,
      async () => {
        throw new Error('unreachable');
      },
    ]) {
      const app = buildApi({ service: s.service, tokens: ['x'], links: s.links, healthCheck });
      const down = await app.inject({ method: 'GET', url: '/healthz' });
      assert.equal(down.statusCode, 503);
      assert.equal(down.json().error.code, 'temporal_unavailable');
      await app.close();
    }
  });

  it('answers 503 within its deadline, not a hang, when Temporal is unreachable', async () => {
    const connection = Connection.lazy({ address: '127.0.0.1:1' });
    const service = new LeadService(new Client({ connection }), 'nowhere', config.config);
    const app = buildApi({
      service,
      tokens: ['x'],
      links: s.links,
      healthCheck: async () => false,
      temporalTimeoutMs: 1500,
    });
    try {
      const t0 = Date.now();
      const r = await app.inject({ method: 'GET', url: '/v1/leads/someone', headers: { authorization: 'Bearer x' } });
      assert.equal(r.statusCode, 503, r.body);
      assert.equal(r.json().error.code, 'temporal_unavailable');
      assert.ok(Date.now() - t0 < 10_000, `answered after ${Date.now() - t0} ms`);
      const ev = await app.inject({
        method: 'POST',
        url: '/v1/events',
        headers: { authorization: 'Bearer x' },
        payload: { leadId: 'someone', eventId: 'e1', type: 'email_open' },
      });
      assert.equal(ev.statusCode, 503, ev.body);
      // Bad input is still a 400: validation needs no server.
      const bad = await app.inject({
        method: 'POST',
        url: '/v1/events',
        headers: { authorization: 'Bearer x' },
        payload: { leadId: 'someone', eventId: 'e1', type: 'nope' },
      });
      assert.equal(bad.statusCode, 400);
    } finally {
      await app.close();
      await connection.close();
    }
  });

  it('serves an OpenAPI 3.1 document listing every route, generated from the zod schemas', async () => {
    const r = await s.call('GET', '/openapi.json', { token: null });
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /application\/json/);
    const doc = JSON.parse(r.body);
    assert.equal(doc.openapi, '3.1.0');
    for (const [path, method] of <[string, string][]>[
      ['/v1/leads', 'post'],
      ['/v1/leads', 'get'],
      ['/v1/events', 'post'],
      ['/v1/leads/{leadId}', 'patch'],
      ['/v1/leads/{leadId}', 'get'],
      ['/v1/leads/{leadId}/sales-outcome', 'post'],
      ['/v1/funnel', 'get'],
      ['/v1/leads/{leadId}/timeline', 'get'],
      ['/healthz', 'get'],
      ['/l/open', 'get'],
      ['/l/click', 'get'],
      ['/l/unsubscribe', 'get'],
      ['/l/unsubscribe', 'post'],
      ['/l/sales', 'get'],
      ['/l/sales', 'post'],
    ])
      assert.ok(doc.paths[path]?.[method], `${method.toUpperCase()} ${path} is documented`);
    const input = doc.components.schemas.LeadInput;
    assert.deepEqual([...input.required].sort(), ['email', 'leadId']);
    assert.equal(input.properties.leadId.pattern, '^[A-Za-z0-9._:@+-]{1,128}$');
    assert.ok(doc.components.schemas.LeadEvent.properties.type.enum.includes('demo_request'));
    assert.ok(doc.components.schemas.LeadEvent.properties.type.enum.includes('unsubscribe'));
    assert.ok(doc.paths['/v1/leads'].get.parameters.some((p: { name: string }) => p.name === 'minScore'));
    assert.ok(doc.paths['/v1/leads'].get.parameters.some((p: { name: string }) => p.name === 'model'));
    assert.deepEqual(
      doc.paths['/v1/funnel'].get.parameters.find((p: { name: string }) => p.name === 'by')?.schema.enum,
      ['campaign', 'channel', 'month', 'model'],
    );
    assert.deepEqual(
      doc.paths['/v1/leads/{leadId}/timeline'].get.parameters.map((p: { name: string }) => p.name).sort(),
      ['leadId', 'limit', 'pageToken'],
    );
    assert.deepEqual(
      doc.components.schemas.TimelineEntry.oneOf
        .map((e: { properties: { kind: { const: string } } }) => e.properties.kind.const)
        .sort(),
      ['event', 'mail', 'outcome', 'profile', 'transition'],
    );
    assert.deepEqual([...doc.components.schemas.Funnel.required].sort(), [
      'by',
      'groups',
      'since',
      'stages',
      'total',
      'until',
    ]);
  });

  it('answers unknown routes with a JSON 404', async () => {
    const r = await s.call('GET', '/v2/nothing', { token: null });
    assertBad(r, 404);
  });
});

describe('leads and events', () => {
  it('creates a lead (201), then updates its profile (200)', async () => {
    const leadId = uid('create');
    const r1 = await s.call('POST', '/v1/leads', { body: lead(leadId, { campaign: 'spring-webinar' }) });
    assert.equal(r1.status, 201, r1.body);
    assert.deepEqual(r1.json, { created: true, leadId });
    assert.equal(r1.headers.location, `/v1/leads/${leadId}`);
    const r2 = await s.call('POST', '/v1/leads', { body: lead(leadId, { companySize: 500 }) });
    assert.equal(r2.status, 200, r2.body);
    assert.deepEqual(r2.json, { created: false, leadId });
    const st = await waitState(s, leadId, (x) => x.profile.companySize === 500, 'profile updated');
    assert.equal(st.stage, 'lead');
    assert.equal(st.score.fit, 35);
    assert.equal(st.campaign, 'spring-webinar');
    const got = await s.call('GET', `/v1/leads/${leadId}`);
    assert.equal(got.status, 200);
    assert.equal(got.json.leadId, leadId);
    assert.equal(got.json.profile.companySize, 500);
  });

  it('takes one event or a batch (202 { accepted })', async () => {
    const leadId = uid('events');
    const before = await createLead(leadId);
    const one = await s.call('POST', '/v1/events', {
      body: { leadId, eventId: uid('e'), type: 'content_download', asset: 'guide.pdf' },
    });
    assert.equal(one.status, 202, one.body);
    assert.deepEqual(one.json, { accepted: 1 });
    const batch = [
      { leadId, eventId: uid('e'), type: 'pricing_page_view' },
      { leadId, eventId: uid('e'), type: 'email_open', occurredAt: new Date(Date.now() - 60_000).toISOString() },
      { leadId, eventId: 'same-id-twice', type: 'content_download' },
      { leadId, eventId: 'same-id-twice', type: 'content_download' },
    ];
    const many = await s.call('POST', '/v1/events', { body: batch });
    assert.equal(many.status, 202, many.body);
    assert.deepEqual(many.json, { accepted: 4 });
    const st = await waitState(
      s,
      leadId,
      (x) => x.eventsProcessed === before.eventsProcessed + 4,
      'four events counted',
    );
    // 10 + 10 + 1 + 10 engagement (the repeated eventId counted once)
    assert.equal(st.score.engagement, 31);
    await settle(s, leadId);
    assert.equal((await s.state(leadId)).score.engagement, 32);
  });

  it('creates an unknown lead from an event that carries an email', async () => {
    const leadId = uid('byevent');
    assertBad(await s.call('GET', `/v1/leads/${leadId}`), 404);
    const r = await s.call('POST', '/v1/events', {
      body: {
        leadId,
        eventId: uid('e'),
        type: 'webinar_attended',
        email: 'new@example.com',
        campaign: 'spring-webinar',
        profile: { firstName: 'Neu', country: 'DE' },
      },
    });
    assert.equal(r.status, 202, r.body);
    const st = await waitState(s, leadId, (x) => x.eventsProcessed === 1, 'created by the event');
    assert.equal(st.profile.email, 'new@example.com');
    assert.equal(st.profile.firstName, 'Neu');
    assert.equal(st.campaign, 'spring-webinar');
    assert.equal(st.score.engagement, 15);
  });

  it('refuses an unknown event type with a 400 naming the field, alone or inside a batch, and sends none of the batch', async () => {
    const leadId = uid('unknown-type');
    const before = await createLead(leadId);
    const single = await s.call('POST', '/v1/events', { body: { leadId, eventId: uid('e'), type: 'telepathy' } });
    assertBad(single, 400, 'type');
    assert.equal(single.json.error.code, 'unknown_event_type');
    const goodId = uid('good');
    const batch = await s.call('POST', '/v1/events', {
      body: [
        { leadId, eventId: goodId, type: 'content_download' },
        { leadId, eventId: uid('e'), type: 'telepathy' },
      ],
    });
    assertBad(batch, 400, '1.type');
    const st = await settle(s, leadId);
    assert.equal(st.eventsProcessed, before.eventsProcessed + 1, 'only the sentinel was counted');
    assert.ok(!st.scoreLog.some((l) => l.eventId === goodId), 'the good event of a refused batch was not sent');
  });

  it('refuses bad event bodies with a 4xx naming the field, and changes nothing', async () => {
    const leadId = uid('bad-events');
    const before = await createLead(leadId);
    const ev = (x: Record<string, unknown>) => ({ leadId, eventId: uid('e'), type: 'content_download', ...x });
    assertBad(await s.call('POST', '/v1/events', { body: ev({ eventId: undefined }) }), 400, 'eventId');
    assertBad(await s.call('POST', '/v1/events', { body: ev({ occurredAt: 'yesterday' }) }), 400, 'occurredAt');
    assertBad(await s.call('POST', '/v1/events', { body: ev({ email: 'not-an-email' }) }), 400, 'email');
    assertBad(
      await s.call('POST', '/v1/events', { body: ev({ profile: { country: 'Germany' } }) }),
      400,
      'profile.country',
    );
    assertBad(await s.call('POST', '/v1/events', { body: ev({ leadId: 'has space' }) }), 400, 'leadId');
    assertBad(await s.call('POST', '/v1/events', { body: [ev({}), ev({ type: 'Bad Type' })] }), 400, '1.type');
    assertBad(await s.call('POST', '/v1/events', { body: [] }), 400);
    assertBad(await s.call('POST', '/v1/events', { body: 'content_download' }), 400, '(root)');
    const tooMany = Array.from({ length: 501 }, () => ev({}));
    const r413 = await s.call('POST', '/v1/events', { body: tooMany });
    assertBad(r413, 413);
    assert.equal(r413.json.error.code, 'too_many_events');
    const big = await s.call('POST', '/v1/events', { body: ev({ asset: 'x'.repeat(2 * 1024 * 1024) }) });
    assertBad(big, 413);
    assert.equal(big.json.error.code, 'body_too_large');
    const malformed = await s.call('POST', '/v1/events', {
      payload: `{"leadId": "${leadId}", "type": `,
      headers: { 'content-type': 'application/json' },
    });
    assertBad(malformed, 400);
    assert.equal(malformed.json.error.code, 'malformed_json');
    const plain = await s.call('POST', '/v1/events', {
      payload: JSON.stringify(ev({})),
      headers: { 'content-type': 'text/plain' },
    });
    assertBad(plain, 415);
    const form = await s.call('POST', '/v1/events', {
      payload: 'leadId=x&type=content_download',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assertBad(form, 415);
    const st = await settle(s, leadId);
    assert.equal(st.eventsProcessed, before.eventsProcessed + 1, 'only the sentinel was counted');
    assert.equal(st.score.engagement, 1);
  });

  it('refuses bad lead bodies with a 4xx naming the field, and creates or changes nothing', async () => {
    const fresh = uid('bad-lead');
    assertBad(await s.call('POST', '/v1/leads', { body: { leadId: fresh } }), 400, 'email');
    assertBad(await s.call('POST', '/v1/leads', { body: lead(fresh, { country: 'usa' }) }), 400, 'country');
    assertBad(await s.call('POST', '/v1/leads', { body: lead(fresh, { companySize: 'big' }) }), 400, 'companySize');
    assertBad(
      await s.call('POST', '/v1/leads', { body: lead(fresh, { consent: { email: 'yes' } }) }),
      400,
      'consent.email',
    );
    assertBad(await s.call('POST', '/v1/leads', { body: lead(fresh, { timezone: 'Mars/Olympus' }) }), 400, 'timezone');
    assertBad(await s.call('POST', '/v1/leads', { body: lead('no/slashes') }), 400, 'leadId');
    assertBad(await s.call('POST', '/v1/leads', { body: lead('x'.repeat(129)) }), 400, 'leadId');
    assertBad(await s.call('POST', '/v1/leads', { body: [lead(fresh)] }), 400, '(root)');
    assertBad(
      await s.call('POST', '/v1/leads', { payload: '{"leadId":', headers: { 'content-type': 'application/json' } }),
      400,
    );
    assertBad(await s.call('POST', '/v1/leads', { payload: '', headers: { 'content-type': 'application/json' } }), 400);
    assertBad(
      await s.call('POST', '/v1/leads', {
        payload: `leadId=${fresh}`,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      }),
      415,
    );
    assertBad(await s.call('POST', '/v1/leads', { payload: 'x', headers: { 'content-type': 'application/xml' } }), 415);
    assertBad(await s.call('POST', '/v1/leads', { body: lead(fresh, { note: 'y'.repeat(1_100_000) }) }), 413);
    assertBad(await s.call('GET', `/v1/leads/${fresh}`), 404);

    // An existing lead: a bad update leaves its profile as it was.
    const leadId = uid('bad-update');
    const before = await createLead(leadId, { companySize: 50 });
    assertBad(await s.call('POST', '/v1/leads', { body: lead(leadId, { companySize: -1 }) }), 400, 'companySize');
    assertBad(await s.call('POST', '/v1/leads', { body: lead(leadId, { email: 'nope' }) }), 400, 'email');
    const st = await settle(s, leadId);
    assert.deepEqual(st.profile, before.profile);
  });

  it('patches a profile (202) and refuses bad patches naming the field', async () => {
    const leadId = uid('patch');
    const before = await createLead(leadId);
    assertBad(await s.call('PATCH', `/v1/leads/${leadId}`, { body: { email: 'not-an-email' } }), 400, 'email');
    assertBad(await s.call('PATCH', `/v1/leads/${leadId}`, { body: { companySize: 1.5 } }), 400, 'companySize');
    assertBad(await s.call('PATCH', `/v1/leads/${leadId}`, { body: { custom: { nested: true } } }), 400, 'custom');
    assertBad(await s.call('PATCH', `/v1/leads/${leadId}`, { body: 'vp' }), 400, '(root)');
    assertBad(
      await s.call('PATCH', `/v1/leads/${leadId}`, { payload: '{', headers: { 'content-type': 'application/json' } }),
      400,
    );
    assertBad(
      await s.call('PATCH', `/v1/leads/${leadId}`, {
        payload: 'companySize=5',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      }),
      415,
    );
    assertBad(
      await s.call('PATCH', `/v1/leads/${encodeURIComponent('bad id')}`, { body: { companySize: 5 } }),
      400,
      'leadId',
    );
    assertBad(await s.call('PATCH', `/v1/leads/${uid('nobody')}`, { body: { companySize: 5 } }), 404);
    const mid = await settle(s, leadId);
    assert.deepEqual(mid.profile, before.profile);

    const ok = await s.call('PATCH', `/v1/leads/${leadId}`, { body: { companySize: 5000, jobTitle: 'VP Marketing' } });
    assert.equal(ok.status, 202, ok.body);
    const st = await waitState(s, leadId, (x) => x.profile.companySize === 5000, 'patched');
    assert.equal(st.score.fit, 35);
    assert.equal(st.profile.jobTitle, 'VP Marketing');
  });

  it('answers GET /v1/leads/:leadId with 404 for an unknown lead and 400 for a malformed id', async () => {
    assertBad(await s.call('GET', `/v1/leads/${uid('ghost')}`), 404);
    const bad = await s.call('GET', `/v1/leads/${encodeURIComponent('a<b>')}`);
    assertBad(bad, 400, 'leadId');
  });
});

describe('sales outcome', () => {
  it('answers 200 with the new state, 409 on the wrong stage, 404 for an unknown lead, 400 for a bad body', async () => {
    const leadId = uid('outcome');
    await toSql(leadId);
    const url = `/v1/leads/${leadId}/sales-outcome`;
    assertBad(await s.call('POST', url, { body: { outcome: 'maybe' } }), 400, 'outcome');
    assertBad(await s.call('POST', url, { body: { outcome: 'rejected' } }), 400, 'reason');
    assertBad(await s.call('POST', url, { body: { outcome: 'rejected', reason: 'too_busy' } }), 400, 'reason');
    assertBad(await s.call('POST', url, { body: { outcome: 'accepted', note: 'n'.repeat(2001) } }), 400, 'note');
    assertBad(
      await s.call('POST', url, {
        payload: 'outcome=accepted',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      }),
      415,
    );
    assert.equal((await s.state(leadId)).stage, 'sql', 'bad outcomes changed nothing');

    const wrong = await s.call('POST', url, { body: { outcome: 'won' } });
    assertBad(wrong, 409);
    assert.equal(wrong.json.error.code, 'wrong_stage');
    assert.equal((await s.state(leadId)).stage, 'sql');

    const ok = await s.call('POST', url, {
      body: { outcome: 'accepted', rep: 'ana@sales.example', note: 'talking Tuesday' },
    });
    assert.equal(ok.status, 200, ok.body);
    assert.equal(ok.json.stage, 'opportunity');
    assert.equal(ok.json.leadId, leadId);

    const again = await s.call('POST', url, { body: { outcome: 'accepted' } });
    assertBad(again, 409);
    assert.match(again.json.error.message, /opportunity/);

    const won = await s.call('POST', url, { body: { outcome: 'won' } });
    assert.equal(won.status, 200, won.body);
    assert.equal(won.json.stage, 'customer');
    // The run completed: still a wrong stage, not "not found".
    const afterWon = await s.call('POST', url, { body: { outcome: 'lost' } });
    assertBad(afterWon, 409);
    assert.match(afterWon.json.error.message, /customer/);

    assertBad(await s.call('POST', `/v1/leads/${uid('nobody')}/sales-outcome`, { body: { outcome: 'accepted' } }), 404);
    assertBad(
      await s.call('POST', `/v1/leads/${encodeURIComponent('no way')}/sales-outcome`, {
        body: { outcome: 'accepted' },
      }),
      400,
      'leadId',
    );
  });
});

// Search, the funnel and the timeline (read from the ledger): test/api/ledger-reads.test.ts.

describe('links in mail', () => {
  const DAY = 86_400_000;
  const tamper = (path: string) =>
    path.replace(
      /(\?t=[^&]*)(.)(&|$)/,
      (_m, a: string, c: string, end: string) => `${a}${c === 'A' ? 'B' : 'A'}${end}`,
    );

  it('counts an open pixel once per link, however often it is loaded', async () => {
    const leadId = uid('pixel');
    await createLead(leadId);
    const welcome = await eventually('welcome mail', async () =>
      mailsFor(s.smtp, leadId).find((m) => header(m, 'x-nurture-track') === 'welcome'),
    );
    const { open } = mailLinks(welcome);
    assert.ok(open, 'the welcome mail has an open pixel');
    const before = await s.state(leadId);
    for (let i = 0; i < 3; i++) {
      const r: LightMyRequestResponse = await s.app.inject({ method: 'GET', url: String(open) });
      assert.equal(r.statusCode, 200);
      assert.equal(r.headers['content-type'], 'image/gif');
      assert.equal(r.rawPayload.subarray(0, 6).toString(), 'GIF89a');
      assert.match(String(r.headers['cache-control']), /no-store/);
    }
    const st = await settle(s, leadId);
    const opens = st.scoreLog.filter((l) => l.type === 'email_open' && l.eventId?.startsWith('email_open:'));
    assert.equal(opens.length, 1, 'one email_open for three loads of one link');
    assert.equal(st.eventsProcessed, before.eventsProcessed + 2, 'the open and the sentinel');
  });

  it("a nurture mail's click link leads to its template's page (templates/welcome.yaml `link`)", async () => {
    const leadId = uid('tour');
    await createLead(leadId);
    const welcome = await eventually('welcome mail', async () =>
      mailsFor(s.smtp, leadId).find((m) => header(m, 'x-nurture-track') === 'welcome'),
    );
    const { click } = mailLinks(welcome);
    assert.ok(click, 'the welcome mail has a click link');
    const r = await s.app.inject({ method: 'GET', url: click });
    assert.equal(r.statusCode, 302);
    assert.equal(r.headers.location, 'https://acme.example/tour');
  });

  it('redirects a click to its target and records email_click when the config knows it', async () => {
    const leadId = uid('click');
    await createLead(leadId);
    const url = s.links.url('click', leadId, Date.now(), { m: 'welcome:1:0', u: 'https://acme.example/tour?x=1' });
    const path = url.slice(LINK_BASE.length);
    const r = await s.app.inject({ method: 'GET', url: path });
    assert.equal(r.statusCode, 302);
    assert.equal(r.headers.location, 'https://acme.example/tour?x=1');
    const st = await waitState(s, leadId, (x) => x.scoreLog.some((l) => l.type === 'email_click'), 'click counted');
    assert.equal(st.score.engagement, 3);

    // A config without email_click: the link still redirects, and nothing is sent.
    const plain = testConfig();
    const app = buildApi({
      service: new LeadService(s.env.client, s.service.taskQueue, plain.config),
      tokens: ['x'],
      links: s.links,
      healthCheck: async () => true,
    });
    const other = uid('click-plain');
    await createLead(other);
    const r2 = await app.inject({
      method: 'GET',
      url: s.links.url('click', other, Date.now(), { u: 'https://acme.example/' }).slice(LINK_BASE.length),
    });
    assert.equal(r2.statusCode, 302);
    const st2 = await settle(s, other);
    assert.equal(st2.eventsProcessed, 1, 'only the sentinel');
    await app.close();

    // A link without a target, or with a script target, is refused.
    for (const u of [undefined, 'javascript:alert(1)']) {
      const bad = await s.app.inject({
        method: 'GET',
        url: s.links.url('click', leadId, Date.now(), u ? { u } : {}).slice(LINK_BASE.length),
      });
      assert.equal(bad.statusCode, 400);
    }
  });

  it('refuses tampered, expired, foreign and missing tokens with 403/400, in JSON or HTML', async () => {
    const leadId = uid('tamper');
    await createLead(leadId);
    const before = await settle(s, leadId);
    const now = Date.now();
    const fresh = (p: 'open' | 'click' | 'unsubscribe' | 'sales') =>
      s.links.url(p, leadId, now, { u: 'https://acme.example/' }).slice(LINK_BASE.length);
    const expired = (p: 'open' | 'click' | 'unsubscribe' | 'sales') =>
      s.links.url(p, leadId, now - 400 * DAY, { u: 'https://acme.example/' }).slice(LINK_BASE.length);
    for (const p of ['open', 'click', 'unsubscribe', 'sales'] as const) {
      for (const [what, path, code] of [
        ['tampered', tamper(fresh(p)), 'link_invalid'],
        ['expired', expired(p), 'link_expired'],
      ] as const) {
        const r = await s.app.inject({ method: 'GET', url: path });
        assert.equal(r.statusCode, 403, `${what} ${p}: ${r.body}`);
        assert.equal(r.json().error.code, code, `${what} ${p}`);
        const html = await s.app.inject({ method: 'GET', url: path, headers: { accept: 'text/html' } });
        assert.equal(html.statusCode, 403);
        assert.match(String(html.headers['content-type']), /text\/html/);
        assert.match(html.body, /does not work/);
      }
    }
    // A link signed for one purpose does not work for another, nor one signed with another secret.
    const openToken = fresh('open').split('?t=')[1]!;
    assert.equal((await s.app.inject({ method: 'GET', url: `/l/unsubscribe?t=${openToken}` })).statusCode, 403);
    const { LinkSigner } = await import('../../src/links.js');
    const foreign = new LinkSigner('another-secret-0123456789', LINK_BASE)
      .url('unsubscribe', leadId, now)
      .slice(LINK_BASE.length);
    assert.equal((await s.app.inject({ method: 'GET', url: foreign })).statusCode, 403);
    const post = await s.app.inject({
      method: 'POST',
      url: tamper(fresh('unsubscribe')),
      payload: 'List-Unsubscribe=One-Click',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(post.statusCode, 403);
    const salesPost = await s.app.inject({
      method: 'POST',
      url: expired('sales'),
      payload: 'action=accept',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(salesPost.statusCode, 403);
    assert.equal((await s.app.inject({ method: 'GET', url: '/l/open' })).statusCode, 400);
    assert.equal((await s.app.inject({ method: 'GET', url: '/l/open?t=garbage' })).statusCode, 403);
    const st = await settle(s, leadId);
    assert.equal(st.eventsProcessed, before.eventsProcessed + 1, 'refused links recorded nothing');
    assert.equal(st.consent, 'subscribed');
  });

  it("unsubscribes with the one-click POST of the mail's List-Unsubscribe header (RFC 8058)", async () => {
    const leadId = uid('unsub');
    await createLead(leadId);
    const welcome = await eventually('welcome mail', async () =>
      mailsFor(s.smtp, leadId).find((m) => header(m, 'x-nurture-track') === 'welcome'),
    );
    const { listUnsubscribe, unsubscribe } = mailLinks(welcome);
    assert.ok(listUnsubscribe, 'List-Unsubscribe header has the link');
    assert.match(
      String(welcome.raw.headerLines.find((l) => l.key === 'list-unsubscribe-post')?.line),
      /List-Unsubscribe=One-Click/,
    );

    // The page (GET) only asks; a link scanner fetching it changes nothing.
    const page = await s.app.inject({ method: 'GET', url: unsubscribe! });
    assert.equal(page.statusCode, 200);
    assert.match(page.body, /<form method="post" action="\/l\/unsubscribe\?t=/);
    assert.match(page.body, /name="List-Unsubscribe" value="One-Click"/);
    // A POST without the one-click body is refused.
    const empty = await s.app.inject({
      method: 'POST',
      url: listUnsubscribe!,
      payload: 'foo=bar',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(empty.statusCode, 400);
    assert.equal(empty.json().error.issues[0].path, 'List-Unsubscribe');
    assert.equal((await settle(s, leadId)).consent, 'subscribed');

    const r = await s.app.inject({
      method: 'POST',
      url: listUnsubscribe!,
      payload: 'List-Unsubscribe=One-Click',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(r.statusCode, 200, r.body);
    const st = await waitState(s, leadId, (x) => x.consent === 'unsubscribed', 'unsubscribed');
    assert.equal(st.stage, 'lead', 'consent is not a stage');
    // Again (a mail client retrying): still 200, counted once.
    const again = await s.app.inject({
      method: 'POST',
      url: listUnsubscribe!,
      payload: 'List-Unsubscribe=One-Click',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(again.statusCode, 200);
    const end = await settle(s, leadId);
    assert.equal(end.scoreLog.filter((l) => l.type === 'unsubscribe').length, 1);
  });

  it('lets the owner accept on the sales page from the handoff mail', async () => {
    const leadId = uid('salespage');
    const { handoff, state } = await toSql(leadId);
    assert.deepEqual(handoff.to, [state.owner]);
    const { accept, reject } = mailLinks(handoff);
    assert.ok(accept && reject, 'the handoff mail has accept and reject links');

    const page = await s.app.inject({ method: 'GET', url: accept! });
    assert.equal(page.statusCode, 200, page.body);
    assert.match(String(page.headers['content-type']), /text\/html/);
    assert.ok(page.body.includes(leadId));
    assert.match(page.body, /<form method="post"[^>]*id="accept"/);
    const rejectPage = await s.app.inject({ method: 'GET', url: reject! });
    for (const reason of ['not_ready', 'no_response', 'bad_fit', 'duplicate', 'other'])
      assert.ok(rejectPage.body.includes(`value="${reason}"`), reason);
    assert.equal(
      (await s.app.inject({ method: 'GET', url: accept!.replace('action=accept', 'action=maybe') })).statusCode,
      400,
    );

    const formUrl = accept!.replace(/&action=accept$/, '');
    const badForm = await s.app.inject({
      method: 'POST',
      url: formUrl,
      payload: 'action=reject&reason=meh',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(badForm.statusCode, 400);
    assert.match(badForm.body, /reason/);
    assert.equal((await s.state(leadId)).stage, 'sql');

    const done = await s.app.inject({
      method: 'POST',
      url: formUrl,
      payload: 'action=accept&note=Calling+%3Cb%3Etoday%3C%2Fb%3E',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(done.statusCode, 200, done.body);
    assert.match(done.body, /now <strong>opportunity<\/strong>/);
    assert.ok(!done.body.includes('<b>today</b>'), 'the note is escaped');
    assert.ok(done.body.includes('&lt;b&gt;today&lt;/b&gt;'));
    const st = await s.state(leadId);
    assert.equal(st.stage, 'opportunity');
    assert.equal(st.owner, state.owner);
    assert.match(st.transitions.at(-1)!.reason, new RegExp(`sales accepted by ${state.owner}`));

    // The link is spent: the page and the form say there is nothing to decide.
    const later = await s.app.inject({ method: 'GET', url: accept! });
    assert.equal(later.statusCode, 409);
    assert.match(later.body, /opportunity/);
    const twice = await s.app.inject({
      method: 'POST',
      url: formUrl,
      payload: 'action=reject&reason=other',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(twice.statusCode, 409);
    assert.equal((await s.state(leadId)).stage, 'opportunity');
  });
});
