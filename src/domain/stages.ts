/**
 * The lifecycle stages, and what each one is, in one table keyed by stage: adding a stage fails the
 * build until it says whether it is closed and which funnel date it stands for. Apart from lead.ts's
 * schemas so the domain model imports no zod: the worker shares the model's modules among all
 * cached leads (SHARED_WORKFLOW_MODULES), and zod cannot be shared (it defines properties lazily,
 * and shared modules are frozen).
 */
export const STAGES = ['lead', 'mql', 'sql', 'opportunity', 'customer', 'recycled', 'disqualified', 'dormant'] as const;
export type Stage = (typeof STAGES)[number];

export interface StageRules {
  /** Nothing more happens until the lead engages again: no timer (before the ledger, the run completed). */
  closed: boolean;
  /** The funnel step whose first-reached date the ledger keeps (leads.became_<step>_at), if any. */
  funnel?: 'mql' | 'sql' | 'opportunity' | 'customer';
  /** What it means, as the README's stage table says it. */
  meaning: string;
}

export const STAGE_RULES: Record<Stage, StageRules> = {
  lead: { closed: false, meaning: 'known, not yet qualified; nurtured by the welcome track' },
  mql: { closed: false, funnel: 'mql', meaning: 'marketing qualified: score and fit over the mql thresholds' },
  sql: { closed: false, funnel: 'sql', meaning: 'handed to sales: an owner, a handoff mail, an SLA to accept' },
  opportunity: { closed: false, funnel: 'opportunity', meaning: 'sales accepted it; waiting for won or lost' },
  customer: { closed: true, funnel: 'customer', meaning: 'won' },
  recycled: { closed: false, meaning: 'sales or time said "not now": earns its way back from zero engagement' },
  disqualified: { closed: true, meaning: 'outside the ideal customer profile, or sales said bad fit or duplicate' },
  dormant: { closed: true, meaning: 'no engagement for timeouts.dormantAfter; wakes on its next event' },
};

/** Stages in which nothing happens until the lead engages again. */
export const TERMINAL_STAGES: readonly Stage[] = STAGES.filter((s) => STAGE_RULES[s].closed);
/** The funnel's steps, in order (the ledger's first-reached dates). */
export const FUNNEL_STAGES: readonly Stage[] = STAGES.filter((s) => STAGE_RULES[s].funnel);

/** Which stage each sales outcome belongs to. */
export const OUTCOME_STAGE: Record<'accepted' | 'rejected' | 'won' | 'lost', Stage> = {
  accepted: 'sql',
  rejected: 'sql',
  won: 'opportunity',
  lost: 'opportunity',
};
