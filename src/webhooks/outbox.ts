/**
 * What a lead's ledger write sends out (issue 13 part 2): the changes in one LedgerBatch, as one
 * webhook row per (endpoint subscribed to the change's type, change), each with an id derived from
 * the change alone (so a retried write, an activity retry or a workflow task retry, makes the same
 * id, and every delivery attempt of it carries the same `webhook-id`) and its body fixed at write
 * time (every attempt signs and sends the same bytes). docs/webhooks.md documents the body.
 *
 * - `lead.stage_changed`: a transition the write stores for the first time (a run's first write
 *   repeats the lead's older transitions: the statement only lets through the ones it inserts).
 * - `lead.handed_off`: the lead is in sql with an owner the previous write did not have (the first
 *   pick, or an escalation to the next owner after an SLA expired).
 * - `lead.outcome_recorded`: a sales outcome the write stores for the first time (live or imported).
 * - `lead.consent_changed`: the consent differs from the previous write's (an unsubscribe, a
 *   bounce, a profile change of consent).
 */
import { createHash } from 'node:crypto';
import type { WebhookEndpoint, WebhookEvent } from '../domain/config.js';
import type { LeadState } from '../domain/lead.js';
import type { LedgerBatch } from '../ledger/ledger.js';

/** A change and which stored row it stands for: the statement keeps a transition's or outcome's row only if it inserted that fact. */
export type WebhookGate =
  | { kind: 'transition'; at: string; from: string; to: string }
  | { kind: 'outcome'; outcome: string; occurredAt: string }
  | { kind: 'always' };

export interface OutboxRow {
  endpointId: string;
  webhookId: string;
  eventType: WebhookEvent;
  payload: string;
  gate: WebhookGate;
}

/** The body every webhook carries (docs/webhooks.md). */
export interface WebhookBody {
  type: WebhookEvent;
  /** When the change happened (the lead's clock). */
  timestamp: string;
  data: {
    leadId: string;
    change: Record<string, unknown>;
    stage: LeadState['stage'];
    score: LeadState['score'];
    owner: string | null;
    consent: LeadState['consent'];
    campaign: string | null;
    profile: LeadState['profile'];
  };
}

/** `msg_` and 26 base32-ish characters of a hash of the lead and the change: stable, and unique per change. */
export function webhookIdFor(leadId: string, ...key: string[]): string {
  const h = createHash('sha256')
    .update([leadId, ...key].join('\u0000'))
    .digest('base64url');
  return `msg_${h.slice(0, 26)}`;
}

interface Change {
  type: WebhookEvent;
  at: string;
  id: string;
  change: Record<string, unknown>;
  gate: WebhookGate;
  order: number;
}

const ORDER: Record<WebhookEvent, number> = {
  'lead.outcome_recorded': 0,
  'lead.stage_changed': 1,
  'lead.handed_off': 2,
  'lead.consent_changed': 3,
};

/** The changes a batch carries, in the order they happened (an outcome before the transition it caused). */
export function batchChanges(b: LedgerBatch): Change[] {
  const lead = b.lead;
  if (!lead) return [];
  const state = lead.state as LeadState;
  const writtenAt = new Date(Math.floor(lead.version / 1000)).toISOString();
  const changes: Change[] = [];
  for (const t of b.transitions ?? []) {
    if (t.from === t.to) continue;
    changes.push({
      type: 'lead.stage_changed',
      at: t.at,
      id: webhookIdFor(b.leadId, 'stage', new Date(t.at).toISOString(), t.from, t.to),
      change: { from: t.from, to: t.to, reason: t.reason, at: t.at },
      gate: { kind: 'transition', at: t.at, from: t.from, to: t.to },
      order: ORDER['lead.stage_changed'],
    });
  }
  for (const o of b.outcomes ?? []) {
    changes.push({
      type: 'lead.outcome_recorded',
      at: o.occurredAt,
      id: webhookIdFor(b.leadId, 'outcome', o.outcome, new Date(o.occurredAt).toISOString()),
      change: {
        outcome: o.outcome,
        occurredAt: o.occurredAt,
        source: o.source ?? 'live',
        ...(o.reason ? { reason: o.reason } : {}),
        ...(o.note ? { note: o.note } : {}),
        ...(o.rep ? { rep: o.rep } : {}),
      },
      gate: { kind: 'outcome', outcome: o.outcome, occurredAt: o.occurredAt },
      order: ORDER['lead.outcome_recorded'],
    });
  }
  const prev = b.previous;
  if (prev && lead.stage === 'sql' && lead.owner && lead.owner !== prev.owner) {
    changes.push({
      type: 'lead.handed_off',
      at: writtenAt,
      id: webhookIdFor(b.leadId, 'handoff', state.becameSqlAt ?? '', lead.owner, String(state.escalations ?? 0)),
      change: {
        owner: lead.owner,
        previousOwner: prev.owner ?? null,
        escalation: state.escalations ?? 0,
        slaDeadline: state.slaDeadline ?? null,
      },
      gate: { kind: 'always' },
      order: ORDER['lead.handed_off'],
    });
  }
  if (prev && prev.consent !== lead.consent) {
    changes.push({
      type: 'lead.consent_changed',
      at: writtenAt,
      id: webhookIdFor(b.leadId, 'consent', prev.consent, lead.consent, String(lead.version)),
      change: { from: prev.consent, to: lead.consent },
      gate: { kind: 'always' },
      order: ORDER['lead.consent_changed'],
    });
  }
  const ms = (s: string) => new Date(s).getTime();
  return changes.sort((x, y) => ms(x.at) - ms(y.at) || x.order - y.order);
}

/** The rows a batch adds for the configured endpoints, in delivery order. */
export function outboxRows(b: LedgerBatch, endpoints: readonly WebhookEndpoint[]): OutboxRow[] {
  if (!endpoints.length || !b.lead) return [];
  const changes = batchChanges(b);
  if (!changes.length) return [];
  const state = b.lead.state as LeadState;
  const rows: OutboxRow[] = [];
  for (const c of changes) {
    const body: WebhookBody = {
      type: c.type,
      timestamp: c.at,
      data: {
        leadId: b.leadId,
        change: c.change,
        stage: state.stage,
        score: state.score,
        owner: state.owner ?? null,
        consent: state.consent,
        campaign: state.campaign ?? null,
        profile: state.profile,
      },
    };
    const payload = JSON.stringify(body);
    for (const e of endpoints) {
      if (!e.events.includes(c.type)) continue;
      rows.push({ endpointId: e.id, webhookId: c.id, eventType: c.type, payload, gate: c.gate });
    }
  }
  return rows;
}
