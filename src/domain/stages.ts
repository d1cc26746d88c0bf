/**
 * The lifecycle stages. Apart from lead.ts's schemas so the domain model imports no zod: the
 * worker shares the model's modules among all cached leads (SHARED_WORKFLOW_MODULES), and zod
 * cannot be shared (it defines properties lazily, and shared modules are frozen).
 */
export const STAGES = ['lead', 'mql', 'sql', 'opportunity', 'customer', 'recycled', 'disqualified', 'dormant'] as const;
export type Stage = (typeof STAGES)[number];
/** Stages in which a run completes: nothing more happens until the lead engages again. */
export const TERMINAL_STAGES: readonly Stage[] = ['customer', 'disqualified', 'dormant'];

/** Which stage each sales outcome belongs to. */
export const OUTCOME_STAGE: Record<'accepted' | 'rejected' | 'won' | 'lost', Stage> = {
  accepted: 'sql', rejected: 'sql', won: 'opportunity', lost: 'opportunity',
};
