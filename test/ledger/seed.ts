/** Writes hand-made leads into a ledger for the read tests (funnel, search). */
import type { Stage } from '../../src/domain/stages.js';
import type { LeadLedger, LedgerTransition } from '../../src/ledger/ledger.js';

/** A lead that went through `path` (stage, date) from `lead`; it is now in the last stage. */
export async function seed(
  ledger: LeadLedger,
  leadId: string,
  path: [Stage, string][],
  o: {
    campaign?: string;
    channel?: string;
    model?: string;
    stage?: Stage;
    owner?: string;
    score?: number;
    consent?: string;
  } = {},
) {
  const transitions: LedgerTransition[] = path.map(([to, at], i) => ({
    at: at.length === 10 ? `${at}T00:00:00.000Z` : at,
    from: i ? path[i - 1]![0] : 'lead',
    to,
    reason: 'imported',
  }));
  const stage = o.stage ?? path[path.length - 1]?.[0] ?? 'lead';
  await ledger.record({
    leadId,
    transitions,
    lead: {
      leadId,
      stage,
      consent: o.consent ?? 'subscribed',
      score: o.score ?? 50,
      owner: o.owner,
      campaign: o.campaign,
      channel: o.channel,
      model: o.model,
      createdAt: '2025-01-01T00:00:00.000Z',
      state: { leadId, stage },
      version: 1,
    },
  });
}
