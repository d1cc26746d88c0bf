/**
 * Client-side operations on leads, shared by the HTTP API, leadctl, the bench and the tests.
 * Every input is validated here with the same zod schemas the workflow uses, so bad input is
 * refused before it reaches Temporal; errors carry an HTTP-like status and the bad fields.
 */
import {
  type Client, WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, WorkflowUpdateFailedError,
} from '@temporalio/client';
import { z } from 'zod';
import { type Config, knownEventTypes } from './domain/config.js';
import {
  CONTROL_CHARS, formatIssues, type LeadEvent, leadEventSchema, leadIdSchema, type LeadInput, leadInputSchema, type LeadStart,
  type LeadState, leadIdOfWorkflowId, type Profile, profileSchema, type SalesOutcome, salesOutcomeSchema, STAGES, workflowIdFor,
} from './domain/lead.js';
import {
  eventSignal, LeadBecameMqlAt, LeadBecameSqlAt, LeadCampaign, LeadOwner, LeadScore, LeadStage, profileSignal,
  salesOutcomeUpdate, STATE_MEMO, stateQuery, WORKFLOW_TYPE,
} from '../workflows/defs.js';
import type { leadWorkflow } from '../workflows/lead.js';
import type { LeadLedger } from './ledger/ledger.js';
import { decodeSearchAttributes } from '@temporalio/common/lib/converter/payload-search-attributes.js';

/** A lead's state as read by getState; `workflowTask` only while its workflow task keeps failing. */
export type LeadStateRead = LeadState & { workflowTask?: WorkflowTaskProblem };
export interface WorkflowTaskProblem { failing: true; attempts: number; since?: string }

/** How many times (50 ms apart) getState reads the memo of a run that has not published one yet. */
const MEMO_RETRIES = 20;
/** How many times (50 ms apart) getState waits for a pending workflow task before answering the memo as it is. */
const PENDING_RETRIES = 40;
/** How long (in 50 ms reads) a run with no completed workflow task may take before getState answers 503. */
const STARTING_RETRIES = 200;

/**
 * A pending workflow task on its second attempt or later means the last one failed (or timed
 * out): a killed worker's task is retried once its timeout passes, a wedged lead's never stops.
 */
function failingTask(p: { attempt?: number | null; originalScheduledTime?: { seconds?: unknown; nanos?: number | null } | null } | null | undefined): WorkflowTaskProblem | undefined {
  if (!p || (p.attempt ?? 1) < 2) return undefined;
  const seconds = Number(p.originalScheduledTime?.seconds ?? 0);
  const since = seconds ? new Date(seconds * 1000 + Math.floor((p.originalScheduledTime?.nanos ?? 0) / 1e6)).toISOString() : undefined;
  return { failing: true, attempts: p.attempt!, ...(since ? { since } : {}) };
}

const isNotFound = (err: unknown) => err instanceof WorkflowNotFoundError || (err as { code?: number })?.code === 5;
const notFoundError = (leadId: string) => new LeadError(404, 'not_found', `lead ${leadId} not found (no workflow ${workflowIdFor(leadId)} and nothing in the ledger)`);

/**
 * A database error that says the server is away (refused, reset, timed out, shutting down), not
 * that the query was wrong: node's socket codes, pg's connection timeout, PostgreSQL's class 08
 * (connection exception) and 57P (operator intervention: shutdown, crash recovery).
 */
export function isDatabaseDown(err: unknown): boolean {
  const e = err as { code?: string; message?: string } | undefined;
  if (!e) return false;
  if (typeof e.code === 'string' && (/^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|EHOSTUNREACH|EAI_AGAIN)$/.test(e.code) || /^(08|57P)/.test(e.code))) return true;
  return /timeout exceeded when trying to connect|Connection terminated|connection to server|Client has encountered a connection error/i.test(e.message ?? '');
}

export class LeadError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly issues?: { path: string; message: string }[]) {
    super(message);
    this.name = 'LeadError';
  }
}

export function validate<T extends z.core.$ZodType>(schema: T, value: unknown, what: string, prefix: (string | number)[] = []): z.output<T> {
  const r = z.safeParse(schema, value);
  if (!r.success) {
    const issues = formatIssues(r.error, prefix);
    throw new LeadError(400, 'invalid_input', `invalid ${what}: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues);
  }
  return r.data;
}

export const MAX_EVENTS_PER_REQUEST = 500;

export interface SearchParams { stage?: string; owner?: string; campaign?: string; minScore?: number; limit?: number; pageToken?: string }
export interface LeadSummary { leadId: string; stage?: string; score?: number; owner?: string; campaign?: string; becameMqlAt?: string; becameSqlAt?: string; status: string }

/** Every lead's latest run (a continued-as-new run is superseded by its successor). */
const LEADS = `WorkflowType = '${WORKFLOW_TYPE}' AND ExecutionStatus != 'ContinuedAsNew'`;
const quote = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

export class LeadService {
  /** `ledger`: the lead ledger (src/ledger/ledger.ts), read for state, search, funnel and timeline. */
  constructor(readonly client: Client, readonly taskQueue: string, readonly config: Config, public ledger?: LeadLedger) {}

  private handle(leadId: string) {
    return this.client.workflow.getHandle<typeof leadWorkflow>(workflowIdFor(validate(leadIdSchema, leadId, 'leadId', ['leadId'])));
  }

  private checkType(ev: LeadEvent, prefix: (string | number)[]) {
    const known = knownEventTypes(this.config);
    if (!known.includes(ev.type)) {
      throw new LeadError(400, 'unknown_event_type', `unknown event type "${ev.type}"`, [{ path: [...prefix, 'type'].join('.'), message: `unknown event type "${ev.type}"; known: ${known.join(', ')}` }]);
    }
  }

  /** Creates a lead, or updates the profile of an existing one. */
  async upsertLead(raw: unknown): Promise<{ created: boolean; leadId: string }> {
    const input: LeadInput = validate(leadInputSchema, raw, 'lead');
    try {
      await this.client.workflow.start<typeof leadWorkflow>(WORKFLOW_TYPE, {
        taskQueue: this.taskQueue, workflowId: workflowIdFor(input.leadId), args: [input, {}], workflowIdConflictPolicy: 'FAIL',
        ...this.startAttributes(input),
      });
      return { created: true, leadId: input.leadId };
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    }
    const { leadId, campaign: _c, channel: _ch, consent: _co, ...profile } = input;
    await this.handle(leadId).signal(profileSignal, profile);
    return { created: false, leadId };
  }

  private startAttributes(input: LeadStart) {
    return {
      typedSearchAttributes: [
        { key: LeadStage, value: 'lead' },
        ...(input.campaign ? [{ key: LeadCampaign, value: input.campaign }] : []),
      ],
    };
  }

  /** Validates a batch of events in full before sending any; then signal-with-starts each. */
  validateEvents(raw: unknown): LeadEvent[] {
    const list = Array.isArray(raw) ? raw : [raw];
    if (list.length === 0) throw new LeadError(400, 'invalid_input', 'no events given', [{ path: '(root)', message: 'expected one event or a non-empty array' }]);
    if (list.length > MAX_EVENTS_PER_REQUEST) {
      throw new LeadError(413, 'too_many_events', `at most ${MAX_EVENTS_PER_REQUEST} events per request, got ${list.length}`);
    }
    return list.map((item, i) => {
      const prefix = Array.isArray(raw) ? [i] : [];
      const ev = validate(leadEventSchema, item, 'event', prefix);
      this.checkType(ev, prefix);
      return ev;
    });
  }

  async sendEvents(raw: unknown, concurrency = 32): Promise<{ accepted: number }> {
    const events = this.validateEvents(raw);
    let next = 0;
    const worker = async () => {
      while (next < events.length) await this.sendEvent(events[next++]!);
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, events.length) }, worker));
    return { accepted: events.length };
  }

  /** One event, by signal-with-start: an event for an unknown (or finished) lead starts its run. */
  async sendEvent(ev: LeadEvent): Promise<void> {
    const start: LeadStart = { leadId: ev.leadId, ...ev.profile, ...(ev.email ? { email: ev.email } : {}), ...(ev.campaign ? { campaign: ev.campaign } : {}), ...(ev.channel ? { channel: ev.channel } : {}) };
    await this.client.workflow.signalWithStart<typeof leadWorkflow, [LeadEvent]>(WORKFLOW_TYPE, {
      taskQueue: this.taskQueue, workflowId: workflowIdFor(ev.leadId), args: [start, {}],
      signal: eventSignal, signalArgs: [ev], ...this.startAttributes(start),
    });
  }

  async patchProfile(leadId: string, raw: unknown): Promise<void> {
    const profile: Profile = validate(profileSchema, raw, 'profile');
    await this.notFound(leadId, () => this.handle(leadId).signal(profileSignal, profile));
  }

  async salesOutcome(leadId: string, raw: unknown): Promise<LeadState> {
    const outcome: SalesOutcome = validate(salesOutcomeSchema, raw, 'sales outcome');
    try {
      return await this.notFound(leadId, () => this.handle(leadId).executeUpdate(salesOutcomeUpdate, { args: [outcome] }));
    } catch (err) {
      if (err instanceof WorkflowUpdateFailedError) {
        throw new LeadError(409, 'wrong_stage', err.cause?.message ?? err.message);
      }
      throw err;
    }
  }

  /**
   * The lead's state as its loop last published it in the memo, read with describe: no worker and
   * no replay needed (a query lands on a worker, and one landing on an evicted lead with newer
   * signals could wedge it). A run whose first task is not done yet has no memo state: retried
   * briefly; a run started before the memo existed never gets one: answered by the `state` query.
   * While a workflow task is pending (facts accepted, not yet applied) it waits up to 2 s for it,
   * then answers the memo as it is (a busy lead may always have one). Describe also says when the
   * lead's workflow task keeps failing: `workflowTask` in the answer.
   */
  async getState(leadId: string): Promise<LeadStateRead> {
    const handle = this.handle(leadId);
    for (let attempt = 0; ; attempt++) {
      let d;
      try {
        d = await handle.describe();
      } catch (err) {
        if (!isNotFound(err)) throw err;
        // No workflow (deleted by retention or by hand): the ledger still knows the lead.
        const kept = await this.ledgerState(leadId);
        if (kept) return kept;
        throw notFoundError(leadId);
      }
      const pending = d.raw.pendingWorkflowTask;
      const failing = failingTask(pending);
      // A pending workflow task carries facts accepted but not yet applied (an event just sent):
      // wait a moment for it, so a read after a write sees the write, as the query did.
      if (pending && !failing && attempt < PENDING_RETRIES) {
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      // Runs with the ledger publish there (a task completes only after its write), runs from
      // before it in the memo (a run continued from one inherits its memo: the ledger comes first).
      const state = (await this.ledgerState(leadId)) ?? (d.memo?.[STATE_MEMO] as LeadState | undefined);
      if (state) return failing ? { ...state, workflowTask: failing } : state;
      // No state in the memo: a run that has completed a workflow task without publishing one was
      // started by code from before the memo (only those are queried); a new run is still starting.
      if (failing || (attempt >= MEMO_RETRIES && await this.completedATask(d.workflowId, d.runId))) {
        try {
          const queried = await handle.query(stateQuery);
          return failing ? { ...queried, workflowTask: failing } : queried;
        } catch (err) {
          if (failing) throw new LeadError(503, 'workflow_task_failing', `lead ${leadId} is not answering: its workflow task failed ${failing.attempts} times since ${failing.since ?? 'its start'}`);
          throw err;
        }
      }
      if (attempt >= STARTING_RETRIES) throw new LeadError(503, 'lead_starting', `lead ${leadId} is starting: its first workflow task has not completed yet; try again in a moment`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** The lead's latest state in the ledger, if it has one; a ledger that is away is a 503. */
  private async ledgerState(leadId: string): Promise<LeadState | undefined> {
    if (!this.ledger) return undefined;
    const row = await this.fromLedger(() => this.ledger!.lead(leadId));
    return row?.state as LeadState | undefined;
  }

  /** Runs a ledger read; a database that cannot be reached is a 503 the caller may retry. */
  async fromLedger<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (isDatabaseDown(err)) throw new LeadError(503, 'ledger_unavailable', `the lead ledger's database is not reachable: ${(err as Error).message}`);
      throw err;
    }
  }

  /** Whether the run's history has a completed workflow task (first page only: it comes early). */
  private async completedATask(workflowId: string, runId: string): Promise<boolean> {
    const page = await this.client.workflowService.getWorkflowExecutionHistory({
      namespace: this.client.options.namespace, execution: { workflowId, runId }, maximumPageSize: 100,
    });
    return (page.history?.events ?? []).some((e) => e.workflowTaskCompletedEventAttributes);
  }

  private async notFound<T>(leadId: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (isNotFound(err)) throw notFoundError(leadId);
      throw err;
    }
  }

  /** Visibility query over the search attributes; only a lead's latest run is listed. */
  searchQuery(p: SearchParams): string {
    const parts = [LEADS];
    if (p.stage) {
      if (!(STAGES as readonly string[]).includes(p.stage)) throw new LeadError(400, 'invalid_input', `unknown stage ${p.stage}`, [{ path: 'stage', message: `must be one of ${STAGES.join(', ')}` }]);
      parts.push(`LeadStage = ${quote(p.stage)}`);
    }
    // A control character (NUL above all) in a visibility query makes Temporal fail it in ways its
    // client retries for ~20 s: refuse it here, before any round trip.
    for (const field of ['owner', 'campaign'] as const) {
      const v = p[field];
      if (v !== undefined && (CONTROL_CHARS.test(v) || v.length > 320)) {
        throw new LeadError(400, 'invalid_input', `invalid ${field}: must be at most 320 characters, without control characters`, [{ path: field, message: 'must be at most 320 characters, without control characters' }]);
      }
    }
    if (p.owner) parts.push(`LeadOwner = ${quote(p.owner)}`);
    if (p.campaign) parts.push(`LeadCampaign = ${quote(p.campaign)}`);
    if (p.minScore !== undefined) parts.push(`LeadScore >= ${Math.trunc(p.minScore)}`);
    return parts.join(' AND ');
  }

  async search(p: SearchParams): Promise<{ leads: LeadSummary[]; nextPageToken?: string }> {
    const query = this.searchQuery(p);
    if (p.pageToken !== undefined && !/^[A-Za-z0-9_-]{1,4096}$/.test(p.pageToken)) {
      throw new LeadError(400, 'invalid_input', 'invalid pageToken: must be a nextPageToken from an earlier answer', [{ path: 'pageToken', message: 'must be a nextPageToken from an earlier answer' }]);
    }
    let res;
    try {
      res = await this.client.workflowService.listWorkflowExecutions({
        namespace: this.client.options.namespace,
        query,
        pageSize: Math.min(Math.max(p.limit ?? 50, 1), 1000),
        nextPageToken: p.pageToken ? Buffer.from(p.pageToken, 'base64url') : undefined,
      });
    } catch (err) {
      // INVALID_ARGUMENT: the server could not use the page token (the query itself is built here and valid).
      if ((err as { code?: number })?.code === 3 && p.pageToken) {
        throw new LeadError(400, 'invalid_input', 'invalid pageToken: Temporal refused it; use the nextPageToken of an answer to the same search', [{ path: 'pageToken', message: 'not a page of this search' }]);
      }
      throw err;
    }
    const leads = (res.executions ?? []).map((e): LeadSummary => {
      const sa = decodeSearchAttributes(e.searchAttributes?.indexedFields) as Record<string, unknown[]>;
      const first = (k: string) => sa[k]?.[0];
      const date = (k: string) => (first(k) instanceof Date ? (first(k) as Date).toISOString() : undefined);
      return {
        leadId: leadIdOfWorkflowId(e.execution!.workflowId!),
        stage: first(LeadStage.name) as string | undefined,
        score: first(LeadScore.name) as number | undefined,
        owner: first(LeadOwner.name) as string | undefined,
        campaign: first(LeadCampaign.name) as string | undefined,
        becameMqlAt: date(LeadBecameMqlAt.name),
        becameSqlAt: date(LeadBecameSqlAt.name),
        status: ['unspecified', 'running', 'completed', 'failed', 'canceled', 'terminated', 'continued_as_new', 'timed_out'][e.status ?? 0] ?? 'unknown',
      };
    });
    const token = res.nextPageToken?.length ? Buffer.from(res.nextPageToken).toString('base64url') : undefined;
    return { leads, ...(token ? { nextPageToken: token } : {}) };
  }

  private async count(query: string): Promise<number> {
    const r = await this.client.workflow.count(query);
    return r.count;
  }

  /**
   * Funnel figures from the same search attributes ops filter on: leads per stage (created in the
   * window), MQL-to-SQL conversion, and per campaign leads, MQLs, SQLs and cost per MQL.
   */
  async funnel(range: { since?: string; until?: string }) {
    const base = LEADS;
    const within = (field: string) => [
      range.since ? `${field} >= ${quote(range.since)}` : undefined,
      range.until ? `${field} < ${quote(range.until)}` : undefined,
    ].filter(Boolean).join(' AND ');
    const and = (...xs: (string | undefined)[]) => xs.filter((x) => x).join(' AND ');
    const created = within('StartTime');
    const stages = Object.fromEntries(await Promise.all(STAGES.map(async (s) => [s, await this.count(and(base, created, `LeadStage = '${s}'`))] as const)));
    const mqls = await this.count(and(base, `LeadBecameMqlAt IS NOT NULL`, within('LeadBecameMqlAt')));
    const sqls = await this.count(and(base, `LeadBecameSqlAt IS NOT NULL`, within('LeadBecameSqlAt')));
    const campaigns = Object.fromEntries(await Promise.all(Object.entries(this.config.campaigns).map(async ([id, c]) => {
      const q = and(base, `LeadCampaign = ${quote(id)}`);
      const [leads, cm, cs] = await Promise.all([
        this.count(and(q, created)),
        this.count(and(q, `LeadBecameMqlAt IS NOT NULL`, within('LeadBecameMqlAt'))),
        this.count(and(q, `LeadBecameSqlAt IS NOT NULL`, within('LeadBecameSqlAt'))),
      ]);
      return [id, { leads, mqls: cm, sqls: cs, cost: c.cost, costPerMql: cm ? Math.round((c.cost / cm) * 100) / 100 : null }] as const;
    })));
    return {
      since: range.since ?? null, until: range.until ?? null,
      stages, mqls, sqls, mqlToSqlRate: mqls ? Math.round((sqls / mqls) * 10_000) / 10_000 : null, campaigns,
    };
  }
}
