/**
 * examples/crm-receiver.ts (docs/crm.md) against a fake HubSpot: a real node:http server on
 * loopback that records every request (no call ever leaves the machine). First the receiver alone,
 * fed requests signed with the standardwebhooks library: the mapping, an upsert by email with the
 * token, a repeated webhook-id not upserted twice, a bad signature 401 with no upsert, a HubSpot
 * failure answered 5xx (and upserted on the retry). Then end to end: the engine on a real Temporal
 * dev server delivers a lead's changes to the receiver, which upserts the contact stage by stage.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Webhook } from 'standardwebhooks';
import {
  type CrmReceiver,
  hubspotContact,
  type LeadWebhook,
  SeenStore,
  startCrmReceiver,
} from '../../examples/crm-receiver.js';
import { WebhookLog } from '../../src/ledger/webhooks.js';
import { address, eventually, mailableLead, uid, waitState } from '../api/fixture.js';
import { useStack } from '../helpers/stack.js';
import { testConfig } from '../helpers/temporal.js';
import { testSecret, testEndpoint } from '../helpers/webhook-receiver.js';

const SECRET = testSecret('crm-example');
const TOKEN = 'pat-na1-test-token';
const scratch = mkdtempSync(join(tmpdir(), 'crm-receiver-test-'));

interface HubSpotRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  json: any;
  status: number;
}
interface FakeHubSpot {
  url: string;
  requests: HubSpotRequest[];
  /** The contacts as HubSpot holds them, by email. */
  contacts: Map<string, Record<string, string>>;
  /** Upsert inputs HubSpot accepted. */
  upserts(): { idProperty: string; id: string; properties: Record<string, string> }[];
  /** The status of each upsert (default 200), given its request body. */
  answer: (json: any) => number;
  close(): Promise<void>;
}

const LIFECYCLE_ORDER = [
  'subscriber',
  'lead',
  'marketingqualifiedlead',
  'salesqualifiedlead',
  'opportunity',
  'customer',
  'evangelist',
];

async function startFakeHubSpot(): Promise<FakeHubSpot> {
  const requests: HubSpotRequest[] = [];
  const hs: FakeHubSpot = {
    url: '',
    requests,
    contacts: new Map(),
    upserts: () => requests.filter((r) => r.status === 200).flatMap((r) => r.json.inputs),
    answer: () => 200,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const json = JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null');
      const known = req.method === 'POST' && req.url === '/crm/v3/objects/contacts/batch/upsert';
      const authorized = req.headers.authorization === `Bearer ${TOKEN}`;
      let status = !known ? 404 : !authorized ? 401 : hs.answer(json);
      const inputs = (status === 200 ? json.inputs : []) as { id: string; properties: Record<string, string> }[];
      // As HubSpot's API: a lifecycle stage is not moved back (clear it first); otherwise properties merge.
      const backwards = inputs.some((x) => {
        const now = hs.contacts.get(x.id)?.lifecyclestage;
        const next = x.properties.lifecyclestage;
        return !!now && !!next && LIFECYCLE_ORDER.indexOf(next) < LIFECYCLE_ORDER.indexOf(now);
      });
      if (backwards) status = 400;
      else for (const x of inputs) hs.contacts.set(x.id, { ...hs.contacts.get(x.id), ...x.properties });
      requests.push({ method: req.method!, url: req.url!, headers: req.headers, json, status });
      const body =
        status === 200
          ? {
              status: 'COMPLETE',
              results: (json.inputs as { properties: object }[]).map((x, i) => ({
                id: String(1000 + i),
                properties: x.properties,
              })),
            }
          : status === 400
            ? {
                status: 'error',
                message: 'Property values were not valid: lifecyclestage cannot be set backwards; clear it first',
                category: 'VALIDATION_ERROR',
              }
            : { status: 'error', message: 'internal error', category: 'INTERNAL_ERROR' };
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  hs.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return hs;
}

const body = (over: Partial<LeadWebhook['data']> = {}, type: LeadWebhook['type'] = 'lead.stage_changed') =>
  ({
    type,
    timestamp: '2026-12-02T10:00:00.000Z',
    data: {
      leadId: 'L-1',
      change: { from: 'lead', to: 'mql', reason: 'score 45 >= mql 40', at: '2026-12-02T10:00:00.000Z' },
      stage: 'mql',
      score: { total: 45, fit: 20, engagement: 25 },
      owner: null,
      consent: 'subscribed',
      campaign: 'spring-webinar',
      profile: {
        email: 'Dana@Buyer.example',
        firstName: 'Dana',
        lastName: 'Scully',
        company: 'Acme',
        jobTitle: 'VP Marketing',
        seniority: 'vp',
      },
      ...over,
    },
  }) satisfies LeadWebhook;

let hubspot: FakeHubSpot;
let rx: CrmReceiver;
const logged: string[] = [];
before(async () => {
  hubspot = await startFakeHubSpot();
  rx = await startCrmReceiver({
    secret: SECRET,
    hubspotToken: TOKEN,
    hubspotBaseUrl: hubspot.url,
    storeFile: join(scratch, 'seen.jsonl'),
    log: (l) => logged.push(l),
  });
});
after(async () => {
  await rx?.close();
  await hubspot?.close();
  rmSync(scratch, { recursive: true, force: true });
});

/** POSTs `payload` to the receiver signed as the engine signs it (or with `secret`). */
async function deliver(id: string, payload: object | string, secret = SECRET, at = new Date()) {
  const text = typeof payload === 'string' ? payload : JSON.stringify(payload);
  const res = await fetch(rx.url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'webhook-id': id,
      'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
      'webhook-signature': new Webhook(secret).sign(id, at, text),
    },
    body: text,
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}
const msgId = () => `msg_${randomBytes(19).toString('base64url').slice(0, 26)}`;

describe('the CRM example receiver', () => {
  it('maps a lead to a HubSpot contact: standard properties, lifecycle stage, our state in custom ones', () => {
    assert.deepEqual(hubspotContact(body()), {
      idProperty: 'email',
      id: 'dana@buyer.example',
      properties: {
        email: 'dana@buyer.example',
        firstname: 'Dana',
        lastname: 'Scully',
        company: 'Acme',
        jobtitle: 'VP Marketing',
        lifecyclestage: 'marketingqualifiedlead',
        lead_nurture_id: 'L-1',
        lead_nurture_stage: 'mql',
        lead_nurture_score: '45',
        lead_nurture_consent: 'subscribed',
        lead_nurture_campaign: 'spring-webinar',
      },
    });
    const stages: [string, string | undefined][] = [
      ['lead', 'lead'],
      ['mql', 'marketingqualifiedlead'],
      ['sql', 'salesqualifiedlead'],
      ['opportunity', 'opportunity'],
      ['customer', 'customer'],
      ['recycled', undefined],
      ['disqualified', undefined],
      ['dormant', undefined],
    ];
    for (const [stage, lifecycle] of stages) {
      const c = hubspotContact(body({ stage }))!;
      assert.equal(c.properties.lifecyclestage, lifecycle, stage);
      assert.equal(c.properties.lead_nurture_stage, stage, 'always our own stage');
    }
    const handedOff = hubspotContact(body({ stage: 'sql', owner: 'ben@sales.example' }, 'lead.handed_off'))!;
    assert.equal(handedOff.properties.lead_nurture_owner, 'ben@sales.example');
    const bare = hubspotContact(body({ profile: { email: 'x@y.example', firstName: '  ' }, campaign: null }))!;
    assert.deepEqual(Object.keys(bare.properties).sort(), [
      'email',
      'lead_nurture_consent',
      'lead_nurture_id',
      'lead_nurture_score',
      'lead_nurture_stage',
      'lifecyclestage',
    ]);
    assert.equal(hubspotContact(body({ profile: {} })), undefined, 'no email: nothing to key the contact by');
  });

  it('upserts the contact by email with the token, once per webhook-id', async () => {
    const before = hubspot.requests.length;
    const id = msgId();
    const r = await deliver(id, body());
    assert.deepEqual(r, { status: 200, json: { ok: true } });
    const calls = hubspot.requests.slice(before);
    assert.equal(calls.length, 1);
    assert.equal(calls[0]!.method, 'POST');
    assert.equal(calls[0]!.url, '/crm/v3/objects/contacts/batch/upsert');
    assert.equal(calls[0]!.headers.authorization, `Bearer ${TOKEN}`);
    assert.deepEqual(calls[0]!.json, { inputs: [hubspotContact(body())] });

    // A retry of the same change (the engine's answer was lost): 200, HubSpot not called again.
    assert.deepEqual(await deliver(id, body()), { status: 200, json: { ok: true, duplicate: true } });
    assert.equal(hubspot.requests.length, before + 1);
    // Two deliveries of one id at once (an attempt timed out and its retry): one upsert.
    const twin = msgId();
    const both = await Promise.all([deliver(twin, body()), deliver(twin, body())]);
    assert.deepEqual(
      both.map((x) => x.status),
      [200, 200],
    );
    assert.equal(hubspot.requests.length, before + 2);
    // The seen ids are in the file, so a restarted receiver still knows them.
    const file = new SeenStore(join(scratch, 'seen.jsonl'));
    assert.ok(file.has(id) && file.has(twin));
    assert.equal(readFileSync(join(scratch, 'seen.jsonl'), 'utf8').split('\n').filter(Boolean).length >= 2, true);
  });

  it('refuses a bad signature, a stale timestamp and a missing header with 401, and upserts nothing', async () => {
    const before = hubspot.requests.length;
    const other = testSecret('someone-else');
    assert.equal((await deliver(msgId(), body(), other)).status, 401, 'signed with another secret');
    const id = msgId();
    const text = JSON.stringify(body());
    const at = new Date();
    const sig = new Webhook(SECRET).sign(id, at, text);
    const tampered = await fetch(rx.url, {
      method: 'POST',
      headers: {
        'webhook-id': id,
        'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
        'webhook-signature': sig,
      },
      body: text.replace('Dana', 'Eve'),
    });
    assert.equal(tampered.status, 401, 'body changed after signing');
    assert.equal((await deliver(msgId(), body(), SECRET, new Date(Date.now() - 3_600_000))).status, 401, 'an hour old');
    const unsigned = await fetch(rx.url, { method: 'POST', body: text, headers: { 'webhook-id': msgId() } });
    assert.equal(unsigned.status, 401);
    assert.equal(hubspot.requests.length, before, 'HubSpot never called');
    // The refused id was not remembered: the genuine delivery of it still goes through.
    assert.equal((await deliver(id, body())).status, 200);
    assert.equal(hubspot.requests.length, before + 1);
    assert.ok(logged.some((l) => l.startsWith('401 ')));
  });

  it('answers 5xx while HubSpot fails, so the engine retries; the retry upserts', async () => {
    const id = msgId();
    hubspot.answer = () => 500;
    try {
      const r = await deliver(id, body({ stage: 'sql' }));
      assert.ok(r.status >= 500 && r.status < 600, `status ${r.status}`);
      assert.match(String(r.json.error), /HubSpot 500/);
      hubspot.answer = () => 429;
      assert.equal((await deliver(id, body({ stage: 'sql' }))).status, 502, 'rate limited: retried too');
    } finally {
      hubspot.answer = () => 200;
    }
    const before = hubspot.upserts().length;
    assert.equal((await deliver(id, body({ stage: 'sql' }))).status, 200);
    assert.equal(hubspot.upserts().length, before + 1);
    assert.equal(hubspot.upserts().at(-1)!.properties.lifecyclestage, 'salesqualifiedlead');

    // HubSpot not there at all.
    const gone = await startCrmReceiver({
      secret: SECRET,
      hubspotToken: TOKEN,
      hubspotBaseUrl: 'http://127.0.0.1:9',
      storeFile: join(scratch, 'gone.jsonl'),
      log: () => undefined,
    });
    try {
      const text = JSON.stringify(body());
      const nid = msgId();
      const at = new Date();
      const r = await fetch(gone.url, {
        method: 'POST',
        headers: {
          'webhook-id': nid,
          'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
          'webhook-signature': new Webhook(SECRET).sign(nid, at, text),
        },
        body: text,
      });
      assert.equal(r.status, 502);
      assert.match(((await r.json()) as { error: string }).error, /HubSpot unreachable/);
    } finally {
      await gone.close();
    }
  });

  it('moves a recycled lead that re-qualifies back to MQL by clearing the lifecycle stage first', async () => {
    const email = 'recycled@buyer.example';
    const at = (stage: string) => body({ leadId: 'L-2', stage, profile: { email } });
    for (const stage of ['mql', 'sql']) assert.equal((await deliver(msgId(), at(stage))).status, 200);
    assert.equal(hubspot.contacts.get(email)?.lifecyclestage, 'salesqualifiedlead');
    // Rejected (not_ready): recycled keeps HubSpot's stage; it re-qualifies as an MQL later.
    assert.equal((await deliver(msgId(), at('recycled'))).status, 200);
    assert.deepEqual(
      [hubspot.contacts.get(email)?.lifecyclestage, hubspot.contacts.get(email)?.lead_nurture_stage],
      ['salesqualifiedlead', 'recycled'],
    );
    const before = hubspot.requests.length;
    assert.equal((await deliver(msgId(), at('mql'))).status, 200);
    assert.deepEqual(
      hubspot.requests.slice(before).map((r) => [r.status, r.json.inputs[0].properties.lifecyclestage]),
      [
        [400, 'marketingqualifiedlead'],
        [200, ''],
        [200, 'marketingqualifiedlead'],
      ],
    );
    assert.deepEqual(
      [hubspot.contacts.get(email)?.lifecyclestage, hubspot.contacts.get(email)?.lead_nurture_stage],
      ['marketingqualifiedlead', 'mql'],
    );
  });

  it('takes a lead without an email (200, logged) and answers 404 elsewhere', async () => {
    const before = hubspot.requests.length;
    const r = await deliver(msgId(), body({ profile: { firstName: 'Nomail' } }));
    assert.deepEqual(r, { status: 200, json: { ok: true, skipped: 'no email' } });
    assert.equal(hubspot.requests.length, before);
    assert.equal((await fetch(rx.url.replace('/hooks', '/other'), { method: 'POST' })).status, 404);
    assert.equal((await fetch(rx.url)).status, 405);
  });
});

describe('the CRM example receiver behind the engine', () => {
  const s = useStack({
    api: true,
    worker: {
      // Read when the stack starts its worker, once the receiver listens.
      get loaded() {
        return testConfig({
          webhooks: [testEndpoint('hubspot', rx.url, SECRET)],
        });
      },
    },
  });

  it("keeps the lead's HubSpot contact current through its stages, each change upserted once, retried while HubSpot fails", async () => {
    const leadId = uid('crm');
    const email = address('crm');
    const mine = () => hubspot.upserts().filter((u) => u.properties.lead_nurture_id === leadId);
    // HubSpot fails the lead's first two upserts: the first change is retried until it goes.
    let refusals = 0;
    hubspot.answer = (json) =>
      json?.inputs?.[0]?.properties?.lead_nurture_id === leadId && refusals++ < 2 ? 503 : 200;
    try {
      const r = await s.call('POST', '/v1/leads', {
        body: {
          ...mailableLead(leadId, email),
          firstName: 'Dana',
          lastName: 'Scully',
          company: 'Acme',
          seniority: 'vp',
          companySize: 800,
          jobTitle: 'VP Marketing',
        },
      });
      assert.equal(r.status, 201, r.body);
      await s.service.sendEvents({ leadId, eventId: uid('e'), type: 'demo_request' });
      const sql = await waitState(s, leadId, (st) => st.stage === 'sql' && st.owner !== undefined, 'handed off');
      const upserts = await eventually(
        'mql, sql and the handoff upserted',
        async () => (mine().length >= 3 ? mine() : undefined),
        30_000,
      );
      // Each body carries the state at its write: the demo request scores the lead through mql to sql.
      for (const u of upserts) {
        assert.ok(['mql', 'sql'].includes(u.properties.lead_nurture_stage!), JSON.stringify(u));
        assert.equal(
          u.properties.lifecyclestage,
          u.properties.lead_nurture_stage === 'mql' ? 'marketingqualifiedlead' : 'salesqualifiedlead',
        );
      }
      assert.equal(upserts.at(-1)!.properties.lifecyclestage, 'salesqualifiedlead');
      for (const u of upserts) {
        assert.equal(u.idProperty, 'email');
        assert.equal(u.id, email);
        assert.deepEqual(
          [u.properties.firstname, u.properties.lastname, u.properties.company, u.properties.jobtitle],
          ['Dana', 'Scully', 'Acme', 'VP Marketing'],
        );
      }
      assert.equal(upserts.at(-1)!.properties.lead_nurture_owner, sql.owner);
      const refused = hubspot.requests.filter(
        (x) => x.status === 503 && x.json.inputs[0].properties.lead_nurture_id === leadId,
      );
      assert.equal(refused.length, 2, 'HubSpot refused two attempts');

      const log = await eventually('all delivered', async () => {
        const x = await new WebhookLog(s.ledger.pool).list({ leadId, endpointId: 'hubspot' });
        return x.length === 3 && x.every((d) => d.status === 'delivered') ? x : undefined;
      });
      const first = log.at(-1)!;
      assert.equal(first.attempts, 3, `retried: ${JSON.stringify(first.attemptLog)}`);
      assert.ok(
        first.attemptLog.slice(0, -1).every((a) => a.statusCode === 502),
        'the receiver answered 502 while HubSpot failed',
      );
      assert.equal(first.attemptLog.at(-1)!.statusCode, 200);
      assert.equal(mine().length, 3, 'one upsert per change: the refused attempts upserted nothing');

      // An outcome: the contact becomes an opportunity.
      const o = await s.call('POST', `/v1/leads/${leadId}/sales-outcome`, {
        body: { outcome: 'accepted', rep: sql.owner },
      });
      assert.equal(o.status, 200, o.body);
      const last = await eventually('opportunity upserted', async () =>
        mine().find((u) => u.properties.lifecyclestage === 'opportunity'),
      );
      assert.equal(last.properties.lead_nurture_stage, 'opportunity');
    } finally {
      hubspot.answer = () => 200;
    }
  });
});
