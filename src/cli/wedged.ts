/**
 * `leadctl wedged`: leads whose workflow task keeps failing, so their later events are recorded
 * and never applied. Temporal Server 1.32 marks such a run with the system search attribute
 * `TemporalReportedProblems` once `system.numConsecutiveWorkflowTaskProblemsToTriggerSearchAttribute`
 * tasks in a row failed (the dev server of `npm start` and the tests set it; see
 * docs/operations.md "A lead whose workflow task fails"). For each such lead this prints what
 * failed and the `temporal workflow reset` that recovers it (the command: commands/wedged.ts).
 */
import type { Client } from '@temporalio/client';
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
      leadId: leadIdOfWorkflowId(w.workflowId),
      workflowId: w.workflowId,
      runId: w.runId,
      problems,
      attempts: p?.attempt ?? undefined,
      since: seconds ? new Date(seconds * 1000).toISOString() : undefined,
      failure,
      resetEventId,
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
async function firstFailure(
  client: Client,
  workflowId: string,
  runId: string,
): Promise<{ failure?: string; resetEventId?: number }> {
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
