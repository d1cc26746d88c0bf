/**
 * Search over the ledger's leads (CONTRACT.md "HTTP API", `GET /v1/leads`): every lead ever
 * recorded, a closed run's included, filtered by stage, owner, first-touch campaign, scoring model
 * and a minimum score, in lead_id order, in keyset pages.
 *
 * The score is the lead's total as of its last recorded change (the ledger is written on changes,
 * so decay since then is not in it), the same figure Temporal's LeadScore attribute holds.
 *
 * A page token is base64url of `k1:<fingerprint of the filters>:<last lead_id of the page>`: the
 * next page is the leads after that id, found by an index range read (migrations/*_lead-search),
 * so a page costs the same on the first page and the thousandth, and a lead written between two
 * pages is neither skipped nor repeated if its id comes later. A token that is not one this search
 * gave out (garbage, another search's) throws an error with code `bad_page_token`.
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import type { Stage } from '../domain/stages.js';

export interface LeadSearch {
  stage?: string;
  owner?: string;
  campaign?: string;
  minScore?: number;
  /** The id of the scoring model that scores the lead (its state's score.model). */
  model?: string;
  /** 1..1000 (clamped), default 50. */
  limit?: number;
  /** The nextPageToken of an earlier answer to the same search. */
  pageToken?: string;
}

export interface LeadSearchHit {
  leadId: string;
  stage: Stage;
  score: number;
  owner?: string;
  campaign?: string;
  becameMqlAt?: string;
  becameSqlAt?: string;
  consent: string;
}

export interface LeadSearchPage {
  leads: LeadSearchHit[];
  /** Present when there are more leads; absent on the last page. */
  nextPageToken?: string;
}

const TOKEN_VERSION = 'k1';

/** The filters a token belongs to (empty strings are no filter, as in the Temporal search). */
function filters(q: LeadSearch) {
  return {
    stage: q.stage || undefined,
    owner: q.owner || undefined,
    campaign: q.campaign || undefined,
    minScore: q.minScore === undefined ? undefined : Math.trunc(q.minScore),
    model: q.model || undefined,
  };
}

const fingerprint = (f: ReturnType<typeof filters>) =>
  createHash('sha256')
    .update(
      JSON.stringify([
        f.stage ?? null,
        f.owner ?? null,
        f.campaign ?? null,
        f.minScore ?? null,
        // Only when set: a search without it keeps the fingerprint (and the tokens) it had before.
        ...(f.model === undefined ? [] : [f.model]),
      ]),
    )
    .digest('base64url')
    .slice(0, 12);

export const badPageToken = () =>
  Object.assign(new Error('pageToken is not one this server gave out for this search'), { code: 'bad_page_token' });

export function encodeSearchToken(q: LeadSearch, lastLeadId: string): string {
  return Buffer.from(`${TOKEN_VERSION}:${fingerprint(filters(q))}:${lastLeadId}`).toString('base64url');
}

/** The lead_id a page token continues after; throws `bad_page_token` for any other string. */
export function decodeSearchToken(q: LeadSearch, token: string): string {
  if (!/^[A-Za-z0-9_-]{1,2048}$/.test(token)) throw badPageToken();
  const text = Buffer.from(token, 'base64url').toString();
  const prefix = `${TOKEN_VERSION}:${fingerprint(filters(q))}:`;
  // base64url decoding skips what it cannot read: only a token that encodes back to itself is ours.
  if (!text.startsWith(prefix) || text.length === prefix.length || Buffer.from(text).toString('base64url') !== token)
    throw badPageToken();
  return text.slice(prefix.length);
}

export async function searchLeads(pool: pg.Pool, q: LeadSearch = {}): Promise<LeadSearchPage> {
  const f = filters(q);
  if (f.minScore !== undefined && !Number.isFinite(f.minScore)) {
    throw Object.assign(new Error('minScore must be a number'), { code: 'invalid_input' });
  }
  const limit = Math.min(Math.max(Math.trunc(q.limit ?? 50) || 1, 1), 1000);
  const after = q.pageToken === undefined ? undefined : decodeSearchToken(q, q.pageToken);
  const where: string[] = [];
  const params: unknown[] = [];
  if (f.stage !== undefined) where.push(`stage = $${params.push(f.stage)}`);
  if (f.owner !== undefined) where.push(`owner = $${params.push(f.owner)}`);
  if (f.campaign !== undefined) where.push(`campaign = $${params.push(f.campaign)}`);
  if (f.minScore !== undefined) where.push(`score >= $${params.push(f.minScore)}`);
  // The model column is the state's score.model (workflows/lead/ledger-journal.ts). Not indexed: a page
  // walks lead_id order past the other models' leads, fine while a model is not a rare few.
  if (f.model !== undefined) where.push(`model = $${params.push(f.model)}`);
  if (after !== undefined) where.push(`lead_id > $${params.push(after)}`);
  const r = await pool.query(
    `SELECT lead_id, stage, score, owner, campaign, became_mql_at, became_sql_at, consent FROM leads
      ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY lead_id LIMIT $${params.push(limit + 1)}`,
    params,
  );
  const leads = r.rows.slice(0, limit).map((row): LeadSearchHit => ({
    leadId: row.lead_id,
    stage: row.stage,
    score: row.score,
    ...(row.owner === null ? {} : { owner: row.owner }),
    ...(row.campaign === null ? {} : { campaign: row.campaign }),
    ...(row.became_mql_at === null ? {} : { becameMqlAt: (row.became_mql_at as Date).toISOString() }),
    ...(row.became_sql_at === null ? {} : { becameSqlAt: (row.became_sql_at as Date).toISOString() }),
    consent: row.consent,
  }));
  return {
    leads,
    ...(r.rows.length > limit ? { nextPageToken: encodeSearchToken(q, leads[leads.length - 1]!.leadId) } : {}),
  };
}
