/**
 * The lead ledger (CONTRACT.md "The lead ledger"): typed reads and writes over the database of
 * ./database.ts. Every write is idempotent (keyed by eventId, transition, outcome, Message-ID; a
 * lead's row moves only to a higher version), so an activity retried after a crash or an import
 * run twice never duplicates a row.
 */
import type pg from 'pg';
import type { Stage } from '../domain/stages.js';
import { type CampaignCosts, type Funnel, type FunnelQuery, ledgerFunnel } from './funnel.js';
import { type LeadSearch, type LeadSearchPage, searchLeads } from './search.js';
import { type TrainingOutcome, type TrainingRow, trainingRows } from './training.js';
import { HASHED_PREFIX, hashedAddress } from './erasure.js';

export interface LedgerEvent {
  eventId: string;
  type: string;
  occurredAt: string;
  /** When the lead's workflow applied it (its clock); absent for imported history. */
  appliedAt?: string;
  attributes?: Record<string, unknown>;
}
export interface LedgerTransition {
  at: string;
  from: Stage;
  to: Stage;
  reason: string;
}
export interface LedgerOutcome {
  outcome: 'accepted' | 'rejected' | 'won' | 'lost';
  occurredAt: string;
  reason?: string;
  note?: string;
  rep?: string;
  source?: 'live' | 'imported';
}
export interface LedgerProfileChange {
  appliedAt: string;
  seq: number;
  patch: Record<string, unknown>;
}
export interface LedgerLead {
  leadId: string;
  stage: Stage;
  consent: string;
  score: number;
  owner?: string;
  campaign?: string;
  channel?: string;
  model?: string;
  createdAt: string;
  /** The public state as the API serves it. */
  state: unknown;
  /** What a new run resumes from (versioned by its writer). */
  carried?: unknown;
  /** Moves forward only; a write with a version not above the stored one leaves the row alone. */
  version: number;
}
/** One lead's facts from one moment, written in one transaction. */
export interface LedgerBatch {
  leadId: string;
  events?: LedgerEvent[];
  profileChanges?: LedgerProfileChange[];
  transitions?: LedgerTransition[];
  outcomes?: LedgerOutcome[];
  lead?: LedgerLead;
  /**
   * The workflow run writing it, and the version of that run's previous write (0 for its first):
   * the last one a completed workflow task stands behind. Rows the run wrote above it that this
   * write does not repeat are a failed task attempt's, and are removed (with `lead` only).
   */
  run?: { id: string; after: number };
  /**
   * What the lead's previous write said (the run's own, or what the run carried at its start):
   * the consent and owner a `lead.consent_changed` or `lead.handed_off` webhook compares with.
   * A workflow's state, so a failed task attempt's write never becomes the baseline.
   */
  previous?: { consent: string; owner?: string };
  /** The webhook deliveries this write adds (src/webhooks/outbox.ts), in order; in its statement. */
  webhooks?: WebhookRow[];
}

/** One change to one endpoint: its stable id and its exact body (what every attempt signs and sends). */
export interface WebhookRow {
  endpointId: string;
  webhookId: string;
  eventType: string;
  payload: string;
  /** Kept only if the statement inserts this transition or outcome (a rewrite of an old one sends nothing). */
  gate:
    | { kind: 'transition'; at: string; from: string; to: string }
    | { kind: 'outcome'; outcome: string; occurredAt: string }
    | { kind: 'always' };
}

export interface StoredLead extends LedgerLead {
  becameMqlAt?: string;
  becameSqlAt?: string;
  becameOpportunityAt?: string;
  becameCustomerAt?: string;
  updatedAt: string;
  /** The run that last wrote the row, and what the row carried before that run's first write. */
  runId?: string;
  runOrigin?: unknown;
}

export type TimelineEntry =
  | {
      at: string;
      kind: 'event';
      eventId: string;
      type: string;
      occurredAt: string;
      attributes: Record<string, unknown>;
    }
  | { at: string; kind: 'profile'; patch: Record<string, unknown> }
  | { at: string; kind: 'transition'; from: Stage; to: Stage; reason: string }
  | { at: string; kind: 'outcome'; outcome: string; reason?: string; note?: string; rep?: string; source: string }
  | { at: string; kind: 'mail'; messageId: string; mailKind: string; track?: string; step?: number; status: string };

export type FunnelGroupBy = 'campaign' | 'channel' | 'month' | 'model';
export interface CohortCounts {
  mqls: number;
  sqls: number;
  opportunities: number;
  customers: number;
  medianDaysMqlToSql: number | null;
  medianDaysMqlToCustomer: number | null;
}

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : undefined);
const days = (v: unknown) => (v === null || v === undefined ? null : Math.round(Number(v) * 100) / 100);

/** Group keys: every value seen in the data; a lead without one is `(none)`. */
const GROUP_EXPR: Record<FunnelGroupBy, string> = {
  campaign: "COALESCE(campaign, '(none)')",
  channel: "COALESCE(channel, '(none)')",
  month: "to_char(became_mql_at AT TIME ZONE 'UTC', 'YYYY-MM')",
  model: "COALESCE(model, '(none)')",
};

export class LeadLedger {
  constructor(readonly pool: pg.Pool) {}

  /**
   * Writes one lead's batch in one transaction; every part is idempotent. Each kind of row is one
   * statement however many rows it has (a JSON array expanded by jsonb_to_recordset): a burst of
   * 250 events is one round trip, not 250.
   */
  async record(b: LedgerBatch): Promise<void> {
    if (b.lead) return this.recordWithLead(b, b.lead);
    await this.transaction(async (c) => {
      const rows = (list: unknown[] | undefined) => (list?.length ? JSON.stringify(list) : undefined);
      const events = rows(
        b.events?.map((e) => ({
          event_id: e.eventId,
          type: e.type,
          occurred_at: e.occurredAt,
          applied_at: e.appliedAt ?? null,
          attributes: e.attributes ?? {},
        })),
      );
      if (events) {
        await c.query(
          `INSERT INTO lead_events (lead_id, event_id, type, occurred_at, applied_at, attributes)
           SELECT $1, e.event_id, e.type, e.occurred_at, e.applied_at, e.attributes
             FROM jsonb_to_recordset($2::jsonb) AS e(event_id text, type text, occurred_at timestamptz, applied_at timestamptz, attributes jsonb)
           ON CONFLICT (lead_id, event_id) DO UPDATE SET applied_at = COALESCE(lead_events.applied_at, excluded.applied_at)`,
          [b.leadId, events],
        );
      }
      const changes = rows(b.profileChanges?.map((p) => ({ applied_at: p.appliedAt, seq: p.seq, patch: p.patch })));
      if (changes) {
        await c.query(
          `INSERT INTO lead_profile_changes (lead_id, applied_at, seq, patch)
           SELECT $1, p.applied_at, p.seq, p.patch FROM jsonb_to_recordset($2::jsonb) AS p(applied_at timestamptz, seq integer, patch jsonb)
           ON CONFLICT DO NOTHING`,
          [b.leadId, changes],
        );
      }
      const transitions = rows(
        b.transitions?.map((t) => ({ at: t.at, from_stage: t.from, to_stage: t.to, reason: t.reason })),
      );
      if (transitions) {
        await c.query(
          `INSERT INTO lead_transitions (lead_id, at, from_stage, to_stage, reason)
           SELECT $1, t.at, t.from_stage, t.to_stage, t.reason FROM jsonb_to_recordset($2::jsonb) AS t(at timestamptz, from_stage text, to_stage text, reason text)
           ON CONFLICT DO NOTHING`,
          [b.leadId, transitions],
        );
      }
      const outcomes = rows(
        b.outcomes?.map((o) => ({
          outcome: o.outcome,
          occurred_at: o.occurredAt,
          reason: o.reason ?? null,
          note: o.note ?? null,
          rep: o.rep ?? null,
          source: o.source ?? 'live',
        })),
      );
      if (outcomes) {
        await c.query(
          `INSERT INTO lead_outcomes (lead_id, outcome, occurred_at, reason, note, rep, source)
           SELECT $1, o.outcome, o.occurred_at, o.reason, o.note, o.rep, o.source
             FROM jsonb_to_recordset($2::jsonb) AS o(outcome text, occurred_at timestamptz, reason text, note text, rep text, source text)
           ON CONFLICT DO NOTHING`,
          [b.leadId, outcomes],
        );
      }
      if (transitions) await refreshStageDates(c, b.leadId);
    });
  }

  /**
   * A batch with the lead's row (what every iteration of a lead's loop writes) as ONE statement:
   * data-modifying CTEs insert the events, profile changes, transitions and outcomes, and the
   * lead's row takes its first-reached stage dates from the transitions already stored and the
   * batch's own (a CTE does not see its siblings' rows). One statement is atomic by itself, so
   * this is one round trip instead of a transaction's eight: on the embedded database, which
   * serves one connection at a time, that is most of a write's cost.
   */
  private async recordWithLead(b: LedgerBatch, l: LedgerLead): Promise<void> {
    const json = (list: unknown[] | undefined) => JSON.stringify(list ?? []);
    // A failed attempt's row (see migrations/1796200000000_run-attempts.sql): written by this run,
    // above the run's previous write, not by this write (an activity retry repeats its own), and
    // only when this write is the lead's newest (a late, older write removes nothing). The batch's
    // own keys are never removed: a statement must not delete a row a sibling CTE upserts.
    // `dirty`: the lead's row says this run wrote above its previous write (a failed attempt), and
    // this write is newer still: only then is there anything to remove (a one-time check, so the
    // ordinary write does not look at the lead's rows at all).
    const phantom = (alias: string) =>
      `((SELECT dirty FROM w) AND COALESCE(${alias}.run_id = $17 AND ${alias}.run_version > $18 AND ${alias}.run_version <> $16, false))`;
    await this.pool.query(
      `WITH w AS (
         SELECT EXISTS (SELECT 1 FROM leads WHERE lead_id = $1 AND run_id = $17 AND version > $18 AND version < $16) AS dirty
       ), batch_tr AS (
         SELECT t.at, t.from_stage, t.to_stage, t.reason FROM jsonb_to_recordset($4::jsonb) AS t(at timestamptz, from_stage text, to_stage text, reason text)
       ), gone_ev AS (
         DELETE FROM lead_events x WHERE x.lead_id = $1 AND ${phantom('x')}
           AND x.event_id NOT IN (SELECT e.event_id FROM jsonb_to_recordset($2::jsonb) AS e(event_id text))
         RETURNING 1
       ), gone_pc AS (
         DELETE FROM lead_profile_changes x WHERE x.lead_id = $1 AND ${phantom('x')}
           AND (x.applied_at, x.seq) NOT IN (SELECT p.applied_at, p.seq FROM jsonb_to_recordset($3::jsonb) AS p(applied_at timestamptz, seq integer))
         RETURNING 1
       ), gone_tr AS (
         DELETE FROM lead_transitions x WHERE x.lead_id = $1 AND ${phantom('x')}
           AND (x.at, x.from_stage, x.to_stage) NOT IN (SELECT at, from_stage, to_stage FROM batch_tr)
         RETURNING 1
       ), gone_oc AS (
         DELETE FROM lead_outcomes x WHERE x.lead_id = $1 AND ${phantom('x')}
           AND (x.outcome, x.occurred_at) NOT IN (SELECT o.outcome, o.occurred_at FROM jsonb_to_recordset($5::jsonb) AS o(outcome text, occurred_at timestamptz))
         RETURNING 1
       ), ev AS (
         INSERT INTO lead_events (lead_id, event_id, type, occurred_at, applied_at, attributes, run_id, run_version)
         SELECT $1, e.event_id, e.type, e.occurred_at, e.applied_at, e.attributes, $17, $16
           FROM jsonb_to_recordset($2::jsonb) AS e(event_id text, type text, occurred_at timestamptz, applied_at timestamptz, attributes jsonb)
         ON CONFLICT (lead_id, event_id) DO UPDATE SET
           -- the same run applying it again (after a failed attempt) applied it when it says now
           applied_at = CASE WHEN lead_events.run_id = excluded.run_id THEN excluded.applied_at ELSE COALESCE(lead_events.applied_at, excluded.applied_at) END,
           run_version = CASE WHEN lead_events.run_id = excluded.run_id THEN excluded.run_version ELSE lead_events.run_version END
         RETURNING 1
       ), pc AS (
         INSERT INTO lead_profile_changes (lead_id, applied_at, seq, patch, run_id, run_version)
         SELECT $1, p.applied_at, p.seq, p.patch, $17, $16 FROM jsonb_to_recordset($3::jsonb) AS p(applied_at timestamptz, seq integer, patch jsonb)
         ON CONFLICT DO NOTHING RETURNING 1
       ), tr AS (
         INSERT INTO lead_transitions (lead_id, at, from_stage, to_stage, reason, run_id, run_version)
         SELECT $1, t.at, t.from_stage, t.to_stage, t.reason, $17, $16 FROM batch_tr t
         ON CONFLICT DO NOTHING RETURNING at, from_stage, to_stage
       ), oc AS (
         INSERT INTO lead_outcomes (lead_id, outcome, occurred_at, reason, note, rep, source, run_id, run_version)
         SELECT $1, o.outcome, o.occurred_at, o.reason, o.note, o.rep, o.source, $17, $16
           FROM jsonb_to_recordset($5::jsonb) AS o(outcome text, occurred_at timestamptz, reason text, note text, rep text, source text)
         ON CONFLICT DO NOTHING RETURNING outcome, occurred_at
       ), gone_wh AS (
         DELETE FROM webhook_deliveries x WHERE x.lead_id = $1 AND ${phantom('x')} AND x.status = 'pending' AND x.attempts = 0
           AND x.webhook_id NOT IN (SELECT h.webhook_id FROM jsonb_to_recordset($19::jsonb) AS h(webhook_id text))
         RETURNING 1
       ), wh AS (
         -- a stage change or an outcome goes out only when this statement stores it for the first time
         INSERT INTO webhook_deliveries (endpoint_id, webhook_id, lead_id, event_type, payload, run_id, run_version)
         SELECT h.endpoint_id, h.webhook_id, $1, h.event_type, h.payload, $17, $16
           FROM jsonb_to_recordset($19::jsonb) AS h(ord integer, endpoint_id text, webhook_id text, event_type text, payload text,
                                                    gate text, t_at timestamptz, t_from text, t_to text, o_outcome text, o_at timestamptz)
          WHERE h.gate = 'always'
             OR (h.gate = 'transition' AND EXISTS (SELECT 1 FROM tr WHERE tr.at = h.t_at AND tr.from_stage = h.t_from AND tr.to_stage = h.t_to))
             OR (h.gate = 'outcome' AND EXISTS (SELECT 1 FROM oc WHERE oc.outcome = h.o_outcome AND oc.occurred_at = h.o_at))
          ORDER BY h.ord
         ON CONFLICT DO NOTHING RETURNING 1
       ), dates AS (
         SELECT min(at) FILTER (WHERE to_stage = 'mql') AS mql, min(at) FILTER (WHERE to_stage = 'sql') AS sql,
                min(at) FILTER (WHERE to_stage = 'opportunity') AS opp, min(at) FILTER (WHERE to_stage = 'customer') AS cust
           FROM (SELECT x.at, x.to_stage FROM lead_transitions x WHERE x.lead_id = $1 AND NOT ${phantom('x')}
                 UNION ALL SELECT at, to_stage FROM batch_tr) y
       )
       INSERT INTO leads (lead_id, stage, consent, score, owner, campaign, channel, model, created_at, state, carried, version, updated_at,
                          became_mql_at, became_sql_at, became_opportunity_at, became_customer_at, run_id)
       SELECT $1, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, now(), dates.mql, dates.sql, dates.opp, dates.cust, $17 FROM dates
       ON CONFLICT (lead_id) DO UPDATE SET
         stage = excluded.stage, consent = excluded.consent, score = excluded.score, owner = excluded.owner,
         campaign = excluded.campaign, channel = excluded.channel, model = excluded.model, created_at = LEAST(leads.created_at, excluded.created_at),
         state = excluded.state, carried = COALESCE(excluded.carried, leads.carried), version = excluded.version, updated_at = now(),
         became_mql_at = excluded.became_mql_at, became_sql_at = excluded.became_sql_at,
         became_opportunity_at = excluded.became_opportunity_at, became_customer_at = excluded.became_customer_at,
         -- what the lead said before this run first wrote it: where a retried first task resumes
         run_origin = CASE WHEN excluded.run_id IS NULL OR leads.run_id IS NOT DISTINCT FROM excluded.run_id THEN leads.run_origin ELSE leads.carried END,
         run_id = COALESCE(excluded.run_id, leads.run_id)
       WHERE leads.version < excluded.version`,
      [
        b.leadId,
        json(
          b.events?.map((e) => ({
            event_id: e.eventId,
            type: e.type,
            occurred_at: e.occurredAt,
            applied_at: e.appliedAt ?? null,
            attributes: e.attributes ?? {},
          })),
        ),
        json(b.profileChanges?.map((p) => ({ applied_at: p.appliedAt, seq: p.seq, patch: p.patch }))),
        json(b.transitions?.map((t) => ({ at: t.at, from_stage: t.from, to_stage: t.to, reason: t.reason }))),
        json(
          b.outcomes?.map((o) => ({
            outcome: o.outcome,
            occurred_at: o.occurredAt,
            reason: o.reason ?? null,
            note: o.note ?? null,
            rep: o.rep ?? null,
            source: o.source ?? 'live',
          })),
        ),
        l.stage,
        l.consent,
        l.score,
        l.owner ?? null,
        l.campaign ?? null,
        l.channel ?? null,
        l.model ?? null,
        l.createdAt,
        JSON.stringify(l.state),
        l.carried === undefined ? null : JSON.stringify(l.carried),
        l.version,
        b.run?.id ?? null,
        b.run?.after ?? 0,
        json(
          b.webhooks?.map((h, ord) => ({
            ord,
            endpoint_id: h.endpointId,
            webhook_id: h.webhookId,
            event_type: h.eventType,
            payload: h.payload,
            gate: h.gate.kind,
            ...(h.gate.kind === 'transition' ? { t_at: h.gate.at, t_from: h.gate.from, t_to: h.gate.to } : {}),
            ...(h.gate.kind === 'outcome' ? { o_outcome: h.gate.outcome, o_at: h.gate.occurredAt } : {}),
          })),
        ),
      ],
    );
  }

  async lead(leadId: string): Promise<StoredLead | undefined> {
    const r = await this.pool.query('SELECT * FROM leads WHERE lead_id = $1', [leadId]);
    const row = r.rows[0];
    if (!row) return undefined;
    return {
      leadId: row.lead_id,
      stage: row.stage,
      consent: row.consent,
      score: row.score,
      owner: row.owner ?? undefined,
      campaign: row.campaign ?? undefined,
      channel: row.channel ?? undefined,
      model: row.model ?? undefined,
      createdAt: iso(row.created_at)!,
      state: row.state,
      carried: row.carried ?? undefined,
      version: Number(row.version),
      becameMqlAt: iso(row.became_mql_at),
      becameSqlAt: iso(row.became_sql_at),
      becameOpportunityAt: iso(row.became_opportunity_at),
      becameCustomerAt: iso(row.became_customer_at),
      updatedAt: iso(row.updated_at)!,
      ...(row.run_id ? { runId: row.run_id } : {}),
      ...(row.run_origin ? { runOrigin: row.run_origin } : {}),
    };
  }

  /** The latest state of each of `leadIds` the ledger has (one read for a page of leads: the console's queue). */
  async states(leadIds: readonly string[]): Promise<unknown[]> {
    const r = await this.pool.query('SELECT state FROM leads WHERE lead_id = ANY($1)', [leadIds]);
    return r.rows.map((row) => row.state);
  }

  /** Leads now in each stage. */
  async stageCounts(): Promise<Record<string, number>> {
    const r = await this.pool.query('SELECT stage, count(*)::int AS n FROM leads GROUP BY stage');
    return Object.fromEntries(r.rows.map((x) => [x.stage, x.n]));
  }

  /**
   * The cohort of leads whose first MQL date is in [since, until): how many reached sql,
   * opportunity, customer (ever), and the median days from MQL to sql and to customer; with `by`,
   * the same per group.
   */
  async cohorts(
    range: { since?: string; until?: string },
    by?: FunnelGroupBy,
  ): Promise<{ total: CohortCounts; groups: (CohortCounts & { key: string })[] }> {
    const where = ['became_mql_at IS NOT NULL'];
    const params: unknown[] = [];
    if (range.since) where.push(`became_mql_at >= $${params.push(range.since)}`);
    if (range.until) where.push(`became_mql_at < $${params.push(range.until)}`);
    const measures = `count(*)::int AS mqls, count(became_sql_at)::int AS sqls, count(became_opportunity_at)::int AS opportunities,
      count(became_customer_at)::int AS customers,
      percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM became_sql_at - became_mql_at) / 86400) AS median_sql,
      percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM became_customer_at - became_mql_at) / 86400) AS median_customer`;
    const counts = (row: Record<string, unknown>): CohortCounts => ({
      mqls: Number(row.mqls ?? 0),
      sqls: Number(row.sqls ?? 0),
      opportunities: Number(row.opportunities ?? 0),
      customers: Number(row.customers ?? 0),
      medianDaysMqlToSql: days(row.median_sql),
      medianDaysMqlToCustomer: days(row.median_customer),
    });
    const total = await this.pool.query(`SELECT ${measures} FROM leads WHERE ${where.join(' AND ')}`, params);
    if (!by) return { total: counts(total.rows[0] ?? {}), groups: [] };
    const grouped = await this.pool.query(
      `SELECT ${GROUP_EXPR[by]} AS key, ${measures} FROM leads WHERE ${where.join(' AND ')} GROUP BY 1 ORDER BY 2 DESC, 1`,
      params,
    );
    return {
      total: counts(total.rows[0] ?? {}),
      groups: grouped.rows.map((row) => ({ key: String(row.key), ...counts(row) })),
    };
  }

  /** The contract's `Funnel` (./funnel.ts): stages now, the cohort of [since, until), groups, cost per MQL. */
  funnel(q: FunnelQuery = {}, campaigns: CampaignCosts = {}): Promise<Funnel> {
    return ledgerFunnel(this, q, campaigns);
  }

  /** Leads by stage, owner, campaign, minimum score, in keyset pages of lead_id order (./search.ts). */
  search(q: LeadSearch = {}): Promise<LeadSearchPage> {
    return searchLeads(this.pool, q);
  }

  /** Every lead with a known outcome, its profile and its label for `outcome` (./training.ts): what `model train` learns from. */
  trainingRows(outcome: TrainingOutcome = 'won'): Promise<TrainingRow[]> {
    return trainingRows(this.pool, outcome);
  }

  /** A rep's latest sales decisions (the console's sales queue), newest first. Unindexed by rep: a scan of the outcomes. */
  async decisionsBy(
    rep: string,
    limit = 20,
  ): Promise<{ leadId: string; outcome: string; at: string; reason?: string; note?: string }[]> {
    const r = await this.pool.query(
      `SELECT lead_id, outcome, occurred_at, reason, note FROM lead_outcomes
        WHERE rep = $1 ORDER BY occurred_at DESC, lead_id LIMIT $2`,
      [rep, limit],
    );
    return r.rows.map((row) => ({
      leadId: row.lead_id,
      outcome: row.outcome,
      at: (row.occurred_at as Date).toISOString(),
      ...(row.reason ? { reason: row.reason } : {}),
      ...(row.note ? { note: row.note } : {}),
    }));
  }

  /** Everything recorded about one lead, in time order; `pageToken` continues where a page ended. */
  async timeline(
    leadId: string,
    o: { limit?: number; pageToken?: string } = {},
  ): Promise<{ entries: TimelineEntry[]; nextPageToken?: string }> {
    const limit = Math.min(Math.max(o.limit ?? 100, 1), 1000);
    const offset = o.pageToken ? decodeOffset(o.pageToken) : 0;
    const r = await this.pool.query(
      `SELECT * FROM (
         SELECT COALESCE(applied_at, occurred_at) AS at, 1 AS ord, event_id AS k, 'event' AS kind,
                jsonb_build_object('eventId', event_id, 'type', type, 'occurredAt', occurred_at, 'attributes', attributes - 'seq') AS body
           FROM lead_events WHERE lead_id = $1
         UNION ALL
         SELECT applied_at, 0, seq::text, 'profile', jsonb_build_object('patch', patch) FROM lead_profile_changes WHERE lead_id = $1
         UNION ALL
         SELECT at, 2, from_stage || '>' || to_stage, 'transition', jsonb_build_object('from', from_stage, 'to', to_stage, 'reason', reason)
           FROM lead_transitions WHERE lead_id = $1
         UNION ALL
         SELECT occurred_at, 3, outcome, 'outcome', jsonb_strip_nulls(jsonb_build_object('outcome', outcome, 'reason', reason, 'note', note, 'rep', rep, 'source', source))
           FROM lead_outcomes WHERE lead_id = $1
         UNION ALL
         SELECT COALESCE(sent_at, updated_at), 4, message_id, 'mail',
                jsonb_strip_nulls(jsonb_build_object('messageId', message_id, 'mailKind', kind, 'track', track, 'step', step, 'status', status))
           FROM mails WHERE lead_id = $1
       ) t ORDER BY at, ord, k LIMIT $2 OFFSET $3`,
      [leadId, limit + 1, offset],
    );
    const rows = r.rows.slice(0, limit);
    const entries = rows.map((row) => {
      const body = row.body as Record<string, unknown>;
      if (typeof body.occurredAt === 'string') body.occurredAt = new Date(body.occurredAt).toISOString();
      return { at: (row.at as Date).toISOString(), kind: row.kind, ...body } as TimelineEntry;
    });
    return { entries, ...(r.rows.length > limit ? { nextPageToken: encodeOffset(offset + limit) } : {}) };
  }

  // ---- suppression by address ------------------------------------------------------------------

  /** Adds the address; true when it was not on the list (a second add keeps the first reason). */
  async suppress(address: string, reason: string, leadId?: string): Promise<boolean> {
    const r = await this.pool.query(
      'INSERT INTO suppressions (address, reason, lead_id) VALUES ($1, $2, $3) ON CONFLICT (address) DO NOTHING',
      [normalizeAddress(address), reason, leadId ?? null],
    );
    return (r.rowCount ?? 0) > 0;
  }

  /** Takes the address off the list: its plain entry and the hashed one an erasure left (./erasure.ts). */
  async unsuppress(address: string): Promise<boolean> {
    const r = await this.pool.query('DELETE FROM suppressions WHERE address = ANY($1::text[])', [
      await this.addressKeys(address),
    ]);
    return (r.rowCount ?? 0) > 0;
  }

  async isSuppressed(address: string): Promise<boolean> {
    return (await this.suppression(address)) !== undefined;
  }

  /**
   * The address's entry on the list, if it is on it: as given (normalized), or as the salted hash an
   * erasure left (./erasure.ts), under any lead id. The plain entry first when there are both.
   */
  async suppression(address: string): Promise<Suppression | undefined> {
    const r = await this.pool.query(
      'SELECT * FROM suppressions WHERE address = ANY($1::text[]) ORDER BY starts_with(address, $2)',
      [await this.addressKeys(address), HASHED_PREFIX],
    );
    return r.rows[0] ? suppressionRow(r.rows[0]) : undefined;
  }

  /** The keys an address may be on the list under: itself, normalized, and its salted hash. */
  private async addressKeys(address: string): Promise<string[]> {
    return [normalizeAddress(address), await hashedAddress(this.pool, address)];
  }

  async suppressions(): Promise<Suppression[]> {
    const r = await this.pool.query('SELECT * FROM suppressions ORDER BY created_at, address');
    return r.rows.map(suppressionRow);
  }

  /** A page of the list in address order, after `after` (the last address of the page before). */
  async suppressionPage(o: { limit: number; after?: string }): Promise<{ entries: Suppression[]; more: boolean }> {
    const r = await this.pool.query('SELECT * FROM suppressions WHERE address > $1 ORDER BY address LIMIT $2', [
      o.after ?? '',
      o.limit + 1,
    ]);
    return { entries: r.rows.slice(0, o.limit).map(suppressionRow), more: r.rows.length > o.limit };
  }

  /** The lead's most recent event ids, oldest first (what a run recovered from the ledger remembers). */
  async recentEventIds(leadId: string, limit: number, o: { exceptRun?: string } = {}): Promise<string[]> {
    const r = await this.pool.query(
      `SELECT event_id FROM (SELECT event_id, applied_at, occurred_at FROM lead_events WHERE lead_id = $1 AND run_id IS DISTINCT FROM $3
         ORDER BY applied_at DESC NULLS LAST, occurred_at DESC LIMIT $2) t ORDER BY applied_at NULLS FIRST, occurred_at`,
      [leadId, limit, o.exceptRun ?? null],
    );
    return r.rows.map((x) => x.event_id as string);
  }

  private async transaction<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN');
      const result = await fn(c);
      await c.query('COMMIT');
      return result;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      c.release();
    }
  }
}

export interface Suppression {
  address: string;
  reason: string;
  leadId?: string;
  createdAt: string;
}
const suppressionRow = (x: Record<string, unknown>): Suppression => ({
  address: x.address as string,
  reason: x.reason as string,
  ...(x.lead_id ? { leadId: x.lead_id as string } : {}),
  createdAt: iso(x.created_at as Date)!,
});

/** Addresses compare case-insensitively (the domain is; providers treat the local part so too). */
export const normalizeAddress = (address: string) => address.trim().toLowerCase();

/** A lead's stage dates are the first time it reached each stage, from its recorded transitions. */
async function refreshStageDates(c: pg.PoolClient, leadId: string): Promise<void> {
  await c.query(
    `UPDATE leads l SET became_mql_at = t.mql, became_sql_at = t.sql, became_opportunity_at = t.opp, became_customer_at = t.cust
       FROM (SELECT min(at) FILTER (WHERE to_stage = 'mql') AS mql, min(at) FILTER (WHERE to_stage = 'sql') AS sql,
                    min(at) FILTER (WHERE to_stage = 'opportunity') AS opp, min(at) FILTER (WHERE to_stage = 'customer') AS cust
               FROM lead_transitions WHERE lead_id = $1) t
      WHERE l.lead_id = $1`,
    [leadId],
  );
}

const encodeOffset = (n: number) => Buffer.from(`o:${n}`).toString('base64url');
function decodeOffset(token: string): number {
  const m = /^o:(\d{1,9})$/.exec(Buffer.from(token, 'base64url').toString());
  if (!m) throw Object.assign(new Error('pageToken is not one this server gave out'), { code: 'bad_page_token' });
  return Number(m[1]);
}
