/**
 * End to end through the HTTP API on a listening port, as marketing automation and sales drive it:
 * the dev server, the worker, the SMTP capture. Four leads: one from first touch to customer, one
 * recycled by sales, one disqualified, one unsubscribed.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LeadState } from '../../src/domain/lead.js';
import { testConfig } from '../helpers/temporal.js';
import { useStack } from '../helpers/stack.js';
import { eventually, header, mailLinks, mailsFor, TOKEN, uid } from './fixture.js';

const GUIDE_AFTER_MS = 4000;
/** The test config with a second welcome step a few seconds after the first, so "no more nurture mail" is observable. */
const config = testConfig({
  nurture: {
    tracks: [
      {
        id: 'welcome',
        for: ['lead'],
        steps: [
          { after: '0s', template: 'welcome' },
          { after: `${GUIDE_AFTER_MS}ms`, template: 'guide' },
        ],
      },
      { id: 'mql', for: ['mql'], steps: [{ after: '1d', template: 'webinar-invite' }] },
      { id: 'recycle', for: ['recycled'], steps: [{ after: '7d', template: 'come-back' }] },
    ],
  },
});

let base: string;
const s = useStack({ worker: { loaded: config }, api: true }, async ({ app }) => {
  await app.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
});

async function api(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const r = await fetch(`${base}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${TOKEN}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await r.text();
  return { status: r.status, json: text ? JSON.parse(text) : undefined };
}

async function event(leadId: string, type: string, extra: Record<string, unknown> = {}) {
  const r = await api('POST', '/v1/events', { leadId, eventId: uid(type), type, ...extra });
  assert.equal(r.status, 202, JSON.stringify(r.json));
}

/** Polls GET /v1/leads/:leadId until `pred` holds. */
async function until(leadId: string, pred: (st: LeadState) => boolean, what: string): Promise<LeadState> {
  let last: LeadState | undefined;
  return eventually(`${leadId}: ${what}`, async () => {
    const r = await api('GET', `/v1/leads/${leadId}`);
    if (r.status !== 200) return undefined;
    last = r.json;
    return pred(r.json) ? (r.json as LeadState) : undefined;
  }).catch((err) => {
    throw new Error(
      `${(err as Error).message}; last: ${JSON.stringify(last && { stage: last.stage, score: last.score, consent: last.consent, owner: last.owner })}`,
    );
  });
}

const stages = (st: LeadState) => st.transitions.map((t) => t.to);
const handoffs = (leadId: string) => mailsFor(s.smtp, leadId).filter((m) => header(m, 'x-lead-handoff') === '1');
const nurtureMails = (leadId: string) => mailsFor(s.smtp, leadId).filter((m) => header(m, 'x-nurture-track'));

describe('lead journeys through the API', () => {
  it('takes a lead from first touch to customer, with the handoff mail at the routed owner', async () => {
    const leadId = uid('journey-won');
    const created = await api('POST', '/v1/leads', {
      leadId,
      email: 'grace@bigco.example',
      firstName: 'Grace',
      lastName: 'Hopper',
      company: 'BigCo',
      jobTitle: 'VP Engineering',
      seniority: 'vp',
      companySize: 1200,
      country: 'US',
      campaign: 'spring-webinar',
      channel: 'webinar',
    });
    assert.equal(created.status, 201);
    const welcome = await eventually('welcome mail', async () =>
      nurtureMails(leadId).find((m) => header(m, 'x-nurture-step') === '1'),
    );
    assert.deepEqual(welcome.to, ['grace@bigco.example']);
    assert.equal(header(welcome, 'x-nurture-track'), 'welcome');

    // Engagement: 10 + 15 = 25, fit 35: score 60 >= 40 -> mql.
    await event(leadId, 'content_download', { asset: 'state-of-revops.pdf' });
    await event(leadId, 'webinar_attended', { campaign: 'spring-webinar' });
    const mql = await until(leadId, (st) => st.stage === 'mql', 'mql');
    assert.equal(mql.score.total, 60);
    assert.ok(mql.becameMqlAt);

    // A demo request is a hand-raiser: straight to sql, an owner from the US rule, the handoff mail.
    await event(leadId, 'demo_request');
    const sql = await until(leadId, (st) => st.stage === 'sql' && st.owner !== undefined, 'sql with an owner');
    assert.ok(['ana@sales.example', 'ben@sales.example'].includes(sql.owner!), sql.owner);
    assert.ok(sql.slaDeadline);
    const [handoff] = await eventually('handoff mail', async () =>
      handoffs(leadId).length ? handoffs(leadId) : undefined,
    );
    assert.deepEqual(handoff!.to, [sql.owner]);
    assert.match(handoff!.subject, /Grace Hopper/);
    assert.ok(mailLinks(handoff!).accept, 'accept link in the handoff');

    const accepted = await api('POST', `/v1/leads/${leadId}/sales-outcome`, { outcome: 'accepted', rep: sql.owner });
    assert.equal(accepted.status, 200);
    assert.equal(accepted.json.stage, 'opportunity');
    const won = await api('POST', `/v1/leads/${leadId}/sales-outcome`, { outcome: 'won', note: 'annual plan' });
    assert.equal(won.status, 200);
    assert.equal(won.json.stage, 'customer');

    const st = await until(leadId, (x) => x.stage === 'customer', 'customer');
    assert.deepEqual(stages(st), ['mql', 'sql', 'opportunity', 'customer']);
    // Search (from the ledger) shows it with its stage, and the funnel counts it in its campaign's cohort.
    await eventually('customer listed', async () => {
      const r = await api('GET', `/v1/leads?stage=customer&campaign=spring-webinar`);
      return r.json.leads.some((l: { leadId: string; stage: string }) => l.leadId === leadId && l.stage === 'customer');
    });
    const funnel = await eventually('funnel', async () => {
      const r = await api('GET', '/v1/funnel?by=campaign');
      const group = r.json.groups.find((g: { key: string }) => g.key === 'spring-webinar');
      return group?.sqls >= 1 && group?.customers >= 1 ? r.json : undefined;
    });
    assert.ok(funnel.stages.customer >= 1);

    // A customer who clicks a mail stays a customer (a new run carries on from the last).
    await event(leadId, 'email_open');
    const again = await until(leadId, (x) => x.eventsProcessed === st.eventsProcessed + 1, 'open counted');
    assert.equal(again.stage, 'customer');
    assert.equal(handoffs(leadId).length, 1, 'one handoff mail');
  });

  it('recycles a lead that sales rejects as not ready', async () => {
    const leadId = uid('journey-recycled');
    assert.equal(
      (
        await api('POST', '/v1/leads', {
          leadId,
          email: 'tom@midco.example',
          firstName: 'Tom',
          company: 'MidCo',
          seniority: 'director',
          companySize: 300,
          country: 'GB',
        })
      ).status,
      201,
    );
    await event(leadId, 'demo_request');
    const sql = await until(leadId, (st) => st.stage === 'sql' && st.owner !== undefined, 'sql');
    assert.equal(sql.owner, 'team@sales.example', 'GB falls to the catch-all rule');
    await eventually('handoff mail', async () => handoffs(leadId).find((m) => m.to.includes('team@sales.example')));

    const wrongStage = await api('POST', `/v1/leads/${leadId}/sales-outcome`, { outcome: 'won' });
    assert.equal(wrongStage.status, 409);
    const r = await api('POST', `/v1/leads/${leadId}/sales-outcome`, {
      outcome: 'rejected',
      reason: 'not_ready',
      note: 'budget next year',
    });
    assert.equal(r.status, 200);
    assert.equal(r.json.stage, 'recycled');
    const st = await until(leadId, (x) => x.stage === 'recycled', 'recycled');
    assert.equal(st.recycleCount, 1);
    assert.match(st.transitions.at(-1)!.reason, /sales rejected \(not_ready\).*budget next year/);
    assert.equal(st.nurture.track, 'recycle');
    assert.equal(st.owner, undefined, 'a recycled lead has no owner');
  });

  it('disqualifies a lead from outside the allowed countries, and keeps it so when it engages', async () => {
    const leadId = uid('journey-dq');
    assert.equal(
      (
        await api('POST', '/v1/leads', {
          leadId,
          email: 'ana@far.example',
          seniority: 'c_level',
          companySize: 5000,
          country: 'BR',
        })
      ).status,
      201,
    );
    const st = await until(leadId, (x) => x.stage === 'disqualified', 'disqualified');
    assert.match(st.transitions.at(-1)!.reason, /disqualify rule/);
    await event(leadId, 'demo_request');
    const after = await until(leadId, (x) => x.eventsProcessed === st.eventsProcessed + 1, 'demo request counted');
    assert.equal(after.stage, 'disqualified', 'a hand-raiser does not qualify a disqualified lead');
    await sleep(500);
    assert.equal(handoffs(leadId).length, 0, 'no handoff');
    assert.equal(nurtureMails(leadId).length, 0, 'no nurture mail');
  });

  it('sends no nurture mail after a one-click unsubscribe', async () => {
    const [unsub, control] = [uid('journey-unsub'), uid('journey-control')];
    for (const leadId of [unsub, control]) {
      assert.equal(
        (
          await api('POST', '/v1/leads', {
            leadId,
            email: `${leadId.replace(/[^a-z0-9]/gi, '')}@example.com`,
            country: 'US',
          })
        ).status,
        201,
      );
    }
    const welcome = await eventually('welcome mail', async () =>
      nurtureMails(unsub).find((m) => header(m, 'x-nurture-step') === '1'),
    );
    const { listUnsubscribe } = mailLinks(welcome);
    assert.ok(listUnsubscribe);
    // What a mail client does for RFC 8058: POST the header's URL with the one-click body.
    const r = await fetch(`${base}${listUnsubscribe}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'List-Unsubscribe=One-Click',
    });
    assert.equal(r.status, 200);
    await until(unsub, (x) => x.consent === 'unsubscribed', 'unsubscribed');

    // The control lead gets its second mail; the unsubscribed one does not.
    await eventually(
      "the control lead's second mail",
      async () => nurtureMails(control).find((m) => header(m, 'x-nurture-step') === '2'),
      GUIDE_AFTER_MS + 15_000,
    );
    await sleep(1000);
    assert.deepEqual(
      nurtureMails(unsub).map((m) => header(m, 'x-nurture-step')),
      ['1'],
    );
    // Scoring goes on: an event still counts, and consent stays.
    await event(unsub, 'content_download');
    const st = await until(unsub, (x) => x.score.engagement === 10, 'scored');
    assert.equal(st.consent, 'unsubscribed');
    assert.equal(st.stage, 'lead');
  });
});
