/**
 * Importing a real history (CONTRACT.md "Importing a real history"): what an imported lead's stage
 * and stage dates, and an imported sales outcome, mean for the lifecycle. Pure: the import
 * validates rows with it, the workflow applies it, what-if replays it.
 *
 * - A lead's history is the funnel path lead → mql → sql → opportunity → customer as far as its
 *   stage (or, without one, its latest dated stage), each step at its date; a stage the history
 *   never dated is skipped (an imported customer with only MQL and won dates is mql → customer).
 *   A stage off the path (recycled, disqualified, dormant) comes last. Every step is a transition
 *   with reason `imported`.
 * - An imported outcome applies at its own time and may skip stages the history never recorded:
 *   `won` takes any open lead to customer, `accepted` to opportunity, `lost` and `rejected` (not
 *   ready, no response, other) to recycled, `rejected` as a bad fit or duplicate to disqualified.
 */
import type { Config } from './config.js';
import type { ImportedFact } from './lead.js';
import { type LeadCore, transition } from './lifecycle.js';
import type { Stage } from './stages.js';

export const IMPORTED = 'imported';

/** The funnel path, and the LeadInput field that dates each stage on it. */
export const STAGE_DATE_FIELD = {
  mql: 'becameMqlAt',
  sql: 'becameSqlAt',
  opportunity: 'becameOpportunityAt',
  customer: 'becameCustomerAt',
} as const satisfies Partial<Record<Stage, string>>;
type PathStage = keyof typeof STAGE_DATE_FIELD;
const PATH = Object.keys(STAGE_DATE_FIELD) as PathStage[];

export type ImportedHistory = { stage?: Stage } & Partial<Record<(typeof STAGE_DATE_FIELD)[PathStage], number>>;
export interface ImportedStep {
  at: number;
  from: Stage;
  to: Stage;
  reason: typeof IMPORTED;
}

/**
 * The transitions an imported history implies, or the problems with it (`{ field, message }`, as
 * the import reports them by line). `now` dates a stage given without a date of its own (after
 * every dated step).
 */
export function importedSteps(
  h: ImportedHistory,
  now: number,
): { steps: ImportedStep[] } | { problems: { field: string; message: string }[] } {
  const dated = PATH.filter((s) => h[STAGE_DATE_FIELD[s]] !== undefined);
  const problems: { field: string; message: string }[] = [];
  for (let i = 1; i < dated.length; i++) {
    const [a, b] = [dated[i - 1]!, dated[i]!];
    if (h[STAGE_DATE_FIELD[b]]! < h[STAGE_DATE_FIELD[a]]!) {
      problems.push({
        field: STAGE_DATE_FIELD[b],
        message: `is before ${STAGE_DATE_FIELD[a]}: a lead reaches ${b} after ${a}`,
      });
    }
  }
  const target: Stage = h.stage ?? dated.at(-1) ?? 'lead';
  const onPath = (PATH as Stage[]).includes(target);
  if (onPath) {
    const beyond = dated.filter((s) => PATH.indexOf(s) > PATH.indexOf(target as PathStage));
    for (const s of beyond)
      problems.push({ field: STAGE_DATE_FIELD[s], message: `dates ${s}, beyond the lead's stage ${target}` });
  }
  if (problems.length) return { problems };

  const steps: ImportedStep[] = [];
  let from = 'lead' as Stage;
  let last = Number.NEGATIVE_INFINITY;
  const step = (to: Stage, at: number) => {
    steps.push({ at, from, to, reason: IMPORTED });
    from = to;
    last = at;
  };
  for (const s of dated) step(s, h[STAGE_DATE_FIELD[s]]!);
  if (target !== 'lead' && target !== from) step(target, Math.max(last, now));
  return { steps };
}

export interface ImportedOutcome {
  outcome: 'accepted' | 'rejected' | 'won' | 'lost';
  reason?: string;
  at: number;
}

/** The stage an imported outcome takes a lead to, or why it cannot apply. */
export function importedOutcomeStage(
  o: ImportedOutcome,
  lead: { stage: Stage; becameMqlAt?: number; createdAt: number },
): { to: Stage } | { problem: string } {
  const since = lead.becameMqlAt ?? lead.createdAt;
  if (o.at < since) {
    return {
      problem: `is dated ${new Date(o.at).toISOString()}, before the lead's ${lead.becameMqlAt !== undefined ? 'MQL date' : 'creation'} ${new Date(since).toISOString()}`,
    };
  }
  const to: Stage =
    o.outcome === 'won'
      ? 'customer'
      : o.outcome === 'accepted'
        ? 'opportunity'
        : o.outcome === 'rejected' && (o.reason === 'bad_fit' || o.reason === 'duplicate')
          ? 'disqualified'
          : 'recycled';
  return { to };
}

/** What applying an imported fact did: the new core, the outcome to record, or why nothing happened. */
export interface AppliedImport {
  core: LeadCore;
  outcome?: ImportedOutcome & { note?: string; rep?: string };
  problem?: string;
}

/** How far along the funnel path a stage is; off the path (lead, recycled, dormant) is the start. */
const RANK: Partial<Record<Stage, number>> = { mql: 1, sql: 2, opportunity: 3, customer: 4 };
const rank = (s: Stage) => RANK[s] ?? 0;

/**
 * Whether an imported history step changes the lead: not when the lead already recorded it (the
 * same stage at the same moment: the import was applied before, e.g. by a run that a re-import
 * cannot tell from this one because it resumed from the ledger), not when the lead is already in
 * that stage or further along the funnel, and never for a lead that is closed (customer,
 * disqualified): a history of the past does not reopen it.
 */
function stepApplies(c: LeadCore, step: ImportedStep): boolean {
  if (c.stage === step.to || c.stage === 'customer' || c.stage === 'disqualified') return false;
  if (c.transitions.some((t) => t.to === step.to && t.at === step.at)) return false;
  return rank(step.to) === 0 || rank(step.to) > rank(c.stage);
}

/**
 * Applies an imported history or outcome to a lead (the workflow's `history` signal). Each step
 * is a transition at its own date with reason `imported`; a lead's creation moves back to its
 * first dated step. A step that would not move the lead forward is skipped (stepApplies), so an
 * import onto a lead that got there live, or a second import of the same history, adds nothing.
 */
export function applyImported(core: LeadCore, fact: ImportedFact, config: Config, now: number): AppliedImport {
  const ms = (v: string | undefined) => (v === undefined ? undefined : Date.parse(v));
  if ('outcome' in fact) {
    const o = { outcome: fact.outcome, at: ms(fact.occurredAt)!, ...(fact.reason ? { reason: fact.reason } : {}) };
    const r = importedOutcomeStage(o, core);
    if ('problem' in r) return { core, problem: `outcome ${fact.outcome} ${r.problem}` };
    // The reason is `imported` alone (CONTRACT.md); the note and rep go with the outcome's ledger row.
    const next = transition(
      { ...core, ...(r.to === 'disqualified' ? { disqualifiedBySales: true } : {}) },
      r.to,
      IMPORTED,
      o.at,
      config,
    );
    return {
      core: next,
      outcome: { ...o, ...(fact.note ? { note: fact.note } : {}), ...(fact.rep ? { rep: fact.rep } : {}) },
    };
  }
  const h: ImportedHistory = {
    ...(fact.stage ? { stage: fact.stage } : {}),
    ...Object.fromEntries(Object.values(STAGE_DATE_FIELD).flatMap((f) => (fact[f] ? [[f, ms(fact[f])]] : []))),
  };
  const r = importedSteps(h, now);
  if ('problems' in r) return { core, problem: r.problems.map((p) => `${p.field} ${p.message}`).join('; ') };
  let c = core;
  let first: number | undefined;
  for (const step of r.steps) {
    if (!stepApplies(c, step)) continue;
    c = transition(c, step.to, IMPORTED, step.at, config);
    first ??= step.at;
  }
  if (first !== undefined) c = { ...c, createdAt: Math.min(c.createdAt, first) };
  return { core: c };
}
