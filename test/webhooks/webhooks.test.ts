/**
 * Outgoing webhooks (issue 13 part 2) on a real Temporal dev server, a real worker and real HTTP
 * receivers on loopback that verify every delivery with the Standard Webhooks library: each change
 * type with its documented body, a receiver that answers 500 for a while gets every change
 * afterwards in order with the same webhook-id on every retry, and the delivery log in the ledger.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WebhookLog } from '../../src/ledger/webhooks.js';
import { eventually, mailableLead, uid, waitState, address } from '../api/fixture.js';
import { useStack } from '../helpers/stack.js';
import { testConfig } from '../helpers/temporal.js';
import { startWebhookReceiver, testSecret, type WebhookReceiver, testEndpoint } from '../helpers/webhook-receiver.js';

const SECRET = testSecret('crm');
const FLAKY_SECRET = testSecret('flaky');
let crm: WebhookReceiver;
let flaky: WebhookReceiver;
before(async () => {
  crm = await startWebhookReceiver(SECRET);
  flaky = await startWebhookReceiver(FLAKY_SECRET);
});

const s = useStack({
  api: true,
  worker: {
    // Read when the stack starts its worker, once the receivers listen.
    get loaded() {
      return testConfig({
        webhooks: [
          testEndpoint('crm', crm.url, SECRET),
          testEndpoint('flaky', flaky.url, FLAKY_SECRET, ['lead.stage_changed', 'lead.outcome_recorded']),
        ],
      });
    },
  },
});

// After the stack's own teardown (hooks run in the order they were registered): no delivery in flight.
after(async () => {
  await crm?.close();
  await flaky?.close();
});

const forLead = (rx: WebhookReceiver, leadId: string) => rx.accepted().filter((r) => r.json?.data?.leadId === leadId);

async function hotLead(leadId: string) {
  const r = await s.call('POST', '/v1/leads', {
    body: { ...mailableLead(leadId, address('wh')), seniority: 'vp', companySize: 800, jobTitle: 'VP Marketing' },
  });
  assert.equal(r.status, 201, r.body);
}

describe('webhooks out', () => {
  it('sends each change type, signed per Standard Webhooks, with the documented body', async () => {
    const leadId = uid('wh');
    await hotLead(leadId);
    await s.service.sendEvents({ leadId, eventId: uid('e'), type: 'demo_request' });
    const sql = await waitState(s, leadId, (st) => st.stage === 'sql' && st.owner !== undefined, 'handed off');
    const r = await s.call('POST', `/v1/leads/${leadId}/sales-outcome`, {
      body: { outcome: 'accepted', rep: sql.owner },
    });
    assert.equal(r.status, 200, r.body);
    await s.service.sendEvents({ leadId, eventId: uid('e'), type: 'unsubscribe' });
    await waitState(s, leadId, (st) => st.consent === 'unsubscribed', 'unsubscribed');

    const got = await eventually(
      'every change delivered',
      async () => {
        const x = forLead(crm, leadId);
        return x.some((d) => d.json.type === 'lead.consent_changed') ? x : undefined;
      },
      30_000,
    );
    for (const d of crm.received) assert.ok(d.verified, `verified: ${d.verifyError}`);
    assert.match(got[0]!.signature, /^v1,[A-Za-z0-9+/]+=*$/);
    assert.match(got[0]!.id, /^msg_[A-Za-z0-9_-]{26}$/);
    assert.ok(Math.abs(Number(got[0]!.timestamp) - Date.now() / 1000) < 60, 'webhook-timestamp is the send time');
    const types = got.map((d) => `${d.json.type}${d.json.data.change.to ? ` ${d.json.data.change.to}` : ''}`);
    assert.deepEqual(types, [
      'lead.stage_changed mql',
      'lead.stage_changed sql',
      'lead.handed_off',
      'lead.outcome_recorded',
      'lead.stage_changed opportunity',
      'lead.consent_changed unsubscribed',
    ]);
    assert.equal(new Set(got.map((d) => d.id)).size, got.length, 'one id per change');
    const [mql, , handoff, outcome, , consent] = got.map((d) => d.json);
    assert.deepEqual(Object.keys(mql.data).sort(), [
      'campaign',
      'change',
      'consent',
      'leadId',
      'owner',
      'profile',
      'score',
      'stage',
    ]);
    assert.equal(mql.data.change.from, 'lead');
    assert.equal(typeof mql.data.change.reason, 'string');
    assert.equal(typeof mql.data.score.total, 'number');
    assert.ok(mql.data.score.factors.length > 0, 'score with factors');
    assert.equal(mql.data.profile.seniority, 'vp');
    assert.equal(handoff.data.change.owner, sql.owner);
    assert.equal(handoff.data.owner, sql.owner);
    assert.equal(handoff.data.stage, 'sql');
    assert.equal(outcome.data.change.outcome, 'accepted');
    assert.equal(outcome.data.change.rep, sql.owner);
    assert.deepEqual(consent.data.change, { from: 'subscribed', to: 'unsubscribed' });
    assert.equal(consent.data.consent, 'unsubscribed');
    // The flaky endpoint subscribed to two types only.
    const other = await eventually('flaky endpoint got its share', async () => {
      const x = forLead(flaky, leadId);
      return x.length === 4 ? x : undefined;
    });
    assert.deepEqual(
      other.map((d) => d.json.type),
      ['lead.stage_changed', 'lead.stage_changed', 'lead.outcome_recorded', 'lead.stage_changed'],
    );
    assert.deepEqual(
      other.map((d) => d.id),
      got.filter((d) => d.json.type !== 'lead.handed_off' && d.json.type !== 'lead.consent_changed').map((d) => d.id),
      'the same change has the same id at every endpoint',
    );
    // The delivery log.
    const log = await new WebhookLog(s.ledger.pool).list({ leadId, endpointId: 'crm' });
    assert.equal(log.length, 6);
    for (const d of log) {
      assert.equal(d.status, 'delivered');
      assert.equal(d.attempts, 1);
      assert.equal(d.attemptLog[0]!.statusCode, 200);
    }
  });

  it('a receiver answering 500 for a while gets every change afterwards, in order, each under one id', async () => {
    const down = Date.now() + 3000;
    flaky.answer = () => (Date.now() < down ? 500 : 200);
    const leads = [uid('down'), uid('down')];
    for (const leadId of leads) await hotLead(leadId);
    for (const leadId of leads) await s.service.sendEvents({ leadId, eventId: uid('e'), type: 'demo_request' });
    for (const leadId of leads) {
      const sql = await waitState(s, leadId, (st) => st.stage === 'sql' && st.owner !== undefined, 'handed off');
      for (const outcome of ['accepted', 'won']) {
        const r = await s.call('POST', `/v1/leads/${leadId}/sales-outcome`, { body: { outcome, rep: sql.owner } });
        assert.equal(r.status, 200, r.body);
      }
    }
    for (const leadId of leads) {
      const got = await eventually(
        `${leadId}: delivered once the receiver is back`,
        async () => {
          const x = forLead(flaky, leadId);
          return x.length === 6 ? x : undefined;
        },
        30_000,
      );
      assert.deepEqual(
        got.map((d) => `${d.json.type} ${d.json.data.change.to ?? d.json.data.change.outcome}`),
        [
          'lead.stage_changed mql',
          'lead.stage_changed sql',
          'lead.outcome_recorded accepted',
          'lead.stage_changed opportunity',
          'lead.outcome_recorded won',
          'lead.stage_changed customer',
        ],
        'in order per lead',
      );
      const attempts = flaky.received.filter((r) => r.json?.data?.leadId === leadId);
      assert.ok(
        attempts.some((r) => r.status === 500),
        'some attempts were refused',
      );
      for (const r of attempts) assert.ok(r.verified);
      // Every attempt at one change carried its id and the same body; a 500'd id came back and was accepted.
      const byId = new Map<string, typeof attempts>();
      for (const r of attempts) byId.set(r.id, [...(byId.get(r.id) ?? []), r]);
      assert.equal(byId.size, 6);
      for (const [, tries] of byId) {
        assert.equal(new Set(tries.map((t) => t.body)).size, 1);
        assert.equal(tries.at(-1)!.status, 200);
      }
      const log = await new WebhookLog(s.ledger.pool).list({ leadId, endpointId: 'flaky' });
      assert.deepEqual(
        log.map((d) => d.status),
        Array(6).fill('delivered'),
      );
      const first = log.at(-1)!;
      assert.ok(first.attempts > 1, `retried: ${JSON.stringify(first.attemptLog)}`);
      assert.deepEqual(
        first.attemptLog.map((a) => a.statusCode),
        [...Array(first.attempts - 1).fill(500), 200],
      );
      assert.deepEqual(
        first.attemptLog.map((a) => a.attempt),
        Array.from({ length: first.attempts }, (_, i) => i + 1),
      );
    }
    flaky.answer = () => 200;
  });
});
