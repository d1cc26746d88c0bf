/**
 * `leadctl wedged`: leads whose workflow task keeps failing, so their later events are recorded
 * and never applied. Temporal Server 1.32 marks such a run with the system search attribute
 * `TemporalReportedProblems` once `system.numConsecutiveWorkflowTaskProblemsToTriggerSearchAttribute`
 * tasks in a row failed (the dev server of `npm start` and the tests set it; see
 * docs/operations.md "A lead whose workflow task fails"). For each such lead this prints what
 * failed and the `temporal workflow reset` that recovers it.
 */
import type { Client } from '@temporalio/client';
import type { Command } from 'commander';
import type { LeadService } from '../client.js';
import { leadIdOfWorkflowId } from '../domain/lead.js';
import { WORKFLOW_TYPE } from '../../workflows/defs.js';

export interface WedgedLead {
  leadId: string;
  workflowId: string;
  runId: string;
  /** The values of TemporalReportedProblems, e.g. category=WorkflowTaskFailed, cause=…NonDeterministicError. */
  problems: string[];
  /** Attempts of the pending workflow task, and since when it has been retried. */
  attempts?: number;
  since?: string;
  /** The first failure's message (the nondeterminism error names the history event it stopped at). */
  failure?: string;
  /** The WorkflowTaskCompleted event to reset to (the task that issued the event the error names), when it can tell. */
  resetEventId?: number;
  reset: string;
}

export const WEDGED_QUERY = `WorkflowType = '${WORKFLOW_TYPE}' AND ExecutionStatus = 'Running' AND TemporalReportedProblems IS NOT NULL`;

export async function wedgedLeads(client: Client, limit = 100): Promise<WedgedLead[]> {
  const out: WedgedLead[] = [];
  for await (const w of client.workflow.list({ query: WEDGED_QUERY, pageSize: Math.min(limit, 100) })) {
    if (out.length >= limit) break;
    const problems = (w.searchAttributes?.TemporalReportedProblems as string[] | undefined) ?? [];
    const d = await client.workflow.getHandle(w.workflowId, w.runId).describe();
    const p = d.raw.pendingWorkflowTask;
    const seconds = Number(p?.originalScheduledTime?.seconds ?? 0);
    const { failure, resetEventId } = await firstFailure(client, w.workflowId, w.runId);
    out.push({
      leadId: leadIdOfWorkflowId(w.workflowId), workflowId: w.workflowId, runId: w.runId, problems,
      attempts: p?.attempt ?? undefined, since: seconds ? new Date(seconds * 1000).toISOString() : undefined, failure, resetEventId,
      reset: `temporal workflow reset --workflow-id ${w.workflowId} --run-id ${w.runId} ${resetEventId ? `--event-id ${resetEventId}` : '--type LastWorkflowTask'} --reason 'workflow task failing (leadctl wedged)'`,
    });
  }
  return out;
}

/**
 * The first WorkflowTaskFailed of the run and, for a nondeterminism error naming `HistoryEvent(id: N`,
 * the last WorkflowTaskCompleted before N: the task that issued the mismatching command. A reset
 * there keeps the history before that task and runs it again under the current code.
 */
async function firstFailure(client: Client, workflowId: string, runId: string): Promise<{ failure?: string; resetEventId?: number }> {
  const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
  const events = history.events ?? [];
  const failed = events.find((e) => e.workflowTaskFailedEventAttributes);
  const failure = failed?.workflowTaskFailedEventAttributes?.failure?.message ?? undefined;
  const named = failure ? /HistoryEvent\(id: (\d+)/.exec(failure) : null;
  if (!named) return { failure };
  const at = Number(named[1]);
  const completed = events.filter((e) => e.workflowTaskCompletedEventAttributes && Number(e.eventId) < at).at(-1);
  return { failure, resetEventId: completed ? Number(completed.eventId) : undefined };
}

type Action = <A extends unknown[]>(fn: (ctx: { connect(o?: { ledger?: boolean }): Promise<LeadService> }, json: boolean, ...args: A) => Promise<number | void>) => (...args: A) => Promise<void>;

/** Adds `wedged` to leadctl (one line in leadctl.ts). Exit code 3 when any lead is wedged, so a cron or probe can alert on it. */
export function addWedgedCommand(program: Command, action: Action, out: (s: string) => void) {
  program.command('wedged')
    .description('leads whose workflow task keeps failing (TemporalReportedProblems), with the reset that recovers each; exit 3 if any')
    .option('--limit <n>', 'at most this many (default 100)', (v) => Math.max(1, Number.parseInt(v, 10) || 100))
    .action(action(async (ctx, json, o: { limit?: number }) => {
      const leads = await wedgedLeads((await ctx.connect({ ledger: false })).client, o.limit ?? 100);
      if (json) out(JSON.stringify({ leads }, null, 2));
      else if (!leads.length) out('no wedged leads');
      else {
        for (const l of leads) {
          out(`${l.leadId}  ${l.problems.join(' ')}${l.attempts ? `  attempt ${l.attempts}` : ''}${l.since ? ` since ${l.since}` : ''}`);
          if (l.failure) out(`  failure: ${l.failure.split('\n')[0]}`);
          out(`  recover: ${l.reset}`);
        }
        out(`${leads.length} wedged lead${leads.length === 1 ? '' : 's'} (see docs/operations.md, "A lead whose workflow task fails")`);
      }
      return leads.length ? 3 : 0;
    }));
}
