/**
 * The rows `leadctl model train` learns from when it reads the ledger (CONTRACT.md §Scoring
 * models): every lead with a known outcome, its profile (the public LeadState's) and its label.
 *
 * Labels, by what the model is to predict:
 * - `won` (the default): positive = a `won` outcome, or the lead is or was a customer; negative =
 *   a `lost` or a `rejected` outcome (any reason), or disqualified by sales, and not positive.
 * - `accepted`: positive = an `accepted` outcome, or the lead is or was an opportunity or a
 *   customer, or a `won` or `lost` outcome (both only happen in opportunity, after sales accepted
 *   it); negative = a `rejected` outcome, or disqualified by sales, and not positive.
 * A lead with neither is left out: its outcome is not known yet. Positive wins over negative: a
 * lead rejected once, recycled and won later converted.
 *
 * "Disqualified by sales" is the lead's carried core's `disqualifiedBySales` (src/domain/lifecycle.ts),
 * set when sales rejected it as bad_fit or duplicate; a lead disqualified by a profile rule never
 * reached sales and says nothing about the outcome. Such a lead normally has its `rejected` row
 * too; the flag covers a lead whose outcome rows are not there.
 *
 * One statement: the outcomes are aggregated per lead once (a hash aggregate over lead_outcomes)
 * and joined to one scan of `leads`; the label is computed from the row's narrow columns first, so
 * only the leads that are kept have their `state` (TOASTed, ~1.5 kB) read for the profile, and
 * `carried` is only read for a lead in stage disqualified.
 */
import type pg from 'pg';

export const TRAINING_OUTCOMES = ['won', 'accepted'] as const;
export type TrainingOutcome = (typeof TRAINING_OUTCOMES)[number];

export interface TrainingRow {
  leadId: string;
  /** The lead's profile as its public state holds it (values string, number, boolean or null). */
  profile: Record<string, unknown>;
  positive: boolean;
}

const BY_SALES = `(l.stage = 'disqualified' AND l.carried->'core'->>'disqualifiedBySales' = 'true')`;

/** Label expressions over `l` (leads) and `o` (the lead's outcomes, NULL when it has none). */
const LABELS: Record<TrainingOutcome, { positive: string; negative: string }> = {
  won: {
    positive: `COALESCE(o.won, false) OR l.stage = 'customer' OR l.became_customer_at IS NOT NULL`,
    negative: `COALESCE(o.lost OR o.rejected, false) OR ${BY_SALES}`,
  },
  accepted: {
    positive:
      `COALESCE(o.accepted OR o.won OR o.lost, false) OR l.stage IN ('opportunity', 'customer') ` +
      `OR l.became_opportunity_at IS NOT NULL OR l.became_customer_at IS NOT NULL`,
    negative: `COALESCE(o.rejected, false) OR ${BY_SALES}`,
  },
};

/** Every lead with a known outcome, in lead_id order (see the module's comment for the labels). */
export async function trainingRows(pool: pg.Pool, outcome: TrainingOutcome): Promise<TrainingRow[]> {
  const labels = LABELS[outcome];
  if (!labels) throw new Error(`outcome must be one of ${TRAINING_OUTCOMES.join(', ')}, got ${String(outcome)}`);
  const r = await pool.query(
    `WITH o AS (
       SELECT lead_id, bool_or(outcome = 'won') AS won, bool_or(outcome = 'lost') AS lost,
              bool_or(outcome = 'accepted') AS accepted, bool_or(outcome = 'rejected') AS rejected
         FROM lead_outcomes GROUP BY lead_id
     ), labelled AS (
       SELECT l.lead_id, l.state,
              CASE WHEN ${labels.positive} THEN true WHEN ${labels.negative} THEN false END AS positive
         FROM leads l LEFT JOIN o ON o.lead_id = l.lead_id
     )
     SELECT lead_id, COALESCE(state->'profile', '{}'::jsonb) AS profile, positive
       FROM labelled WHERE positive IS NOT NULL ORDER BY lead_id`,
  );
  return r.rows.map((row) => ({ leadId: row.lead_id, profile: row.profile, positive: row.positive }));
}
