/**
 * Client-side operations on leads, shared by the HTTP API, leadctl, the bench and the tests.
 * Every input is validated here with the same zod schemas the workflow uses, so bad input is
 * refused before it reaches Temporal; errors carry an HTTP-like status and the bad fields.
 */
import {
  type Client,
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
} from '@temporalio/client';
import { z } from 'zod';
import { type Config, knownEventTypes } from './domain/config.js';
import {
  CONTROL_CHARS,
  formatIssues,
  type ImportedFact,
  importedFactSchema,
  type LeadEvent,
  leadEventSchema,
  leadIdSchema,
  type LeadInput,
  leadInputSchema,
  type LeadStart,
  type LeadState,
  type Profile,
  profileLimitProblem,
  profileSchema,
  type SalesOutcome,
  salesOutcomeSchema,
  type Stage,
  STAGES,
  workflowIdFor,
} from './domain/lead.js';
import { importedOutcomeStage } from './domain/imported.js';
import {
  eventSignal,
  historySignal,
  LeadCampaign,
  LeadStage,
  profileSignal,
  salesOutcomeUpdate,
  STATE_MEMO,
  stateQuery,
  WORKFLOW_TYPE,
} from '../workflows/defs.js';
import type { leadWorkflow } from '../workflows/lead.js';
import { FUNNEL_GROUP_BYS, type Funnel, type FunnelQuery } from './ledger/funnel.js';
import type { LeadLedger, StoredLead, TimelineEntry } from './ledger/ledger.js';
import type { LeadSearch, LeadSearchPage } from './ledger/search.js';
import { erasedAt, forgetErasure } from './ledger/erasure.js';
import {
  eraseLead,
  erasedError,
  type ErasureResult,
  exportLead,
  type LeadExport,
  refuseErased,
} from './lead-erasure.js';

/** A lead's state as read by getState; `workflowTask` only while its workflow task keeps failing. */
export type LeadStateRead = LeadState & { workflowTask?: WorkflowTaskProblem };
export interface WorkflowTaskProblem {
  failing: true;
  attempts: number;
  since?: string;
}

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
function failingTask(
  p:
    | { attempt?: number | null; originalScheduledTime?: { seconds?: unknown; nanos?: number | null } | null }
    | null
    | undefined,
): WorkflowTaskProblem | undefined {
  if (!p || (p.attempt ?? 1) < 2) return undefined;
  const seconds = Number(p.originalScheduledTime?.seconds ?? 0);
  const since = seconds
    ? new Date(seconds * 1000 + Math.floor((p.originalScheduledTime?.nanos ?? 0) / 1e6)).toISOString()
    : undefined;
  return { failing: true, attempts: p.attempt!, ...(since ? { since } : {}) };
}

const isNotFound = (err: unknown) => err instanceof WorkflowNotFoundError || (err as { code?: number })?.code === 5;
const notFoundError = (leadId: string) =>
  new LeadError(
    404,
    'not_found',
    `lead ${leadId} not found (no workflow ${workflowIdFor(leadId)} and nothing in the ledger)`,
  );

/**
 * A database error that says the server is away (refused, reset, timed out, shutting down), not
 * that the query was wrong: node's socket codes, pg's connection timeout, PostgreSQL's class 08
 * (connection exception) and 57P (operator intervention: shutdown, crash recovery).
 */
export function isDatabaseDown(err: unknown): boolean {
  const e = err as { code?: string; message?: string } | undefined;
  if (!e) return false;
  if (
    typeof e.code === 'string' &&
    (/^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|EHOSTUNREACH|EAI_AGAIN)$/.test(e.code) ||
      /^(08|57P)/.test(e.code))
  )
    return true;
  return /timeout exceeded when trying to connect|Query read timeout|Connection terminated|connection to server|Client has encountered a connection error/i.test(
    e.message ?? '',
  );
}

export class LeadError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly issues?: { path: string; message: string }[],
  ) {
    super(message);
    this.name = 'LeadError';
  }
}

/**
 * A sales outcome that does not fit the lead's stage (LeadService.salesOutcome): 409 over HTTP,
 * exit code 2 in leadctl, the same message in both.
 */
export class WrongStageError extends LeadError {
  constructor(message: string) {
    super(409, 'wrong_stage', message);
    this.name = 'WrongStageError';
  }
}

export function validate<T extends z.core.$ZodType>(
  schema: T,
  value: unknown,
  what: string,
  prefix: (string | number)[] = [],
): z.output<T> {
  const r = z.safeParse(schema, value);
  if (!r.success) {
    const issues = formatIssues(r.error, prefix);
    throw new LeadError(
      400,
      'invalid_input',
      `invalid ${what}: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
      issues,
    );
  }
  return r.data;
}

export const MAX_EVENTS_PER_REQUEST = 500;

const wholeIn = (n: number, min: number, max: number) => Number.isInteger(n) && n >= min && n <= max;

/** A search's filters and page (src/ledger/search.ts LeadSearch): the API's query and leadctl list's options. */
export type SearchParams = LeadSearch;

/**
 * The ledger's refusals as 400s: a page token it did not give out (`bad_page_token`) names
 * `tokenPath`; other `invalid_input` errors keep their message.
 */
function asInputError(err: unknown, tokenPath: string, tokenMessage: string): unknown {
  const code = (err as { code?: unknown })?.code;
  if (code === 'bad_page_token')
    return new LeadError(400, 'invalid_input', `invalid ${tokenPath}: ${tokenMessage}`, [
      { path: tokenPath, message: tokenMessage },
    ]);
  if (code === 'invalid_input' && !(err instanceof LeadError))
    return new LeadError(400, 'invalid_input', (err as Error).message);
  return err;
}

export class LeadService {
  /**
   * `ledger`: the lead ledger (src/ledger/ledger.ts), read for state, search, funnel and timeline.
   * `config`: the config, or where to read the running one (a rollout changes it: src/running-config.ts).
   */
  constructor(
    readonly client: Client,
    readonly taskQueue: string,
    private readonly configOf: Config | (() => Config),
    public ledger?: LeadLedger,
  ) {}

  /** The config the service validates event types and prices campaigns with. */
  get config(): Config {
    return typeof this.configOf === 'function' ? this.configOf() : this.configOf;
  }

  private handle(leadId: string) {
    return this.client.workflow.getHandle<typeof leadWorkflow>(
      workflowIdFor(validate(leadIdSchema, leadId, 'leadId', ['leadId'])),
    );
  }

  private checkType(ev: LeadEvent, prefix: (string | number)[]) {
    const known = knownEventTypes(this.config);
    if (!known.includes(ev.type)) {
      throw new LeadError(400, 'unknown_event_type', `unknown event type "${ev.type}"`, [
        { path: [...prefix, 'type'].join('.'), message: `unknown event type "${ev.type}"; known: ${known.join(', ')}` },
      ]);
    }
  }

  /** Creates a lead, or updates the profile of an existing one. */
  async upsertLead(raw: unknown): Promise<{ created: boolean; leadId: string }> {
    const input: LeadInput = validate(leadInputSchema, raw, 'lead');
    await this.allowErased(input);
    // A lead whose workflow is gone (retention, a delete) but that the ledger knows is not new: its
    // new run resumes from the ledger. (Asked before the start: afterwards its first write may be in.)
    const known = this.ledger
      ? await this.ledger.lead(input.leadId).then(
          (r) => r !== undefined,
          () => false,
        )
      : false;
    try {
      await this.client.workflow.start<typeof leadWorkflow>(WORKFLOW_TYPE, {
        taskQueue: this.taskQueue,
        workflowId: workflowIdFor(input.leadId),
        args: [input, {}],
        workflowIdConflictPolicy: 'FAIL',
        ...this.startAttributes(input),
      });
      return { created: !known, leadId: input.leadId };
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    }
    const { leadId, campaign: _c, channel: _ch, consent: _co, ...profile } = input;
    await this.handle(leadId).signal(profileSignal, profile);
    return { created: false, leadId };
  }

  /**
   * An erased lead id takes a LeadInput only with consent (`consent.email: true`): then it is a new
   * lead, the erasure forgotten (its address stays suppressed by hash until an admin removes it:
   * DELETE /v1/suppressions/:email). Without consent it is refused (410 erased).
   */
  private async allowErased(input: LeadInput): Promise<void> {
    const at = await this.erasedAt(input.leadId);
    if (!at) return;
    if (input.consent?.email !== true) throw erasedError(input.leadId, at);
    await this.fromLedger(() => forgetErasure(this.ledger!.pool, input.leadId));
  }

  /**
   * A late event, outcome or history for an erased lead id creates nothing: 410 erased, naming
   * leadId. A ledger that is away refuses nothing: leads and events are taken while it is down
   * (their ledger writes wait for it), as they were before erasure existed.
   */
  async refuseErased(...leadIds: string[]): Promise<void> {
    await refuseErased(this.ledger, leadIds).catch((err) => {
      if (!isDatabaseDown(err)) throw err;
    });
  }

  /** When the lead id was erased, if it was; nothing known while the ledger is away (see refuseErased). */
  private async erasedAt(leadId: string): Promise<string | undefined> {
    if (!this.ledger) return undefined;
    return erasedAt(this.ledger.pool, leadId).catch((err) => {
      if (isDatabaseDown(err)) return undefined;
      throw err;
    });
  }

  /** Erases the lead (src/lead-erasure.ts): its workflow runs, its ledger rows; its address stays suppressed by hash. */
  erase(leadId: string): Promise<ErasureResult> {
    return eraseLead(this, leadId);
  }

  /** Everything held about the lead (src/lead-erasure.ts): state, ledger rows, workflow runs. */
  exportLead(leadId: string): Promise<LeadExport> {
    return exportLead(this, leadId);
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
    if (list.length === 0)
      throw new LeadError(400, 'invalid_input', 'no events given', [
        { path: '(root)', message: 'expected one event or a non-empty array' },
      ]);
    if (list.length > MAX_EVENTS_PER_REQUEST) {
      throw new LeadError(
        413,
        'too_many_events',
        `at most ${MAX_EVENTS_PER_REQUEST} events per request, got ${list.length}`,
      );
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
    // All refused before any is sent, like bad input.
    await this.refuseErased(...events.map((e) => e.leadId));
    let next = 0;
    const worker = async () => {
      while (next < events.length) await this.signalEvent(events[next++]!);
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, events.length) }, worker));
    return { accepted: events.length };
  }

  /** One event, by signal-with-start: an event for an unknown (or finished) lead starts its run; an erased one's is refused. */
  async sendEvent(ev: LeadEvent): Promise<void> {
    await this.refuseErased(ev.leadId);
    await this.signalEvent(ev);
  }

  private async signalEvent(ev: LeadEvent): Promise<void> {
    const start: LeadStart = {
      leadId: ev.leadId,
      ...ev.profile,
      ...(ev.email ? { email: ev.email } : {}),
      ...(ev.campaign ? { campaign: ev.campaign } : {}),
      ...(ev.channel ? { channel: ev.channel } : {}),
    };
    await this.client.workflow.signalWithStart<typeof leadWorkflow, [LeadEvent]>(WORKFLOW_TYPE, {
      taskQueue: this.taskQueue,
      workflowId: workflowIdFor(ev.leadId),
      args: [start, {}],
      signal: eventSignal,
      signalArgs: [ev],
      ...this.startAttributes(start),
    });
  }

  async patchProfile(leadId: string, raw: unknown): Promise<void> {
    const profile: Profile = validate(profileSchema, raw, 'profile');
    await this.notFound(leadId, () => this.handle(leadId).signal(profileSignal, profile));
  }

  /**
   * Refuses a profile change whose merge with the lead's current profile would be past the bound
   * (400 profile_too_large): the workflow refuses such a patch too (applyProfile), but only in its
   * log. Without a current state (a failing lead, a slow read) nothing is refused: the signal goes
   * and the workflow decides. Asked before patchProfile (PATCH /v1/leads/:leadId), which alone
   * sends a patch unchecked.
   */
  async checkProfileMerge(leadId: string, patch: Profile): Promise<void> {
    const current = await this.getState(leadId).catch(() => undefined);
    const tooBig = current && profileLimitProblem({ ...current.profile, ...patch });
    if (tooBig) {
      const message = `the merged profile would be too large: ${tooBig}`;
      throw new LeadError(400, 'profile_too_large', message, [{ path: '(root)', message: tooBig }]);
    }
  }

  /**
   * The salesOutcome update, and the one place that decides which outcome a lead takes (the API's
   * route and leadctl both call this): one that does not fit the lead's stage is a WrongStageError,
   * whether the running workflow's validator refused it or the lead's run has ended (a customer or
   * disqualified lead whose run completed, was terminated or deleted: Temporal says "not found",
   * but the lead exists). Only a lead nobody knows is a 404.
   */
  async salesOutcome(leadId: string, raw: unknown): Promise<LeadState> {
    const outcome: SalesOutcome = validate(salesOutcomeSchema, raw, 'sales outcome');
    try {
      return await this.handle(leadId).executeUpdate(salesOutcomeUpdate, { args: [outcome] });
    } catch (err) {
      if (err instanceof WorkflowUpdateFailedError) throw new WrongStageError(err.cause?.message ?? err.message);
      if (!isNotFound(err)) throw err;
    }
    const state = await this.getState(leadId).catch((err) => {
      if (err instanceof LeadError && err.status === 404) return undefined;
      throw err;
    });
    if (!state) throw await this.missing(leadId);
    const ended = `the lead is ${state.stage} and its run has completed`;
    throw new WrongStageError(`outcome ${outcome.outcome} does not fit: ${ended}`);
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
        throw await this.missing(leadId);
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
      if (failing || (attempt >= MEMO_RETRIES && (await this.completedATask(d.workflowId, d.runId)))) {
        try {
          const queried = await handle.query(stateQuery);
          return failing ? { ...queried, workflowTask: failing } : queried;
        } catch (err) {
          if (failing)
            throw new LeadError(
              503,
              'workflow_task_failing',
              `lead ${leadId} is not answering: its workflow task failed ${failing.attempts} times since ${failing.since ?? 'its start'}`,
            );
          throw err;
        }
      }
      if (attempt >= STARTING_RETRIES)
        throw new LeadError(
          503,
          'lead_starting',
          `lead ${leadId} is starting: its first workflow task has not completed yet; try again in a moment`,
        );
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
      if (isDatabaseDown(err))
        throw new LeadError(
          503,
          'ledger_unavailable',
          `the lead ledger's database is not reachable: ${(err as Error).message}`,
        );
      throw err;
    }
  }

  /** Whether the run's history has a completed workflow task (first page only: it comes early). */
  private async completedATask(workflowId: string, runId: string): Promise<boolean> {
    const page = await this.client.workflowService.getWorkflowExecutionHistory({
      namespace: this.client.options.namespace,
      execution: { workflowId, runId },
      maximumPageSize: 100,
    });
    return (page.history?.events ?? []).some((e) => e.workflowTaskCompletedEventAttributes);
  }

  private async notFound<T>(leadId: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (isNotFound(err)) throw await this.missing(leadId);
      throw err;
    }
  }

  /** A lead nobody has: 410 erased when it was erased, else 404. */
  private async missing(leadId: string): Promise<LeadError> {
    const at = await this.erasedAt(leadId);
    return at ? erasedError(leadId, at) : notFoundError(leadId);
  }

  /**
   * Checks a search's filters before any round trip (leadctl refuses bad input without a server):
   * a known stage, an owner (at most 320 characters) and a campaign (100, as a LeadInput's) without
   * control characters once trimmed, whole numbers in range, a token that could be one this search
   * gave out. An empty owner or campaign is no filter.
   */
  validateSearch(p: SearchParams): void {
    const bad = (path: string, message: string) =>
      new LeadError(400, 'invalid_input', `invalid ${path}: ${message}`, [{ path, message }]);
    if (p.stage && !(STAGES as readonly string[]).includes(p.stage))
      throw bad('stage', `must be one of ${STAGES.join(', ')}`);
    for (const [field, max] of [
      ['owner', 320],
      ['campaign', 100],
      ['model', 64],
    ] as const) {
      const v = p[field]?.trim();
      if (p[field] !== undefined && p[field] !== '' && (!v || CONTROL_CHARS.test(v) || v.length > max)) {
        throw bad(field, `must be 1-${max} characters (trimmed), without control characters`);
      }
    }
    const MAX_SCORE = 1_000_000;
    if (p.minScore !== undefined && (!Number.isInteger(p.minScore) || Math.abs(p.minScore) > MAX_SCORE)) {
      throw bad('minScore', `must be a whole number from -${MAX_SCORE} to ${MAX_SCORE}`);
    }
    if (p.limit !== undefined && !wholeIn(p.limit, 1, 1000)) {
      throw bad('limit', 'must be a whole number from 1 to 1000');
    }
    if (p.pageToken !== undefined && !/^[A-Za-z0-9_-]{1,2048}$/.test(p.pageToken))
      throw bad('pageToken', 'must be a nextPageToken from an earlier answer');
  }

  /**
   * Leads by stage, owner, first-touch campaign, scoring model and minimum score, from the ledger (every lead
   * ever recorded, a closed one included), in pages of lead id order; `nextPageToken` continues a
   * search with the same filters, and only that search.
   */
  async search(p: SearchParams): Promise<LeadSearchPage> {
    this.validateSearch(p);
    const q = { ...p, owner: p.owner?.trim(), campaign: p.campaign?.trim(), model: p.model?.trim() };
    const ledger = this.requireLedger();
    return this.fromLedger(() => ledger.search(q)).catch((err) => {
      throw asInputError(
        err,
        'pageToken',
        'must be the nextPageToken of an earlier answer to the same search (same stage, owner, campaign, minScore and model)',
      );
    });
  }

  /**
   * The contract's `Funnel` from the ledger: leads per stage now, the cohort of leads that became
   * MQL in [since, until) and how far it got, per `by` group, with the config's campaign costs.
   */
  async funnel(q: FunnelQuery = {}): Promise<Funnel> {
    const bad = (path: string, message: string) =>
      new LeadError(400, 'invalid_input', `invalid ${path}: ${message}`, [{ path, message }]);
    for (const field of ['since', 'until'] as const) {
      const v = q[field];
      if (v !== undefined && (typeof v !== 'string' || Number.isNaN(Date.parse(v))))
        throw bad(field, 'must be an ISO-8601 date or date-time, e.g. 2025-01-31 or 2025-01-31T00:00:00Z');
    }
    if (q.since !== undefined && q.until !== undefined && Date.parse(q.since) >= Date.parse(q.until))
      throw bad('until', 'since must be before until');
    if (q.by !== undefined && !FUNNEL_GROUP_BYS.includes(q.by))
      throw bad('by', `must be one of ${FUNNEL_GROUP_BYS.join(', ')}`);
    const ledger = this.requireLedger();
    return this.fromLedger(() => ledger.funnel(q, this.config.campaigns)).catch((err) => {
      throw asInputError(err, 'query', 'not a funnel this ledger can answer');
    });
  }

  /**
   * Everything the ledger recorded about one lead, in time order: events (with the points they
   * scored in `attributes.points`), profile changes, transitions, mails and outcomes; `pageToken`
   * continues where a page ended. A lead the ledger does not know is a 404.
   */
  async timeline(
    leadId: string,
    o: { limit?: number; pageToken?: string } = {},
  ): Promise<{ entries: TimelineEntry[]; nextPageToken?: string }> {
    validate(leadIdSchema, leadId, 'leadId', ['leadId']);
    if (o.limit !== undefined && !wholeIn(o.limit, 1, 1000)) {
      const message = 'must be a whole number from 1 to 1000';
      throw new LeadError(400, 'invalid_input', `invalid limit: ${message}`, [{ path: 'limit', message }]);
    }
    if (o.pageToken !== undefined && !/^[A-Za-z0-9_-]{1,2048}$/.test(o.pageToken)) {
      throw new LeadError(400, 'invalid_input', 'invalid pageToken: must be a nextPageToken from an earlier answer', [
        { path: 'pageToken', message: 'must be a nextPageToken from an earlier answer' },
      ]);
    }
    const ledger = this.requireLedger();
    const page = await this.fromLedger(() => ledger.timeline(leadId, o)).catch((err) => {
      throw asInputError(err, 'pageToken', 'must be the nextPageToken of an earlier page of this timeline');
    });
    // An empty page is either a lead with nothing recorded yet or one the ledger does not know.
    if (page.entries.length === 0 && !(await this.fromLedger(() => ledger.lead(leadId)))) {
      const gone = await this.missing(leadId);
      throw gone.status === 410 ? gone : new LeadError(404, 'not_found', `lead ${leadId} not found in the ledger`);
    }
    return page;
  }

  private requireLedger(): LeadLedger {
    if (!this.ledger)
      throw new Error('this LeadService has no lead ledger (searches, the funnel and timelines are read from it)');
    return this.ledger;
  }

  // ---- imported history (leadctl import leads|outcomes; CONTRACT.md "Importing a real history") -----

  /**
   * Creates a lead or updates its profile (upsertLead), then sends its imported history, if it has
   * one. What the ledger already shows is not sent again: a lead whose recorded profile holds every
   * field of the row, and whose stage dates are the history's, is `unchanged` (a second import of a
   * file costs a ledger read per row, not a workflow task per lead).
   */
  async importLead(
    raw: unknown,
    fact?: ImportedFact,
  ): Promise<{ created: boolean; leadId: string; unchanged?: boolean }> {
    const input: LeadInput = validate(leadInputSchema, raw, 'lead');
    const history = fact === undefined ? undefined : validate(importedFactSchema, fact, 'imported history');
    if (history && 'outcome' in history)
      throw new LeadError(400, 'invalid_input', 'a lead row carries a history, not an outcome');
    const known = this.ledger ? await this.fromLedger(() => this.ledger!.lead(input.leadId)) : undefined;
    const historyShown = !!known && !!history && historyIn(known, history);
    if (known && profileIn(known, input) && (!history || historyShown))
      return { created: false, leadId: input.leadId, unchanged: true };
    const r = await this.upsertLead(input);
    if (history && !historyShown) await this.sendImported(r.leadId, history);
    return r;
  }

  /**
   * Sends an imported outcome to a lead the ledger knows, unless it is dated before the lead's
   * first MQL date (its creation, without one): a 404 or 409 naming the field otherwise, and
   * nothing sent; `unchanged` when the ledger already records it. The workflow checks the date
   * again against the lead it has.
   */
  async importOutcome(leadId: string, raw: ImportedFact): Promise<'sent' | 'unchanged'> {
    const fact = validate(importedFactSchema, raw, 'imported outcome');
    if (!('outcome' in fact)) throw new LeadError(400, 'invalid_input', 'an outcome row carries an outcome');
    validate(leadIdSchema, leadId, 'leadId', ['leadId']);
    if (!this.ledger) throw new Error('importing outcomes needs the lead ledger');
    const lead = await this.fromLedger(() => this.ledger!.lead(leadId));
    if (!lead) {
      throw new LeadError(404, 'not_found', `lead ${leadId} is not in the ledger`, [
        { path: 'leadId', message: `no lead "${leadId}" in the ledger (import the leads first)` },
      ]);
    }
    const r = importedOutcomeStage(
      { outcome: fact.outcome, at: Date.parse(fact.occurredAt), ...(fact.reason ? { reason: fact.reason } : {}) },
      {
        stage: lead.stage,
        createdAt: Date.parse(lead.createdAt),
        ...(lead.becameMqlAt ? { becameMqlAt: Date.parse(lead.becameMqlAt) } : {}),
      },
    );
    if ('problem' in r)
      throw new LeadError(409, 'outcome_too_early', `outcome ${fact.outcome} ${r.problem}`, [
        { path: 'occurredAt', message: r.problem },
      ]);
    // Already recorded (a second import of the file): nothing to send.
    if ((await this.importedInLedger([{ leadId, outcome: fact.outcome, occurredAt: fact.occurredAt }]))[0])
      return 'unchanged';
    await this.sendImported(leadId, fact);
    return 'sent';
  }

  /** The `history` signal, by signal-with-start: a lead whose run was deleted resumes from the ledger and applies it. */
  private async sendImported(leadId: string, fact: ImportedFact): Promise<void> {
    await this.refuseErased(leadId);
    const start: LeadStart = { leadId };
    await this.client.workflow.signalWithStart<typeof leadWorkflow, [ImportedFact]>(WORKFLOW_TYPE, {
      taskQueue: this.taskQueue,
      workflowId: workflowIdFor(leadId),
      args: [start, {}],
      signal: historySignal,
      signalArgs: [fact],
      ...this.startAttributes(start),
    });
  }

  /** Whether the ledger shows each imported lead or outcome (ImportCheck), in order. */
  async importedInLedger(checks: readonly ImportCheck[]): Promise<boolean[]> {
    if (!this.ledger) throw new Error('checking an import needs the lead ledger');
    const pool = this.ledger.pool;
    const ids = [...new Set(checks.map((c) => c.leadId))];
    const leads = new Map<string, Record<string, unknown>>();
    const outcomes = new Set<string>();
    const key = (leadId: string, outcome: string, at: string) =>
      `${leadId}\u0000${outcome}\u0000${new Date(at).toISOString()}`;
    await this.fromLedger(async () => {
      if (checks.some((c) => !('outcome' in c))) {
        const r = await pool.query(
          'SELECT lead_id, became_mql_at, became_sql_at, became_opportunity_at, became_customer_at FROM leads WHERE lead_id = ANY($1::text[])',
          [ids],
        );
        for (const row of r.rows) leads.set(row.lead_id, row);
      }
      if (checks.some((c) => 'outcome' in c)) {
        const r = await pool.query(
          'SELECT lead_id, outcome, occurred_at FROM lead_outcomes WHERE lead_id = ANY($1::text[])',
          [ids],
        );
        for (const row of r.rows) outcomes.add(key(row.lead_id, row.outcome, (row.occurred_at as Date).toISOString()));
      }
    });
    return checks.map((c) => {
      if ('outcome' in c) return outcomes.has(key(c.leadId, c.outcome, c.occurredAt));
      const row = leads.get(c.leadId);
      return !!row && (c.stages ?? []).every((s) => !STAGE_DATE_COLUMN[s] || row[STAGE_DATE_COLUMN[s]!] !== null);
    });
  }
}

/**
 * What an import waits for the ledger to show: a lead's row, with a stage date for each funnel
 * stage its imported history reaches; or an imported outcome's row.
 */
export type ImportCheck =
  { leadId: string; stages?: Stage[] } | { leadId: string; outcome: string; occurredAt: string };
const STAGE_DATE_COLUMN: Partial<Record<Stage, string>> = {
  mql: 'became_mql_at',
  sql: 'became_sql_at',
  opportunity: 'became_opportunity_at',
  customer: 'became_customer_at',
};

/** Whether the ledger's recorded profile of a lead already holds every profile field of `input` (what upsertLead would signal). */
function profileIn(known: StoredLead, input: LeadInput): boolean {
  const { leadId: _l, campaign: _c, channel: _ch, consent: _co, ...profile } = input;
  const recorded = (known.state as { profile?: Record<string, unknown> } | undefined)?.profile ?? {};
  return Object.entries(profile).every(([k, v]) => v === undefined || recorded[k] === v);
}

/** Whether the ledger already shows an imported history: each dated stage first reached at its date, the stage (if given) the lead's now or passed. */
function historyIn(known: StoredLead, h: Exclude<ImportedFact, { outcome: string }>): boolean {
  const dated: [string | undefined, string | undefined][] = [
    [h.becameMqlAt, known.becameMqlAt],
    [h.becameSqlAt, known.becameSqlAt],
    [h.becameOpportunityAt, known.becameOpportunityAt],
    [h.becameCustomerAt, known.becameCustomerAt],
  ];
  if (
    !dated.every(
      ([given, shown]) => given === undefined || (shown !== undefined && Date.parse(given) === Date.parse(shown)),
    )
  )
    return false;
  // A stage without a date of its own is entered at the import: on the funnel path it is shown
  // once the lead reached it; off the path (recycled, dormant ...) only while the lead is in it.
  if (!h.stage || h.stage === 'lead') return true;
  const reached = {
    mql: known.becameMqlAt,
    sql: known.becameSqlAt,
    opportunity: known.becameOpportunityAt,
    customer: known.becameCustomerAt,
  } as Partial<Record<Stage, string>>;
  return STAGE_DATE_COLUMN[h.stage] ? reached[h.stage] !== undefined : h.stage === known.stage;
}
