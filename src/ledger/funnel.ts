/**
 * The contract's `Funnel` (CONTRACT.md "Funnel") from the lead ledger: the leads in each stage
 * now, and the cohort of the leads whose first MQL date is in [since, until) (counts and medians
 * from LeadLedger.cohorts), with conversion rates and, for campaigns with a configured cost, the
 * cost per MQL.
 *
 * Cost. A campaign's configured cost (config `campaigns`) is what the campaign cost in all; the
 * configuration gives it no dates, so it cannot be prorated over a window. So:
 * - a group of `by: 'campaign'` whose key is a configured campaign carries `cost` (its configured
 *   cost) and `costPerMql` = cost / the group's MQLs; other groups (`(none)`, campaigns without a
 *   configured cost, and every group of the other `by`s) carry neither;
 * - the total carries `cost` = the sum of the configured costs of the campaigns that have at
 *   least one lead in the cohort (a campaign whose MQLs all fall outside the window is taken to
 *   have been spent on another cohort) and `costPerMql` = that cost / all the cohort's MQLs: the
 *   blended cost per MQL, so that in every cohort object costPerMql is cost / mqls. The total is
 *   the same whatever `by` is (its cost included); it carries neither when no configured campaign
 *   is in the cohort.
 * Money is rounded to cents; rates to 4 decimals; medians are in days (2 decimals).
 */
import { STAGES, type Stage } from '../domain/stages.js';
import type { CohortCounts, FunnelGroupBy, LeadLedger } from './ledger.js';

export const FUNNEL_GROUP_BYS: readonly FunnelGroupBy[] = ['campaign', 'channel', 'month', 'model'];

export interface Cohort {
  mqls: number;
  sqls: number;
  opportunities: number;
  customers: number;
  /** 0..1 (4 decimals); null when mqls is 0. */
  mqlToSqlRate: number | null;
  mqlToCustomerRate: number | null;
  /** Null when no lead of the cohort reached the stage. */
  medianDaysMqlToSql: number | null;
  medianDaysMqlToCustomer: number | null;
  cost?: number;
  costPerMql?: number;
}

export interface Funnel {
  since: string | null;
  until: string | null;
  by: FunnelGroupBy | null;
  /** Leads in each stage now (every stage, 0 when none), whatever the window. */
  stages: Record<Stage, number>;
  total: Cohort;
  /** Only with `by`: every value seen in the cohort (`(none)` for leads without one). */
  groups: (Cohort & { key: string })[];
}

export interface FunnelQuery {
  /** ISO 8601; the window is [since, until) on each lead's first MQL date. */
  since?: string;
  until?: string;
  by?: FunnelGroupBy;
}

/** The config's `campaigns`. */
export type CampaignCosts = Record<string, { cost: number }>;

const invalid = (message: string) => Object.assign(new Error(message), { code: 'invalid_input' });
const rate = (n: number, of: number) => (of ? Math.round((n / of) * 10_000) / 10_000 : null);
const cents = (x: number) => Math.round(x * 100) / 100;

function instant(name: string, v: string | undefined): string | null {
  if (v === undefined) return null;
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw invalid(`${name} is not a date: ${JSON.stringify(v)}`);
  return new Date(t).toISOString();
}

function cohort(c: CohortCounts, cost?: number): Cohort {
  return {
    mqls: c.mqls,
    sqls: c.sqls,
    opportunities: c.opportunities,
    customers: c.customers,
    mqlToSqlRate: rate(c.sqls, c.mqls),
    mqlToCustomerRate: rate(c.customers, c.mqls),
    medianDaysMqlToSql: c.medianDaysMqlToSql,
    medianDaysMqlToCustomer: c.medianDaysMqlToCustomer,
    ...(cost === undefined ? {} : { cost: cents(cost), ...(c.mqls ? { costPerMql: cents(cost / c.mqls) } : {}) }),
  };
}

/** The `Funnel` of the ledger's leads; throws `invalid_input` for a date or `by` it cannot use. */
export async function ledgerFunnel(
  ledger: LeadLedger,
  q: FunnelQuery = {},
  campaigns: CampaignCosts = {},
): Promise<Funnel> {
  const since = instant('since', q.since);
  const until = instant('until', q.until);
  const by = q.by ?? null;
  if (by !== null && !FUNNEL_GROUP_BYS.includes(by)) throw invalid(`by must be one of ${FUNNEL_GROUP_BYS.join(', ')}`);
  const range = { ...(since ? { since } : {}), ...(until ? { until } : {}) };
  const costOf = (key: string) => (Object.hasOwn(campaigns, key) ? campaigns[key]!.cost : undefined);
  const configured = Object.keys(campaigns);

  const [now, cohorts, costedInCohort] = await Promise.all([
    ledger.stageCounts(),
    ledger.cohorts(range, by ?? undefined),
    // by campaign, the groups say which campaigns are in the cohort; otherwise ask.
    by === 'campaign' || !configured.length ? Promise.resolve(undefined) : campaignsInCohort(ledger, range, configured),
  ]);
  const inCohort = costedInCohort ?? cohorts.groups.map((g) => g.key).filter((k) => costOf(k) !== undefined);
  const totalCost = inCohort.length ? inCohort.reduce((sum, k) => sum + costOf(k)!, 0) : undefined;

  const stages = Object.fromEntries(STAGES.map((s) => [s, now[s] ?? 0])) as Record<Stage, number>;
  const groups = cohorts.groups.map((g) => ({
    key: g.key,
    ...cohort(g, by === 'campaign' ? costOf(g.key) : undefined),
  }));
  // Months read best in calendar order; the other groups come biggest first, then by key. Sorted
  // here, by code point, so that the order does not hang on the database's collation.
  const byKey = (a: { key: string }, b: { key: string }) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
  groups.sort(by === 'month' ? byKey : (a, b) => b.mqls - a.mqls || byKey(a, b));
  return { since, until, by, stages, total: cohort(cohorts.total, totalCost), groups };
}

/** Which of `ids` have at least one lead in the cohort of `range`. */
async function campaignsInCohort(
  ledger: LeadLedger,
  range: { since?: string; until?: string },
  ids: string[],
): Promise<string[]> {
  const params: unknown[] = [ids];
  const where = ['became_mql_at IS NOT NULL', 'campaign = ANY($1::text[])'];
  if (range.since) where.push(`became_mql_at >= $${params.push(range.since)}`);
  if (range.until) where.push(`became_mql_at < $${params.push(range.until)}`);
  const r = await ledger.pool.query(`SELECT DISTINCT campaign FROM leads WHERE ${where.join(' AND ')}`, params);
  return r.rows.map((row) => String(row.campaign));
}
