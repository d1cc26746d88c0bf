/**
 * The outbox's pure part (src/webhooks/outbox.ts): which changes a ledger batch carries, the stable
 * webhook-id of each (the same for a retried write, different for different changes), which
 * endpoints each goes to, and the body fixed at write time. No database, no Temporal.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { WebhookEndpoint } from '../../src/domain/config.js';
import type { LedgerBatch } from '../../src/ledger/ledger.js';
import { batchChanges, outboxRows, type WebhookBody, webhookIdFor } from '../../src/webhooks/outbox.js';

const T0 = '2026-12-02T10:00:00.000Z';
const T1 = '2026-12-02T10:00:05.000Z';
const ep = (id: string, events: WebhookEndpoint['events']): WebhookEndpoint => ({
  id,
  url: `https://${id}.example/hooks`,
  events,
  secret: 'whsec_x',
});
const ALL = ep('all', ['lead.stage_changed', 'lead.handed_off', 'lead.outcome_recorded', 'lead.consent_changed']);
const STAGES_ONLY = ep('stages', ['lead.stage_changed']);

function batch(over: Partial<LedgerBatch> & { state?: Record<string, unknown> } = {}): LedgerBatch {
  const { state, ...rest } = over;
  const lead = {
    leadId: 'L-1',
    stage: 'sql' as const,
    consent: 'subscribed',
    score: 80,
    owner: 'ben@sales.example',
    createdAt: T0,
    version: Date.parse(T1) * 1000,
    state: {
      leadId: 'L-1',
      stage: 'sql',
      score: { total: 80, fit: 40, engagement: 40 },
      owner: 'ben@sales.example',
      consent: 'subscribed',
      profile: { email: 'dana@buyer.example', seniority: 'vp' },
      becameSqlAt: T1,
      escalations: 0,
      ...state,
    },
  };
  return {
    leadId: 'L-1',
    lead,
    previous: { consent: 'subscribed' },
    transitions: [
      { at: T1, from: 'mql', to: 'sql', reason: 'score 80 >= sql 75' },
      { at: T0, from: 'lead', to: 'mql', reason: 'score 45 >= mql 40' },
    ],
    ...rest,
  };
}

describe('webhook outbox', () => {
  it('webhookIdFor is stable per change and differs between changes and leads', () => {
    const a = webhookIdFor('L-1', 'stage', T0, 'lead', 'mql');
    assert.equal(a, webhookIdFor('L-1', 'stage', T0, 'lead', 'mql'));
    assert.match(a, /^msg_[A-Za-z0-9_-]{26}$/);
    assert.notEqual(a, webhookIdFor('L-2', 'stage', T0, 'lead', 'mql'));
    assert.notEqual(a, webhookIdFor('L-1', 'stage', T1, 'lead', 'mql'));
    assert.notEqual(a, webhookIdFor('L-1', 'stage', T0, 'mql', 'sql'));
    // The parts are separated: moving a character from one part to the next is another change.
    assert.notEqual(webhookIdFor('L-1', 'ab', 'c'), webhookIdFor('L-1', 'a', 'bc'));
  });

  it('a batch carries its transitions, the handoff, in time order; a retried write makes the same rows', () => {
    const b = batch({ previous: { consent: 'subscribed', owner: undefined } });
    const changes = batchChanges(b);
    assert.deepEqual(
      changes.map((c) => `${c.type}${c.change.to ? ` ${c.change.to}` : ''}`),
      ['lead.stage_changed mql', 'lead.stage_changed sql', 'lead.handed_off'],
    );
    assert.deepEqual(changes[2]!.change, {
      owner: 'ben@sales.example',
      previousOwner: null,
      escalation: 0,
      slaDeadline: null,
    });
    assert.deepEqual(outboxRows(b, [ALL]), outboxRows(structuredClone(b), [ALL]), 'same ids and bodies again');
    assert.equal(new Set(changes.map((c) => c.id)).size, 3);
  });

  it('sends each change only to the endpoints subscribed to its type, under one id at every endpoint', () => {
    const b = batch({ previous: { consent: 'subscribed' } });
    const rows = outboxRows(b, [ALL, STAGES_ONLY, ep('outcomes', ['lead.outcome_recorded'])]);
    assert.deepEqual(
      rows.map((r) => `${r.endpointId} ${r.eventType}`),
      [
        'all lead.stage_changed',
        'stages lead.stage_changed',
        'all lead.stage_changed',
        'stages lead.stage_changed',
        'all lead.handed_off',
      ],
    );
    assert.equal(rows[0]!.webhookId, rows[1]!.webhookId);
    assert.equal(rows[0]!.payload, rows[1]!.payload, 'one body per change');
    assert.deepEqual(rows[0]!.gate, { kind: 'transition', at: T0, from: 'lead', to: 'mql' });
    assert.deepEqual(rows[4]!.gate, { kind: 'always' });
    assert.deepEqual(outboxRows(b, []), [], 'no endpoints: no rows');
    assert.deepEqual(outboxRows({ leadId: 'L-1', transitions: b.transitions! }, [ALL]), [], 'no lead row: no rows');
  });

  it('no handoff without a new owner, no stage change for a self-transition, consent changes compared with the previous write', () => {
    const same = batch({
      previous: { consent: 'subscribed', owner: 'ben@sales.example' },
      transitions: [{ at: T1, from: 'sql', to: 'sql', reason: 're-score' }],
    });
    assert.deepEqual(batchChanges(same), []);
    const escalated = batch({
      previous: { consent: 'subscribed', owner: 'ana@sales.example' },
      transitions: [],
      state: { escalations: 1 },
    });
    const [handoff] = batchChanges(escalated);
    assert.equal(handoff!.type, 'lead.handed_off');
    assert.equal(handoff!.change.previousOwner, 'ana@sales.example');
    assert.equal(handoff!.change.escalation, 1);
    assert.notEqual(handoff!.id, batchChanges(batch({ previous: { consent: 'subscribed' }, transitions: [] }))[0]!.id);

    const unsub = batch({ previous: { consent: 'subscribed', owner: 'ben@sales.example' }, transitions: [] });
    unsub.lead!.consent = 'unsubscribed';
    const [consent] = batchChanges(unsub);
    assert.equal(consent!.type, 'lead.consent_changed');
    assert.deepEqual(consent!.change, { from: 'subscribed', to: 'unsubscribed' });
    // The first write of a lead has no previous write: nothing to compare, no handoff or consent change.
    assert.deepEqual(batchChanges(batch({ previous: undefined, transitions: [] })), []);
  });

  it('an outcome comes before the transition it caused, and its body is the documented one', () => {
    const b = batch({
      previous: { consent: 'subscribed', owner: 'ben@sales.example' },
      transitions: [{ at: T1, from: 'sql', to: 'opportunity', reason: 'accepted by ben' }],
      outcomes: [{ outcome: 'accepted', occurredAt: T1, rep: 'ben@sales.example' }],
      state: { stage: 'opportunity', campaign: 'spring' },
    });
    const rows = outboxRows(b, [ALL]);
    assert.deepEqual(
      rows.map((r) => r.eventType),
      ['lead.outcome_recorded', 'lead.stage_changed'],
    );
    const body = JSON.parse(rows[0]!.payload) as WebhookBody;
    assert.deepEqual(body, {
      type: 'lead.outcome_recorded',
      timestamp: T1,
      data: {
        leadId: 'L-1',
        change: { outcome: 'accepted', occurredAt: T1, source: 'live', rep: 'ben@sales.example' },
        stage: 'opportunity',
        score: { total: 80, fit: 40, engagement: 40 },
        owner: 'ben@sales.example',
        consent: 'subscribed',
        campaign: 'spring',
        profile: { email: 'dana@buyer.example', seniority: 'vp' },
      },
    });
    assert.deepEqual(rows[0]!.gate, { kind: 'outcome', outcome: 'accepted', occurredAt: T1 });
  });
});
