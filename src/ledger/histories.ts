/**
 * Leads' recorded lives as the replay takes them (src/domain/replay.ts), read in keyset pages of
 * lead ids: what-if over every lead, a rollout's re-score over one. Each page is five statements
 * (leads, then their events, profile changes, outcomes and transitions) whatever its size.
 */
import type pg from 'pg';
import type { EventFact } from '../domain/lifecycle.js';
import type { Profile, SalesOutcome } from '../domain/lead.js';
import type { LeadHistory, RecordedFact } from '../domain/replay.js';
import type { Stage } from '../domain/stages.js';

/** The live lead beside its history: what the self-check compares the replay with. */
export interface LiveLead {
  stage: Stage;
  score: number;
  /** When the lead's loop last wrote it (its clock): the moment the live score is of. */
  at: number;
  configVersion: string;
  model?: string;
  /** Sales outcomes recorded (live or imported): won, lost, accepted, rejected. */
  outcomes: string[];
  /** Whether the lead's history includes imported facts, which the replay does not re-apply. */
  imported: boolean;
}

export interface HistoryPage {
  leads: { history: LeadHistory; live: LiveLead }[];
  /** The last lead id of the page, to continue after; absent at the end. */
  next?: string;
}

const ms = (d: Date | string) => (d instanceof Date ? d.getTime() : Date.parse(d));

/** The order the lead applied its events in (the replay's and a rollout's re-score). */
// Byte order of ids (COLLATE "C"), as the replay compares them in JS: a locale collation would differ.
const EVENT_ORDER = `applied_at NULLS FIRST, (attributes->>'seq')::int NULLS FIRST, event_id COLLATE "C"`;

/** One event row as the model takes it. */
function eventFact(r: Record<string, unknown>): EventFact {
  const a = (r.attributes ?? {}) as Record<string, unknown>;
  return {
    eventId: r.event_id as string,
    type: r.type as string,
    occurredAt: ms(r.occurred_at as Date),
    ...(typeof a.campaign === 'string' ? { campaign: a.campaign } : {}),
    ...(typeof a.channel === 'string' ? { channel: a.channel } : {}),
    ...(typeof a.email === 'string' ? { email: a.email } : {}),
    ...(a.profile && typeof a.profile === 'object' ? { profile: a.profile as Profile } : {}),
  };
}

/** A page of leads (lead id order, after `after`), each with its history. */
export async function histories(pool: pg.Pool, o: { after?: string; limit?: number } = {}): Promise<HistoryPage> {
  const limit = Math.min(Math.max(o.limit ?? 1000, 1), 10_000);
  const leads = await pool.query(
    `SELECT lead_id, created_at, campaign, channel, stage, score, version, model, state->>'configVersion' AS config_version
       FROM leads WHERE lead_id > $1 ORDER BY lead_id LIMIT $2`,
    [o.after ?? '', limit],
  );
  if (!leads.rows.length) return { leads: [] };
  const ids = leads.rows.map((r) => r.lead_id as string);
  const [events, profiles, outcomes, transitions] = await Promise.all([
    pool.query(`SELECT * FROM lead_events WHERE lead_id = ANY($1) ORDER BY lead_id, ${EVENT_ORDER}`, [ids]),
    pool.query('SELECT * FROM lead_profile_changes WHERE lead_id = ANY($1) ORDER BY lead_id, applied_at, seq', [ids]),
    pool.query('SELECT * FROM lead_outcomes WHERE lead_id = ANY($1) ORDER BY lead_id, occurred_at', [ids]),
    pool.query('SELECT * FROM lead_transitions WHERE lead_id = ANY($1) ORDER BY lead_id, at', [ids]),
  ]);
  const byLead = <T>(rows: Record<string, unknown>[], f: (r: Record<string, unknown>) => T) => {
    const m = new Map<string, T[]>();
    for (const r of rows) {
      const k = r.lead_id as string;
      const list = m.get(k);
      if (list) list.push(f(r));
      else m.set(k, [f(r)]);
    }
    return m;
  };
  const eventRows = byLead(events.rows, (r) => r);
  const profileRows = byLead(profiles.rows, (r) => r);
  const outcomeRows = byLead(outcomes.rows, (r) => r);
  const transitionRows = byLead(transitions.rows, (r) => ({
    at: ms(r.at as Date),
    from: r.from_stage as Stage,
    to: r.to_stage as Stage,
    reason: r.reason as string,
  }));

  const page = leads.rows.map((l) => {
    const leadId = l.lead_id as string;
    const createdAt = ms(l.created_at as Date);
    const facts: RecordedFact[] = [];
    let start: Profile = {};
    let imported = false;
    for (const r of profileRows.get(leadId) ?? []) {
      const at = ms(r.applied_at as Date);
      // The run's start input (ledger-journal.ts `started`): seq 0 at the lead's creation.
      if (r.seq === 0 && at === createdAt) start = r.patch as Profile;
      else facts.push({ kind: 'profile', at, seq: r.seq as number, patch: r.patch as Profile });
    }
    for (const r of eventRows.get(leadId) ?? []) {
      if (!r.applied_at) {
        imported = true; // an imported event: history from before the engine, not applied by a run
        continue;
      }
      const seq = Number((r.attributes as Record<string, unknown> | null)?.seq ?? 0);
      facts.push({ kind: 'event', at: ms(r.applied_at as Date), seq, event: eventFact(r) });
    }
    const outcomesOf: string[] = [];
    for (const r of outcomeRows.get(leadId) ?? []) {
      outcomesOf.push(r.outcome as string);
      if (r.source !== 'live') {
        imported = true;
        continue;
      }
      const outcome = {
        outcome: r.outcome,
        ...(r.reason ? { reason: r.reason } : {}),
        ...(r.note ? { note: r.note } : {}),
        ...(r.rep ? { rep: r.rep } : {}),
      } as SalesOutcome;
      facts.push({ kind: 'outcome', at: ms(r.occurred_at as Date), seq: 0, outcome });
    }
    const recorded = transitionRows.get(leadId) ?? [];
    if (recorded.some((t) => t.reason === 'imported')) imported = true;
    const history: LeadHistory = {
      leadId,
      createdAt,
      start,
      ...(l.campaign ? { campaign: l.campaign as string } : {}),
      ...(l.channel ? { channel: l.channel as string } : {}),
      facts,
      transitions: recorded,
    };
    const live: LiveLead = {
      stage: l.stage as Stage,
      score: Number(l.score),
      at: Math.floor(Number(l.version) / 1000),
      configVersion: (l.config_version as string | null) ?? '',
      ...(l.model ? { model: l.model as string } : {}),
      outcomes: outcomesOf,
      imported,
    };
    return { history, live };
  });
  return { leads: page, ...(page.length === limit ? { next: ids[ids.length - 1] } : {}) };
}

/** One lead's events in the order it applied them: what a rollout re-scores it from. */
export async function leadEvents(pool: pg.Pool, leadId: string): Promise<EventFact[]> {
  const r = await pool.query(
    `SELECT * FROM lead_events WHERE lead_id = $1 AND applied_at IS NOT NULL ORDER BY ${EVENT_ORDER}`,
    [leadId],
  );
  return r.rows.map(eventFact);
}
