/**
 * The API as an attacker or a fault finds it (issue 9 items 5, 6, 9, 10, 11, 12), against a real
 * Temporal dev server and worker (test/api/fixture.ts). Where a test needs a state Temporal cannot
 * reach quickly (an escalated handoff) or must prove that no Temporal call was made, it uses a
 * LeadService whose Temporal methods are replaced and counted.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { Worker } from '@temporalio/worker';
import type { FastifyInstance } from 'fastify';
import { buildApi, type ApiOptions } from '../../src/api/server.js';
import { LeadService } from '../../src/lead-service.js';
import type { LeadState } from '../../src/domain/lead.js';
import { testDataConverter } from '../helpers/temporal.js';
import { useStack } from '../helpers/stack.js';
import { eventually, LINK_BASE, type Res, settle, TOKEN, uid, waitState } from './fixture.js';

const s = useStack({ api: true });

const lead = (leadId: string, extra: Record<string, unknown> = {}) => ({
  leadId,
  email: `${leadId.toLowerCase().replace(/[^a-z0-9]/g, '')}@example.com`,
  country: 'US',
  ...extra,
});
const fields = (n: number, value: unknown = 'x') =>
  Object.fromEntries(Array.from({ length: n }, (_, i) => [`f${i}`, value]));

/** A 4xx/5xx in the contract's error shape `{ error: { code, message, issues? } }`. */
function assertError(r: { status: number; json?: any; body: string }, status: number, code?: string, path?: string) {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.body}`);
  assert.deepEqual(Object.keys(r.json ?? {}), ['error'], r.body);
  assert.equal(typeof r.json.error.code, 'string', r.body);
  assert.equal(typeof r.json.error.message, 'string', r.body);
  if (code) assert.equal(r.json.error.code, code, r.body);
  if (path)
    assert.ok(
      (r.json.error.issues ?? []).some((i: { path: string }) => i.path === path),
      `issues should name ${path}: ${r.body}`,
    );
}

/** A LeadService whose Temporal calls are stubs: `calls` counts what reached "Temporal". */
function stubService(
  over: Partial<
    Record<
      'getState' | 'salesOutcome' | 'sendEvents' | 'upsertLead' | 'search' | 'patchProfile' | 'funnel' | 'timeline',
      (...a: any[]) => Promise<unknown>
    >
  > = {},
) {
  const calls: string[] = [];
  const service = new LeadService(
    { connection: { withDeadline: (_d: number, fn: () => unknown) => fn() } } as never,
    'none',
    s.loaded.config,
  );
  for (const m of [
    'getState',
    'salesOutcome',
    'sendEvents',
    'upsertLead',
    'search',
    'patchProfile',
    'funnel',
    'timeline',
  ] as const) {
    (service as unknown as Record<string, unknown>)[m] = async (...a: unknown[]) => {
      calls.push(m);
      if (over[m]) return over[m]!(...a);
      throw new Error(`${m} must not be called`);
    };
  }
  return { service, calls };
}

async function inject(
  app: FastifyInstance,
  method: string,
  url: string,
  o: { token?: string | null; body?: unknown; headers?: Record<string, string> } = {},
): Promise<Res> {
  const headers: Record<string, string> = {
    ...(o.token === null ? {} : { authorization: `Bearer ${o.token ?? TOKEN}` }),
    ...(o.body !== undefined ? { 'content-type': 'application/json' } : {}),
    ...o.headers,
  };
  const r = await app.inject({
    method: method as 'GET',
    url,
    headers,
    ...(o.body !== undefined ? { payload: typeof o.body === 'string' ? o.body : JSON.stringify(o.body) } : {}),
  });
  let json: unknown;
  try {
    json = r.json();
  } catch {
    /* not JSON */
  }
  return { status: r.statusCode, json, body: r.body, headers: r.headers };
}

function app(opts: Partial<ApiOptions> & { service: LeadService }): FastifyInstance {
  return buildApi({ tokens: [TOKEN], links: s.links, healthCheck: async () => true, ...opts });
}

// ---- item 5 -----------------------------------------------------------------------------------

describe('a lead whose workflow task is failing (item 5)', () => {
  it('answers 503 with Retry-After, never 500, to reads and sales outcomes while Temporal refuses them', async () => {
    // A worker whose lead workflow fails every task after its first event, as after a killed worker.
    const taskQueue = uid('broken');
    const worker = await Worker.create({
      connection: s.env.nativeConnection,
      taskQueue,
      workflowsPath: fileURLToPath(new URL('./workflows/broken.ts', import.meta.url)),
      dataConverter: testDataConverter,
    });
    const running = worker.run();
    const service = new LeadService(s.env.client, taskQueue, s.loaded.config);
    const api = app({ service, temporalTimeoutMs: 3000 });
    try {
      const leadId = uid('failing');
      assert.equal((await inject(api, 'POST', '/v1/leads', { body: lead(leadId) })).status, 201);
      await eventually(
        'the lead answers',
        async () => (await inject(api, 'GET', `/v1/leads/${leadId}`)).status === 200,
      );
      assert.equal(
        (await inject(api, 'POST', '/v1/events', { body: { leadId, eventId: 'e1', type: 'email_open' } })).status,
        202,
      );
      // Until the server marks the task failed, an update may time out (503 too); then it is refused at once.
      const seen: string[] = [];
      const refused = await eventually(
        'Temporal refuses the update with FAILED_PRECONDITION',
        async () => {
          const r = await inject(api, 'POST', `/v1/leads/${leadId}/sales-outcome`, { body: { outcome: 'accepted' } });
          seen.push(`${r.status} ${r.json?.error?.code}`);
          return r.json?.error?.code === 'lead_unavailable' ? r : undefined;
        },
        60_000,
      );
      assert.ok(
        seen.every((x) => x.startsWith('503 ')),
        `every answer was a 503: ${seen.join(', ')}`,
      );
      assertError(refused, 503, 'lead_unavailable');
      assert.match(String(refused.headers['retry-after']), /^\d+$/);
      // A read is a 503 too while it needs the workflow (or a 200 where it is served without it), never a 500.
      const read = await inject(api, 'GET', `/v1/leads/${leadId}`);
      assert.ok(read.status === 200 || read.status === 503, `${read.status}: ${read.body}`);
      if (read.status === 503) {
        assertError(read, 503);
        assert.match(String(read.headers['retry-after']), /^\d+$/);
      }
      assert.equal((await inject(api, 'GET', '/healthz', { token: null })).status, 200, 'the API itself is fine');
    } finally {
      await api.close();
      worker.shutdown();
      await running;
    }
  });
});

// ---- item 6 and 12 (text) -----------------------------------------------------------------------

describe('bounded profiles (item 6)', () => {
  it('refuses three 912 KB PATCHes and a 101-field profile on every entry point, naming the reason; the lead still answers', async () => {
    const leadId = uid('bounded');
    assert.equal((await s.call('POST', '/v1/leads', { body: lead(leadId) })).status, 201);
    await waitState(s, leadId, () => true, 'started');
    const huge = Object.fromEntries(Array.from({ length: 912 }, (_, i) => [`k${i}`, 'v'.repeat(1000)]));
    assert.ok(JSON.stringify(huge).length > 912 * 1000);
    for (let i = 0; i < 3; i++) {
      const r = await s.call('PATCH', `/v1/leads/${leadId}`, { body: huge });
      assert.ok(r.status === 400 || r.status === 413, `${r.status}: ${r.body.slice(0, 300)}`);
      assertError(r, r.status);
      assert.match(r.json.error.message, /at most 100 fields|at most 16384 bytes/);
    }
    const tooMany = fields(101);
    assertError(await s.call('PATCH', `/v1/leads/${leadId}`, { body: tooMany }), 400, 'invalid_input', '(root)');
    const create = await s.call('POST', '/v1/leads', { body: lead(uid('bounded'), tooMany) });
    assertError(create, 400, 'invalid_input', '(root)');
    assert.match(create.json.error.message, /at most 100 fields, this one has 103/);
    const ev = await s.call('POST', '/v1/events', {
      body: [
        { leadId, eventId: uid('e'), type: 'email_open' },
        { leadId, eventId: uid('e'), type: 'email_open', profile: tooMany },
      ],
    });
    assertError(ev, 400, 'invalid_input', '1.profile');
    const big16 = await s.call('PATCH', `/v1/leads/${leadId}`, { body: fields(17, 'y'.repeat(1000)) });
    assertError(big16, 400, 'invalid_input', '(root)');
    assert.match(big16.json.error.message, /at most 16384 bytes of JSON/);
    const st = await settle(s, leadId);
    assert.equal(
      Object.keys(st.profile).some((k) => /^(k|f)\d+$/.test(k)),
      false,
      'nothing of the refused input went in',
    );
    assert.equal((await s.call('GET', `/v1/leads/${leadId}`)).status, 200);
  });

  it('refuses a PATCH that would take the merged profile past the bound (the workflow refuses it too)', async () => {
    const leadId = uid('merged');
    assert.equal((await s.call('POST', '/v1/leads', { body: lead(leadId) })).status, 201);
    await waitState(s, leadId, () => true, 'started');
    const chunk = (i: number) =>
      Object.fromEntries(Array.from({ length: 5 }, (_, j) => [`c${i}_${j}`, 'z'.repeat(1000)]));
    for (let i = 0; i < 3; i++)
      assert.equal((await s.call('PATCH', `/v1/leads/${leadId}`, { body: chunk(i) })).status, 202);
    await settle(s, leadId);
    const over = await s.call('PATCH', `/v1/leads/${leadId}`, { body: chunk(3) });
    assertError(over, 400, 'profile_too_large', '(root)');
    assert.match(over.json.error.message, /at most 16384 bytes/);
    // Sent past the API's check (a race, an older API): the workflow refuses it and says so.
    await s.service.patchProfile(leadId, chunk(4));
    const st = await waitState(
      s,
      leadId,
      (x) => x.scoreLog.some((l) => /profile change refused/.test(l.note ?? '')),
      'refusal logged',
    );
    assert.equal(Object.keys(st.profile).filter((k) => k.startsWith('c4_')).length, 0);
    assert.equal((await s.call('GET', `/v1/leads/${leadId}`)).status, 200);
  });
});

describe('control characters in profile text (item 12)', () => {
  it('refuses CR/LF, NUL and other controls in any profile text or field name, naming the field, and creates nothing', async () => {
    const leadId = uid('ctl');
    assertError(
      await s.call('POST', '/v1/leads', { body: lead(leadId, { company: 'Acme\r\nBcc: victim@example.com' }) }),
      400,
      'invalid_input',
      'company',
    );
    assertError(
      await s.call('POST', '/v1/leads', { body: lead(leadId, { note: 'a\u0000b' }) }),
      400,
      'invalid_input',
      'note',
    );
    assertError(
      await s.call('POST', '/v1/leads', { body: lead(leadId, { 'x\ny': 'fine' }) }),
      400,
      'invalid_input',
      'x\ny',
    );
    assertError(
      await s.call('POST', '/v1/events', {
        body: {
          leadId,
          eventId: 'e',
          type: 'email_open',
          email: `${leadId}@example.com`,
          profile: { jobTitle: 'VP\u001b[2J' },
        },
      }),
      400,
      'invalid_input',
      'profile.jobTitle',
    );
    assertError(await s.call('GET', `/v1/leads/${leadId}`), 404, 'not_found');
  });
});

// ---- item 9 -------------------------------------------------------------------------------------

describe('sales links are bound to owner and episode (item 9)', () => {
  it("refuses ben's link after the lead escalated to ana (403 page), takes ana's", async () => {
    const becameSqlAt = '2026-12-01T10:00:00.000Z';
    const base = {
      leadId: 'esc-1',
      stage: 'sql',
      score: { total: 80, fit: 20, engagement: 60 },
      profile: { email: 'e@example.com' },
      consent: 'subscribed',
      nurture: { step: 0 },
      createdAt: becameSqlAt,
      becameSqlAt,
      recycleCount: 0,
      eventsProcessed: 3,
      transitions: [],
      configVersion: 'v',
      scoreLog: [],
    };
    let state = { ...base, owner: 'ben@sales.example', escalations: 0 } as unknown as LeadState;
    const outcomes: unknown[] = [];
    const { service } = stubService({
      getState: async () => state,
      salesOutcome: async (_id: string, o: unknown) => {
        outcomes.push(o);
        return { ...state, stage: 'opportunity' };
      },
    });
    const api = app({ service });
    const path = (owner: string, escalation: number) =>
      s.links
        .url('sales', 'esc-1', Date.now(), { m: `${becameSqlAt}:${escalation}`, o: owner })
        .slice(LINK_BASE.length);
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    try {
      const ben = path('ben@sales.example', 0);
      assert.equal(
        (await api.inject({ method: 'GET', url: ben })).statusCode,
        200,
        "ben's link works while he owns it",
      );
      state = { ...base, owner: 'ana@sales.example', escalations: 1 } as unknown as LeadState;
      const page = await api.inject({ method: 'GET', url: ben });
      assert.equal(page.statusCode, 403);
      assert.match(page.body, /moved on/);
      assert.ok(!page.body.includes('<form'), 'no form to act with');
      const post = await api.inject({ method: 'POST', url: ben, payload: 'action=accept', headers: form });
      assert.equal(post.statusCode, 403);
      assert.match(post.body, /nothing was changed/);
      assert.equal(outcomes.length, 0, "ben's link changed nothing");
      const ana = path('ana@sales.example', 1);
      assert.equal((await api.inject({ method: 'GET', url: ana })).statusCode, 200);
      const done = await api.inject({ method: 'POST', url: ana, payload: 'action=accept', headers: form });
      assert.equal(done.statusCode, 200, done.body);
      assert.deepEqual(outcomes, [{ outcome: 'accepted', rep: 'ana@sales.example' }]);
    } finally {
      await api.close();
    }
  });

  it("puts the owner into the handoff mail's links (real worker)", async () => {
    const leadId = uid('owned');
    assert.equal(
      (await s.call('POST', '/v1/leads', { body: lead(leadId, { seniority: 'vp', companySize: 500 }) })).status,
      201,
    );
    assert.equal(
      (await s.call('POST', '/v1/events', { body: { leadId, eventId: uid('demo'), type: 'demo_request' } })).status,
      202,
    );
    const st = await waitState(s, leadId, (x) => x.stage === 'sql' && x.owner !== undefined, 'sql with an owner');
    const mail = await eventually('handoff mail', async () =>
      s.smtp.messages.find(
        (m) => String(m.headers.get('x-lead-id')) === leadId && String(m.headers.get('x-lead-handoff')) === '1',
      ),
    );
    const t = new RegExp(`${LINK_BASE}/l/sales\\?t=([A-Za-z0-9_.-]+)`).exec(mail.text)![1]!;
    const v = s.links.verify(t, 'sales', Date.now());
    assert.ok(v.ok);
    assert.equal(v.payload.o, st.owner);
    assert.equal(v.payload.m, `${st.becameSqlAt}:0`);
  });
});

// ---- item 10 ------------------------------------------------------------------------------------

describe('search input and path routes (item 10)', () => {
  it('answers 400 at once, with no Temporal call, for control characters in owner/campaign and a garbage pageToken', async () => {
    const { service, calls } = stubService();
    const api = app({ service });
    try {
      for (const q of [
        'owner=ana%00x',
        'campaign=spring%0Awebinar',
        'owner=%1B%5B2J',
        'pageToken=garbage',
        'pageToken=AAAA.BBBB',
        'pageToken=%00',
      ]) {
        const t0 = Date.now();
        const r = await inject(api, 'GET', `/v1/leads?${q}`);
        assertError(r, 400, 'invalid_input', q.split('=')[0]);
        assert.ok(Date.now() - t0 < 1000, `${q}: answered in ${Date.now() - t0} ms`);
      }
      assert.deepEqual(calls, [], 'nothing reached Temporal');
      // The LeadService (leadctl's path too) refuses them itself.
      await assert.rejects(s.service.search({ owner: 'a\u0000b' }), /owner/);
      await assert.rejects(s.service.search({ pageToken: 'not base64!' }), /pageToken/);
    } finally {
      await api.close();
    }
  });

  it('pages with the tokens it hands out, and refuses a token for other filters', async () => {
    const campaign = uid('pages');
    for (let i = 0; i < 3; i++)
      assert.equal((await s.call('POST', '/v1/leads', { body: lead(uid('pg'), { campaign }) })).status, 201);
    await eventually(
      'three leads listed',
      async () => (await s.call('GET', `/v1/leads?campaign=${campaign}&limit=10`)).json?.leads?.length === 3,
    );
    const first = await s.call('GET', `/v1/leads?campaign=${campaign}&limit=2`);
    assert.equal(first.status, 200, first.body);
    assert.equal(first.json.leads.length, 2);
    const token = first.json.nextPageToken as string;
    assert.ok(token);
    const second = await s.call('GET', `/v1/leads?campaign=${campaign}&limit=2&pageToken=${encodeURIComponent(token)}`);
    assert.equal(second.status, 200, second.body);
    assert.equal(second.json.leads.length, 1);
    const ids = [...first.json.leads, ...second.json.leads].map((l: { leadId: string }) => l.leadId);
    assert.equal(new Set(ids).size, 3);
    assertError(
      await s.call('GET', `/v1/leads?campaign=other&limit=2&pageToken=${encodeURIComponent(token)}`),
      400,
      'invalid_input',
      'pageToken',
    );
  });

  it('serves lead ids of 101-128 characters on every path route', async () => {
    for (const len of [101, 128]) {
      const leadId = `${uid('long')}:a@b+`.padEnd(len, 'x');
      assert.equal(leadId.length, len);
      const created = await s.call('POST', '/v1/leads', { body: lead(leadId) });
      assert.equal(created.status, 201, created.body);
      await eventually(`GET ${len}`, async () => (await s.call('GET', `/v1/leads/${leadId}`)).status === 200);
      // Percent-encoded (: @ + as %3A %40 %2B, the path three times longer there) it is the same lead.
      const encoded = encodeURIComponent(leadId);
      assert.equal((await s.call('GET', `/v1/leads/${encoded}`)).json?.leadId, leadId);
      assert.equal((await s.call('PATCH', `/v1/leads/${encoded}`, { body: { jobTitle: 'CTO' } })).status, 202);
      assertError(
        await s.call('POST', `/v1/leads/${leadId}/sales-outcome`, { body: { outcome: 'won' } }),
        409,
        'wrong_stage',
      );
    }
    assertError(await s.call('GET', `/v1/leads/${'x'.repeat(129)}`), 400, 'invalid_input', 'leadId');
    assertError(await s.call('GET', `/v1/leads/${'x'.repeat(2000)}`), 414, 'uri_too_long');
  });

  it("answers every framework error in the contract's shape: 400, 401, 403, 404, 405, 413, 414, 415, 429", async () => {
    const { service } = stubService();
    const api = app({
      service,
      bodyLimit: 1000,
      tokens: [TOKEN, 'read:read-token-0123456789'],
      rateLimit: { max: 1000, windowMs: 60_000 },
    });
    try {
      assertError(await inject(api, 'GET', '/nope'), 404, 'route_not_found');
      assertError(await inject(api, 'GET', '/v1/nope'), 404, 'route_not_found');
      const del = await inject(api, 'DELETE', '/v1/events');
      assertError(del, 405, 'method_not_allowed');
      assert.equal(del.headers.allow, 'POST');
      assertError(await inject(api, 'PUT', '/v1/leads/abc', { body: {} }), 405, 'method_not_allowed');
      assertError(await inject(api, 'POST', '/v1/events', { body: 'x'.repeat(2000) }), 413, 'body_too_large');
      assertError(await inject(api, 'POST', '/v1/events', { body: '{"a":' }), 400, 'malformed_json');
      assertError(
        await inject(api, 'POST', '/v1/events', { headers: { 'content-type': 'text/plain' }, body: 'hi' }),
        415,
        'unsupported_media_type',
      );
      assertError(await inject(api, 'GET', '/v1/leads/%E0%A4%A'), 400, 'bad_url');
      assertError(await inject(api, 'GET', `/v1/leads/${'y'.repeat(1000)}`), 414, 'uri_too_long');
      assertError(await inject(api, 'GET', '/v1/leads', { token: 'wrong' }), 401, 'unauthorized');
      assertError(
        await inject(api, 'POST', '/v1/events', { token: 'read-token-0123456789', body: {} }),
        403,
        'insufficient_scope',
      );
      assertError(await inject(api, 'GET', '/l/open'), 400, 'invalid_input');
    } finally {
      await api.close();
    }
  });
});

// ---- item 11 ------------------------------------------------------------------------------------

describe('token scopes and rate limits (item 11)', () => {
  const tokens = [
    'ingest:ingest-token-0123456789',
    'sales:sales-token-01234567890',
    'read:read-token-012345678901',
    'admin:admin-token-0123456789',
    'bare-admin-token-0123456789',
  ];
  const bearer = (t: string) => t.slice(t.indexOf(':') + 1);

  it('lets each scope call its routes only, and names the scope needed', async () => {
    const st = { leadId: 'x', stage: 'sql' };
    const { service } = stubService({
      upsertLead: async () => ({ created: true, leadId: 'x' }),
      sendEvents: async () => ({ accepted: 1 }),
      patchProfile: async () => undefined,
      salesOutcome: async () => st,
      getState: async () => st,
      search: async () => ({ leads: [] }),
      funnel: async () => ({}),
      timeline: async () => ({ entries: [] }),
    });
    const api = app({ service, tokens });
    const routes: [string, string, unknown, string][] = [
      ['POST', '/v1/leads', lead('x'), 'ingest'],
      ['POST', '/v1/events', { leadId: 'x', eventId: 'e', type: 'email_open' }, 'ingest'],
      ['PATCH', '/v1/leads/x', { jobTitle: 'CTO' }, 'ingest'],
      ['POST', '/v1/leads/x/sales-outcome', { outcome: 'accepted' }, 'sales'],
      ['GET', '/v1/leads/x', undefined, 'read'],
      ['GET', '/v1/leads', undefined, 'read'],
      ['GET', '/v1/funnel', undefined, 'read'],
      ['GET', '/v1/leads/x/timeline', undefined, 'read'],
    ];
    try {
      for (const token of tokens) {
        const scope = token.startsWith('bare') ? 'admin' : token.split(':')[0]!;
        for (const [method, url, body, need] of routes) {
          const r = await inject(api, method, url, { token: bearer(token), body });
          if (scope === 'admin' || scope === need)
            assert.ok(r.status < 300, `${scope} ${method} ${url}: ${r.status} ${r.body}`);
          else {
            assertError(r, 403, 'insufficient_scope');
            assert.match(r.json.error.message, new RegExp(`needs a token with scope ${need}`));
            assert.match(String(r.headers['www-authenticate']), new RegExp(`insufficient_scope", scope="${need}"`));
          }
        }
      }
      // The entry as a whole ("read:...") is not a token; only its secret part is.
      assertError(await inject(api, 'GET', '/v1/leads', { token: tokens[2] }), 401);
    } finally {
      await api.close();
    }
    assert.throws(() => app({ service, tokens: ['reader:abcdefabcdefabcdef'] }), /unknown scope "reader"/);
  });

  it('limits requests per token (429 with Retry-After) without touching other tokens', async () => {
    const { service } = stubService({ search: async () => ({ leads: [] }) });
    const api = app({
      service,
      tokens: [TOKEN, 'read:other-token-0123456789'],
      rateLimit: { max: 3, windowMs: 60_000 },
    });
    try {
      for (let i = 0; i < 3; i++) assert.equal((await inject(api, 'GET', '/v1/leads')).status, 200);
      const r = await inject(api, 'GET', '/v1/leads');
      assertError(r, 429, 'rate_limited');
      assert.match(String(r.headers['retry-after']), /^\d+$/);
      assert.equal(
        (await inject(api, 'GET', '/v1/leads', { token: 'other-token-0123456789' })).status,
        200,
        'another token has its own budget',
      );
    } finally {
      await api.close();
    }
  });

  it("counts every item of a batch against the token's lead-and-event budget; a refused batch sends nothing", async () => {
    const sent: number[] = [];
    const { service } = stubService({
      sendEvents: async (raw: unknown[]) => {
        sent.push(raw.length);
        return { accepted: raw.length };
      },
      upsertLead: async () => ({ created: true, leadId: 'x' }),
    });
    const api = app({ service, writeRateLimit: { max: 600, windowMs: 60_000 } });
    const batch = (n: number) =>
      Array.from({ length: n }, (_, i) => ({
        leadId: `b${i}`,
        eventId: `e${i}`,
        type: 'email_open',
        email: `b${i}@example.com`,
      }));
    try {
      assert.equal((await inject(api, 'POST', '/v1/events', { body: batch(500) })).status, 202);
      const r = await inject(api, 'POST', '/v1/events', { body: batch(500) });
      assertError(r, 429, 'rate_limited');
      assert.match(r.json.error.message, /a batch counts each item; this one has 500/);
      assert.match(String(r.headers['retry-after']), /^\d+$/);
      assert.equal((await inject(api, 'POST', '/v1/events', { body: batch(99) })).status, 202);
      assert.equal((await inject(api, 'POST', '/v1/leads', { body: lead('one') })).status, 201, 'the 600th item');
      assertError(await inject(api, 'POST', '/v1/leads', { body: lead('two') }), 429, 'rate_limited');
      assert.deepEqual(sent, [500, 99]);
    } finally {
      await api.close();
    }
  });
});

// ---- item 12 (HTTP) -----------------------------------------------------------------------------

describe('HTTP hygiene (item 12)', () => {
  it('never writes a link token in full to the access log', async () => {
    const lines: string[] = [];
    const { service } = stubService({ sendEvents: async () => ({ accepted: 1 }) });
    const api = app({ service, logger: { stream: { write: (l: string) => void lines.push(l) } } });
    try {
      const url = s.links.url('open', 'logged-lead', Date.now(), { m: 'welcome:0' }).slice(LINK_BASE.length);
      const token = new URL(url, LINK_BASE).searchParams.get('t')!;
      assert.equal((await api.inject({ method: 'GET', url })).statusCode, 200);
      const log = lines.join('');
      assert.match(log, /\/l\/open\?t=/, 'the request is logged');
      assert.ok(!log.includes(token), 'but not its token');
      assert.ok(!log.includes(token.split('.')[1]!), 'nor its signature');
    } finally {
      await api.close();
    }
  });

  it('sends CSP without inline script, no framing, no referrer and nosniff on the link pages', async () => {
    const url = s.links.url('unsubscribe', 'hdr-lead', Date.now()).slice(LINK_BASE.length);
    const r = await s.app.inject({ method: 'GET', url });
    assert.equal(r.statusCode, 200);
    const csp = String(r.headers['content-security-policy']);
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.ok(!/script-src|unsafe-inline/.test(csp), csp);
    assert.match(csp, /style-src 'sha256-/);
    assert.equal(r.headers['x-frame-options'], 'DENY');
    assert.equal(r.headers['referrer-policy'], 'no-referrer');
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
    // The page's one stylesheet matches the hash the CSP allows.
    const style = /<style>([\s\S]*?)<\/style>/.exec(r.body)![1]!;
    const { createHash } = await import('node:crypto');
    assert.ok(csp.includes(`'sha256-${createHash('sha256').update(style).digest('base64')}'`));
    // The click redirect leaks no token through Referer; the pixel may be loaded from mail clients.
    const click = await s.app.inject({
      method: 'GET',
      url: s.links.url('click', 'hdr-lead', Date.now(), { u: 'https://acme.example/' }).slice(LINK_BASE.length),
    });
    assert.equal(click.statusCode, 302);
    assert.equal(click.headers['referrer-policy'], 'no-referrer');
    const pixel = await s.app.inject({
      method: 'GET',
      url: s.links.url('open', 'hdr-lead', Date.now()).slice(LINK_BASE.length),
    });
    assert.equal(pixel.headers['cross-origin-resource-policy'], 'cross-origin');
  });

  it('times out a slow request body and a silent keep-alive connection', async () => {
    const { service } = stubService({ sendEvents: async () => ({ accepted: 1 }) });
    const api = app({ service, timeouts: { requestMs: 1000, headersMs: 1000, keepAliveMs: 500 } });
    await api.listen({ port: 0, host: '127.0.0.1' });
    const port = (api.server.address() as { port: number }).port;
    /** Opens a socket, writes `data`, and resolves with what came back and how long until the server closed it. */
    const talk = (data: string) =>
      new Promise<{ text: string; ms: number }>((resolve, reject) => {
        const t0 = Date.now();
        let text = '';
        const sock = connect(port, '127.0.0.1', () => sock.write(data));
        sock.on('data', (d) => (text += d));
        sock.on('close', () => resolve({ text, ms: Date.now() - t0 }));
        sock.on('error', reject);
        setTimeout(() => {
          sock.destroy();
          reject(new Error(`still open after 8 s: ${text}`));
        }, 8000).unref();
      });
    try {
      // Headers promise 100 bytes, 10 arrive, then nothing: a slowloris body.
      const slow = await talk(
        `POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"leadId":`,
      );
      assert.match(slow.text, /^HTTP\/1\.1 408/);
      assert.deepEqual(JSON.parse(slow.text.slice(slow.text.indexOf('\r\n\r\n') + 4)).error.code, 'request_timeout');
      assert.ok(slow.ms < 4000, `closed after ${slow.ms} ms`);
      // Headers that never end.
      const headers = await talk('GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n');
      assert.ok(headers.ms < 4000, `closed after ${headers.ms} ms`);
      // Not HTTP at all: a 400 in the error shape.
      const junk = await talk('HELLO\r\n\r\n');
      assert.match(junk.text, /^HTTP\/1\.1 400/);
      assert.equal(JSON.parse(junk.text.slice(junk.text.indexOf('\r\n\r\n') + 4)).error.code, 'bad_request');
      // A finished request on a keep-alive connection: the idle connection is closed soon after.
      const idle = await talk('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
      assert.match(idle.text, /^HTTP\/1\.1 200/);
      assert.ok(idle.ms < 4000, `closed after ${idle.ms} ms`);
    } finally {
      await api.close();
    }
  });
});
